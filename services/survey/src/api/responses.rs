//! Responses: SubmitResponse (idempotent, validated against the survey version), reading, verbatim search.

use cx_proto::survey::v1 as pb;
use tonic::{Request, Status};

use super::{Reply, SurveyApi};

pub(super) async fn submit_response(
    _api: &SurveyApi,
    _request: Request<pb::SubmitResponseRequest>,
) -> Reply<pb::SubmitResponseResponse> {
    Err(Status::unimplemented("SubmitResponse is not written yet"))
}

pub(super) async fn get_response(
    _api: &SurveyApi,
    _request: Request<pb::GetResponseRequest>,
) -> Reply<pb::GetResponseResponse> {
    Err(Status::unimplemented("GetResponse is not written yet"))
}

pub(super) async fn list_responses(
    _api: &SurveyApi,
    _request: Request<pb::ListResponsesRequest>,
) -> Reply<pb::ListResponsesResponse> {
    Err(Status::unimplemented("ListResponses is not written yet"))
}

pub(super) async fn search_verbatims(
    _api: &SurveyApi,
    _request: Request<pb::SearchVerbatimsRequest>,
) -> Reply<pb::SearchVerbatimsResponse> {
    Err(Status::unimplemented("SearchVerbatims is not written yet"))
}
