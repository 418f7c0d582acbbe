//! The tenant's survey settings: stored as `cx.survey.v1.SurveySettings`,
//! read as [`Settings`] with the defaults filling what was never set.

use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::{Db, scoped, scoped_update};
use prost::Message;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, QuerySelect, TransactionTrait};

use super::entity::settings;
use super::{Result, SurveyError};
use crate::domain::settings::Settings;
use crate::domain::survey::SurveyType;

fn decode(body: &[u8]) -> Result<pb::SurveySettings> {
    pb::SurveySettings::decode(body).map_err(|e| SurveyError::Corrupt(format!("survey settings: {e}")))
}

/// The settings message in force, every part filled (the defaults' for the
/// parts never set).
pub async fn stored(conn: &impl ConnectionTrait, t: &TenantId) -> Result<pb::SurveySettings> {
    Ok(to_proto(&load(conn, t).await?))
}

/// The settings in force for the tenant.
pub async fn load(conn: &impl ConnectionTrait, t: &TenantId) -> Result<Settings> {
    match scoped::<settings::Entity>(t).one(conn).await? {
        Some(row) => Ok(from_proto(&decode(&row.body)?)),
        None => Ok(Settings::default()),
    }
}

/// Changes the tenant's settings: `change` is given those in force and
/// returns the new ones (or why not). Concurrent updates take turns on the
/// tenant's row, so an update of one part never undoes another's.
pub async fn update(
    db: &Db,
    t: &TenantId,
    change: impl FnOnce(pb::SurveySettings) -> Result<pb::SurveySettings>,
) -> Result<pb::SurveySettings> {
    let txn = db.begin().await?;
    // A row to lock, the first time.
    let defaults = to_proto(&Settings::default()).encode_to_vec();
    settings::Entity::insert(settings::ActiveModel { tenant_id: Set(t.to_string()), body: Set(defaults) })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
    let mut query = scoped::<settings::Entity>(t);
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let row = query.one(&txn).await?.ok_or_else(|| SurveyError::Internal("survey settings row vanished".into()))?;
    let next = change(to_proto(&from_proto(&decode(&row.body)?)))?;
    scoped_update::<settings::Entity>(t)
        .col_expr(settings::Column::Body, Expr::value(next.encode_to_vec()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(next)
}

fn duration(d: &Option<prost_types::Duration>) -> chrono::Duration {
    d.as_ref().map_or(chrono::Duration::zero(), |d| chrono::Duration::seconds(d.seconds))
}

fn proto_duration(d: chrono::Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.num_seconds(), nanos: 0 }
}

/// Stored settings as the rules read them: each part left empty takes the
/// default, and so does the SLA of each type not listed.
pub fn from_proto(p: &pb::SurveySettings) -> Settings {
    let default = Settings::default();
    let fatigue_windows = p
        .fatigue_windows
        .iter()
        .map(|w| (u32::try_from(w.max_invitations).unwrap_or(0), duration(&w.window)))
        .collect::<Vec<_>>();
    let given = |t: SurveyType| {
        p.case_slas.iter().find(|s| SurveyType::from_code(s.survey_type) == Some(t)).map(|s| duration(&s.due_within))
    };
    let case_slas = SurveyType::ALL.iter().map(|&t| (t, given(t).unwrap_or_else(|| default.sla(t)))).collect();
    Settings {
        fatigue_windows: if fatigue_windows.is_empty() { default.fatigue_windows } else { fatigue_windows },
        case_slas,
        root_causes: if p.root_causes.is_empty() { default.root_causes } else { p.root_causes.clone() },
    }
}

pub fn to_proto(s: &Settings) -> pb::SurveySettings {
    pb::SurveySettings {
        fatigue_windows: s
            .fatigue_windows
            .iter()
            .map(|&(max, window)| pb::FatigueWindow {
                max_invitations: i32::try_from(max).unwrap_or(i32::MAX),
                window: Some(proto_duration(window)),
            })
            .collect(),
        case_slas: s
            .case_slas
            .iter()
            .map(|&(t, d)| pb::CaseSla { survey_type: i32::from(t.code()), due_within: Some(proto_duration(d)) })
            .collect(),
        root_causes: s.root_causes.clone(),
    }
}
