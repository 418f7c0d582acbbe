//! Lifecycle and digital intensity, derived from a customer's daily
//! aggregates (activity, purchases, devices) as of one day, and stored on
//! the customer with the lifecycle transitions they make.
//!
//! Whoever changes the aggregates or the calendar refreshes the customers
//! concerned: an activity batch (`activity`), the daily sweep (`sweep`) and
//! a merge (`merge`).

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{increment, one_of, pg_array, scoped, scoped_update};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::entity::{activity_day, customer, device, lifecycle_transition, purchase_day};
use super::{ProfileStore, Result};
use crate::domain::intensity::{ChannelMix, Components, WINDOW_DAYS};
use crate::domain::lifecycle::{Lifecycle, lifecycle_as_of, next_change};
use crate::error::ProfileError;

/// The digital channel keys as an SQL list: `'web', 'mobile_app', …`.
fn digital_channel_list() -> String {
    (1..=12)
        .filter_map(|v| cx_proto::common::v1::Channel::try_from(v).ok())
        .filter(|c| c.is_digital())
        .filter_map(|c| c.key())
        .map(|key| format!("'{key}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn window_start(day: NaiveDate) -> NaiveDate {
    day.checked_sub_days(Days::new(WINDOW_DAYS as u64)).unwrap_or(NaiveDate::MIN)
}

/// The state derived from a customer's activity as of one day.
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    pub lifecycle: Lifecycle,
    pub next_change: Option<NaiveDate>,
    pub intensity: Option<Components>,
    /// The day the oldest activity or device in the window leaves it.
    pub intensity_next_change: Option<NaiveDate>,
}

impl ProfileStore {
    /// Lifecycle and intensity of one customer as of `day` (from the
    /// aggregates, not the stored state).
    pub async fn derived_as_of(&self, t: &TenantId, id: Uuid, day: NaiveDate) -> Result<Derived> {
        let mut derived = derive(self.db(), t, &[id], day).await?;
        // `derive` answers for every id it is asked about.
        derived.remove(&id).ok_or_else(|| ProfileError::not_found(format_args!("profile {id}")))
    }
}

/// Lifecycle and intensity of `customers` as of `day`, from the aggregates.
pub async fn derive<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    customers: &[Uuid],
    day: NaiveDate,
) -> Result<HashMap<Uuid, Derived>> {
    let mut purchase_days: HashMap<Uuid, Vec<NaiveDate>> = HashMap::new();
    let rows = scoped::<purchase_day::Entity>(t)
        .filter(one_of(conn.get_database_backend(), purchase_day::Column::CustomerId, customers))
        .filter(purchase_day::Column::Day.lte(day))
        .select_only()
        .column(purchase_day::Column::CustomerId)
        .column(purchase_day::Column::Day)
        .into_tuple::<(Uuid, NaiveDate)>()
        .all(conn)
        .await?;
    for (customer, purchased) in rows {
        purchase_days.entry(customer).or_default().push(purchased);
    }
    let since = window_start(day);
    // One row per customer: the window's channel mix, summed by the database.
    let digital = digital_channel_list();
    let mut mixes: HashMap<Uuid, ChannelMix> = HashMap::new();
    let mut oldest: HashMap<Uuid, NaiveDate> = HashMap::new();
    let rows = scoped::<activity_day::Entity>(t)
        .filter(one_of(conn.get_database_backend(), activity_day::Column::CustomerId, customers))
        .filter(activity_day::Column::Day.gt(since))
        .filter(activity_day::Column::Day.lte(day))
        .select_only()
        .column(activity_day::Column::CustomerId)
        .column_as(Expr::cust("CAST(SUM(touchpoints) AS BIGINT)"), "touchpoints")
        .column_as(Expr::cust(format!("CAST(SUM(CASE WHEN channel IN ({digital}) THEN touchpoints ELSE 0 END) AS BIGINT)")), "digital")
        .column_as(
            Expr::cust(format!(
                "CAST(SUM(CASE WHEN channel IN ({digital}) AND initiator = 'pull' THEN touchpoints ELSE 0 END) AS BIGINT)"
            )),
            "digital_pull",
        )
        .column_as(Expr::cust(format!("COUNT(DISTINCT CASE WHEN channel IN ({digital}) THEN channel END)")), "channels")
        .column_as(Expr::cust("MIN(day)"), "oldest")
        .group_by(activity_day::Column::CustomerId)
        .into_tuple::<(Uuid, i64, i64, i64, i64, NaiveDate)>()
        .all(conn)
        .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    for (customer, touchpoints, digital, digital_pull, channels, first) in rows {
        oldest.insert(customer, first);
        mixes.insert(
            customer,
            ChannelMix {
                touchpoints: count(touchpoints),
                digital: count(digital),
                digital_pull: count(digital_pull),
                distinct_digital_channels: u32::try_from(channels).unwrap_or(0),
                devices: 0,
            },
        );
    }
    let mut note_oldest = |customer: Uuid, seen: NaiveDate| {
        oldest.entry(customer).and_modify(|d| *d = (*d).min(seen)).or_insert(seen);
    };
    let rows = scoped::<device::Entity>(t)
        .filter(one_of(conn.get_database_backend(), device::Column::CustomerId, customers))
        .filter(device::Column::LastSeen.gt(since))
        .filter(device::Column::FirstSeen.lte(day))
        .select_only()
        .column(device::Column::CustomerId)
        .column(device::Column::LastSeen)
        .into_tuple::<(Uuid, NaiveDate)>()
        .all(conn)
        .await?;
    for (customer, last_seen) in rows {
        note_oldest(customer, last_seen.min(day));
        mixes.entry(customer).or_default().devices += 1;
    }
    Ok(customers
        .iter()
        .map(|id| {
            let mut days = purchase_days.remove(id).unwrap_or_default();
            days.sort();
            let mix = mixes.remove(id).filter(|mix| mix.touchpoints > 0);
            let derived = Derived {
                lifecycle: lifecycle_as_of(&days, day),
                next_change: next_change(&days, day),
                intensity: mix.and_then(|mix| Components::of(&mix)),
                intensity_next_change: oldest.get(id).map(|d| *d + Days::new(WINDOW_DAYS as u64)),
            };
            (*id, derived)
        })
        .collect())
}

/// Stores the derived state of `customers` as of `day`, recording lifecycle
/// transitions; `last_touch` moves each customer's last touch forward.
pub async fn refresh(
    txn: &DatabaseTransaction,
    t: &TenantId,
    customers: &[Uuid],
    day: NaiveDate,
    last_touch: &HashMap<Uuid, DateTime<Utc>>,
) -> Result<()> {
    let current = lock_customers(txn, t, customers).await?;
    refresh_locked(txn, t, &current, day, last_touch).await
}

/// The stored lifecycle and last touch of each of `customers` that exists.
pub(super) type Current = HashMap<Uuid, (String, Option<DateTime<Utc>>)>;

/// Reads `customers`, locking them on PostgreSQL: in id order, so a
/// concurrent batch for the same customers waits (no deadlock) and cannot
/// commit between our read and write.
pub(super) async fn lock_customers(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Current> {
    let backend = txn.get_database_backend();
    let mut query = scoped::<customer::Entity>(t)
        .filter(one_of(backend, customer::Column::Id, customers))
        .order_by_asc(customer::Column::Id)
        .select_only()
        .column(customer::Column::Id)
        .column(customer::Column::Lifecycle)
        .column(customer::Column::LastTouchAt);
    if backend == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query
        .into_tuple::<(Uuid, String, Option<DateTime<Utc>>)>()
        .all(txn)
        .await?
        .into_iter()
        .map(|(id, lifecycle, touched)| (id, (lifecycle, touched)))
        .collect())
}

/// [`refresh`] of customers already read and locked.
pub(super) async fn refresh_locked(
    txn: &DatabaseTransaction,
    t: &TenantId,
    current: &Current,
    day: NaiveDate,
    last_touch: &HashMap<Uuid, DateTime<Utc>>,
) -> Result<()> {
    let customers: Vec<Uuid> = current.keys().copied().collect();
    let customers = customers.as_slice();
    let derived = derive(txn, t, customers, day).await?;
    let now = cx_runtime::store::now();
    let mut transitions = Vec::new();
    let mut changes = Vec::with_capacity(derived.len());
    for (id, state) in derived {
        let Some((previous, touched)) = current.get(&id) else { continue };
        let lifecycle_changed = previous != state.lifecycle.as_str();
        if lifecycle_changed {
            transitions.push(lifecycle_transition::ActiveModel {
                tenant_id: Set(t.to_string()),
                id: Set(Uuid::now_v7()),
                customer_id: Set(id),
                from_state: Set(previous.clone()),
                to_state: Set(state.lifecycle.as_str().to_owned()),
                at: Set(now),
            });
        }
        let last_touch = last_touch.get(&id).copied().filter(|at| touched.is_none_or(|old| old < *at));
        changes.push(Change { id, state, lifecycle_changed, last_touch });
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        bulk_update(txn, t, &changes, now).await?;
    } else {
        for change in &changes {
            update_one(txn, t, change, now).await?;
        }
    }
    if !transitions.is_empty() {
        lifecycle_transition::Entity::insert_many(transitions).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// What a refresh writes to one customer.
struct Change {
    id: Uuid,
    state: Derived,
    lifecycle_changed: bool,
    /// A later last touch than the stored one, if any.
    last_touch: Option<DateTime<Utc>>,
}

/// One UPDATE per customer (SQLite, the embedded mode).
async fn update_one(txn: &DatabaseTransaction, t: &TenantId, change: &Change, now: DateTime<Utc>) -> Result<()> {
    let state = &change.state;
    let mut update = scoped_update::<customer::Entity>(t)
        .filter(customer::Column::Id.eq(change.id))
        .col_expr(customer::Column::LifecycleNextChange, Expr::value(state.next_change))
        .col_expr(customer::Column::DiiNextChange, Expr::value(state.intensity_next_change))
        .col_expr(customer::Column::DiiDigitalShare, Expr::value(state.intensity.map(|c| c.digital_share)))
        .col_expr(customer::Column::DiiDigitalBreadth, Expr::value(state.intensity.map(|c| c.digital_breadth)))
        .col_expr(customer::Column::DiiDeviceFactor, Expr::value(state.intensity.map(|c| c.device_factor)))
        .col_expr(customer::Column::DiiSelfServiceShare, Expr::value(state.intensity.map(|c| c.self_service_share)))
        .col_expr(customer::Column::Version, increment(customer::Column::Version))
        .col_expr(customer::Column::UpdatedAt, Expr::value(now));
    if let Some(at) = change.last_touch {
        update = update.col_expr(customer::Column::LastTouchAt, Expr::value(Some(at)));
    }
    if change.lifecycle_changed {
        update = update
            .col_expr(customer::Column::Lifecycle, Expr::value(state.lifecycle.as_str()))
            .col_expr(customer::Column::LifecycleSince, Expr::value(Some(now)));
    }
    update.exec(txn).await?;
    Ok(())
}

/// All customers in one `UPDATE … FROM UNNEST(arrays)` (PostgreSQL): one
/// parameter per column. Nullable columns travel as sentinels (the first
/// day of year 1, -1, the epoch) that `NULLIF` turns back into NULL.
const BULK_UPDATE: &str = "UPDATE customers AS c SET \
       lifecycle = v.lifecycle, \
       lifecycle_since = CASE WHEN v.changed THEN $2 ELSE c.lifecycle_since END, \
       lifecycle_next_change = NULLIF(v.next_change, DATE '0001-01-01'), \
       dii_next_change = NULLIF(v.dii_next_change, DATE '0001-01-01'), \
       dii_digital_share = NULLIF(v.share, -1), dii_digital_breadth = NULLIF(v.breadth, -1), \
       dii_device_factor = NULLIF(v.devices, -1), dii_self_service_share = NULLIF(v.self_service, -1), \
       last_touch_at = COALESCE(NULLIF(v.last_touch, TIMESTAMPTZ 'epoch'), c.last_touch_at), \
       version = c.version + 1, updated_at = $2 \
     FROM UNNEST($3::uuid[], $4::text[], $5::bool[], $6::date[], $7::date[], $8::float8[], $9::float8[], \
       $10::float8[], $11::float8[], $12::timestamptz[]) \
       AS v(id, lifecycle, changed, next_change, dii_next_change, share, breadth, devices, self_service, \
       last_touch) \
     WHERE c.tenant_id = $1 AND c.id = v.id";

async fn bulk_update(txn: &DatabaseTransaction, t: &TenantId, changes: &[Change], now: DateTime<Utc>) -> Result<()> {
    use sea_orm::sea_query::ArrayType as A;
    let no_day = NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN);
    let states = changes.iter().map(|c| &c.state);
    let values = vec![
        t.as_str().into(),
        now.into(),
        pg_array(A::Uuid, changes.iter().map(|c| c.id)),
        pg_array(A::String, states.clone().map(|s| s.lifecycle.as_str().to_owned())),
        pg_array(A::Bool, changes.iter().map(|c| c.lifecycle_changed)),
        pg_array(A::ChronoDate, states.clone().map(|s| s.next_change.unwrap_or(no_day))),
        pg_array(A::ChronoDate, states.clone().map(|s| s.intensity_next_change.unwrap_or(no_day))),
        pg_array(A::Double, states.clone().map(|s| s.intensity.map_or(-1.0, |c| c.digital_share))),
        pg_array(A::Double, states.clone().map(|s| s.intensity.map_or(-1.0, |c| c.digital_breadth))),
        pg_array(A::Double, states.clone().map(|s| s.intensity.map_or(-1.0, |c| c.device_factor))),
        pg_array(A::Double, states.map(|s| s.intensity.map_or(-1.0, |c| c.self_service_share))),
        pg_array(A::ChronoDateTimeUtc, changes.iter().map(|c| c.last_touch.unwrap_or(DateTime::UNIX_EPOCH))),
    ];
    txn.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, BULK_UPDATE, values)).await?;
    Ok(())
}
