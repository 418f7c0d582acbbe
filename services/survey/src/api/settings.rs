//! The tenant's survey settings: fatigue budget, case SLAs, root causes
//! (docs/DOMAIN.md §7.5).

use cx_proto::survey::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, all2};
use tonic::{Request, Response};

use super::{Reply, SurveyApi};
use crate::domain::validate::settings::{UPDATABLE, apply};
use crate::store::settings;

pub(super) async fn get_survey_settings(
    api: &SurveyApi,
    request: Request<pb::GetSurveySettingsRequest>,
) -> Reply<pb::GetSurveySettingsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let stored = settings::stored(api.store.db(), &t).await?;
    Ok(Response::new(pb::GetSurveySettingsResponse { settings: Some(stored) }))
}

pub(super) async fn update_survey_settings(
    api: &SurveyApi,
    request: Request<pb::UpdateSurveySettingsRequest>,
) -> Reply<pb::UpdateSurveySettingsResponse> {
    let t = tenant(&request, Role::Admin)?;
    let pb::UpdateSurveySettingsRequest { settings: given, update_mask } = request.into_inner();
    let given = given.ok_or_else(|| FieldViolation::new("settings", "is required"));
    let (given, paths) = all2(given, UPDATABLE.paths(update_mask))?;
    let updated = settings::update(api.store.db(), &t, |current| Ok(apply(current, given, &paths)?)).await?;
    tracing::info!(parts = ?paths, "survey settings updated");
    Ok(Response::new(pb::UpdateSurveySettingsResponse { settings: Some(updated) }))
}
