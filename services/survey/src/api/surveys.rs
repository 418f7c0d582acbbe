//! Survey definitions: create, read, list, update (a new version), archive.

use cx_proto::survey::v1 as pb;
use tonic::{Request, Status};

use super::{Reply, SurveyApi};

pub(super) async fn create_survey(
    _api: &SurveyApi,
    _request: Request<pb::CreateSurveyRequest>,
) -> Reply<pb::CreateSurveyResponse> {
    Err(Status::unimplemented("CreateSurvey is not written yet"))
}

pub(super) async fn get_survey(
    _api: &SurveyApi,
    _request: Request<pb::GetSurveyRequest>,
) -> Reply<pb::GetSurveyResponse> {
    Err(Status::unimplemented("GetSurvey is not written yet"))
}

pub(super) async fn list_surveys(
    _api: &SurveyApi,
    _request: Request<pb::ListSurveysRequest>,
) -> Reply<pb::ListSurveysResponse> {
    Err(Status::unimplemented("ListSurveys is not written yet"))
}

pub(super) async fn update_survey(
    _api: &SurveyApi,
    _request: Request<pb::UpdateSurveyRequest>,
) -> Reply<pb::UpdateSurveyResponse> {
    Err(Status::unimplemented("UpdateSurvey is not written yet"))
}

pub(super) async fn archive_survey(
    _api: &SurveyApi,
    _request: Request<pb::ArchiveSurveyRequest>,
) -> Reply<pb::ArchiveSurveyResponse> {
    Err(Status::unimplemented("ArchiveSurvey is not written yet"))
}
