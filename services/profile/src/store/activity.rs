//! Activity: applying a batch of daily activity records.
//!
//! A batch is applied in one transaction: idempotency record, set-based
//! upserts of the daily aggregates, then the derived state of every customer
//! it touched, recomputed from the aggregates (so late or out-of-order
//! activity lands exactly where it belongs; see `derived`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{pg_array, scoped};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    Statement, TransactionTrait, TryInsertResult,
};
use uuid::Uuid;

use super::derived::{lock_customers, refresh_locked};
use super::entity::{activity_batch, activity_day, customer, device, purchase_day};
use super::spans::SpansBefore;
use super::{ProfileStore, Result};
use crate::error::ProfileError;

/// One validated activity record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub customer: Uuid,
    pub at: DateTime<Utc>,
    /// Channel key (`web`, `store`, …).
    pub channel: String,
    pub digital: bool,
    /// `push` or `pull`.
    pub initiator: &'static str,
    /// `informative` or `transactional`.
    pub kind: &'static str,
    pub touchpoints: i64,
    pub purchases: i64,
    pub currency: String,
    pub amount_micros: i64,
    pub device: Option<String>,
}

/// What to do with records of profiles that do not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownProfiles {
    /// Refuse the batch (a client's RecordActivity): a field violation each.
    Reject,
    /// Follow merges to the survivor and drop the rest (activity another
    /// service recorded before the customer was merged or erased).
    Redirect,
}

impl ProfileStore {
    /// Applies a batch; `None` when `batch_id` was applied before.
    pub async fn record_activity(
        &self,
        t: &TenantId,
        batch_id: &str,
        records: Vec<Activity>,
    ) -> Result<Option<Vec<Uuid>>> {
        let txn = self.db().begin().await?;
        let applied = apply_activity(&txn, t, batch_id, records, UnknownProfiles::Reject).await?;
        if let Some(customers) = &applied {
            self.facts_changed(&txn, t, customers).await?;
            txn.commit().await?;
        }
        Ok(applied)
    }
}

/// Applies a batch on `txn` (a client call's or an inbox delivery's);
/// `None` when `batch_id` was applied before. Nothing is written on error.
pub async fn apply_activity(
    txn: &DatabaseTransaction,
    t: &TenantId,
    batch_id: &str,
    records: Vec<Activity>,
    unknown_profiles: UnknownProfiles,
) -> Result<Option<Vec<Uuid>>> {
    let batch = activity_batch::ActiveModel {
        tenant_id: Set(t.to_string()),
        batch_id: Set(batch_id.to_owned()),
        records: Set(i32::try_from(records.len()).unwrap_or(i32::MAX)),
        received_at: Set(cx_runtime::store::now()),
    };
    let fresh = activity_batch::Entity::insert(batch).on_conflict_do_nothing().exec_without_returning(txn).await?;
    if !matches!(fresh, TryInsertResult::Inserted(n) if n > 0) {
        return Ok(None);
    }
    let customers: Vec<Uuid> = records.iter().map(|r| r.customer).collect::<HashSet<_>>().into_iter().collect();
    // One read of the customers: it tells which exist and locks them.
    let mut current = lock_customers(txn, t, &customers).await?;
    let known: HashSet<Uuid> = current.keys().copied().collect();
    let records = match unknown_profiles {
        UnknownProfiles::Reject => records,
        UnknownProfiles::Redirect => {
            let records = redirect(txn, t, records, &known).await?;
            let survivors: Vec<Uuid> = records.iter().map(|r| r.customer).filter(|c| !known.contains(c)).collect();
            if !survivors.is_empty() {
                current.extend(lock_customers(txn, t, &survivors).await?);
            }
            records
        }
    };
    let customers: Vec<Uuid> = records.iter().map(|r| r.customer).collect::<HashSet<_>>().into_iter().collect();
    let unknown: Vec<_> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| unknown_profiles == UnknownProfiles::Reject && !known.contains(&r.customer))
        .map(|(i, _)| cx_runtime::error::FieldViolation::new(format!("records[{i}].profile_id"), "no such profile"))
        .collect();
    if !unknown.is_empty() {
        return Err(ProfileError::InvalidArgument(unknown));
    }
    // Customers whose purchase days may change: the roll-up follows them.
    let buyers: Vec<Uuid> =
        records.iter().filter(|r| r.purchases > 0).map(|r| r.customer).collect::<BTreeSet<_>>().into_iter().collect();
    let spans = SpansBefore::take(txn, t, &buyers).await?;
    upsert_aggregates(txn, t, &records).await?;
    let today = Utc::now().date_naive();
    let mut last_touch: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for r in &records {
        let at = cx_runtime::store::stored_instant(r.at);
        last_touch.entry(r.customer).and_modify(|t| *t = (*t).max(at)).or_insert(at);
    }
    current.retain(|id, _| last_touch.contains_key(id));
    refresh_locked(txn, t, &current, today, &last_touch).await?;
    // Last, the roll-ups: their rows are shared by every buyer of the day, so
    // their locks are held for as short a time as the transaction allows.
    // Totals before spans, as an erasure takes them: one lock order.
    super::purchase_totals::add(txn, t, &super::purchase_totals::of(&records)).await?;
    spans.apply(txn, t).await?;
    Ok(Some(customers))
}

/// Moves records of merged profiles to their survivors and drops records of
/// profiles that are gone (erased).
async fn redirect(
    txn: &DatabaseTransaction,
    t: &TenantId,
    records: Vec<Activity>,
    known: &HashSet<Uuid>,
) -> Result<Vec<Activity>> {
    let mut moved: HashMap<Uuid, Option<Uuid>> = HashMap::new();
    for r in &records {
        if !known.contains(&r.customer) && !moved.contains_key(&r.customer) {
            let survivor = match super::merge::survivor_on(txn, t, r.customer).await? {
                Some(id)
                    if scoped::<customer::Entity>(t).filter(customer::Column::Id.eq(id)).one(txn).await?.is_some() =>
                {
                    Some(id)
                }
                _ => None,
            };
            moved.insert(r.customer, survivor);
        }
    }
    let dropped = moved.values().filter(|s| s.is_none()).count();
    if dropped > 0 {
        tracing::info!(profiles = dropped, "activity of erased profiles dropped");
    }
    Ok(records
        .into_iter()
        .filter_map(|mut r| match moved.get(&r.customer) {
            None => Some(r),
            Some(Some(survivor)) => {
                r.customer = *survivor;
                Some(r)
            }
            Some(None) => None,
        })
        .collect())
}

async fn upsert_aggregates(txn: &DatabaseTransaction, t: &TenantId, records: &[Activity]) -> Result<()> {
    // One row per key in each statement: PostgreSQL refuses to update a row
    // twice in one INSERT … ON CONFLICT.
    let mut days: BTreeMap<DayKey<'_>, i64> = BTreeMap::new();
    let mut purchases: BTreeMap<(Uuid, NaiveDate, &str), Spent> = BTreeMap::new();
    let mut devices: BTreeMap<(Uuid, &str), (NaiveDate, NaiveDate)> = BTreeMap::new();
    for r in records {
        let day = r.at.date_naive();
        *days.entry((r.customer, day, r.channel.as_str(), r.initiator, r.kind)).or_default() += r.touchpoints;
        if r.purchases > 0 {
            let entry = purchases.entry((r.customer, day, r.currency.as_str())).or_default();
            entry.0 += r.purchases;
            entry.1 += r.amount_micros;
            entry.2 += squares(r.purchases, r.amount_micros);
        }
        if let Some(device) = r.device.as_deref() {
            let seen = devices.entry((r.customer, device)).or_insert((day, day));
            *seen = (seen.0.min(day), seen.1.max(day));
        }
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        return upsert_postgres(txn, t, days, purchases, devices).await;
    }
    let tenant = t.to_string();
    for chunk in days.into_iter().collect::<Vec<_>>().chunks(1000) {
        let rows = chunk.iter().map(|((customer, day, channel, initiator, kind), n)| activity_day::ActiveModel {
            tenant_id: Set(tenant.clone()),
            customer_id: Set(*customer),
            day: Set(*day),
            channel: Set((*channel).to_owned()),
            initiator: Set((*initiator).to_owned()),
            kind: Set((*kind).to_owned()),
            touchpoints: Set(*n),
        });
        use activity_day::Column as C;
        let conflict = OnConflict::columns([C::TenantId, C::CustomerId, C::Day, C::Channel, C::Initiator, C::Kind])
            .value(C::Touchpoints, Expr::cust("activity_days.touchpoints + excluded.touchpoints"))
            .to_owned();
        activity_day::Entity::insert_many(rows).on_conflict(conflict).exec_without_returning(txn).await?;
    }
    for chunk in purchases.into_iter().collect::<Vec<_>>().chunks(1000) {
        let rows = chunk.iter().map(|((customer, day, currency), (n, micros, squares))| purchase_day::ActiveModel {
            tenant_id: Set(tenant.clone()),
            customer_id: Set(*customer),
            day: Set(*day),
            currency: Set((*currency).to_owned()),
            purchases: Set(*n),
            amount_micros: Set(*micros),
            amount_squares: Set(*squares),
        });
        use purchase_day::Column as C;
        let conflict = OnConflict::columns([C::TenantId, C::CustomerId, C::Day, C::Currency])
            .value(C::Purchases, Expr::cust("purchase_days.purchases + excluded.purchases"))
            .value(C::AmountMicros, Expr::cust("purchase_days.amount_micros + excluded.amount_micros"))
            .value(C::AmountSquares, Expr::cust("purchase_days.amount_squares + excluded.amount_squares"))
            .to_owned();
        purchase_day::Entity::insert_many(rows).on_conflict(conflict).exec_without_returning(txn).await?;
    }
    for chunk in devices.into_iter().collect::<Vec<_>>().chunks(1000) {
        let rows = chunk.iter().map(|((customer, id), (first, last))| device::ActiveModel {
            tenant_id: Set(tenant.clone()),
            customer_id: Set(*customer),
            device_id: Set((*id).to_owned()),
            first_seen: Set(*first),
            last_seen: Set(*last),
        });
        use device::Column as C;
        let conflict = OnConflict::columns([C::TenantId, C::CustomerId, C::DeviceId])
            .value(
                C::FirstSeen,
                Expr::cust("CASE WHEN excluded.first_seen < devices.first_seen THEN excluded.first_seen ELSE devices.first_seen END"),
            )
            .value(
                C::LastSeen,
                Expr::cust("CASE WHEN excluded.last_seen > devices.last_seen THEN excluded.last_seen ELSE devices.last_seen END"),
            )
            .to_owned();
        device::Entity::insert_many(rows).on_conflict(conflict).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// A purchase day's purchases, amount in micro-units and squared amounts.
pub(super) type Spent = (i64, i64, f64);

/// The squared amounts, in units², of `purchases` purchases totalling
/// `micros`: one record's single amounts are not known, so each counts as
/// their mean (docs/DOMAIN.md §9.4).
pub(super) fn squares(purchases: i64, micros: i64) -> f64 {
    if purchases <= 0 {
        return 0.0;
    }
    let units = micros as f64 / 1_000_000.0;
    units * units / purchases as f64
}

type DayKey<'a> = (Uuid, NaiveDate, &'a str, &'a str, &'a str);

const UPSERT_DAYS: &str = "INSERT INTO activity_days (tenant_id, customer_id, day, channel, initiator, kind, touchpoints) \
     SELECT $1, * FROM UNNEST($2::uuid[], $3::date[], $4::text[], $5::text[], $6::text[], $7::int8[]) \
     ON CONFLICT (tenant_id, customer_id, day, channel, initiator, kind) \
     DO UPDATE SET touchpoints = activity_days.touchpoints + excluded.touchpoints";

const UPSERT_PURCHASES: &str = "INSERT INTO purchase_days (tenant_id, customer_id, day, currency, purchases, amount_micros, amount_squares) \
     SELECT $1, * FROM UNNEST($2::uuid[], $3::date[], $4::text[], $5::int8[], $6::int8[], $7::float8[]) \
     ON CONFLICT (tenant_id, customer_id, day, currency) DO UPDATE SET \
     purchases = purchase_days.purchases + excluded.purchases, \
     amount_micros = purchase_days.amount_micros + excluded.amount_micros, \
     amount_squares = purchase_days.amount_squares + excluded.amount_squares";

const UPSERT_DEVICES: &str = "INSERT INTO devices (tenant_id, customer_id, device_id, first_seen, last_seen) \
     SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::date[], $5::date[]) \
     ON CONFLICT (tenant_id, customer_id, device_id) DO UPDATE SET \
     first_seen = LEAST(devices.first_seen, excluded.first_seen), \
     last_seen = GREATEST(devices.last_seen, excluded.last_seen) \
     WHERE excluded.first_seen < devices.first_seen OR excluded.last_seen > devices.last_seen";

/// The upserts on PostgreSQL: one statement per table, one array parameter
/// per column, whatever the batch size.
async fn upsert_postgres(
    txn: &DatabaseTransaction,
    t: &TenantId,
    days: BTreeMap<DayKey<'_>, i64>,
    purchases: BTreeMap<(Uuid, NaiveDate, &str), Spent>,
    devices: BTreeMap<(Uuid, &str), (NaiveDate, NaiveDate)>,
) -> Result<()> {
    use sea_orm::sea_query::ArrayType as A;
    let run = |sql: &'static str, values: Vec<sea_orm::Value>| {
        txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
    };
    let tenant: sea_orm::Value = t.as_str().into();
    if !days.is_empty() {
        let keys: Vec<_> = days.keys().collect();
        run(
            UPSERT_DAYS,
            vec![
                tenant.clone(),
                pg_array(A::Uuid, keys.iter().map(|k| k.0)),
                pg_array(A::ChronoDate, keys.iter().map(|k| k.1)),
                pg_array(A::String, keys.iter().map(|k| k.2.to_owned())),
                pg_array(A::String, keys.iter().map(|k| k.3.to_owned())),
                pg_array(A::String, keys.iter().map(|k| k.4.to_owned())),
                pg_array(A::BigInt, days.values().copied()),
            ],
        )
        .await?;
    }
    if !purchases.is_empty() {
        let keys: Vec<_> = purchases.keys().collect();
        run(
            UPSERT_PURCHASES,
            vec![
                tenant.clone(),
                pg_array(A::Uuid, keys.iter().map(|k| k.0)),
                pg_array(A::ChronoDate, keys.iter().map(|k| k.1)),
                pg_array(A::String, keys.iter().map(|k| k.2.to_owned())),
                pg_array(A::BigInt, purchases.values().map(|v| v.0)),
                pg_array(A::BigInt, purchases.values().map(|v| v.1)),
                pg_array(A::Double, purchases.values().map(|v| v.2)),
            ],
        )
        .await?;
    }
    if !devices.is_empty() {
        let keys: Vec<_> = devices.keys().collect();
        run(
            UPSERT_DEVICES,
            vec![
                tenant,
                pg_array(A::Uuid, keys.iter().map(|k| k.0)),
                pg_array(A::String, keys.iter().map(|k| k.1.to_owned())),
                pg_array(A::ChronoDate, devices.values().map(|v| v.0)),
                pg_array(A::ChronoDate, devices.values().map(|v| v.1)),
            ],
        )
        .await?;
    }
    Ok(())
}
