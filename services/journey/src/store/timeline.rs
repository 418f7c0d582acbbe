//! A customer's touchpoints across every channel, newest first.

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entity::touchpoint;
use super::{JourneyStore, Result};
use crate::domain::channel::Channel;
use crate::domain::map::Phase;

#[derive(Clone, Debug, Default)]
pub struct TimelineFilter {
    /// All when empty.
    pub channels: Vec<Channel>,
    pub phase: Option<Phase>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Where a page starts: after this (occurred_at, id) in newest-first order.
pub type Position = (DateTime<Utc>, String);

impl JourneyStore {
    /// One page of `customer`'s timeline; one more row than `limit` when
    /// another page follows. A customer merged away reads the survivor's.
    pub async fn timeline(
        &self,
        t: &TenantId,
        customer: Uuid,
        filter: &TimelineFilter,
        after: Option<Position>,
        limit: u64,
    ) -> Result<Vec<touchpoint::Model>> {
        let customer = self.survivor(t, customer).await?;
        let mut query = scoped::<touchpoint::Entity>(t)
            .filter(touchpoint::Column::CustomerId.eq(customer))
            .order_by_desc(touchpoint::Column::OccurredAt)
            .order_by_desc(touchpoint::Column::Id)
            .limit(limit + 1);
        if !filter.channels.is_empty() {
            query = query.filter(touchpoint::Column::Channel.is_in(filter.channels.iter().map(|c| c.code())));
        }
        if let Some(phase) = filter.phase {
            query = query.filter(touchpoint::Column::Phase.eq(phase.code()));
        }
        if let Some(since) = filter.since {
            query = query.filter(touchpoint::Column::OccurredAt.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(touchpoint::Column::OccurredAt.lt(until));
        }
        if let Some((at, id)) = after {
            query =
                query.filter(Condition::any().add(touchpoint::Column::OccurredAt.lt(at)).add(
                    Condition::all().add(touchpoint::Column::OccurredAt.eq(at)).add(touchpoint::Column::Id.lt(id)),
                ));
        }
        Ok(query.all(self.db()).await?)
    }
}

impl JourneyStore {
    /// Where `customer`'s data is now: the end of its merge chain, or itself
    /// (docs/DOMAIN.md §2.5).
    pub async fn survivor(&self, t: &TenantId, customer: Uuid) -> Result<Uuid> {
        let survivors = cx_runtime::gdpr::survivors(self.db(), t, &[customer]).await?;
        Ok(survivors.get(&customer).copied().unwrap_or(customer))
    }

    /// The touchpoints with instance id `instance` on `map` in time order:
    /// `customer`'s (its survivor's, if merged away), or every customer's.
    pub async fn instance(
        &self,
        t: &TenantId,
        map: Uuid,
        instance: &str,
        customer: Option<Uuid>,
    ) -> Result<Vec<touchpoint::Model>> {
        let mut query = scoped::<touchpoint::Entity>(t)
            .filter(touchpoint::Column::MapId.eq(map))
            .filter(touchpoint::Column::InstanceId.eq(instance))
            .order_by_asc(touchpoint::Column::OccurredAt)
            .order_by_asc(touchpoint::Column::Id);
        if let Some(customer) = customer {
            query = query.filter(touchpoint::Column::CustomerId.eq(self.survivor(t, customer).await?));
        }
        Ok(query.all(self.db()).await?)
    }
}
