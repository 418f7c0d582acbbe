//! The `survey` consent as the profile service announces it
//! (`cx.profile.v1.ConsentChanged`), kept per customer: the decision in
//! force is the latest by occurred_at, then recorded_at (docs/DOMAIN.md
//! §3.2), whatever order the messages arrive in. A withdrawal suppresses the
//! customer's pending invitations; the batches of offered touchpoints read
//! the decision kept here beside the profile service's answer
//! (docs/DOMAIN.md §3.4).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{one_of, scoped, scoped_update};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{IDS_PER_STATEMENT, lock};
use crate::domain::invitation::{Reason, State};
use crate::store::Result;
use crate::store::entity::{consent, invitation};

/// A `survey` consent decision, as recorded by the profile service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub customer: Uuid,
    pub granted: bool,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// What applying a decision did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The decision is now the one in force here (false: an older one,
    /// arriving late, changed nothing).
    pub in_force: bool,
    /// Pending invitations suppressed for want of consent.
    pub suppressed: u64,
}

/// Keeps `decision` if it is newer than the one in force, under the
/// customer's turn. When the decision in force is a withdrawal, the
/// customer's pending invitations are suppressed (reason consent). A
/// customer merged away is the survivor's; an erased one takes nothing.
pub async fn apply(txn: &DatabaseTransaction, t: &TenantId, mut decision: Decision) -> Result<Applied> {
    decision.customer = cx_runtime::gdpr::survivors(txn, t, &[decision.customer])
        .await?
        .get(&decision.customer)
        .copied()
        .unwrap_or(decision.customer);
    if !cx_runtime::gdpr::erased(txn, t, &[decision.customer]).await?.is_empty() {
        return Ok(Applied { in_force: false, suppressed: 0 });
    }
    lock::customers(txn, t, &[decision.customer]).await?;
    let current =
        scoped::<consent::Entity>(t).filter(consent::Column::CustomerId.eq(decision.customer)).one(txn).await?;
    let newer =
        current.as_ref().is_none_or(|c| (decision.occurred_at, decision.recorded_at) > (c.occurred_at, c.recorded_at));
    let granted = if newer {
        save(txn, t, &decision).await?;
        decision.granted
    } else {
        current.is_some_and(|c| c.granted)
    };
    let suppressed = if granted { 0 } else { suppress_pending(txn, t, decision.customer).await? };
    Ok(Applied { in_force: newer, suppressed })
}

async fn save(txn: &DatabaseTransaction, t: &TenantId, d: &Decision) -> Result<()> {
    let row = consent::ActiveModel {
        tenant_id: Set(t.to_string()),
        customer_id: Set(d.customer),
        granted: Set(d.granted),
        occurred_at: Set(cx_runtime::store::stored_instant(d.occurred_at)),
        recorded_at: Set(cx_runtime::store::stored_instant(d.recorded_at)),
    };
    let upsert = OnConflict::columns([consent::Column::TenantId, consent::Column::CustomerId])
        .update_columns([consent::Column::Granted, consent::Column::OccurredAt, consent::Column::RecordedAt])
        .to_owned();
    consent::Entity::insert(row).on_conflict(upsert).exec_without_returning(txn).await?;
    Ok(())
}

/// The customer's pending invitations become suppressed (consent).
async fn suppress_pending(txn: &DatabaseTransaction, t: &TenantId, customer: Uuid) -> Result<u64> {
    let done = scoped_update::<invitation::Entity>(t)
        .filter(invitation::Column::CustomerId.eq(customer))
        .filter(invitation::Column::State.eq(State::Pending.code()))
        .col_expr(invitation::Column::State, Expr::value(State::Suppressed.code()))
        .col_expr(invitation::Column::Reason, Expr::value(Reason::Consent.code()))
        .exec(txn)
        .await?;
    Ok(done.rows_affected)
}

/// The decision in force here for those of `customers` the profile service
/// has announced one for: granted or not.
pub async fn recorded(conn: &impl ConnectionTrait, t: &TenantId, customers: &[Uuid]) -> Result<HashMap<Uuid, bool>> {
    let mut out = HashMap::new();
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        let rows = scoped::<consent::Entity>(t)
            .filter(one_of(conn.get_database_backend(), consent::Column::CustomerId, chunk))
            .all(conn)
            .await?;
        out.extend(rows.into_iter().map(|r| (r.customer_id, r.granted)));
    }
    Ok(out)
}
