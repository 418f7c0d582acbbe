//! Follow-up cases of unhappy answers (docs/DOMAIN.md §7.10): opened in the
//! response's transaction, worked by writers, listed earliest due first and
//! reported over the days they were opened.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use cx_runtime::TenantId;
use cx_runtime::stats::median_ranks;
use cx_runtime::store::{Db, scoped, scoped_update};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Select, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{case, case_comment};
use super::feeds::Feeds;
use super::{Result, SurveyError};
use crate::domain::case::{self as rules, Action, CaseState, MAX_COMMENTS, Progress};
use crate::domain::median::{median, middle};
use crate::domain::settings::Settings;
use crate::domain::survey::SurveyType;

/// What a case is opened from: an unhappy response, in its transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Unhappy {
    pub response_id: String,
    pub survey_id: Uuid,
    pub survey_type: SurveyType,
    pub customer_id: Option<Uuid>,
    pub score: i32,
    pub respond_time: DateTime<Utc>,
}

/// A comment of a case.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// A case as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseRecord {
    pub id: Uuid,
    pub response_id: String,
    pub survey_id: Uuid,
    pub survey_type: SurveyType,
    pub customer_id: Option<Uuid>,
    pub score: i32,
    pub respond_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub progress: Progress,
    /// In the order written; empty in listings.
    pub comments: Vec<Comment>,
}

/// Which cases a listing returns; `None` and `false` select every case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaseFilter {
    pub state: Option<CaseState>,
    pub owner: Option<String>,
    pub overdue_only: bool,
    pub survey_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
}

/// The closed loop over the cases opened in a range of days
/// (`GetCaseReport`); medians over the cases that have the time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub opened: i64,
    pub acted_within_sla: i64,
    pub resolved: i64,
    pub overdue: i64,
    pub median_time_to_first_action: Option<Duration>,
    pub median_time_to_resolution: Option<Duration>,
    /// The 95 % interval of that median from order statistics
    /// ([`cx_runtime::stats::median_ranks`]): the two rows at its ranks.
    pub resolution_interval: Option<(Duration, Duration)>,
    pub by_root_cause: BTreeMap<String, i64>,
}

/// Unresolved, as the partial index `survey_cases_unresolved_by_due` says
/// it: a literal, so the planner sees the index's predicate in the query.
const UNRESOLVED: &str = "state <> 3";

fn micros(d: Duration) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

fn corrupt(id: Uuid, what: &str) -> SurveyError {
    SurveyError::Corrupt(format!("case {id}: {what}"))
}

fn record(row: case::Model, comments: Vec<Comment>) -> Result<CaseRecord> {
    let state = CaseState::from_code(row.state.into()).ok_or_else(|| corrupt(row.id, "unknown state"))?;
    let survey_type =
        SurveyType::from_code(row.survey_type.into()).ok_or_else(|| corrupt(row.id, "unknown survey type"))?;
    Ok(CaseRecord {
        id: row.id,
        response_id: row.response_id,
        survey_id: row.survey_id,
        survey_type,
        customer_id: row.customer_id,
        score: row.score,
        respond_at: row.respond_at,
        due_at: row.due_at,
        created_at: row.created_at,
        progress: Progress {
            state,
            owner: row.owner,
            first_action_at: row.first_action_at,
            resolved_at: row.resolved_at,
            root_cause: row.root_cause,
            resolution_note: row.resolution_note,
            reopen_count: row.reopen_count,
        },
        comments,
    })
}

/// Opens the case of an unhappy response, in the response's transaction,
/// due after the tenant's SLA for its type; returns its id.
pub async fn open(txn: &DatabaseTransaction, t: &TenantId, unhappy: &Unhappy, settings: &Settings) -> Result<Uuid> {
    open_at(txn, t, unhappy, settings, cx_runtime::store::now()).await
}

/// [`open`], the case opened at `at`. A response opens one case: opening it
/// again returns the case it opened.
pub async fn open_at(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    unhappy: &Unhappy,
    settings: &Settings,
    at: DateTime<Utc>,
) -> Result<Uuid> {
    if !unhappy.survey_type.unhappy(unhappy.score) {
        let why = format!("response {} scored {} opens no case", unhappy.response_id, unhappy.score);
        return Err(SurveyError::Internal(why));
    }
    let respond_at = cx_runtime::store::stored_instant(unhappy.respond_time);
    let due_at = cx_runtime::store::stored_instant(rules::due(respond_at, settings.sla(unhappy.survey_type)));
    let opened = Progress::opened();
    case::Entity::insert(case::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(Uuid::now_v7()),
        response_id: Set(unhappy.response_id.clone()),
        survey_id: Set(unhappy.survey_id),
        survey_type: Set(unhappy.survey_type.code()),
        customer_id: Set(unhappy.customer_id),
        score: Set(unhappy.score),
        state: Set(opened.state.code()),
        owner: Set(None),
        respond_at: Set(respond_at),
        due_at: Set(due_at),
        created_at: Set(cx_runtime::store::stored_instant(at)),
        first_action_at: Set(None),
        resolved_at: Set(None),
        first_action_micros: Set(None),
        resolution_micros: Set(None),
        root_cause: Set(None),
        resolution_note: Set(None),
        reopen_count: Set(opened.reopen_count),
    })
    .on_conflict(OnConflict::columns([case::Column::TenantId, case::Column::ResponseId]).do_nothing().to_owned())
    .try_insert()
    .exec_without_returning(conn)
    .await?;
    let id = scoped::<case::Entity>(t)
        .filter(case::Column::ResponseId.eq(unhappy.response_id.as_str()))
        .select_only()
        .column(case::Column::Id)
        .into_tuple::<Uuid>()
        .one(conn)
        .await?;
    id.ok_or_else(|| SurveyError::Internal(format!("the case of response {} was not stored", unhappy.response_id)))
}

async fn comments(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<Vec<Comment>> {
    let rows = scoped::<case_comment::Entity>(t)
        .filter(case_comment::Column::CaseId.eq(id))
        .order_by_asc(case_comment::Column::Seq)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|c| Comment { author: c.author, text: c.body, created_at: c.created_at }).collect())
}

/// A case with its comments; another tenant's is not found.
pub async fn get(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<CaseRecord> {
    let row = scoped::<case::Entity>(t)
        .filter(case::Column::Id.eq(id))
        .one(conn)
        .await?
        .ok_or_else(|| SurveyError::not_found(format_args!("case {id}")))?;
    record(row, comments(conn, t, id).await?)
}

/// Every case of `customers` with its comments, oldest first: what an
/// access export gives of them.
pub async fn of_customers(conn: &impl ConnectionTrait, t: &TenantId, customers: &[Uuid]) -> Result<Vec<CaseRecord>> {
    let backend = conn.get_database_backend();
    let rows = scoped::<case::Entity>(t)
        .filter(cx_runtime::store::one_of(backend, case::Column::CustomerId, customers))
        .order_by_asc(case::Column::Id)
        .all(conn)
        .await?;
    let mut cases = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id;
        cases.push(record(row, comments(conn, t, id).await?)?);
    }
    Ok(cases)
}

/// The query of a listing page: the cases of `filter`, earliest due first
/// (then by id), after the `(due, id)` of the previous page's last, one
/// more than `limit` when another page follows. Overdue-only reads one
/// range of the unresolved cases' index.
pub fn list_query(
    t: &TenantId,
    filter: &CaseFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
    now: DateTime<Utc>,
) -> Select<case::Entity> {
    let mut query = scoped::<case::Entity>(t);
    if let Some(state) = filter.state {
        query = query.filter(case::Column::State.eq(state.code()));
    }
    if let Some(owner) = &filter.owner {
        query = query.filter(case::Column::Owner.eq(owner.as_str()));
    }
    if filter.overdue_only {
        query = query.filter(Expr::cust(UNRESOLVED)).filter(case::Column::DueAt.lt(now));
    }
    if let Some(survey) = filter.survey_id {
        query = query.filter(case::Column::SurveyId.eq(survey));
    }
    if let Some(customer) = filter.customer_id {
        query = query.filter(case::Column::CustomerId.eq(customer));
    }
    if let Some((due, id)) = after {
        let key = Expr::tuple([Expr::col(case::Column::DueAt), Expr::col(case::Column::Id)]);
        query = query.filter(key.gt(Expr::tuple([Expr::val(due), Expr::val(id)])));
    }
    query.order_by_asc(case::Column::DueAt).order_by_asc(case::Column::Id).limit(limit + 1)
}

/// A page of cases without their comments (see [`list_query`]).
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    filter: &CaseFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Vec<CaseRecord>> {
    let rows = list_query(t, filter, after, limit, now).all(conn).await?;
    rows.into_iter().map(|row| record(row, Vec::new())).collect()
}

/// Applies `action` of `author` to case `id` at `now` (docs/DOMAIN.md
/// §7.10): refused with FAILED_PRECONDITION where the state machine refuses
/// it. Returns the case as it is now.
pub async fn act(
    db: &Db,
    feeds: &Feeds,
    t: &TenantId,
    id: Uuid,
    action: &Action,
    author: &str,
    now: DateTime<Utc>,
) -> Result<CaseRecord> {
    let now = cx_runtime::store::stored_instant(now);
    let txn = db.begin().await?;
    let mut query = scoped::<case::Entity>(t).filter(case::Column::Id.eq(id));
    if txn.get_database_backend() == DbBackend::Postgres {
        // Concurrent actions on one case take turns.
        query = query.lock_exclusive();
    }
    let row = query.one(&txn).await?.ok_or_else(|| SurveyError::not_found(format_args!("case {id}")))?;
    let (respond_at, customer) = (row.respond_at, row.customer_id);
    let current = record(row, Vec::new())?.progress;
    let next =
        rules::apply(&current, action, now).map_err(|refusal| SurveyError::FailedPrecondition(refusal.message(id)))?;
    if let Some(text) = action.comment() {
        let written: Option<i32> = scoped::<case_comment::Entity>(t)
            .filter(case_comment::Column::CaseId.eq(id))
            .select_only()
            .expr(Expr::col(case_comment::Column::Seq).max())
            .into_tuple::<Option<i32>>()
            .one(&txn)
            .await?
            .flatten();
        let seq = written.unwrap_or(0) + 1;
        if i64::from(seq) > MAX_COMMENTS {
            let why = format!("case {id} has {MAX_COMMENTS} comments, the most a case holds");
            return Err(SurveyError::FailedPrecondition(why));
        }
        case_comment::Entity::insert(case_comment::ActiveModel {
            tenant_id: Set(t.to_string()),
            case_id: Set(id),
            seq: Set(seq),
            author: Set(author.to_owned()),
            body: Set(text.to_owned()),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    let since = |at: Option<DateTime<Utc>>| at.map(|at| micros(rules::since_response(respond_at, at)));
    scoped_update::<case::Entity>(t)
        .filter(case::Column::Id.eq(id))
        .col_expr(case::Column::State, Expr::value(next.state.code()))
        .col_expr(case::Column::Owner, Expr::value(next.owner.clone()))
        .col_expr(case::Column::FirstActionAt, Expr::value(next.first_action_at))
        .col_expr(case::Column::ResolvedAt, Expr::value(next.resolved_at))
        .col_expr(case::Column::FirstActionMicros, Expr::value(since(next.first_action_at)))
        .col_expr(case::Column::ResolutionMicros, Expr::value(since(next.resolved_at)))
        .col_expr(case::Column::RootCause, Expr::value(next.root_cause.clone()))
        .col_expr(case::Column::ResolutionNote, Expr::value(next.resolution_note.clone()))
        .col_expr(case::Column::ReopenCount, Expr::value(next.reopen_count))
        .exec(&txn)
        .await?;
    let resolved = |state: CaseState| state == CaseState::Resolved;
    if let Some(customer) = customer.filter(|_| resolved(current.state) != resolved(next.state)) {
        feeds.open_cases(&txn, t, customer).await?;
    }
    txn.commit().await?;
    get(db, t, id).await
}

/// The report over the cases opened on the UTC days `first..=last`, of
/// `survey` or of every survey; overdue as of `now`.
pub async fn report(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    first: NaiveDate,
    last: NaiveDate,
    survey: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Report> {
    let start = first.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = start + Duration::days((last - first).num_days() + 1);
    let opened = || {
        let mut query = scoped::<case::Entity>(t)
            .filter(case::Column::CreatedAt.gte(start))
            .filter(case::Column::CreatedAt.lt(end));
        if let Some(survey) = survey {
            query = query.filter(case::Column::SurveyId.eq(survey));
        }
        query
    };
    let counted =
        |condition: &'static str| Expr::cust(format!("coalesce(sum(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"));
    let counts: Option<(i64, i64, i64, i64, i64)> = opened()
        .select_only()
        .expr(Expr::cust("count(*)"))
        .expr(counted("first_action_at <= due_at"))
        .expr(counted("state = 3"))
        .expr(Expr::cust_with_values(
            format!("coalesce(sum(CASE WHEN {UNRESOLVED} AND due_at < $1 THEN 1 ELSE 0 END), 0)"),
            [now],
        ))
        .expr(Expr::cust("count(first_action_micros)"))
        .into_tuple()
        .one(conn)
        .await?;
    let (opened_n, within, resolved, overdue, acted) = counts.unwrap_or_default();
    let median_of = |column: case::Column, n: i64| {
        let query = opened();
        async move {
            let Some((offset, count)) = middle(n) else { return Ok(None) };
            let values: Vec<i64> = query
                .filter(column.is_not_null())
                .select_only()
                .column(column)
                .order_by_asc(column)
                .offset(u64::try_from(offset).unwrap_or(0))
                .limit(u64::try_from(count).unwrap_or(0))
                .into_tuple()
                .all(conn)
                .await?;
            Result::Ok(median(&values))
        }
    };
    let median_time_to_first_action = median_of(case::Column::FirstActionMicros, acted).await?;
    // A case has a resolution time exactly while it is resolved.
    let median_time_to_resolution = median_of(case::Column::ResolutionMicros, resolved).await?;
    let at_rank = |rank: u64| {
        let query = opened();
        async move {
            let value: Option<i64> = query
                .filter(case::Column::ResolutionMicros.is_not_null())
                .select_only()
                .column(case::Column::ResolutionMicros)
                .order_by_asc(case::Column::ResolutionMicros)
                .offset(rank - 1)
                .limit(1)
                .into_tuple()
                .one(conn)
                .await?;
            Result::Ok(value.map(Duration::microseconds))
        }
    };
    let resolution_interval = match u64::try_from(resolved).ok().and_then(median_ranks) {
        Some(ranks) => at_rank(ranks.lower).await?.zip(at_rank(ranks.upper).await?),
        None => None,
    };
    let causes: Vec<(Option<String>, i64)> = opened()
        .filter(case::Column::State.eq(CaseState::Resolved.code()))
        .select_only()
        .column(case::Column::RootCause)
        .expr(Expr::cust("count(*)"))
        .group_by(case::Column::RootCause)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(Report {
        opened: opened_n,
        acted_within_sla: within,
        resolved,
        overdue,
        median_time_to_first_action,
        median_time_to_resolution,
        resolution_interval,
        by_root_cause: causes.into_iter().map(|(cause, n)| (cause.unwrap_or_default(), n)).collect(),
    })
}

/// The unresolved cases now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenCases {
    pub open: i64,
    /// Past their due time.
    pub overdue: i64,
    /// The earliest due time still ahead: when `overdue` next changes
    /// without a write.
    pub next_due: Option<DateTime<Utc>>,
}

/// The tenant's unresolved cases as of `now`.
pub async fn open_now(conn: &impl ConnectionTrait, t: &TenantId, now: DateTime<Utc>) -> Result<OpenCases> {
    let unresolved = || scoped::<case::Entity>(t).filter(Expr::cust(UNRESOLVED));
    let counts: Option<(i64, i64)> = unresolved()
        .select_only()
        .expr(Expr::cust("count(*)"))
        .expr(Expr::cust_with_values("coalesce(sum(CASE WHEN due_at < $1 THEN 1 ELSE 0 END), 0)", [now]))
        .into_tuple()
        .one(conn)
        .await?;
    let (open, overdue) = counts.unwrap_or_default();
    let next_due: Option<DateTime<Utc>> = unresolved()
        .filter(case::Column::DueAt.gte(now))
        .order_by_asc(case::Column::DueAt)
        .select_only()
        .column(case::Column::DueAt)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(OpenCases { open, overdue, next_due })
}
