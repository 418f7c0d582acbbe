//! What the profile service tells the journey service through its outbox:
//! a merge moves the merged customer's touchpoints to the survivor; an
//! erasure deletes the customer's touchpoints and confirms back (through
//! this service's own outbox, in the same transaction).

use async_trait::async_trait;
use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::outbox::inbox::{AfterCommit, InboxHandler, decode, expect_sender};
use prost::{Message, Name};
use sea_orm::DatabaseTransaction;
use tonic::Status;
use uuid::Uuid;

use crate::cache_keys::{answers_prefix, generation_key};
use crate::resolver::Resolver;
use crate::store::{JourneyError, peers};

#[derive(Debug)]
pub struct JourneyInbox {
    resolver: Resolver,
    cache: Cache,
}

impl JourneyInbox {
    pub fn new(resolver: Resolver, cache: Cache) -> Self {
        Self { resolver, cache }
    }

    /// After the commit, the resolution memory forgets `ids` and the cached
    /// analyses of `maps` go (they may name the customers).
    fn forget_after(&self, t: &TenantId, ids: Vec<Uuid>, maps: Vec<Uuid>) -> AfterCommit {
        let (resolver, cache, t) = (self.resolver.clone(), self.cache.clone(), t.clone());
        Some(Box::pin(async move {
            resolver.forget(&t, &ids);
            for map in maps {
                let dropped = match cache.invalidate(&generation_key(&t, map)).await {
                    Ok(()) => cache.invalidate_prefix(&t, &answers_prefix(map)).await,
                    failed => failed,
                };
                // On failure the bump is owed: this process trusts no cached
                // value until it is made.
                if let Err(err) = dropped {
                    tracing::error!(error = %err, "analyses of a map not invalidated");
                }
            }
        }))
    }
}

fn uuid(raw: &str, field: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw).map_err(|_| Status::invalid_argument(format!("{field} is not a UUID")))
}

#[async_trait]
impl InboxHandler for JourneyInbox {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        sender: &str,
        kind: &str,
        payload: &[u8],
    ) -> Result<AfterCommit, Status> {
        // Merges and erasures are the profile service's to announce.
        if kind == pb::ProfileMerged::full_name() || kind == pb::ErasureRequested::full_name() {
            expect_sender(sender, "profile", kind)?;
        }
        if kind == pb::ProfileMerged::full_name() {
            let pb::ProfileMerged { survivor_profile_id, merged_profile_id, merge_time: _ } = decode(payload)?;
            let survivor = uuid(&survivor_profile_id, "survivor_profile_id")?;
            let merged = uuid(&merged_profile_id, "merged_profile_id")?;
            let maps = peers::maps_of(txn, t, &[merged]).await.map_err(Status::from)?;
            let moved = peers::merge(txn, t, survivor, merged).await.map_err(Status::from)?;
            tracing::info!(touchpoints = moved, "merged customer's touchpoints moved to the survivor");
            return Ok(self.forget_after(t, vec![merged], maps));
        }
        if kind == pb::ErasureRequested::full_name() {
            let pb::ErasureRequested { erasure_id, profile_id, merged_profile_ids } = decode(payload)?;
            let mut customers = vec![uuid(&profile_id, "profile_id")?];
            for merged in &merged_profile_ids {
                customers.push(uuid(merged, "merged_profile_ids")?);
            }
            let maps = peers::maps_of(txn, t, &customers).await.map_err(Status::from)?;
            let counts = peers::erase(txn, t, &customers).await.map_err(Status::from)?;
            // With the erasure, a new cache epoch: every replica forgets the
            // customer's identities (in memory) within one epoch check.
            cx_runtime::cache::epoch::bump(txn).await.map_err(|e| Status::from(JourneyError::from(e)))?;
            let confirmation = pb::ErasureConfirmed {
                erasure_id,
                service: crate::NAME.to_owned(),
                counts: counts.into_iter().collect(),
                complete_time: Some(cx_proto::timestamp(chrono::Utc::now())),
            };
            // Confirmed once no replica can trust the epoch before the erasure.
            cx_runtime::outbox::Pending::new(t, "profile", &pb::ErasureConfirmed::full_name())
                .enqueue_after(txn, confirmation.encode_to_vec(), cx_runtime::cache::ERASURE_WAIT)
                .await
                .map_err(|e| Status::from(JourneyError::from(e)))?;
            tracing::info!("customer erased from the journey service");
            return Ok(self.forget_after(t, customers, maps));
        }
        Err(Status::invalid_argument(format!("the journey service does not take '{kind}' messages")))
    }
}
