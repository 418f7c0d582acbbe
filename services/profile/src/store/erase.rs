//! Erasure (GDPR): the profile's part is done in one transaction, recorded
//! as the "profile" step of an erasure job. Other services add their steps
//! as they join (their erasure is delivered through the outbox).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{scoped, scoped_delete};
use sea_orm::sea_query::Condition;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;

use super::ProfileStore;
use super::entity::{
    activity_day, consent_event, customer, device, erasure, erasure_step, identity, lifecycle_transition, merge,
    purchase_day,
};
use crate::error::ProfileError;

type Result<T> = std::result::Result<T, ProfileError>;

pub const PENDING: &str = "pending";
pub const COMPLETED: &str = "completed";

/// An erasure job as stored; a completed one is the receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct ErasureRecord {
    pub id: Uuid,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub steps: Vec<StepRecord>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    pub service: String,
    pub state: String,
    pub counts: BTreeMap<String, i64>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Deletes every row of a customer from one table, counting them.
macro_rules! erase_rows {
    ($txn:expr, $t:expr, $counts:expr, $name:literal, $module:ident, $column:expr, $id:expr) => {{
        let done = scoped_delete::<$module::Entity>($t).filter($column.eq($id)).exec($txn).await?;
        *$counts.entry($name.to_owned()).or_default() += i64::try_from(done.rows_affected).unwrap_or(i64::MAX);
    }};
}

async fn erase_profile_rows(txn: &DatabaseTransaction, t: &TenantId, id: Uuid) -> Result<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    erase_rows!(txn, t, counts, "identities", identity, identity::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "consent_events", consent_event, consent_event::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "activity_days", activity_day, activity_day::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "purchase_days", purchase_day, purchase_day::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "devices", device, device::Column::CustomerId, id);
    erase_rows!(
        txn,
        t,
        counts,
        "lifecycle_transitions",
        lifecycle_transition,
        lifecycle_transition::Column::CustomerId,
        id
    );
    let merges = scoped_delete::<merge::Entity>(t)
        .filter(Condition::any().add(merge::Column::SurvivorId.eq(id)).add(merge::Column::MergedId.eq(id)))
        .exec(txn)
        .await?;
    counts.insert("merges".into(), i64::try_from(merges.rows_affected).unwrap_or(i64::MAX));
    erase_rows!(txn, t, counts, "profiles", customer, customer::Column::Id, id);
    Ok(counts)
}

impl ProfileStore {
    /// Erases the customer's profile data and opens the erasure job. With
    /// no other service to wait for, the job completes at once and forgets
    /// the customer's id. Returns the job and the ids merged into the
    /// profile (their cache entries go too).
    pub async fn erase(&self, t: &TenantId, id: Uuid) -> Result<(ErasureRecord, Vec<Uuid>)> {
        let txn = self.db().begin().await?;
        let exists = scoped::<customer::Entity>(t).filter(customer::Column::Id.eq(id)).one(&txn).await?;
        if exists.is_none() {
            return Err(ProfileError::NotFound(format!("profile {id}")));
        }
        let merged_ids: Vec<Uuid> = scoped::<merge::Entity>(t)
            .filter(merge::Column::SurvivorId.eq(id))
            .all(&txn)
            .await?
            .into_iter()
            .map(|m| m.merged_id)
            .collect();
        let counts = erase_profile_rows(&txn, t, id).await?;
        let now = cx_runtime::store::now();
        let job = Uuid::now_v7();
        erasure::Entity::insert(erasure::ActiveModel {
            tenant_id: Set(t.to_string()),
            id: Set(job),
            // Every step is done: nothing left to find the customer with.
            profile_id: Set(None),
            state: Set(COMPLETED.into()),
            created_at: Set(now),
            completed_at: Set(Some(now)),
        })
        .exec_without_returning(&txn)
        .await?;
        let json = serde_json::to_value(&counts).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        erasure_step::Entity::insert(erasure_step::ActiveModel {
            tenant_id: Set(t.to_string()),
            erasure_id: Set(job),
            service: Set(crate::NAME.into()),
            state: Set(COMPLETED.into()),
            counts: Set(json),
            completed_at: Set(Some(now)),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        tracing::info!(erasure = %job, "customer erased from the profile service");
        Ok((self.erasure(t, job).await?, merged_ids))
    }

    pub async fn erasure(&self, t: &TenantId, job: Uuid) -> Result<ErasureRecord> {
        let row = scoped::<erasure::Entity>(t)
            .filter(erasure::Column::Id.eq(job))
            .one(self.db())
            .await?
            .ok_or_else(|| ProfileError::NotFound(format!("erasure {job}")))?;
        let steps = scoped::<erasure_step::Entity>(t)
            .filter(erasure_step::Column::ErasureId.eq(job))
            .all(self.db())
            .await?
            .into_iter()
            .map(|s| {
                let counts = serde_json::from_value(s.counts).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
                Ok(StepRecord { service: s.service, state: s.state, counts, completed_at: s.completed_at })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ErasureRecord {
            id: row.id,
            state: row.state,
            created_at: row.created_at,
            completed_at: row.completed_at,
            steps,
        })
    }
}
