//! The tenant's survey settings: stored as `cx.survey.v1.SurveySettings`,
//! read as [`Settings`] with the defaults filling what was never set.

use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use prost::Message;
use sea_orm::ConnectionTrait;

use super::entity::settings;
use super::{Result, SurveyError};
use crate::domain::settings::Settings;
use crate::domain::survey::SurveyType;

/// The stored settings message; the defaults' when never set.
pub async fn stored(conn: &impl ConnectionTrait, t: &TenantId) -> Result<pb::SurveySettings> {
    match scoped::<settings::Entity>(t).one(conn).await? {
        Some(row) => pb::SurveySettings::decode(row.body.as_slice())
            .map_err(|e| SurveyError::Corrupt(format!("survey settings: {e}"))),
        None => Ok(to_proto(&Settings::default())),
    }
}

/// The settings in force for the tenant.
pub async fn load(conn: &impl ConnectionTrait, t: &TenantId) -> Result<Settings> {
    Ok(from_proto(&stored(conn, t).await?))
}

fn duration(d: &Option<prost_types::Duration>) -> chrono::Duration {
    d.as_ref().map_or(chrono::Duration::zero(), |d| chrono::Duration::seconds(d.seconds))
}

fn proto_duration(d: chrono::Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.num_seconds(), nanos: 0 }
}

/// Stored settings as the rules read them: each part left empty takes the
/// default.
pub fn from_proto(p: &pb::SurveySettings) -> Settings {
    let default = Settings::default();
    let fatigue_windows = p
        .fatigue_windows
        .iter()
        .map(|w| (u32::try_from(w.max_invitations).unwrap_or(0), duration(&w.window)))
        .collect::<Vec<_>>();
    let case_slas = p
        .case_slas
        .iter()
        .filter_map(|s| SurveyType::from_code(s.survey_type).map(|t| (t, duration(&s.due_within))))
        .collect::<Vec<_>>();
    Settings {
        fatigue_windows: if fatigue_windows.is_empty() { default.fatigue_windows } else { fatigue_windows },
        case_slas: if case_slas.is_empty() { default.case_slas } else { case_slas },
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
