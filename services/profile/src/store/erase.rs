//! Erasure (GDPR): the profile's part is done in one transaction, recorded
//! as the "profile" step of an erasure job; the other services that hold
//! customer data get the request through the outbox and confirm it back,
//! each completing its own step. A service that is down is erased when it
//! comes back: its request waits in the outbox.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::outbox::entity::message as outbox;
use cx_runtime::store::{one_of, scoped, scoped_delete, scoped_update};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::ProfileStore;
use super::entity::{
    activity_day, consent_event, customer, device, erasure, erasure_step, identity, lifecycle_transition, merge,
    purchase_day, survey_score,
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

async fn erase_profile_rows(
    txn: &DatabaseTransaction,
    t: &TenantId,
    id: Uuid,
    merged_ids: &[Uuid],
) -> Result<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    erase_rows!(txn, t, counts, "identities", identity, identity::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "consent_events", consent_event, consent_event::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "activity_days", activity_day, activity_day::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "purchase_days", purchase_day, purchase_day::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "devices", device, device::Column::CustomerId, id);
    erase_rows!(txn, t, counts, "survey_scores", survey_score, survey_score::Column::CustomerId, id);
    erase_rows!(
        txn,
        t,
        counts,
        "lifecycle_transitions",
        lifecycle_transition,
        lifecycle_transition::Column::CustomerId,
        id
    );
    // The records of the whole tree of merges into the customer.
    let merges = scoped_delete::<merge::Entity>(t)
        .filter(Condition::any().add(merge::Column::SurvivorId.eq(id)).add(merge::Column::MergedId.eq(id)).add(one_of(
            txn.get_database_backend(),
            merge::Column::MergedId,
            merged_ids,
        )))
        .exec(txn)
        .await?;
    counts.insert("merges".into(), i64::try_from(merges.rows_affected).unwrap_or(i64::MAX));
    erase_rows!(txn, t, counts, "profiles", customer, customer::Column::Id, id);
    Ok(counts)
}

/// Opens (or, with `done`, records as completed) one service's step.
async fn insert_step(
    txn: &DatabaseTransaction,
    t: &TenantId,
    job: Uuid,
    service: &str,
    done: Option<(&BTreeMap<String, i64>, DateTime<Utc>)>,
    message: Option<Uuid>,
) -> Result<()> {
    let counts = done.map(|(counts, _)| counts.clone()).unwrap_or_default();
    let json = serde_json::to_value(&counts).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
    erasure_step::Entity::insert(erasure_step::ActiveModel {
        tenant_id: Set(t.to_string()),
        erasure_id: Set(job),
        service: Set(service.to_owned()),
        state: Set(if done.is_some() { COMPLETED } else { PENDING }.into()),
        counts: Set(json),
        completed_at: Set(done.map(|(_, at)| at)),
        message_id: Set(message),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Every id merged into `id`, directly or through a chain (a into b, then b
/// into `id`): merge records name the survivor of their day, not the end of
/// its chain.
pub(crate) async fn merged_into(txn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<Vec<Uuid>> {
    let mut merged = Vec::new();
    let mut survivors = vec![id];
    while !survivors.is_empty() {
        let found: Vec<Uuid> = scoped::<merge::Entity>(t)
            .filter(one_of(txn.get_database_backend(), merge::Column::SurvivorId, &survivors))
            .all(txn)
            .await?
            .into_iter()
            .map(|m| m.merged_id)
            .filter(|m| *m != id && !merged.contains(m))
            .collect();
        merged.extend(&found);
        survivors = found;
    }
    Ok(merged)
}

/// How long EraseCustomer waits for the other services' confirmations
/// (docs/DECISIONS.md, Merge, export, erasure).
pub const CONFIRMATIONS_WAIT: Duration = Duration::from_secs(10);
const CONFIRMATIONS_POLL: Duration = Duration::from_millis(25);

impl ProfileStore {
    /// Erasure `job` once every service has confirmed it, or as it stands
    /// when a request could not be delivered (its service is down or
    /// refuses it: the job stays pending until it is), after
    /// [`CONFIRMATIONS_WAIT`], or shortly before the caller's deadline.
    pub async fn confirmed(&self, t: &TenantId, job: Uuid) -> Result<ErasureRecord> {
        let mut left = CONFIRMATIONS_WAIT;
        if let Some(deadline) = cx_runtime::deadline::Deadline::current() {
            left = left.min(deadline.remaining().saturating_sub(CONFIRMATIONS_POLL * 4));
        }
        let until = tokio::time::Instant::now() + left;
        loop {
            let record = self.erasure(t, job).await?;
            if record.state == COMPLETED || tokio::time::Instant::now() >= until || self.undelivered(t, job).await? {
                return Ok(record);
            }
            tokio::time::sleep(CONFIRMATIONS_POLL).await;
        }
    }

    /// Whether a request of `job` still owed failed an attempt.
    async fn undelivered(&self, t: &TenantId, job: Uuid) -> Result<bool> {
        let requests: Vec<Uuid> = scoped::<erasure_step::Entity>(t)
            .filter(erasure_step::Column::ErasureId.eq(job))
            .filter(erasure_step::Column::State.eq(PENDING))
            .all(self.db())
            .await?
            .into_iter()
            .filter_map(|step| step.message_id)
            .collect();
        let failed = scoped::<outbox::Entity>(t)
            .filter(one_of(self.db().get_database_backend(), outbox::Column::Id, &requests))
            .filter(outbox::Column::Status.ne(cx_runtime::outbox::DELIVERED))
            .filter(outbox::Column::LastError.ne(""))
            .one(self.db())
            .await?;
        Ok(failed.is_some())
    }

    /// Erases the customer's profile data and opens the erasure job, in one
    /// transaction: the profile step is done at once, and every fan-out
    /// service gets its request through the outbox and a pending step that
    /// its confirmation completes. Returns the job and the ids merged into
    /// the profile (their cache entries go too).
    pub async fn erase(&self, t: &TenantId, id: Uuid) -> Result<(ErasureRecord, Vec<Uuid>)> {
        let txn = self.db().begin().await?;
        // Locked first: data arriving for the customer meanwhile (activity,
        // a survey score) waits, then finds her gone, instead of landing
        // beside the deletion.
        let mut exists = scoped::<customer::Entity>(t).filter(customer::Column::Id.eq(id));
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            exists = exists.lock_exclusive();
        }
        let exists = exists.one(&txn).await?;
        if exists.is_none() {
            return Err(ProfileError::not_found(format_args!("profile {id}")));
        }
        let merged_ids = merged_into(&txn, t, id).await?;
        let spans = super::spans::SpansBefore::take(&txn, t, &[id]).await?;
        super::purchase_totals::subtract_customer(&txn, t, id).await?;
        let counts = erase_profile_rows(&txn, t, id, &merged_ids).await?;
        spans.apply(&txn, t).await?;
        for erased in std::iter::once(id).chain(merged_ids.iter().copied()) {
            cx_runtime::outbox::dispatcher::forget_mentions(&txn, t, &erased.to_string(), &[]).await?;
        }
        let now = cx_runtime::store::now();
        let job = Uuid::now_v7();
        let done = self.fanout().is_empty();
        erasure::Entity::insert(erasure::ActiveModel {
            tenant_id: Set(t.to_string()),
            id: Set(job),
            // The job never names the customer: the requests in the outbox
            // carry the id until every service has confirmed.
            profile_id: Set(None),
            state: Set(if done { COMPLETED } else { PENDING }.into()),
            created_at: Set(now),
            completed_at: Set(done.then_some(now)),
        })
        .exec_without_returning(&txn)
        .await?;
        insert_step(&txn, t, job, crate::NAME, Some((&counts, now)), None).await?;
        for service in self.fanout() {
            let message = super::events::erasure_requested(&txn, t, service, job, id, &merged_ids).await?;
            insert_step(&txn, t, job, service, None, Some(message)).await?;
        }
        txn.commit().await?;
        tracing::info!(erasure = %job, services = ?self.fanout(), "customer erased from the profile service");
        Ok((self.erasure(t, job).await?, merged_ids))
    }

    /// Completes `service`'s step of erasure `job` on `txn` (the inbox's
    /// transaction); `service` is the confirming service as its token
    /// proves. When it was the last, the job completes and the delivered
    /// requests, which carried the customer's id, are deleted.
    ///
    /// A service confirms only a step it was asked for (else
    /// `PERMISSION_DENIED`), and only once its request was delivered (else
    /// `ABORTED`, retried: the confirmation can overtake the sender's record
    /// of the delivery). A step already completed is left as it is.
    pub async fn confirm_erasure(
        txn: &DatabaseTransaction,
        t: &TenantId,
        job: Uuid,
        service: &str,
        counts: &BTreeMap<String, i64>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let step = scoped::<erasure_step::Entity>(t)
            .filter(erasure_step::Column::ErasureId.eq(job))
            .filter(erasure_step::Column::Service.eq(service))
            .one(txn)
            .await?;
        let Some(step) = step else {
            return Err(ProfileError::PermissionDenied(format!(
                "the {service} service was not asked to erase in erasure {job}"
            )));
        };
        if step.state != PENDING {
            tracing::info!(erasure = %job, service, "erasure step already confirmed");
            return Ok(());
        }
        if let Some(request) = step.message_id {
            let undelivered = scoped::<outbox::Entity>(t)
                .filter(outbox::Column::Id.eq(request))
                .filter(outbox::Column::Status.ne(cx_runtime::outbox::DELIVERED))
                .one(txn)
                .await?;
            if undelivered.is_some() {
                return Err(ProfileError::Aborted(format!(
                    "the erasure request to the {service} service is not recorded as delivered yet, retry"
                )));
            }
        }
        let json = serde_json::to_value(counts).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        scoped_update::<erasure_step::Entity>(t)
            .filter(erasure_step::Column::ErasureId.eq(job))
            .filter(erasure_step::Column::Service.eq(service))
            .filter(erasure_step::Column::State.eq(PENDING))
            .col_expr(erasure_step::Column::State, Expr::value(COMPLETED))
            .col_expr(erasure_step::Column::Counts, Expr::value(json))
            .col_expr(erasure_step::Column::CompletedAt, Expr::value(Some(at)))
            .exec(txn)
            .await?;
        let steps = scoped::<erasure_step::Entity>(t).filter(erasure_step::Column::ErasureId.eq(job)).all(txn).await?;
        if steps.iter().any(|s| s.state != COMPLETED) {
            return Ok(());
        }
        let messages: Vec<Uuid> = steps.iter().filter_map(|s| s.message_id).collect();
        // Every request was delivered (checked above, step by step); the
        // status filter keeps it so whatever happened to a row meanwhile.
        scoped_delete::<outbox::Entity>(t)
            .filter(one_of(txn.get_database_backend(), outbox::Column::Id, &messages))
            .filter(outbox::Column::Status.eq(cx_runtime::outbox::DELIVERED))
            .exec(txn)
            .await?;
        let completed_at = steps.iter().filter_map(|s| s.completed_at).max().unwrap_or(at);
        scoped_update::<erasure::Entity>(t)
            .filter(erasure::Column::Id.eq(job))
            .col_expr(erasure::Column::State, Expr::value(COMPLETED))
            .col_expr(erasure::Column::CompletedAt, Expr::value(Some(completed_at)))
            .exec(txn)
            .await?;
        tracing::info!(erasure = %job, "erasure completed in every service");
        Ok(())
    }

    pub async fn erasure(&self, t: &TenantId, job: Uuid) -> Result<ErasureRecord> {
        let row = scoped::<erasure::Entity>(t)
            .filter(erasure::Column::Id.eq(job))
            .one(self.db())
            .await?
            .ok_or_else(|| ProfileError::not_found(format_args!("erasure {job}")))?;
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
