//! Surveys and their versions (docs/DOMAIN.md §7.5). Each version is the
//! `cx.survey.v1.Survey` message as it was made, encoded; the `surveys` row
//! holds the current version and the state, which is every version's:
//! archiving makes no version.

use std::collections::HashMap;

use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::{Db, scoped, scoped_update};
use prost::Message;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::entity::{survey, survey_version};
use super::{Result, SurveyError};

/// Decodes a stored version.
pub fn decode(body: &[u8], id: Uuid) -> Result<pb::Survey> {
    pb::Survey::decode(body).map_err(|e| SurveyError::Corrupt(format!("survey {id}: {e}")))
}

/// A stored version with the survey's state, which holds for every version.
fn with_state(mut survey: pb::Survey, row: &survey::Model) -> pb::Survey {
    let state = if row.archived { pb::SurveyState::Archived } else { pb::SurveyState::Active };
    survey.state = state as i32;
    survey.archive_time = row.archived_at.map(cx_proto::timestamp);
    survey
}

fn not_found(id: Uuid) -> SurveyError {
    SurveyError::not_found(format_args!("survey {id}"))
}

/// Stores a new survey at version 1: `survey` is valid and complete, with
/// its id, type, state and times set by the caller.
pub async fn insert(conn: &impl ConnectionTrait, t: &TenantId, survey: &pb::Survey) -> Result<()> {
    let id = Uuid::parse_str(&survey.id).map_err(|e| SurveyError::Corrupt(format!("survey id: {e}")))?;
    let created_at =
        survey.create_time.as_ref().and_then(cx_proto::from_timestamp).unwrap_or_else(cx_runtime::store::now);
    let archived = survey.state == pb::SurveyState::Archived as i32;
    let archived_at = archived
        .then(|| survey.archive_time.as_ref().and_then(cx_proto::from_timestamp).unwrap_or(created_at))
        .map(cx_runtime::store::stored_instant);
    survey::Entity::insert(survey::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(id),
        survey_type: Set(i16::try_from(survey.r#type).unwrap_or_default()),
        version: Set(survey.version),
        archived: Set(archived),
        created_at: Set(cx_runtime::store::stored_instant(created_at)),
        archived_at: Set(archived_at),
    })
    .exec_without_returning(conn)
    .await?;
    insert_version(conn, t, id, survey).await
}

/// Stores one version of a survey.
pub async fn insert_version(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid, survey: &pb::Survey) -> Result<()> {
    survey_version::Entity::insert(survey_version::ActiveModel {
        tenant_id: Set(t.to_string()),
        survey_id: Set(id),
        version: Set(survey.version),
        body: Set(survey.encode_to_vec()),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The survey's row; locked until the transaction ends on PostgreSQL when
/// `lock` (SQLite has one writer).
async fn row(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid, lock: bool) -> Result<Option<survey::Model>> {
    let mut query = scoped::<survey::Entity>(t).filter(survey::Column::Id.eq(id));
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query.one(conn).await?)
}

/// One stored version of the survey of `row`.
async fn body(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid, version: i32) -> Result<Option<pb::Survey>> {
    let row = scoped::<survey_version::Entity>(t)
        .filter(survey_version::Column::SurveyId.eq(id))
        .filter(survey_version::Column::Version.eq(version))
        .one(conn)
        .await?;
    row.map(|r| decode(&r.body, id)).transpose()
}

/// The current version of the survey of `row`, which must be there.
async fn current(conn: &impl ConnectionTrait, t: &TenantId, row: &survey::Model) -> Result<pb::Survey> {
    body(conn, t, row.id, row.version)
        .await?
        .ok_or_else(|| SurveyError::Corrupt(format!("version {} of survey {} is missing", row.version, row.id)))
}

/// The survey at `version`, or at its current version; `None` when the
/// tenant has no such survey (or version). Its state is the survey's now.
pub async fn version(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    id: Uuid,
    version: Option<i32>,
) -> Result<Option<pb::Survey>> {
    let Some(row) = row(conn, t, id, false).await? else { return Ok(None) };
    let found = body(conn, t, id, version.unwrap_or(row.version)).await?;
    Ok(found.map(|survey| with_state(survey, &row)))
}

/// Whether the tenant's survey `id` is archived; `None` when there is none.
pub async fn archived(conn: &impl ConnectionTrait, t: &TenantId, id: Uuid) -> Result<Option<bool>> {
    let archived: Option<bool> = scoped::<survey::Entity>(t)
        .filter(survey::Column::Id.eq(id))
        .select_only()
        .column(survey::Column::Archived)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(archived)
}

/// Creates `survey` (checked) at version 1; its id (UUID v7), state and
/// times are set here.
pub async fn create(db: &Db, t: &TenantId, mut survey: pb::Survey) -> Result<pb::Survey> {
    let now = cx_proto::timestamp(cx_runtime::store::now());
    survey.id = Uuid::now_v7().to_string();
    survey.version = 1;
    survey.state = pb::SurveyState::Active as i32;
    survey.create_time = Some(now);
    survey.update_time = Some(now);
    survey.archive_time = None;
    let txn = db.begin().await?;
    insert(&txn, t, &survey).await?;
    txn.commit().await?;
    Ok(survey)
}

/// Surveys newest first, older than `before` (the last of the previous
/// page), archived ones only when `archived`; one more than `limit` when
/// another page follows.
pub async fn list(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    before: Option<Uuid>,
    limit: u64,
    archived: bool,
) -> Result<Vec<pb::Survey>> {
    let mut query = scoped::<survey::Entity>(t).order_by_desc(survey::Column::Id).limit(limit + 1);
    if let Some(before) = before {
        query = query.filter(survey::Column::Id.lt(before));
    }
    if !archived {
        query = query.filter(survey::Column::Archived.eq(false));
    }
    let rows = query.all(conn).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let current = rows.iter().fold(Condition::any(), |any, row| {
        any.add(
            Condition::all()
                .add(survey_version::Column::SurveyId.eq(row.id))
                .add(survey_version::Column::Version.eq(row.version)),
        )
    });
    let mut bodies: HashMap<Uuid, Vec<u8>> = scoped::<survey_version::Entity>(t)
        .filter(current)
        .all(conn)
        .await?
        .into_iter()
        .map(|v| (v.survey_id, v.body))
        .collect();
    rows.iter()
        .map(|row| {
            let body = bodies.remove(&row.id).ok_or_else(|| {
                SurveyError::Corrupt(format!("version {} of survey {} is missing", row.version, row.id))
            })?;
            Ok(with_state(decode(&body, row.id)?, row))
        })
        .collect()
}

/// Makes the next version of survey `id`: `change` is given the current one
/// and returns the new content (or why not); the version and its time are
/// set here. An archived survey does not change (`FAILED_PRECONDITION`).
/// Concurrent updates take turns on the survey's row.
pub async fn update(
    db: &Db,
    t: &TenantId,
    id: Uuid,
    change: impl FnOnce(pb::Survey) -> Result<pb::Survey>,
) -> Result<pb::Survey> {
    let txn = db.begin().await?;
    let row = row(&txn, t, id, true).await?.ok_or_else(|| not_found(id))?;
    if row.archived {
        return Err(SurveyError::FailedPrecondition(format!("survey {id} is archived and cannot change")));
    }
    let mut next = change(current(&txn, t, &row).await?)?;
    next.version = row.version + 1;
    next.update_time = Some(cx_proto::timestamp(cx_runtime::store::now()));
    insert_version(&txn, t, id, &next).await?;
    scoped_update::<survey::Entity>(t)
        .filter(survey::Column::Id.eq(id))
        .col_expr(survey::Column::Version, Expr::value(next.version))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(with_state(next, &row))
}

/// Archives survey `id`, at its current version; archiving it again changes
/// nothing (its archive time stays the first).
pub async fn archive(db: &Db, t: &TenantId, id: Uuid) -> Result<pb::Survey> {
    let txn = db.begin().await?;
    let mut row = row(&txn, t, id, true).await?.ok_or_else(|| not_found(id))?;
    if !row.archived {
        let now = cx_runtime::store::now();
        scoped_update::<survey::Entity>(t)
            .filter(survey::Column::Id.eq(id))
            .col_expr(survey::Column::Archived, Expr::value(true))
            .col_expr(survey::Column::ArchivedAt, Expr::value(now))
            .exec(&txn)
            .await?;
        row.archived = true;
        row.archived_at = Some(now);
    }
    let survey = current(&txn, t, &row).await?;
    txn.commit().await?;
    Ok(with_state(survey, &row))
}
