//! What changes with the passing of time alone: the daily sweep, and the
//! lifecycle transitions it and activity record.

use chrono::{DateTime, NaiveDate, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::ProfileStore;
use super::derived::refresh;
use super::entity::{customer, lifecycle_transition};
use crate::domain::lifecycle::Lifecycle;
use crate::error::ProfileError;

type Result<T> = std::result::Result<T, ProfileError>;

/// Customers refreshed per transaction.
const SWEEP_CHUNK: u64 = 500;

/// A recorded lifecycle change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub id: Uuid,
    pub customer: Uuid,
    pub from: Lifecycle,
    pub to: Lifecycle,
    pub at: DateTime<Utc>,
}

/// A stored transition, unless its states are unknown to this version.
pub(crate) fn transition_of(r: lifecycle_transition::Model) -> Option<Transition> {
    Some(Transition {
        id: r.id,
        customer: r.customer_id,
        from: Lifecycle::parse(&r.from_state)?,
        to: Lifecycle::parse(&r.to_state)?,
        at: r.at,
    })
}

impl ProfileStore {
    /// Refreshes every customer whose lifecycle or digital intensity changes
    /// by `today` through time alone (active → at_risk → lost, reactivated →
    /// active, activity leaving the 180-day window). Returns who changed, per
    /// tenant, so their cache entries can be dropped.
    pub async fn sweep(&self, today: NaiveDate) -> Result<Vec<(TenantId, Vec<Uuid>)>> {
        let backend = self.db().get_database_backend();
        // The one query across tenants: which tenants have customers at all.
        let tenants = self
            .db()
            .query_all_raw(Statement::from_string(backend, "SELECT DISTINCT tenant_id FROM customers"))
            .await?;
        let mut swept = Vec::new();
        for row in tenants {
            let raw: String = row.try_get("", "tenant_id")?;
            let Ok(t) = TenantId::parse(&raw) else { continue };
            let mut changed = Vec::new();
            // Each refresh moves the customer's next change past today, so
            // every round finds fewer; the bound only guards against a bug.
            for _ in 0..100_000 {
                let due = scoped::<customer::Entity>(&t)
                    .filter(
                        Condition::any()
                            .add(customer::Column::LifecycleNextChange.lte(today))
                            .add(customer::Column::DiiNextChange.lte(today)),
                    )
                    .select_only()
                    .column(customer::Column::Id)
                    .limit(SWEEP_CHUNK)
                    .into_tuple::<Uuid>()
                    .all(self.db())
                    .await?;
                if due.is_empty() {
                    break;
                }
                let txn = self.db().begin().await?;
                refresh(&txn, &t, &due, today, &Default::default()).await?;
                self.facts_changed(&txn, &t, &due).await?;
                txn.commit().await?;
                changed.extend(due);
            }
            if !changed.is_empty() {
                tracing::info!(tenant = %t, customers = changed.len(), "lifecycle sweep refreshed customers");
                swept.push((t, changed));
            }
        }
        Ok(swept)
    }

    /// Lifecycle changes, newest first, optionally into one state and within [since, until).
    pub async fn transitions(
        &self,
        t: &TenantId,
        to: Option<Lifecycle>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<Transition>, bool)> {
        let mut query =
            scoped::<lifecycle_transition::Entity>(t).order_by_desc(lifecycle_transition::Column::Id).limit(limit + 1);
        if let Some(to) = to {
            query = query.filter(lifecycle_transition::Column::ToState.eq(to.as_str()));
        }
        if let Some(since) = since {
            query = query.filter(lifecycle_transition::Column::At.gte(since));
        }
        if let Some(until) = until {
            query = query.filter(lifecycle_transition::Column::At.lt(until));
        }
        if let Some(before) = before {
            query = query.filter(lifecycle_transition::Column::Id.lt(before));
        }
        let mut rows = query.all(self.db()).await?;
        let more = cx_runtime::page::trim_page(&mut rows, limit);
        let transitions = rows.into_iter().filter_map(transition_of).collect();
        Ok((transitions, more))
    }
}
