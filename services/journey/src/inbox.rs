//! The journey service's part in merges, erasures and access exports: a
//! merge moves the merged customer's touchpoints to the survivor; an erasure
//! deletes them; an export reads them a page at a time, as
//! `cx.journey.v1.Touchpoint`s. The runtime ([`cx_runtime::gdpr`]) decodes,
//! checks the sender, follows merge chains, confirms and traces; this says
//! what journey's data does.

use async_trait::async_trait;
use cx_runtime::TenantId;
use cx_runtime::cache::Cache;
use cx_runtime::gdpr::export::{self, Records};
use cx_runtime::gdpr::{Counts, Participant};
use cx_runtime::outbox::inbox::AfterCommit;
use cx_runtime::store::Db;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::api::convert::touchpoint_to_proto;
use crate::cache_keys::{ANSWERS, answers_group, generation_key};
use crate::resolver::Resolver;
use crate::store::{JourneyError, peers};

/// Touchpoints an export reads at a time (a few hundred kilobytes).
pub const EXPORT_PAGE: u64 = 1_000;

#[derive(Debug)]
pub struct JourneyParticipant {
    resolver: Resolver,
    cache: Cache,
}

impl JourneyParticipant {
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
                    Ok(()) => cache.invalidate_group(&t, ANSWERS, &answers_group(map)).await,
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

#[async_trait]
impl Participant for JourneyParticipant {
    async fn merge(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        survivor: Uuid,
        merged: Uuid,
    ) -> Result<AfterCommit, JourneyError> {
        let maps = peers::maps_of(txn, t, &[merged]).await?;
        let moved = peers::merge(txn, t, survivor, merged).await?;
        tracing::info!(touchpoints = moved, "merged customer's touchpoints moved to the survivor");
        Ok(self.forget_after(t, vec![merged], maps))
    }

    async fn erase(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        customers: &[Uuid],
    ) -> Result<(Counts, AfterCommit), JourneyError> {
        let maps = peers::maps_of(txn, t, customers).await?;
        let counts = peers::erase(txn, t, customers).await?;
        Ok((counts, self.forget_after(t, customers.to_vec(), maps)))
    }

    async fn export(&self, db: &Db, t: &TenantId, customers: &[Uuid]) -> Result<Records, JourneyError> {
        let (db, t, customers) = (db.clone(), t.clone(), customers.to_vec());
        Ok(export::pages(move |after| {
            let (db, t, customers) = (db.clone(), t.clone(), customers.clone());
            async move {
                let (page, next) = peers::export_page(&db, &t, &customers, after, EXPORT_PAGE).await?;
                let records = page.into_iter().map(|row| export::record(&touchpoint_to_proto(row)));
                Ok((records.collect::<Result<_, _>>()?, next))
            }
        }))
    }
}
