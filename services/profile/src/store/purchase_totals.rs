//! The purchase roll-up, `purchase_totals`: a tenant's purchases, amounts
//! and squared amounts per day and currency, whoever bought. What CLV's sums
//! and busiest currency read for the whole tenant (`purchase_sums`), instead
//! of every customer's purchase days. Activity adds to it in its
//! transaction; an erasure takes the customer's part out; a merge moves
//! purchases between customers and leaves it as it is.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cx_runtime::TenantId;
use cx_runtime::store::bulk::{self, Kind};
use cx_runtime::store::numbered;
use sea_orm::{ConnectionTrait, DbErr, Value};
use uuid::Uuid;

use super::activity::{Activity, Spent, squares};

/// What `records` add, per day and currency.
pub fn of(records: &[Activity]) -> BTreeMap<(NaiveDate, &str), Spent> {
    let mut totals: BTreeMap<(NaiveDate, &str), Spent> = BTreeMap::new();
    for r in records.iter().filter(|r| r.purchases > 0) {
        let entry = totals.entry((r.at.date_naive(), r.currency.as_str())).or_default();
        entry.0 += r.purchases;
        entry.1 += r.amount_micros;
        entry.2 += squares(r.purchases, r.amount_micros);
    }
    totals
}

/// Adds `totals`, in key order (the rows of a day are every buyer's).
pub async fn add<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    totals: &BTreeMap<(NaiveDate, &str), Spent>,
) -> Result<(), DbErr> {
    const KINDS: &[(&str, Kind)] = &[
        ("tenant_id", Kind::Text),
        ("day", Kind::Date),
        ("currency", Kind::Text),
        ("purchases", Kind::BigInt),
        ("amount_micros", Kind::BigInt),
        ("amount_squares", Kind::Double),
    ];
    let rows = totals
        .iter()
        .map(|((day, currency), (purchases, micros, squares))| {
            let values: Vec<Value> = vec![
                t.as_str().into(),
                (*day).into(),
                (*currency).into(),
                (*purchases).into(),
                (*micros).into(),
                (*squares).into(),
            ];
            values
        })
        .collect();
    bulk::insert(conn, "purchase_totals", KINDS, rows, ADD).await
}

const COLUMNS: &str = "tenant_id, day, currency, purchases, amount_micros, amount_squares";
const ADD: &str = "ON CONFLICT (tenant_id, day, currency) DO UPDATE SET \
     purchases = purchase_totals.purchases + excluded.purchases, \
     amount_micros = purchase_totals.amount_micros + excluded.amount_micros, \
     amount_squares = purchase_totals.amount_squares + excluded.amount_squares";

/// Takes `customer`'s purchase days out of the totals (before they are
/// deleted).
pub async fn subtract_customer<C: ConnectionTrait>(conn: &C, t: &TenantId, customer: Uuid) -> Result<(), DbErr> {
    let sql = format!(
        "INSERT INTO purchase_totals ({COLUMNS}) \
         SELECT tenant_id, day, currency, -purchases, -amount_micros, -amount_squares FROM purchase_days \
         WHERE tenant_id = $1 AND customer_id = $2 ORDER BY day, currency {ADD}"
    );
    let values: Vec<Value> = vec![t.as_str().into(), customer.into()];
    conn.execute_raw(numbered(conn.get_database_backend(), &sql, values)).await?;
    Ok(())
}

/// Fills the totals anew from every purchase day, in one transaction (the
/// migration's) that locks the table against writers first, as
/// `spans::rebuild` does.
pub async fn refill<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        conn.execute_unprepared("LOCK TABLE purchase_totals IN EXCLUSIVE MODE").await?;
    }
    conn.execute_unprepared("DELETE FROM purchase_totals").await?;
    conn.execute_unprepared(&format!(
        "INSERT INTO purchase_totals ({COLUMNS}) \
         SELECT tenant_id, day, currency, SUM(purchases), SUM(amount_micros), SUM(amount_squares) \
         FROM purchase_days GROUP BY tenant_id, day, currency"
    ))
    .await?;
    Ok(())
}
