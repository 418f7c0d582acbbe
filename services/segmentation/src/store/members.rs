//! Members of segments and the changes of membership (docs/DOMAIN.md §8):
//! a refresh evaluates the segment's rule with the statement it compiles to
//! and records, set-wise in one transaction, who entered and who left.
//!
//! A tenant's refreshes take turns on its row of `segment_turns`, so its
//! changes commit in the order of their `seq`, and a follower reading after
//! a cursor never skips one committed late.

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::gdpr::Counts;
use cx_runtime::store::{one_of, scoped, scoped_delete};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use uuid::Uuid;

use super::entity::{change, member, segment};
use crate::evaluate::{self, Sql};
use crate::rules::Checked;

pub type Result<T> = std::result::Result<T, ServiceError>;

/// Customers named in one statement of a merge, erasure or export.
const IDS_PER_STATEMENT: usize = 5_000;

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub entered: u64,
    pub left: u64,
    pub members: u64,
}

/// Waits for the tenant's turn to refresh, until the end of `txn`.
pub async fn take_turn(txn: &DatabaseTransaction, t: &TenantId) -> Result<()> {
    if txn.get_database_backend() != DbBackend::Postgres {
        // SQLite has one writer at a time: every transaction takes turns.
        return Ok(());
    }
    let turn = |sql: &str| Statement::from_sql_and_values(DbBackend::Postgres, sql, [t.as_str().into()]);
    txn.execute_raw(turn("INSERT INTO segment_turns (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")).await?;
    txn.execute_raw(turn("SELECT tenant_id FROM segment_turns WHERE tenant_id = $1 FOR UPDATE")).await?;
    Ok(())
}

/// Recomputes segment `id`'s members with `rule` as of `now`, in `txn`
/// (which holds the tenant's turn): the customers the rule selects and who
/// were not members enter, the members it no longer selects leave; each is
/// a change. Four statements, however many customers.
pub async fn refresh(
    txn: &DatabaseTransaction,
    t: &TenantId,
    id: Uuid,
    rule: &Checked,
    now: DateTime<Utc>,
) -> Result<Refreshed> {
    let backend = txn.get_database_backend();
    let today = cx_runtime::days::day_number(now);
    let run = Uuid::now_v7();
    let changes = "INSERT INTO segment_changes (tenant_id, segment_id, customer_id, entered, change_time, run_id) ";

    // Entered: selected now, not a member.
    let mut sql = Sql::new(backend);
    sql.push(changes);
    sql.push("SELECT f.tenant_id, ");
    sql.bind(id);
    sql.push(", f.customer_id, ");
    sql.bind(true);
    sql.push(", ");
    sql.bind(now);
    sql.push(", ");
    sql.bind(run);
    sql.push(" FROM segment_facts f WHERE f.tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND ");
    evaluate::rule(&mut sql, rule, today);
    sql.push(" AND NOT EXISTS (SELECT 1 FROM segment_members m WHERE m.tenant_id = f.tenant_id AND m.segment_id = ");
    sql.bind(id);
    // In customer order, so a run's changes are numbered in that order.
    sql.push(" AND m.customer_id = f.customer_id) ORDER BY f.customer_id");
    let entered = txn.execute_raw(sql.into_statement()).await?.rows_affected();

    // Left: a member the rule no longer selects (or whose facts are gone).
    let mut sql = Sql::new(backend);
    sql.push(changes);
    sql.push("SELECT m.tenant_id, m.segment_id, m.customer_id, ");
    sql.bind(false);
    sql.push(", ");
    sql.bind(now);
    sql.push(", ");
    sql.bind(run);
    sql.push(" FROM segment_members m WHERE m.tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND m.segment_id = ");
    sql.bind(id);
    sql.push(" AND NOT EXISTS (SELECT 1 FROM segment_facts f WHERE f.tenant_id = m.tenant_id AND f.customer_id = m.customer_id AND ");
    evaluate::rule(&mut sql, rule, today);
    sql.push(") ORDER BY m.customer_id");
    let left = txn.execute_raw(sql.into_statement()).await?.rows_affected();

    // The members follow the run's changes.
    let mut sql = Sql::new(backend);
    sql.push("DELETE FROM segment_members WHERE tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND segment_id = ");
    sql.bind(id);
    sql.push(" AND customer_id IN (SELECT customer_id FROM segment_changes WHERE run_id = ");
    sql.bind(run);
    sql.push(" AND NOT entered)");
    txn.execute_raw(sql.into_statement()).await?;
    let mut sql = Sql::new(backend);
    sql.push("INSERT INTO segment_members (tenant_id, segment_id, customer_id, entered_at) ");
    sql.push("SELECT tenant_id, segment_id, customer_id, change_time FROM segment_changes WHERE run_id = ");
    sql.bind(run);
    sql.push(" AND entered");
    txn.execute_raw(sql.into_statement()).await?;

    let members = scoped::<member::Entity>(t).filter(member::Column::SegmentId.eq(id)).count(txn).await?;
    cx_runtime::store::scoped_update::<segment::Entity>(t)
        .filter(segment::Column::Id.eq(id))
        .col_expr(segment::Column::RefreshedAt, Expr::value(Some(now)))
        .col_expr(segment::Column::NextRefreshAt, Expr::value(next_refresh(txn, t, id, now).await?))
        .col_expr(segment::Column::MemberCount, Expr::value(i64::try_from(members).unwrap_or(i64::MAX)))
        .col_expr(segment::Column::Refreshes, Expr::col(segment::Column::Refreshes).add(1))
        .col_expr(segment::Column::ErasedMembers, Expr::value(0i64))
        .col_expr(segment::Column::MergedMembers, Expr::value(0i64))
        .exec(txn)
        .await?;
    Ok(Refreshed { entered, left, members })
}

/// When segment `id` is next due, its interval after `now`.
async fn next_refresh(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let seconds: Option<i64> = scoped::<segment::Entity>(t)
        .filter(segment::Column::Id.eq(id))
        .select_only()
        .column(segment::Column::RefreshSeconds)
        .into_tuple()
        .one(conn)
        .await?;
    let interval = seconds.map_or(crate::segments::DEFAULT_REFRESH, chrono::Duration::seconds);
    Ok(now + interval)
}

/// Moves segment `id` to its next interval without refreshing it: what the
/// schedule does with a segment it could not refresh now.
pub async fn postpone(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    cx_runtime::store::scoped_update::<segment::Entity>(t)
        .filter(segment::Column::Id.eq(id))
        .col_expr(segment::Column::NextRefreshAt, Expr::value(next_refresh(conn, t, id, now).await?))
        .exec(conn)
        .await?;
    Ok(())
}

/// Members of segment `id` after `after`, by customer id; one more than
/// `limit` when another page follows.
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<member::Model>> {
    let mut query = scoped::<member::Entity>(t)
        .filter(member::Column::SegmentId.eq(id))
        .order_by_asc(member::Column::CustomerId)
        .limit(limit + 1);
    if let Some(after) = after {
        query = query.filter(member::Column::CustomerId.gt(after));
    }
    Ok(query.all(conn).await?)
}

/// At most `limit` changes of the tenant (of one segment, or all) after
/// `after`, in the order they were recorded.
pub async fn changes(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    segment_id: Option<Uuid>,
    after: i64,
    limit: u64,
) -> Result<Vec<change::Model>> {
    let mut query = scoped::<change::Entity>(t)
        .filter(change::Column::Seq.gt(after))
        .order_by_asc(change::Column::Seq)
        .limit(limit);
    if let Some(id) = segment_id {
        query = query.filter(change::Column::SegmentId.eq(id));
    }
    Ok(query.all(conn).await?)
}

/// Segments of any tenant due for a refresh at `now`, the most overdue
/// first: (tenant, id). One of the two statements across tenants, both the
/// schedule's.
pub async fn due(conn: &impl ConnectionTrait, now: DateTime<Utc>, limit: u64) -> Result<Vec<(String, Uuid)>> {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push("SELECT tenant_id, id FROM segments WHERE next_refresh_at <= ");
    sql.bind(now);
    sql.push(" ORDER BY next_refresh_at LIMIT ");
    sql.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = conn.query_all_raw(sql.into_statement()).await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("", "tenant_id")?, r.try_get("", "id")?)))
        .collect::<std::result::Result<_, sea_orm::DbErr>>()?)
}

/// Forgets the changes of every tenant recorded before `before` (changes
/// are kept 90 days).
pub async fn age_out(conn: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64> {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push("DELETE FROM segment_changes WHERE change_time < ");
    sql.bind(before);
    Ok(conn.execute_raw(sql.into_statement()).await?.rows_affected())
}

/// A merged customer leaves every segment it was in, recorded as a change
/// so followers drop the id; the survivor enters at the segments' next
/// refresh if its facts match. Its past changes stay as they were.
pub async fn merge(txn: &DatabaseTransaction, t: &TenantId, merged: Uuid, now: DateTime<Utc>) -> Result<u64> {
    let mut sql = Sql::new(txn.get_database_backend());
    sql.push("INSERT INTO segment_changes (tenant_id, segment_id, customer_id, entered, change_time, run_id) ");
    sql.push("SELECT tenant_id, segment_id, customer_id, ");
    sql.bind(false);
    sql.push(", ");
    sql.bind(now);
    sql.push(", ");
    sql.bind(Uuid::now_v7());
    sql.push(" FROM segment_members WHERE tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND customer_id = ");
    sql.bind(merged);
    sql.push(" ORDER BY segment_id");
    let left = txn.execute_raw(sql.into_statement()).await?.rows_affected();
    gone(txn, t, "merged_members", &[merged]).await?;
    scoped_delete::<member::Entity>(t).filter(member::Column::CustomerId.eq(merged)).exec(txn).await?;
    Ok(left)
}

/// Deletes the memberships and the changes of `customers`: the counts by
/// kind of record (`memberships`, `membership_changes`).
pub async fn erase(txn: &DatabaseTransaction, t: &TenantId, customers: &[Uuid]) -> Result<Counts> {
    let backend = txn.get_database_backend();
    let (mut memberships, mut changes) = (0, 0);
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        gone(txn, t, "erased_members", chunk).await?;
        memberships += scoped_delete::<member::Entity>(t)
            .filter(one_of(backend, member::Column::CustomerId, chunk))
            .exec(txn)
            .await?
            .rows_affected;
        changes += scoped_delete::<change::Entity>(t)
            .filter(one_of(backend, change::Column::CustomerId, chunk))
            .exec(txn)
            .await?
            .rows_affected;
    }
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Counts::from([
        ("memberships".to_owned(), count(memberships)),
        ("membership_changes".to_owned(), count(changes)),
    ]))
}

/// Counts `customers` leaving the segments they are members of in the
/// segments' `column` (`erased_members`, `merged_members`), before their
/// memberships go: an export of the last refresh accounts for them.
async fn gone(txn: &DatabaseTransaction, t: &TenantId, column: &str, customers: &[Uuid]) -> Result<()> {
    let mut sql = Sql::new(txn.get_database_backend());
    sql.push(&format!("UPDATE segments SET {column} = {column} + (SELECT COUNT(*) FROM segment_members m "));
    sql.push("WHERE m.tenant_id = segments.tenant_id AND m.segment_id = segments.id AND m.customer_id IN ");
    sql.bind_list(customers.iter().copied());
    sql.push(") WHERE tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND id IN (SELECT segment_id FROM segment_members WHERE tenant_id = ");
    sql.bind(t.as_str());
    sql.push(" AND customer_id IN ");
    sql.bind_list(customers.iter().copied());
    sql.push(")");
    txn.execute_raw(sql.into_statement()).await?;
    Ok(())
}

/// What is held about `customers`: their memberships, and their changes in
/// the order recorded.
pub async fn held(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    customers: &[Uuid],
) -> Result<(Vec<member::Model>, Vec<change::Model>)> {
    let backend = conn.get_database_backend();
    let (mut members, mut changes) = (Vec::new(), Vec::new());
    for chunk in customers.chunks(IDS_PER_STATEMENT) {
        members.extend(
            scoped::<member::Entity>(t)
                .filter(one_of(backend, member::Column::CustomerId, chunk))
                .order_by_asc(member::Column::SegmentId)
                .all(conn)
                .await?,
        );
        changes.extend(
            scoped::<change::Entity>(t)
                .filter(one_of(backend, change::Column::CustomerId, chunk))
                .order_by_asc(change::Column::Seq)
                .all(conn)
                .await?,
        );
    }
    Ok((members, changes))
}
