//! What other services send the profile service through their outboxes:
//! activity recorded by the journey service, customers' survey scores from
//! the survey service, and confirmations of erasure from every service
//! holding customer data.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::outbox::inbox::{AfterCommit, Handlers, Receive};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::cache_keys;
use crate::error::ProfileError;
use crate::store::ProfileStore;
use crate::store::activity::{UnknownProfiles, apply_activity};
use crate::store::scores;
use cx_proto::survey::v1::ScoreRecorded;

/// The service that records customers' activity.
const ACTIVITY_SENDER: &str = "journey";
/// The service whose answers give customers their latest scores.
const SCORES_SENDER: &str = "survey";

#[derive(Debug)]
pub struct ProfileInbox {
    cache: Cache,
    /// Tells the takers of profile facts of the customers activity changed.
    store: crate::store::ProfileStore,
}

impl ProfileInbox {
    pub fn new(cache: Cache, store: crate::store::ProfileStore) -> Self {
        Self { cache, store }
    }
}

/// The profile service's inbox: activity from journey; erasure
/// confirmations from whichever service was asked (checked against the job).
pub fn routes(handlers: Handlers, inbox: Arc<ProfileInbox>) -> Handlers {
    handlers
        .on::<pb::RecordActivityRequest>(ACTIVITY_SENDER, inbox.clone())
        .on::<ScoreRecorded>(SCORES_SENDER, inbox)
        .on_any::<pb::ErasureConfirmed>(Arc::new(ErasureConfirmations))
}

#[async_trait]
impl Receive<pb::RecordActivityRequest> for ProfileInbox {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        message: pb::RecordActivityRequest,
    ) -> Result<AfterCommit, ProfileError> {
        let pb::RecordActivityRequest { batch_id, records } = message;
        let records = crate::api::activity::parse_batch(&batch_id, records)?;
        // Activity may name a customer merged or erased since it was sent.
        let changed = apply_activity(txn, t, &batch_id, records, UnknownProfiles::Redirect).await?;
        if let Some(customers) = &changed {
            self.store.facts_changed(txn, t, customers).await?;
        }
        let keys = cache_keys::customers(t, changed.unwrap_or_default());
        let cache = self.cache.clone();
        Ok(Some(Box::pin(async move {
            // On failure the bump is owed: this process trusts no cached
            // value until it is made.
            if let Err(err) = cache.invalidate_all(&keys).await {
                tracing::error!(error = %err, "activity stored, profiles not invalidated");
            }
        })))
    }
}

#[async_trait]
impl Receive<ScoreRecorded> for ProfileInbox {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        _: &str,
        message: ScoreRecorded,
    ) -> Result<AfterCommit, ProfileError> {
        let (customer, score) = scores::parse(message)?;
        // For the survivor of a merged id; nothing for an erased one.
        let Some(changed) = scores::record(txn, t, customer, &score).await? else {
            return Ok(None);
        };
        let (cache, key) = (self.cache.clone(), cache_keys::profile(t, changed));
        Ok(Some(Box::pin(async move {
            // On failure the bump is owed: this process trusts no cached
            // value until it is made.
            if let Err(err) = cache.invalidate(&key).await {
                tracing::error!(error = %err, "score stored, profile not invalidated");
            }
        })))
    }
}

/// Completes the sender's step of an erasure job.
struct ErasureConfirmations;

#[async_trait]
impl Receive<pb::ErasureConfirmed> for ErasureConfirmations {
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        sender: &str,
        message: pb::ErasureConfirmed,
    ) -> Result<AfterCommit, ProfileError> {
        // The step confirmed is the sender's own, whatever the payload
        // says: a service confirms only what it was asked.
        let pb::ErasureConfirmed { erasure_id, service: _, counts, complete_time } = message;
        let job = Uuid::parse_str(&erasure_id).map_err(|_| ProfileError::invalid("erasure_id", "is not a UUID"))?;
        let at = complete_time.as_ref().and_then(cx_proto::from_timestamp).unwrap_or_else(chrono::Utc::now);
        let counts: BTreeMap<String, i64> = counts.into_iter().collect();
        ProfileStore::confirm_erasure(txn, t, job, sender, &counts, at).await?;
        Ok(None)
    }
}
