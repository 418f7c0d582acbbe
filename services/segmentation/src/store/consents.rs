//! Consent decisions as profile announces them (`ConsentChanged`): per
//! customer and purpose the decision in force is the latest by occur_time,
//! then record_time (docs/DOMAIN.md §3.2), whatever order they arrive in.
//! Standard purposes are mirrored in the fact row's `consent_*` columns;
//! custom ones are kept by their plain name.

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::consent::StandardPurpose;
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{one_of, scoped, scoped_delete, scoped_update, stored_instant};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::{consent, fact};
use super::facts::{self, count, later};

/// A purpose: standard, or a tenant's by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    Standard(StandardPurpose),
    Custom(String),
}

impl Purpose {
    /// The name the rules use (`consent.email`, `consent.loyalty_club`).
    pub fn name(&self) -> &str {
        match self {
            Purpose::Standard(p) => p.as_str(),
            Purpose::Custom(name) => name,
        }
    }
}

/// One decision as recorded by profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub customer: Uuid,
    pub purpose: Purpose,
    pub granted: bool,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// Keeps `d` if it is later than the decision in force; true when it is
/// now the one in force.
pub async fn apply(txn: &DatabaseTransaction, t: &TenantId, d: &Decision) -> Result<bool, DbErr> {
    facts::hold(txn, t, d.customer).await?;
    let (occurred_at, recorded_at) = (stored_instant(d.occurred_at), stored_instant(d.recorded_at));
    let kept = scoped::<consent::Entity>(t)
        .filter(consent::Column::CustomerId.eq(d.customer))
        .filter(consent::Column::Purpose.eq(d.purpose.name()))
        .one(txn)
        .await?;
    if !later(&(occurred_at, recorded_at), kept.map(|k| (k.occur_time, k.record_time)).as_ref()) {
        return Ok(false);
    }
    save(txn, t, d.customer, d.purpose.name(), d.granted, occurred_at, recorded_at).await?;
    if let Purpose::Standard(p) = d.purpose {
        mirror(txn, t, d.customer, p, d.granted).await?;
    }
    Ok(true)
}

async fn save(
    txn: &DatabaseTransaction,
    t: &TenantId,
    customer: Uuid,
    purpose: &str,
    granted: bool,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = consent::ActiveModel {
        tenant_id: Set(t.to_string()),
        customer_id: Set(customer),
        purpose: Set(purpose.to_owned()),
        granted: Set(granted),
        occur_time: Set(occurred_at),
        record_time: Set(recorded_at),
    };
    let upsert =
        OnConflict::columns([consent::Column::TenantId, consent::Column::CustomerId, consent::Column::Purpose])
            .update_columns([consent::Column::Granted, consent::Column::OccurTime, consent::Column::RecordTime])
            .to_owned();
    consent::Entity::insert(row).on_conflict(upsert).exec_without_returning(txn).await?;
    Ok(())
}

/// The fact row's column of a standard purpose.
fn column(p: StandardPurpose) -> fact::Column {
    match p {
        StandardPurpose::Email => fact::Column::ConsentEmail,
        StandardPurpose::Sms => fact::Column::ConsentSms,
        StandardPurpose::Push => fact::Column::ConsentPush,
        StandardPurpose::Phone => fact::Column::ConsentPhone,
        StandardPurpose::Post => fact::Column::ConsentPost,
        StandardPurpose::Survey => fact::Column::ConsentSurvey,
        StandardPurpose::Profiling => fact::Column::ConsentProfiling,
        StandardPurpose::Personalization => fact::Column::ConsentPersonalization,
    }
}

async fn mirror(
    txn: &DatabaseTransaction,
    t: &TenantId,
    customer: Uuid,
    p: StandardPurpose,
    granted: bool,
) -> Result<(), DbErr> {
    scoped_update::<fact::Entity>(t)
        .filter(fact::Column::CustomerId.eq(customer))
        .col_expr(column(p), Expr::value(granted))
        .exec(txn)
        .await?;
    Ok(())
}

/// The merged customer's decisions are offered to the survivor, where the
/// later decision per purpose wins; then they go.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<Counts, DbErr> {
    let moved = scoped::<consent::Entity>(t).filter(consent::Column::CustomerId.eq(merged)).all(txn).await?;
    let mut taken = 0;
    for row in &moved {
        let purpose = standard(&row.purpose).map_or_else(|| Purpose::Custom(row.purpose.clone()), Purpose::Standard);
        let decision = Decision {
            customer: survivor,
            purpose,
            granted: row.granted,
            occurred_at: row.occur_time,
            recorded_at: row.record_time,
        };
        taken += i64::from(apply(txn, t, &decision).await?);
    }
    let gone = erase(txn, t, &[merged]).await?;
    Ok(Counts::from([("consents.taken".to_owned(), taken), ("consents".to_owned(), gone_of(&gone))]))
}

fn gone_of(counts: &Counts) -> i64 {
    counts.get("consents").copied().unwrap_or(0)
}

/// The standard purpose named `name`, if any.
fn standard(name: &str) -> Option<StandardPurpose> {
    StandardPurpose::ALL.into_iter().find(|p| p.as_str() == name)
}

/// Deletes the decisions kept for `customers`.
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Counts, DbErr> {
    let done = scoped_delete::<consent::Entity>(t)
        .filter(one_of(txn.get_database_backend(), consent::Column::CustomerId, customers))
        .exec(txn)
        .await?;
    Ok(Counts::from([("consents".to_owned(), count(done.rows_affected))]))
}

/// The decisions in force for `customer`, by purpose name: granted or not.
pub async fn of(conn: &impl ConnectionTrait, t: &TenantId, customer: Uuid) -> Result<Vec<(String, bool)>, DbErr> {
    let rows = scoped::<consent::Entity>(t).filter(consent::Column::CustomerId.eq(customer)).all(conn).await?;
    let mut out: Vec<_> = rows.into_iter().map(|r| (r.purpose, r.granted)).collect();
    out.sort();
    Ok(out)
}
