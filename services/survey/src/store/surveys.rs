//! Surveys and their versions. Each version is the `cx.survey.v1.Survey`
//! message as it was, encoded; the `surveys` row holds the current version.

use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use prost::Message;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::{survey, survey_version};
use super::{Result, SurveyError};

/// Decodes a stored version.
pub fn decode(body: &[u8], id: Uuid) -> Result<pb::Survey> {
    pb::Survey::decode(body).map_err(|e| SurveyError::Corrupt(format!("survey {id}: {e}")))
}

/// Stores a new survey at version 1: `survey` is valid and complete, with
/// its id, type, state and times set by the caller.
pub async fn insert(conn: &impl ConnectionTrait, t: &TenantId, survey: &pb::Survey) -> Result<()> {
    let id = Uuid::parse_str(&survey.id).map_err(|e| SurveyError::Corrupt(format!("survey id: {e}")))?;
    let created_at =
        survey.create_time.as_ref().and_then(cx_proto::from_timestamp).unwrap_or_else(cx_runtime::store::now);
    survey::Entity::insert(survey::ActiveModel {
        tenant_id: Set(t.to_string()),
        id: Set(id),
        survey_type: Set(i16::try_from(survey.r#type).unwrap_or_default()),
        version: Set(survey.version),
        archived: Set(survey.state == pb::SurveyState::Archived as i32),
        created_at: Set(created_at),
    })
    .exec(conn)
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
    .exec(conn)
    .await?;
    Ok(())
}

/// The survey at `version`, or at its current version; `None` when the
/// tenant has no such survey (or version).
pub async fn version(
    conn: &impl ConnectionTrait,
    t: &TenantId,
    id: Uuid,
    version: Option<i32>,
) -> Result<Option<pb::Survey>> {
    let version = match version {
        Some(v) => v,
        None => match scoped::<survey::Entity>(t).filter(survey::Column::Id.eq(id)).one(conn).await? {
            Some(row) => row.version,
            None => return Ok(None),
        },
    };
    let row = scoped::<survey_version::Entity>(t)
        .filter(survey_version::Column::SurveyId.eq(id))
        .filter(survey_version::Column::Version.eq(version))
        .one(conn)
        .await?;
    row.map(|r| decode(&r.body, id)).transpose()
}
