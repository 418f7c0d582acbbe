//! The tenant's survey settings: fatigue budget, case SLAs, root causes.

use cx_proto::survey::v1 as pb;
use tonic::{Request, Status};

use super::{Reply, SurveyApi};

pub(super) async fn get_survey_settings(
    _api: &SurveyApi,
    _request: Request<pb::GetSurveySettingsRequest>,
) -> Reply<pb::GetSurveySettingsResponse> {
    Err(Status::unimplemented("GetSurveySettings is not written yet"))
}

pub(super) async fn update_survey_settings(
    _api: &SurveyApi,
    _request: Request<pb::UpdateSurveySettingsRequest>,
) -> Reply<pb::UpdateSurveySettingsResponse> {
    Err(Status::unimplemented("UpdateSurveySettings is not written yet"))
}
