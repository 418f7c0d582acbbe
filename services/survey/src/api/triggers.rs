//! Triggers: the rules on touchpoints that invite customers to a survey.

use cx_proto::survey::v1 as pb;
use tonic::{Request, Status};

use super::{Reply, SurveyApi};

pub(super) async fn create_trigger(
    _api: &SurveyApi,
    _request: Request<pb::CreateTriggerRequest>,
) -> Reply<pb::CreateTriggerResponse> {
    Err(Status::unimplemented("CreateTrigger is not written yet"))
}

pub(super) async fn get_trigger(
    _api: &SurveyApi,
    _request: Request<pb::GetTriggerRequest>,
) -> Reply<pb::GetTriggerResponse> {
    Err(Status::unimplemented("GetTrigger is not written yet"))
}

pub(super) async fn list_triggers(
    _api: &SurveyApi,
    _request: Request<pb::ListTriggersRequest>,
) -> Reply<pb::ListTriggersResponse> {
    Err(Status::unimplemented("ListTriggers is not written yet"))
}

pub(super) async fn update_trigger(
    _api: &SurveyApi,
    _request: Request<pb::UpdateTriggerRequest>,
) -> Reply<pb::UpdateTriggerResponse> {
    Err(Status::unimplemented("UpdateTrigger is not written yet"))
}

pub(super) async fn delete_trigger(
    _api: &SurveyApi,
    _request: Request<pb::DeleteTriggerRequest>,
) -> Reply<pb::DeleteTriggerResponse> {
    Err(Status::unimplemented("DeleteTrigger is not written yet"))
}
