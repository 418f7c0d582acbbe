//! Journey's touchpoints in the fact table (docs/DOMAIN.md §8.5): counts per
//! customer, day and channel in `segment_touch_days`, purchases added to
//! `segment_purchase_days`, and the journey columns of `segment_facts`.
//! Everything is set-wise: a batch is a few statements whatever its size.
//!
//! The trailing windows (`touchpoints_90d`: days today−89..today,
//! `channels_180d`: today−179..today, both ends included like RFM's) are
//! summed from the touch days for a whole tenant by the daily [`refresh`]
//! as days leave them, which records the day they were summed as of
//! (`windows_day`). A batch adds its touches to the windows of customers
//! summed as of today, and sums again only the others: a customer's days
//! are read once a day, not at every batch (that read held the batch's
//! row locks for seconds under ingest, BENCHMARKS "Segmentation service").

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::days::{date_of, day_number};
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{Db, numbered, one_of, scoped_delete, scoped_update};
use sea_orm::sea_query::{Condition, Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Statement, TransactionTrait, Value,
};
use uuid::Uuid;

use super::entity::{fact, purchase_day, touch_day};
use super::purchases;
use crate::rfm::PurchaseDay;

/// Days `touchpoints_90d` counts, today included.
pub const TOUCHPOINT_DAYS: i32 = 90;
/// Days `channels_180d` covers, today included; older touch days are dropped.
pub const CHANNEL_DAYS: i32 = 180;

/// Ids per `IN` list: well under SQLite's 32,766 parameters.
const IDS_PER_STATEMENT: usize = 5_000;

/// One touchpoint as the facts read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touch {
    pub customer: Uuid,
    pub at: DateTime<Utc>,
    /// Its index in `rules::CHANNELS` (its bit in `channels_180d`).
    pub channel: i16,
    /// The channel's name, as `last_channel` holds it.
    pub channel_name: &'static str,
    /// A purchase: currency code and amount in micro-units.
    pub purchase: Option<(String, i64)>,
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// Whether the row being upserted (`excluded`) touched later than the one
/// stored: by instant, then by channel name so that equal instants settle
/// the same whatever the order of arrival.
const NEWER: &str = "(segment_facts.last_touch_micros IS NULL \
     OR excluded.last_touch_micros > segment_facts.last_touch_micros \
     OR (excluded.last_touch_micros = segment_facts.last_touch_micros \
         AND excluded.last_channel > segment_facts.last_channel))";

/// The upsert keeping the later last touch of stored and new.
fn later_touch() -> OnConflict {
    use fact::Column as C;
    let keep =
        |column: &str| Expr::cust(format!("CASE WHEN {NEWER} THEN excluded.{column} ELSE segment_facts.{column} END"));
    OnConflict::columns([C::TenantId, C::CustomerId])
        .value(C::LastTouchDay, keep("last_touch_day"))
        .value(C::LastChannel, keep("last_channel"))
        // Last: the CASEs above read the stored instant, as SET reads the old row.
        .value(C::LastTouchMicros, keep("last_touch_micros"))
        .to_owned()
}

/// Records a batch of `touches` of `tenant` as of day number `today`: adds
/// them to the touch days and their purchases to the purchase days, keeps
/// each customer's later last touch, and recomputes the windows of the
/// customers touched. The caller has mapped merged customers to their
/// survivors and left erased ones out.
pub async fn record<C: ConnectionTrait>(db: &C, t: &TenantId, touches: &[Touch], today: i32) -> Result<(), DbErr> {
    if touches.is_empty() {
        return Ok(());
    }
    // One statement may not touch a row twice (PostgreSQL): sum first. The
    // keys come sorted, so concurrent batches lock rows in one order.
    let mut days: BTreeMap<(Uuid, i32, i16), i64> = BTreeMap::new();
    let mut last: BTreeMap<Uuid, Latest> = BTreeMap::new();
    let mut bought = Vec::new();
    for touch in touches {
        let day = day_number(touch.at);
        *days.entry((touch.customer, day, touch.channel)).or_default() += 1;
        let seen = Latest { at: micros(touch.at), channel: touch.channel_name, day, ..Latest::default() };
        let latest = last.entry(touch.customer).or_insert(seen);
        if (seen.at, seen.channel) > (latest.at, latest.channel) {
            (latest.at, latest.channel, latest.day) = (seen.at, seen.channel, seen.day);
        }
        // What the touch adds to windows summed as of today (the same days
        // `recompute` sums).
        if day <= today && day > today - TOUCHPOINT_DAYS {
            latest.in_90 += 1;
        }
        if day <= today && day > today - CHANNEL_DAYS {
            latest.bits_180 |= 1 << touch.channel;
        }
        if let Some((currency, amount_micros)) = &touch.purchase {
            let purchase = PurchaseDay {
                day: date_of(day),
                currency: currency.clone(),
                purchases: 1,
                amount_micros: *amount_micros,
            };
            bought.push((touch.customer, purchase));
        }
    }
    add_days(db, t, &days).await?;
    purchases::add(db, t, &bought).await?;
    let rows: Vec<_> = last.into_iter().collect();
    keep_later(db, t, &rows, Some(today)).await?;
    // Rows summed as of today took the batch's additions above; the others
    // (new, or summed before today) are summed again.
    let customers: Vec<Uuid> = rows.iter().map(|(customer, _)| *customer).collect();
    recompute(db, t, Whom::Stale(&customers), today).await
}

/// A customer's latest touch of a batch, and what the batch adds to the
/// windows.
#[derive(Clone, Copy, Debug, Default)]
struct Latest {
    /// Instant in microseconds.
    at: i64,
    channel: &'static str,
    /// Day number.
    day: i32,
    /// Touchpoints inside the 90-day window.
    in_90: i64,
    /// Channel bits inside the 180-day window.
    bits_180: i32,
}

/// Keeps each customer's later last touch of stored and `rows`, making fact
/// rows as needed; with `adding` (today's day number) also adds the rows'
/// window additions to the windows summed as of that day.
async fn keep_later<C: ConnectionTrait>(
    db: &C,
    t: &TenantId,
    rows: &[(Uuid, Latest)],
    adding: Option<i32>,
) -> Result<(), DbErr> {
    use fact::Column as Col;
    let mut conflict = later_touch();
    if let Some(today) = adding {
        // Integers of ours written out, never client text.
        let summed_today = format!("segment_facts.windows_day = {today}");
        conflict
            .value(
                Col::Touchpoints90d,
                Expr::cust(format!(
                    "CASE WHEN {summed_today} THEN segment_facts.touchpoints_90d + excluded.touchpoints_90d \
                     ELSE segment_facts.touchpoints_90d END"
                )),
            )
            .value(
                Col::Channels180d,
                Expr::cust(format!(
                    "CASE WHEN {summed_today} THEN segment_facts.channels_180d | excluded.channels_180d \
                     ELSE segment_facts.channels_180d END"
                )),
            );
    }
    // 7 parameters a row.
    for chunk in rows.chunks(1_000) {
        let models = chunk.iter().map(|(customer, latest)| fact::ActiveModel {
            tenant_id: Set(t.as_str().to_owned()),
            customer_id: Set(*customer),
            last_touch_micros: Set(Some(latest.at)),
            last_touch_day: Set(Some(latest.day)),
            last_channel: Set(Some(latest.channel.to_owned())),
            touchpoints_90d: Set(latest.in_90),
            channels_180d: Set(latest.bits_180),
            ..Default::default()
        });
        fact::Entity::insert_many(models).on_conflict(conflict.clone()).exec_without_returning(db).await?;
    }
    Ok(())
}

/// One customer's touchpoints as a load reads them from journey, summed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub customer: Uuid,
    /// Touchpoints per day number and channel (its index in `rules::CHANNELS`).
    pub days: Vec<(i32, i16, i64)>,
    pub purchases: Vec<PurchaseDay>,
    /// The latest touch: its instant and channel name.
    pub last: Option<(DateTime<Utc>, &'static str)>,
}

/// A page of a load of `t`'s touchpoints as of day number `today`: for the
/// customers with ids in (`after`, `through`] (`None`: the start, the end
/// of the key space) the touch days and purchase days become the page's,
/// those absent from `page` losing theirs; last touches merge (the later
/// wins); the windows of those customers are recomputed and the tenant's
/// RFM is due. A customer of `page` may be outside the range (the survivor
/// of a merge): its days are added to its own. The caller has mapped merged
/// customers to their survivors and left erased ones out.
pub async fn replace_range<C: ConnectionTrait>(
    db: &C,
    t: &TenantId,
    after: Option<Uuid>,
    through: Option<Uuid>,
    page: &[Loaded],
    today: i32,
) -> Result<(), DbErr> {
    scoped_delete::<touch_day::Entity>(t).filter(range(touch_day::Column::CustomerId, after, through)).exec(db).await?;
    scoped_delete::<purchase_day::Entity>(t)
        .filter(range(purchase_day::Column::CustomerId, after, through))
        .exec(db)
        .await?;
    let mut days: BTreeMap<(Uuid, i32, i16), i64> = BTreeMap::new();
    let mut last: BTreeMap<Uuid, Latest> = BTreeMap::new();
    let mut bought = Vec::new();
    for loaded in page {
        for (day, channel, n) in &loaded.days {
            let sum = days.entry((loaded.customer, *day, *channel)).or_default();
            *sum = sum.saturating_add(*n);
        }
        bought.extend(loaded.purchases.iter().map(|p| (loaded.customer, p.clone())));
        if let Some((at, channel)) = loaded.last {
            let seen = Latest { at: micros(at), channel, day: day_number(at), ..Latest::default() };
            let latest = last.entry(loaded.customer).or_insert(seen);
            if (seen.at, seen.channel) > (latest.at, latest.channel) {
                *latest = seen;
            }
        }
    }
    add_days(db, t, &days).await?;
    purchases::add(db, t, &bought).await?;
    // Purchases of the range may have gone with none added.
    super::rfm::mark_due(db, t).await?;
    let rows: Vec<_> = last.into_iter().collect();
    keep_later(db, t, &rows, None).await?;
    recompute(db, t, Whom::Range(after, through), today).await?;
    let inside = |c: &Uuid| after.is_none_or(|a| *c > a) && through.is_none_or(|b| *c <= b);
    let outside: Vec<Uuid> = page.iter().map(|l| l.customer).filter(|c| !inside(c)).collect();
    recompute(db, t, Whom::Customers(&outside), today).await
}

/// Customer ids in (`after`, `through`].
fn range(column: impl ColumnTrait, after: Option<Uuid>, through: Option<Uuid>) -> Condition {
    let mut range = Condition::all();
    if let Some(after) = after {
        range = range.add(column.gt(after));
    }
    if let Some(through) = through {
        range = range.add(column.lte(through));
    }
    range
}

/// The customers whose windows are recomputed.
enum Whom<'a> {
    Customers(&'a [Uuid]),
    /// Those of the customers whose windows were not summed as of today.
    Stale(&'a [Uuid]),
    /// Every fact row with an id in (after, through].
    Range(Option<Uuid>, Option<Uuid>),
    /// Every customer of the tenant whose values may change.
    All,
}

/// Adds touchpoint counts to the touch days, summing into those kept.
async fn add_days<C: ConnectionTrait>(
    db: &C,
    t: &TenantId,
    days: &BTreeMap<(Uuid, i32, i16), i64>,
) -> Result<(), DbErr> {
    use touch_day::Column as C;
    let rows: Vec<_> = days.iter().collect();
    // 5 parameters a row.
    for chunk in rows.chunks(1_000) {
        let models = chunk.iter().map(|((customer, day, channel), n)| touch_day::ActiveModel {
            tenant_id: Set(t.as_str().to_owned()),
            customer_id: Set(*customer),
            day: Set(*day),
            channel: Set(*channel),
            touchpoints: Set(**n),
        });
        let conflict = OnConflict::columns([C::TenantId, C::CustomerId, C::Day, C::Channel])
            .value(C::Touchpoints, Expr::cust("segment_touch_days.touchpoints + excluded.touchpoints"))
            .to_owned();
        touch_day::Entity::insert_many(models).on_conflict(conflict).exec_without_returning(db).await?;
    }
    Ok(())
}

/// Recomputes `touchpoints_90d` and `channels_180d` as of `today` from the
/// touch days, of `whom`.
async fn recompute<C: ConnectionTrait>(db: &C, t: &TenantId, whom: Whom<'_>, today: i32) -> Result<(), DbErr> {
    use fact::Column as Col;
    // Day numbers are written out: integers of ours, never client text.
    let days = |first: i32| {
        format!(
            "FROM segment_touch_days AS d WHERE d.tenant_id = segment_facts.tenant_id \
             AND d.customer_id = segment_facts.customer_id AND d.day >= {first} AND d.day <= {today}"
        )
    };
    let sum =
        format!("COALESCE((SELECT CAST(SUM(d.touchpoints) AS BIGINT) {}), 0)", days(today - (TOUCHPOINT_DAYS - 1)));
    // A sum of distinct powers of two is their bitwise OR (SQLite has no BIT_OR).
    let bits = format!(
        "COALESCE((SELECT CAST(SUM(DISTINCT 1 << CAST(d.channel AS INTEGER)) AS INTEGER) {}), 0)",
        days(today - (CHANNEL_DAYS - 1))
    );
    let update = || {
        scoped_update::<fact::Entity>(t)
            .col_expr(Col::Touchpoints90d, Expr::cust(sum.clone()))
            .col_expr(Col::Channels180d, Expr::cust(bits.clone()))
            .col_expr(Col::WindowsDay, Expr::value(today))
    };
    let backend = db.get_database_backend();
    match whom {
        Whom::Customers(customers) => {
            for chunk in customers.chunks(IDS_PER_STATEMENT) {
                update().filter(one_of(backend, Col::CustomerId, chunk)).exec(db).await?;
            }
        }
        Whom::Stale(customers) => {
            let stale = Condition::any().add(Col::WindowsDay.is_null()).add(Col::WindowsDay.ne(today));
            for chunk in customers.chunks(IDS_PER_STATEMENT) {
                update().filter(one_of(backend, Col::CustomerId, chunk)).filter(stale.clone()).exec(db).await?;
            }
        }
        Whom::Range(after, through) => {
            update().filter(range(Col::CustomerId, after, through)).exec(db).await?;
        }
        Whom::All => {
            let with_days = Query::select()
                .column(touch_day::Column::CustomerId)
                .from(touch_day::Entity)
                .and_where(touch_day::Column::TenantId.eq(t.as_str()))
                .to_owned();
            let touched = Condition::any()
                .add(Col::Touchpoints90d.ne(0))
                .add(Col::Channels180d.ne(0))
                .add(Col::CustomerId.in_subquery(with_days));
            update().filter(touched).exec(db).await?;
        }
    }
    Ok(())
}

/// The daily move of the windows for one tenant: every customer whose
/// values may change is recomputed as of `today` (one statement), then
/// touch days older than the 180-day window are dropped.
pub async fn refresh<C: ConnectionTrait>(db: &C, t: &TenantId, today: i32) -> Result<(), DbErr> {
    recompute(db, t, Whom::All, today).await?;
    scoped_delete::<touch_day::Entity>(t)
        .filter(touch_day::Column::Day.lt(today - (CHANNEL_DAYS - 1)))
        .exec(db)
        .await?;
    Ok(())
}

/// The tenants with touch days or journey counts: those [`refresh`] has
/// work for.
pub async fn tenants<C: ConnectionTrait>(db: &C) -> Result<Vec<TenantId>, DbErr> {
    let sql = "SELECT tenant_id FROM segment_touch_days \
         UNION SELECT tenant_id FROM segment_facts WHERE touchpoints_90d <> 0 OR channels_180d <> 0";
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    let mut tenants = Vec::with_capacity(rows.len());
    for row in rows {
        let raw: String = row.try_get("", "tenant_id")?;
        match TenantId::parse(&raw) {
            Ok(t) => tenants.push(t),
            Err(_) => tracing::warn!(tenant = %cx_runtime::error::clip(&raw), "stored tenant id does not parse"),
        }
    }
    Ok(tenants)
}

/// [`refresh`] of every tenant as of `today`, each in its own transaction.
pub async fn refresh_all(db: &Db, today: i32) -> Result<usize, DbErr> {
    let tenants = tenants(db).await?;
    for t in &tenants {
        let txn = db.begin().await?;
        refresh(&txn, t, today).await?;
        txn.commit().await?;
    }
    Ok(tenants.len())
}

/// Everything segmentation keeps of journey and purchases for `merged` now
/// belongs to `survivor`: touch days and purchase days move, summing into
/// the survivor's of the same key; the survivor keeps the later last touch
/// of the two, and both have their windows recomputed (the merged one's
/// journey columns are emptied).
pub async fn merge<C: ConnectionTrait>(db: &C, t: &TenantId, survivor: Uuid, merged: Uuid) -> Result<Counts, DbErr> {
    let backend = db.get_database_backend();
    let ids = || -> Vec<Value> { vec![t.as_str().into(), survivor.into(), merged.into()] };
    db.execute_raw(numbered(
        backend,
        "INSERT INTO segment_touch_days (tenant_id, customer_id, day, channel, touchpoints) \
         SELECT tenant_id, $2, day, channel, touchpoints FROM segment_touch_days \
         WHERE tenant_id = $1 AND customer_id = $3 \
         ON CONFLICT (tenant_id, customer_id, day, channel) \
         DO UPDATE SET touchpoints = segment_touch_days.touchpoints + excluded.touchpoints",
        ids(),
    ))
    .await?;
    let touch_days =
        scoped_delete::<touch_day::Entity>(t).filter(touch_day::Column::CustomerId.eq(merged)).exec(db).await?;
    db.execute_raw(numbered(
        backend,
        "INSERT INTO segment_purchase_days (tenant_id, customer_id, day, currency, purchases, amount_micros) \
         SELECT tenant_id, $2, day, currency, purchases, amount_micros FROM segment_purchase_days \
         WHERE tenant_id = $1 AND customer_id = $3 \
         ON CONFLICT (tenant_id, customer_id, day, currency) DO UPDATE SET \
           purchases = segment_purchase_days.purchases + excluded.purchases, \
           amount_micros = segment_purchase_days.amount_micros + excluded.amount_micros",
        ids(),
    ))
    .await?;
    let purchase_days =
        scoped_delete::<purchase_day::Entity>(t).filter(purchase_day::Column::CustomerId.eq(merged)).exec(db).await?;
    // The merged customer's last touch competes with the survivor's.
    let keep =
        |column: &str| format!("{column} = CASE WHEN {NEWER} THEN excluded.{column} ELSE segment_facts.{column} END");
    db.execute_raw(numbered(
        backend,
        &format!(
            "INSERT INTO segment_facts (tenant_id, customer_id, last_touch_micros, last_touch_day, last_channel) \
             SELECT tenant_id, $2, last_touch_micros, last_touch_day, last_channel FROM segment_facts \
             WHERE tenant_id = $1 AND customer_id = $3 AND last_touch_micros IS NOT NULL \
             ON CONFLICT (tenant_id, customer_id) DO UPDATE SET {}, {}, {}",
            keep("last_touch_day"),
            keep("last_channel"),
            keep("last_touch_micros"),
        ),
        ids(),
    ))
    .await?;
    scoped_update::<fact::Entity>(t)
        .col_expr(fact::Column::LastTouchMicros, Expr::value(Option::<i64>::None))
        .col_expr(fact::Column::LastTouchDay, Expr::value(Option::<i32>::None))
        .col_expr(fact::Column::LastChannel, Expr::value(Option::<String>::None))
        .filter(fact::Column::CustomerId.eq(merged))
        .exec(db)
        .await?;
    recompute(db, t, Whom::Customers(&[survivor, merged]), day_number(cx_runtime::store::now())).await?;
    Ok(counts(touch_days.rows_affected, purchase_days.rows_affected))
}

/// Deletes the touch days and purchase days of `customers`.
pub async fn erase<C: ConnectionTrait>(db: &C, t: &TenantId, customers: &[Uuid]) -> Result<Counts, DbErr> {
    let backend = db.get_database_backend();
    let (mut touch_days, mut purchase_days) = (0, 0);
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        touch_days += scoped_delete::<touch_day::Entity>(t)
            .filter(one_of(backend, touch_day::Column::CustomerId, chunk))
            .exec(db)
            .await?
            .rows_affected;
        purchase_days += scoped_delete::<purchase_day::Entity>(t)
            .filter(one_of(backend, purchase_day::Column::CustomerId, chunk))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(counts(touch_days, purchase_days))
}

fn counts(touch_days: u64, purchase_days: u64) -> Counts {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Counts::from([("purchase_days".to_owned(), count(purchase_days)), ("touch_days".to_owned(), count(touch_days))])
}
