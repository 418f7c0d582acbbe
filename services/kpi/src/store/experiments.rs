//! Experiments: created (running), read, listed, stopped.

use chrono::{DateTime, Utc};
use cx_proto::kpi::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::ServiceError;
use cx_runtime::store::{now, scoped, scoped_update};
use prost::Message;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entity::experiment;

pub type Result<T> = std::result::Result<T, ServiceError>;

/// Most experiments a tenant keeps, stopped ones included.
pub const MAX_EXPERIMENTS: u64 = 1_000;

fn read(row: &experiment::Model) -> Result<pb::Experiment> {
    let mut e = pb::Experiment::decode(row.body.as_slice())
        .map_err(|e| ServiceError::Corrupt(format!("experiment {}: {e}", row.id)))?;
    e.id = row.id.to_string();
    e.start_time = Some(cx_proto::timestamp(row.started_at));
    e.stop_time = row.stopped_at.map(cx_proto::timestamp);
    let state = if row.stopped_at.is_some() { pb::ExperimentState::Stopped } else { pb::ExperimentState::Running };
    e.state = state.into();
    Ok(e)
}

/// Whether `e` (as read) is stopped.
pub fn stopped(e: &pb::Experiment) -> bool {
    e.state == i32::from(pb::ExperimentState::Stopped)
}

/// Stores `checked` (from `experiment::definition::check`) as a new running
/// experiment.
pub async fn create(conn: &impl ConnectionTrait, t: &TenantId, checked: &pb::Experiment) -> Result<pb::Experiment> {
    if scoped::<experiment::Entity>(t).count(conn).await? >= MAX_EXPERIMENTS {
        return Err(ServiceError::FailedPrecondition(format!(
            "the tenant has {MAX_EXPERIMENTS} experiments, the most it keeps"
        )));
    }
    let id = Uuid::now_v7();
    let row = experiment::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(id),
        body: Set(checked.encode_to_vec()),
        started_at: Set(now()),
        stopped_at: Set(None),
    };
    experiment::Entity::insert(row).exec_without_returning(conn).await?;
    get(conn, t, id).await
}

/// Experiment `id`; NOT_FOUND when the tenant has none.
pub async fn get(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<pb::Experiment> {
    let row = scoped::<experiment::Entity>(t).filter(experiment::Column::Id.eq(id)).one(conn).await?;
    row.as_ref().map(read).transpose()?.ok_or_else(|| ServiceError::not_found(format_args!("experiment {id}")))
}

/// Experiments in id order after `after`; one more than `limit` when
/// another page follows.
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<pb::Experiment>> {
    let mut query = scoped::<experiment::Entity>(t).order_by_asc(experiment::Column::Id).limit(limit + 1);
    if let Some(after) = after {
        query = query.filter(experiment::Column::Id.gt(after));
    }
    query.all(conn).await?.iter().map(read).collect()
}

/// Stops experiment `id` at `at`; one already stopped keeps its stop time.
pub async fn stop(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid, at: DateTime<Utc>) -> Result<pb::Experiment> {
    scoped_update::<experiment::Entity>(t)
        .col_expr(experiment::Column::StoppedAt, Expr::value(Some(at)))
        .filter(experiment::Column::Id.eq(id))
        .filter(experiment::Column::StoppedAt.is_null())
        .exec(conn)
        .await?;
    get(conn, t, id).await
}
