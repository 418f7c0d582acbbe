//! Invitations, suppressions included (docs/DOMAIN.md §7.4): made from the
//! touchpoints journey offers ([`offer`]), withdrawn when the `survey`
//! consent is ([`consent`]), read and polled by delivery systems, marked
//! sent, expired by a background job.

pub mod consent;
pub mod gdpr;
pub mod lock;
pub mod offer;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::input::Bounds;
use cx_runtime::store::{scoped, scoped_update};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect, Statement};
use uuid::Uuid;

use super::entity::invitation;
use super::{Result, SurveyError};
use crate::domain::invitation::{Reason, State};

/// Lists of ids go to the database in chunks of this many: SQLite takes at
/// most 32,766 parameters a statement.
pub(crate) const IDS_PER_STATEMENT: usize = 5_000;

/// The invitation `id` of the tenant.
pub async fn get(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<invitation::Model> {
    scoped::<invitation::Entity>(t)
        .filter(invitation::Column::Id.eq(id))
        .one(conn)
        .await?
        .ok_or_else(|| SurveyError::not_found(format_args!("invitation {id}")))
}

/// Which invitations a listing reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub customer: Option<Uuid>,
    pub survey: Option<Uuid>,
    pub state: Option<State>,
    /// Only those due at this instant (send_after not after it).
    pub due_at: Option<DateTime<Utc>>,
    /// `cx.common.v1.Channel` code.
    pub channel: Option<i32>,
}

/// Where a page starts: after this (send_after, id).
pub type Position = (DateTime<Utc>, Uuid);

/// One page of invitations, oldest due first; one more row than `limit`
/// when another page follows. A customer merged away reads the survivor's.
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    filter: &Filter,
    after: Option<Position>,
    limit: u64,
) -> Result<Vec<invitation::Model>> {
    let mut query = scoped::<invitation::Entity>(t)
        .order_by_asc(invitation::Column::SendAfter)
        .order_by_asc(invitation::Column::Id)
        .limit(limit + 1);
    if let Some(customer) = filter.customer {
        let survivor = cx_runtime::gdpr::survivors(conn, t, &[customer]).await?.get(&customer).copied();
        query = query.filter(invitation::Column::CustomerId.eq(survivor.unwrap_or(customer)));
    }
    if let Some(survey) = filter.survey {
        query = query.filter(invitation::Column::SurveyId.eq(survey));
    }
    if let Some(state) = filter.state {
        query = query.filter(invitation::Column::State.eq(state.code()));
    }
    if let Some(due) = filter.due_at {
        query = query.filter(invitation::Column::SendAfter.lte(due));
    }
    if let Some(channel) = filter.channel {
        query = query.filter(invitation::Column::Channel.eq(channel));
    }
    if let Some((at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(invitation::Column::SendAfter.gt(at))
                .add(Condition::all().add(invitation::Column::SendAfter.eq(at)).add(invitation::Column::Id.gt(id))),
        );
    }
    Ok(query.all(conn).await?)
}

/// Invitations by state, and suppressions by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub by_state: BTreeMap<State, i64>,
    pub suppressed_by_reason: BTreeMap<Reason, i64>,
}

/// Counts the invitations created in `range` (either end open), of `survey`
/// or of every survey.
pub async fn count(conn: &impl ConnectionTrait, t: &TenantId, survey: Option<Uuid>, range: Bounds) -> Result<Counts> {
    let mut query = scoped::<invitation::Entity>(t)
        .select_only()
        .column(invitation::Column::State)
        .column(invitation::Column::Reason)
        .column_as(invitation::Column::Id.count(), "n")
        .group_by(invitation::Column::State)
        .group_by(invitation::Column::Reason);
    if let Some(survey) = survey {
        query = query.filter(invitation::Column::SurveyId.eq(survey));
    }
    if let Some(start) = range.0 {
        query = query.filter(invitation::Column::CreatedAt.gte(start));
    }
    if let Some(end) = range.1 {
        query = query.filter(invitation::Column::CreatedAt.lt(end));
    }
    let mut counts = Counts::default();
    for (state, reason, n) in query.into_tuple::<(i16, i16, i64)>().all(conn).await? {
        let Some(state) = State::from_code(state.into()) else { continue };
        *counts.by_state.entry(state).or_default() += n;
        if let Some(reason) = Reason::from_code(reason.into()).filter(|_| state == State::Suppressed) {
            *counts.suppressed_by_reason.entry(reason).or_default() += n;
        }
    }
    Ok(counts)
}

/// Records that a delivery system sent invitation `id` at `at` (now when
/// `None`): pending → sent. Asked again for one already sent, at the same
/// instant or without one, it answers the same; any other state, or a
/// pending invitation past its expiry, is `FAILED_PRECONDITION`.
pub async fn mark_sent(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    id: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<invitation::Model> {
    let now = cx_runtime::store::now();
    let sent_at = at.map_or(now, cx_runtime::store::stored_instant);
    let updated = scoped_update::<invitation::Entity>(t)
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::State.eq(State::Pending.code()))
        .filter(invitation::Column::ExpireAt.gt(now))
        .col_expr(invitation::Column::State, Expr::value(State::Sent.code()))
        .col_expr(invitation::Column::SentAt, Expr::value(sent_at))
        .exec(conn)
        .await?;
    let row = get(conn, t, id).await?;
    if updated.rows_affected == 1 {
        return Ok(row);
    }
    let state = State::from_code(row.state.into());
    match state {
        Some(State::Sent) if at.is_none() || row.sent_at == Some(sent_at) => Ok(row),
        Some(State::Sent) => {
            let first = row.sent_at.map(|s| s.to_rfc3339()).unwrap_or_default();
            Err(SurveyError::FailedPrecondition(format!("invitation {id} was already sent, at {first}")))
        }
        Some(State::Pending) => Err(SurveyError::FailedPrecondition(format!(
            "invitation {id} expired at {} and can no longer be sent",
            row.expire_at.to_rfc3339()
        ))),
        _ => Err(SurveyError::FailedPrecondition(format!(
            "invitation {id} is {} and cannot be sent",
            state.map_or("of an unknown state", state_word)
        ))),
    }
}

fn state_word(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Sent => "sent",
        State::Answered => "answered",
        State::Expired => "expired",
        State::Suppressed => "suppressed",
    }
}

/// Turns every pending or sent invitation past its expiry at `now` into
/// expired, tenant by tenant; returns how many.
pub async fn expire(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    let backend = conn.get_database_backend();
    // The one read across tenants: which tenants have surveys (a small table;
    // every invitation is to one of them).
    let tenants = conn.query_all_raw(Statement::from_string(backend, "SELECT DISTINCT tenant_id FROM surveys")).await?;
    let mut expired = 0;
    for row in tenants {
        let raw: String = row.try_get("", "tenant_id")?;
        let Ok(t) = TenantId::parse(&raw) else { continue };
        expired += expire_tenant(conn, &t, now).await?;
    }
    if expired > 0 {
        tracing::info!(expired, "invitations expired");
    }
    Ok(expired)
}

async fn expire_tenant(conn: &impl ConnectionTrait, t: &TenantId, now: DateTime<Utc>) -> Result<u64> {
    let done = scoped_update::<invitation::Entity>(t)
        .filter(invitation::Column::State.is_in([State::Pending.code(), State::Sent.code()]))
        .filter(invitation::Column::ExpireAt.lte(now))
        .col_expr(invitation::Column::State, Expr::value(State::Expired.code()))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
