//! The lifecycle roll-up, `purchase_spans`: every customer's purchase spans
//! (`domain::spans`) counted per kind and days, kept in the transaction
//! that changes purchase days (activity, a merge, an erasure), under the
//! customers' locks. A change is applied as a difference: the spans of the
//! customers concerned are read before it and after it, and the roll-up
//! gains the second and loses the first. Rows that fall to zero stay: they
//! add nothing to a sum.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::bulk::{self, Kind};
use cx_runtime::store::{numbered, one_of, scoped};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, QuerySelect, Value};
use uuid::Uuid;

use super::Result;
use super::entity::{customer, purchase_day};
use crate::domain::spans::{Span, spans};

/// Spans and how many customers have each.
pub type SpanCounts = BTreeMap<Span, i64>;

/// Customers read per statement by the rebuild.
const REBUILD_PAGE: u64 = 10_000;

/// The spans of `customers`, added up, from their purchase days and creation
/// as stored now.
pub async fn spans_of<C: ConnectionTrait>(conn: &C, t: &TenantId, customers: &[Uuid]) -> Result<SpanCounts> {
    let backend = conn.get_database_backend();
    let rows = scoped::<purchase_day::Entity>(t)
        .filter(one_of(backend, purchase_day::Column::CustomerId, customers))
        .select_only()
        .column(purchase_day::Column::CustomerId)
        .column(purchase_day::Column::Day)
        .distinct()
        .into_tuple::<(Uuid, NaiveDate)>()
        .all(conn)
        .await?;
    let mut days: HashMap<Uuid, Vec<NaiveDate>> = HashMap::new();
    for (customer, day) in rows {
        days.entry(customer).or_default().push(day);
    }
    let buyers: Vec<Uuid> = days.keys().copied().collect();
    let created: HashMap<Uuid, DateTime<Utc>> = scoped::<customer::Entity>(t)
        .filter(one_of(backend, customer::Column::Id, &buyers))
        .select_only()
        .column(customer::Column::Id)
        .column(customer::Column::CreatedAt)
        .into_tuple::<(Uuid, DateTime<Utc>)>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    let mut counts = SpanCounts::new();
    for (customer, mut days) in days {
        days.sort_unstable();
        // Every purchaser is a customer; the first purchase stands in for a
        // creation never read, which counts the same for every day after it.
        let created = created.get(&customer).map_or(days[0], |at| at.date_naive());
        for span in spans(&days, created) {
            *counts.entry(span).or_default() += 1;
        }
    }
    Ok(counts)
}

/// The spans of customers about to change, to be made good once they have.
pub struct SpansBefore {
    customers: Vec<Uuid>,
    before: SpanCounts,
}

impl SpansBefore {
    /// Reads the spans of `customers`, who are locked by the caller's
    /// transaction until it ends.
    pub async fn take<C: ConnectionTrait>(conn: &C, t: &TenantId, customers: &[Uuid]) -> Result<Self> {
        let before = if customers.is_empty() { SpanCounts::new() } else { spans_of(conn, t, customers).await? };
        Ok(Self { customers: customers.to_vec(), before })
    }

    /// Reads the spans again, after the change, and moves the roll-up by the
    /// difference.
    pub async fn apply<C: ConnectionTrait>(self, conn: &C, t: &TenantId) -> Result<()> {
        if self.customers.is_empty() {
            return Ok(());
        }
        let mut delta = spans_of(conn, t, &self.customers).await?;
        for (span, n) in self.before {
            *delta.entry(span).or_default() -= n;
        }
        delta.retain(|_, n| *n != 0);
        Ok(add(conn, t, &delta).await?)
    }
}

/// Adds `delta` to the roll-up, in key order: two transactions touching the
/// same rows take their locks in the same order.
async fn add<C: ConnectionTrait>(conn: &C, t: &TenantId, delta: &SpanCounts) -> std::result::Result<(), DbErr> {
    const COLUMNS: &[(&str, Kind)] = &[
        ("tenant_id", Kind::Text),
        ("kind", Kind::SmallInt),
        ("from_day", Kind::Date),
        ("until_day", Kind::Date),
        ("next_day", Kind::Date),
        ("customers", Kind::BigInt),
    ];
    let rows = delta
        .iter()
        .map(|(span, n)| {
            let values: Vec<Value> = vec![
                t.as_str().into(),
                (span.kind as i16).into(),
                span.from.into(),
                span.until.into(),
                span.next.into(),
                (*n).into(),
            ];
            values
        })
        .collect();
    let tail = "ON CONFLICT (tenant_id, kind, from_day, until_day, next_day) \
         DO UPDATE SET customers = purchase_spans.customers + excluded.customers";
    bulk::insert(conn, "purchase_spans", COLUMNS, rows, tail).await
}

/// Fills the roll-up anew from every tenant's purchase days, a page of
/// customers at a time; memory is one page and the tenant's distinct spans.
/// Run in one transaction (the migration's), it is safe beside running
/// writers on PostgreSQL: the table is locked against them before the first
/// read, so a change not yet committed is either in the pages read or added
/// after, never both.
pub async fn rebuild<C: ConnectionTrait>(conn: &C) -> std::result::Result<(), DbErr> {
    let backend = conn.get_database_backend();
    if backend == sea_orm::DbBackend::Postgres {
        conn.execute_unprepared("LOCK TABLE purchase_spans IN EXCLUSIVE MODE").await?;
    }
    conn.execute_unprepared("DELETE FROM purchase_spans").await?;
    let tenants = conn
        .query_all_raw(numbered(backend, "SELECT DISTINCT tenant_id FROM purchase_days", vec![]))
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "tenant_id"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for tenant in tenants {
        let t = TenantId::parse(&tenant).map_err(DbErr::Custom)?;
        let mut counts = SpanCounts::new();
        let mut after = Uuid::nil();
        loop {
            let page: Vec<Uuid> = scoped::<customer::Entity>(&t)
                .filter(customer::Column::Id.gt(after))
                .order_by_asc(customer::Column::Id)
                .limit(REBUILD_PAGE)
                .select_only()
                .column(customer::Column::Id)
                .into_tuple::<Uuid>()
                .all(conn)
                .await?;
            let Some(&last) = page.last() else { break };
            let spans = spans_of(conn, &t, &page).await.map_err(|e| DbErr::Custom(e.to_string()))?;
            for (span, n) in spans {
                *counts.entry(span).or_default() += n;
            }
            after = last;
        }
        add(conn, &t, &counts).await?;
    }
    Ok(())
}
