//! The kpi service's part in merges, erasures and access exports
//! (docs/DOMAIN.md §6.3, §9.6): its exposures (with their conversions) name
//! customers; experiments and targets are the tenant's. The runtime
//! ([`cx_runtime::gdpr`]) decodes, checks the sender, follows merge chains,
//! confirms and traces.

use async_trait::async_trait;
use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::gdpr::export::{self, Records};
use cx_runtime::gdpr::{Counts, Participant};
use cx_runtime::outbox::inbox::AfterCommit;
use cx_runtime::store::Db;
use futures::StreamExt;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::store::exposures;

/// Kpi's customer data, as merges, erasures and exports see it. It caches
/// nothing about a customer, so nothing is left to invalidate.
#[derive(Debug)]
pub struct KpiData;

#[async_trait]
impl Participant for KpiData {
    async fn merge(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        survivor: Uuid,
        merged: Uuid,
    ) -> Result<AfterCommit, ServiceError> {
        let moved = exposures::merge(txn, t, survivor, merged).await?;
        tracing::info!(%survivor, moved, "merged customer's exposures moved to the survivor");
        Ok(None)
    }

    async fn erase(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        customers: &[Uuid],
    ) -> Result<(Counts, AfterCommit), ServiceError> {
        Ok((exposures::erase(txn, t, customers).await?, None))
    }

    async fn export(&self, db: &Db, t: &TenantId, customers: &[Uuid]) -> Result<Records, ServiceError> {
        // At most one exposure per experiment, and a tenant keeps at most
        // 1,000 experiments: one read is enough.
        let held = exposures::held(db, t, customers).await?;
        let mut records = Vec::with_capacity(held.len());
        for row in &held {
            let exposure = pb::Exposure {
                experiment_id: row.experiment_id.to_string(),
                customer_id: row.customer_id.to_string(),
                variant_key: row.variant.clone(),
                expose_time: Some(cx_proto::timestamp(row.exposed_at)),
                convert_time: row.converted_at.map(cx_proto::timestamp),
            };
            records.push(export::record(&exposure)?);
        }
        Ok(futures::stream::iter(records.into_iter().map(Ok)).boxed())
    }
}
