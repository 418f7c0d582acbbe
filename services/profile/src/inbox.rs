//! What other services send the profile service through their outboxes:
//! activity recorded by the journey service, and confirmations of erasure.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::outbox::inbox::{AfterCommit, InboxHandler, decode, expect_sender};
use sea_orm::DatabaseTransaction;
use tonic::Status;
use uuid::Uuid;

use crate::cache_keys;
use crate::error::ProfileError;
use crate::store::ProfileStore;
use crate::store::activity::{UnknownProfiles, apply_activity};
use crate::store::events::kind;

#[derive(Debug)]
pub struct ProfileInbox {
    cache: Cache,
}

impl ProfileInbox {
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }
}

#[async_trait]
impl InboxHandler for ProfileInbox {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        sender: &str,
        message_kind: &str,
        payload: &[u8],
    ) -> Result<AfterCommit, Status> {
        if message_kind == kind::<pb::RecordActivityRequest>() {
            // Activity is what the journey service records.
            expect_sender(sender, "journey", message_kind)?;
            let pb::RecordActivityRequest { batch_id, records } = decode(payload)?;
            let records = crate::api::activity::parse_batch(&batch_id, records).map_err(ProfileError::from)?;
            // Activity may name a customer merged or erased since it was sent.
            let changed = apply_activity(txn, t, &batch_id, records, UnknownProfiles::Redirect).await?;
            let keys: Vec<_> = changed.unwrap_or_default().into_iter().map(|id| cache_keys::profile(t, id)).collect();
            let cache = self.cache.clone();
            return Ok(Some(Box::pin(async move {
                // On failure the bump is owed: this process trusts no cached
                // value until it is made.
                if let Err(err) = cache.invalidate_all(&keys).await {
                    tracing::error!(error = %err, "activity stored, profiles not invalidated");
                }
            })));
        }
        if message_kind == kind::<pb::ErasureConfirmed>() {
            // The step confirmed is the sender's own, whatever the payload
            // says: a service confirms only what it was asked.
            let pb::ErasureConfirmed { erasure_id, service: _, counts, complete_time } = decode(payload)?;
            let job = Uuid::parse_str(&erasure_id).map_err(|_| Status::invalid_argument("erasure_id is not a UUID"))?;
            let at = complete_time.as_ref().and_then(cx_proto::from_timestamp).unwrap_or_else(chrono::Utc::now);
            let counts: BTreeMap<String, i64> = counts.into_iter().collect();
            ProfileStore::confirm_erasure(txn, t, job, sender, &counts, at).await?;
            return Ok(None);
        }
        Err(Status::invalid_argument(format!("the profile service does not take '{message_kind}' messages")))
    }
}
