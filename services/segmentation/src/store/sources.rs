//! Where each source of facts stands per tenant (`segment_fact_sources`,
//! docs/DOMAIN.md §8.5): a load asked for (ReloadFacts), how far it went,
//! and the high-water mark between load and feed. One replica at a time
//! pages through a source: it holds the row's lease, renewed with every
//! page, and every page checks it in the page's own transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{Db, scoped, scoped_update, stored_instant};
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    TryInsertResult,
};
use uuid::Uuid;

use super::entity::fact_source::{self, Column as Col, Model};
use crate::evaluate::Sql;

/// Profile's facts and consents.
pub const PROFILE: &str = "profile";
/// Journey's touchpoints.
pub const JOURNEY: &str = "journey";
/// Survey's scores and open cases.
pub const SURVEY: &str = "survey";
/// Every source, in the order they are listed.
pub const ALL: [&str; 3] = [PROFILE, JOURNEY, SURVEY];

/// A load under way (or stopped; it resumes after `cursor`).
pub const LOADING: &str = "loading";
/// Loaded, then kept by the feed.
pub const LOADED: &str = "loaded";

/// How long a loader holds a source without applying a page: another
/// replica takes the load over after it.
pub const LEASE: Duration = Duration::from_secs(120);

fn lease_end(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX)
}

/// Marks `sources` of tenant `t` LOADING from the start, as of `now`
/// (their cut: the high-water mark). A source already loading is left to
/// go on. Returns every source's row, in [`ALL`]'s order.
pub async fn reload(db: &Db, t: &TenantId, sources: &[&str], now: DateTime<Utc>) -> Result<Vec<Model>, DbErr> {
    let now = stored_instant(now);
    let txn = db.begin().await?;
    for source in sources {
        let row = fact_source::ActiveModel {
            tenant_id: Set(t.to_string()),
            source: Set((*source).to_owned()),
            state: Set(LOADING.to_owned()),
            cursor: Set(None),
            loaded_customers: Set(0),
            started_at: Set(now),
            completed_at: Set(None),
            high_water: Set(now),
            lease_id: Set(None),
            lease_until: Set(None),
        };
        let inserted = fact_source::Entity::insert(row)
            .on_conflict_do_nothing_on([Col::TenantId, Col::Source])
            .exec_without_returning(&txn)
            .await?;
        if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
            continue;
        }
        scoped_update::<fact_source::Entity>(t)
            .filter(Col::Source.eq(*source))
            .filter(Col::State.ne(LOADING))
            .col_expr(Col::State, Expr::value(LOADING))
            .col_expr(Col::Cursor, Expr::value(Option::<Uuid>::None))
            .col_expr(Col::LoadedCustomers, Expr::value(0_i64))
            .col_expr(Col::StartedAt, Expr::value(now))
            .col_expr(Col::CompletedAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(Col::HighWater, Expr::value(now))
            .col_expr(Col::LeaseId, Expr::value(Option::<Uuid>::None))
            .col_expr(Col::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .exec(&txn)
            .await?;
    }
    let rows = list(&txn, t).await?;
    txn.commit().await?;
    Ok(rows)
}

/// The tenant's sources that were ever loaded, in [`ALL`]'s order; a
/// source without a row is known only from its feed.
pub async fn list<C: ConnectionTrait>(db: &C, t: &TenantId) -> Result<Vec<Model>, DbErr> {
    let mut rows = scoped::<fact_source::Entity>(t).order_by_asc(Col::Source).all(db).await?;
    rows.sort_by_key(|r| ALL.iter().position(|s| *s == r.source));
    Ok(rows)
}

/// One source's row, if it was ever loaded.
pub async fn get<C: ConnectionTrait>(db: &C, t: &TenantId, source: &str) -> Result<Option<Model>, DbErr> {
    scoped::<fact_source::Entity>(t).filter(Col::Source.eq(source)).one(db).await
}

/// Loads of `of` (the sources this loader can reach) of every tenant that
/// nobody holds and may proceed at `now`: journey's once `settle` has
/// passed since it started. At most `limit`, the longest waiting first.
pub async fn due(
    db: &Db,
    now: DateTime<Utc>,
    settle: Duration,
    of: &[&str],
    limit: u64,
) -> Result<Vec<(TenantId, String)>, DbErr> {
    if of.is_empty() {
        return Ok(Vec::new());
    }
    let settled = now - chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::MAX);
    let mut sql = Sql::new(db.get_database_backend());
    sql.push("SELECT tenant_id, source FROM segment_fact_sources WHERE source IN ");
    sql.bind_list(of.iter().copied());
    sql.push(" AND state = ");
    sql.bind(LOADING);
    sql.push(" AND (lease_until IS NULL OR lease_until < ");
    sql.bind(now);
    sql.push(") AND (source <> ");
    sql.bind(JOURNEY);
    sql.push(" OR started_at <= ");
    sql.bind(settled);
    sql.push(") ORDER BY started_at LIMIT ");
    sql.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = db.query_all_raw(sql.into_statement()).await?;
    let mut due = Vec::with_capacity(rows.len());
    for row in rows {
        let (tenant, source): (String, String) = (row.try_get("", "tenant_id")?, row.try_get("", "source")?);
        match TenantId::parse(&tenant) {
            Ok(t) => due.push((t, source)),
            Err(_) => tracing::warn!(tenant = %cx_runtime::error::clip(&tenant), "stored tenant id does not parse"),
        }
    }
    Ok(due)
}

/// Takes the load of `source` for `lease` if it is still loading and free;
/// its row then, or `None` when another loader holds it or it is done.
pub async fn claim(
    db: &Db,
    t: &TenantId,
    source: &str,
    lease: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let free = Condition::any().add(Col::LeaseUntil.is_null()).add(Col::LeaseUntil.lt(now));
    let taken = scoped_update::<fact_source::Entity>(t)
        .filter(Col::Source.eq(source))
        .filter(Col::State.eq(LOADING))
        .filter(free)
        .col_expr(Col::LeaseId, Expr::value(Some(lease)))
        .col_expr(Col::LeaseUntil, Expr::value(Some(lease_end(now))))
        .exec(db)
        .await?;
    if taken.rows_affected == 0 {
        return Ok(None);
    }
    get(db, t, source).await
}

/// Records, first in the transaction applying a page, that the load held
/// by `lease` reached `cursor` with `customers` more; false (the caller
/// rolls back) when the lease was lost or the load restarted meanwhile.
pub async fn advance<C: ConnectionTrait>(
    db: &C,
    t: &TenantId,
    source: &str,
    lease: Uuid,
    cursor: Option<Uuid>,
    customers: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let done = held(t, source, lease)
        .col_expr(Col::Cursor, Expr::value(cursor))
        .col_expr(Col::LoadedCustomers, Expr::col(Col::LoadedCustomers).add(Expr::value(customers)))
        .col_expr(Col::LeaseUntil, Expr::value(Some(lease_end(now))))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Marks the load held by `lease` LOADED at `now`, ending the hold of
/// journey's feed; its cursor, needed no more, is cleared. False when the
/// lease was lost.
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    t: &TenantId,
    source: &str,
    lease: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let done = held(t, source, lease)
        .col_expr(Col::State, Expr::value(LOADED))
        .col_expr(Col::CompletedAt, Expr::value(Some(stored_instant(now))))
        .col_expr(Col::Cursor, Expr::value(Option::<Uuid>::None))
        .col_expr(Col::LeaseId, Expr::value(Option::<Uuid>::None))
        .col_expr(Col::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Lets the load go (a source down, a failed page): any loader may take it
/// again after `retry_at` (`None`: at once), so a source that is down does
/// not take every round's turns.
pub async fn release(
    db: &Db,
    t: &TenantId,
    source: &str,
    lease: Uuid,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    held(t, source, lease)
        .col_expr(Col::LeaseId, Expr::value(Option::<Uuid>::None))
        .col_expr(Col::LeaseUntil, Expr::value(retry_at))
        .exec(db)
        .await?;
    Ok(())
}

fn held(t: &TenantId, source: &str, lease: Uuid) -> sea_orm::UpdateMany<fact_source::Entity> {
    scoped_update::<fact_source::Entity>(t)
        .filter(Col::Source.eq(source))
        .filter(Col::State.eq(LOADING))
        .filter(Col::LeaseId.eq(lease))
}

/// What journey's touchpoints feed may do for a tenant now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchFeed {
    /// Never loaded: every offered touchpoint is added.
    Open,
    /// A load is under way: offers wait (the sender retries).
    Held,
    /// Loaded up to the cut: touchpoints journey stored at or before it
    /// were counted by the load and are skipped; later ones are added.
    After(DateTime<Utc>),
}

/// Where journey's feed stands for tenant `t`.
pub async fn touch_feed<C: ConnectionTrait>(db: &C, t: &TenantId) -> Result<TouchFeed, DbErr> {
    Ok(match get(db, t, JOURNEY).await? {
        None => TouchFeed::Open,
        Some(row) if row.state == LOADING => TouchFeed::Held,
        Some(row) => TouchFeed::After(row.high_water),
    })
}
