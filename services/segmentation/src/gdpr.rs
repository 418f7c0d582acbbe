//! The segmentation service's part in merges, erasures and access exports
//! (docs/DOMAIN.md §6.3): the runtime ([`cx_runtime::gdpr`]) decodes, checks
//! the sender, follows merge chains, confirms and traces; this says what
//! segmentation's own data does.
//!
//! An export gives the customer's memberships (`cx.segmentation.v1.Member`)
//! and changes of membership (`MembershipChange`). The facts are copies of
//! what profile, journey and survey hold and export themselves.

use async_trait::async_trait;
use cx_proto::segmentation::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::gdpr::export::{self, Records};
use cx_runtime::gdpr::{Counts, Participant};
use cx_runtime::outbox::inbox::AfterCommit;
use cx_runtime::store::Db;
use futures::StreamExt;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::api::change_to_proto;
use crate::store::{customers as facts_held, members, touches};

/// Segmentation's data, as merges, erasures and exports see it. It caches
/// nothing about a customer, so nothing is left to invalidate.
#[derive(Debug)]
pub struct SegmentationData;

#[async_trait]
impl Participant for SegmentationData {
    async fn merge(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        survivor: Uuid,
        merged: Uuid,
    ) -> Result<AfterCommit, ServiceError> {
        let left = members::merge(txn, t, merged, cx_runtime::store::now()).await?;
        let mut moved = touches::merge(txn, t, survivor, merged).await?;
        moved.extend(facts_held::merge(txn, t, survivor, merged).await?);
        tracing::info!(%survivor, left, ?moved, "merged customer left its segments, its facts moved");
        Ok(None)
    }

    async fn erase(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        customers: &[Uuid],
    ) -> Result<(Counts, AfterCommit), ServiceError> {
        let mut counts = members::erase(txn, t, customers).await?;
        counts.extend(touches::erase(txn, t, customers).await?);
        counts.extend(facts_held::erase(txn, t, customers).await?);
        Ok((counts, None))
    }

    async fn export(&self, db: &Db, t: &TenantId, customers: &[Uuid]) -> Result<Records, ServiceError> {
        let (memberships, changes) = members::held(db, t, customers).await?;
        let mut records = Vec::with_capacity(memberships.len() + changes.len());
        for m in &memberships {
            let member = pb::Member {
                customer_id: m.customer_id.to_string(),
                enter_time: Some(cx_proto::timestamp(m.entered_at)),
                segment_id: m.segment_id.to_string(),
            };
            records.push(export::record(&member)?);
        }
        for c in &changes {
            records.push(export::record(&change_to_proto(c))?);
        }
        Ok(futures::stream::iter(records.into_iter().map(Ok)).boxed())
    }
}
