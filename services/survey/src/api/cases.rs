//! The closed loop: follow-up cases of unhappy answers.

use cx_proto::survey::v1 as pb;
use tonic::{Request, Status};

use super::{Reply, SurveyApi};

pub(super) async fn get_case(_api: &SurveyApi, _request: Request<pb::GetCaseRequest>) -> Reply<pb::GetCaseResponse> {
    Err(Status::unimplemented("GetCase is not written yet"))
}

pub(super) async fn list_cases(
    _api: &SurveyApi,
    _request: Request<pb::ListCasesRequest>,
) -> Reply<pb::ListCasesResponse> {
    Err(Status::unimplemented("ListCases is not written yet"))
}

pub(super) async fn assign_case(
    _api: &SurveyApi,
    _request: Request<pb::AssignCaseRequest>,
) -> Reply<pb::AssignCaseResponse> {
    Err(Status::unimplemented("AssignCase is not written yet"))
}

pub(super) async fn comment_case(
    _api: &SurveyApi,
    _request: Request<pb::CommentCaseRequest>,
) -> Reply<pb::CommentCaseResponse> {
    Err(Status::unimplemented("CommentCase is not written yet"))
}

pub(super) async fn resolve_case(
    _api: &SurveyApi,
    _request: Request<pb::ResolveCaseRequest>,
) -> Reply<pb::ResolveCaseResponse> {
    Err(Status::unimplemented("ResolveCase is not written yet"))
}

pub(super) async fn reopen_case(
    _api: &SurveyApi,
    _request: Request<pb::ReopenCaseRequest>,
) -> Reply<pb::ReopenCaseResponse> {
    Err(Status::unimplemented("ReopenCase is not written yet"))
}

pub(super) async fn get_case_report(
    _api: &SurveyApi,
    _request: Request<pb::GetCaseReportRequest>,
) -> Reply<pb::GetCaseReportResponse> {
    Err(Status::unimplemented("GetCaseReport is not written yet"))
}
