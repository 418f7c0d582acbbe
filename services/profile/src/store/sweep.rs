//! What changes with the passing of time alone: the daily sweep, the
//! lifecycle transitions it and activity record, and the tenant's digital
//! intensity distribution.

use chrono::{DateTime, NaiveDate, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::ProfileStore;
use super::activity::refresh;
use super::entity::{customer, lifecycle_transition};
use crate::domain::intensity::Category;
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

/// Profiles per category (`None`: no touchpoint in the window) and their mean index.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryCount {
    pub category: Option<Category>,
    pub profiles: i64,
    pub mean_index: Option<f64>,
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
            let model = self.intensity_model(&t).await?;
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
                refresh(&txn, &t, &due, today, &model, &Default::default()).await?;
                txn.commit().await?;
                changed.extend(due);
            }
            self.recompute(&t, today, &mut changed).await?;
            if !changed.is_empty() {
                tracing::info!(tenant = %t, customers = changed.len(), "lifecycle sweep refreshed customers");
                swept.push((t, changed));
            }
        }
        Ok(swept)
    }

    /// Applies a changed intensity model to every customer of the tenant, a
    /// chunk per transaction from the stored cursor, so a stop resumes where
    /// it was and a newer model starts the walk over.
    async fn recompute(&self, t: &TenantId, today: NaiveDate, changed: &mut Vec<Uuid>) -> Result<()> {
        // Each round moves the cursor on; the bound only guards against a bug.
        for _ in 0..1_000_000 {
            let Some((after, model)) = self.recompute_owed(t).await? else { return Ok(()) };
            let ids: Vec<Uuid> = scoped::<customer::Entity>(t)
                .filter(customer::Column::Id.gt(after))
                .order_by_asc(customer::Column::Id)
                .select_only()
                .column(customer::Column::Id)
                .limit(SWEEP_CHUNK)
                .into_tuple()
                .all(self.db())
                .await?;
            let txn = self.db().begin().await?;
            // The cursor moves only if the model did not change meanwhile.
            if ProfileStore::advance_recompute(&txn, t, after, ids.last().copied()).await? && !ids.is_empty() {
                refresh(&txn, t, &ids, today, &model, &Default::default()).await?;
                changed.extend(&ids);
            }
            txn.commit().await?;
        }
        Ok(())
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

    /// Profiles per digital intensity category, with the mean index of each.
    pub async fn intensity_distribution(&self, t: &TenantId) -> Result<Vec<CategoryCount>> {
        let rows = scoped::<customer::Entity>(t)
            .select_only()
            .column(customer::Column::DiiCategory)
            .column_as(Expr::cust("COUNT(*)"), "profiles")
            .column_as(Expr::cust("CAST(AVG(dii) AS DOUBLE PRECISION)"), "mean_index")
            .group_by(customer::Column::DiiCategory)
            .into_tuple::<(Option<String>, i64, Option<f64>)>()
            .all(self.db())
            .await?;
        let mut counts: Vec<CategoryCount> = rows
            .into_iter()
            .map(|(category, profiles, mean_index)| CategoryCount {
                category: category.as_deref().and_then(Category::parse),
                profiles,
                mean_index,
            })
            .collect();
        counts.sort_by_key(|c| c.category);
        Ok(counts)
    }
}
