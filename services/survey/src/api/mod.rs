//! `cx.survey.v1.SurveyService`: each RPC is answered by the module of its
//! area (definitions, triggers, invitations, responses, aggregates, cases,
//! settings); this file only routes.

mod aggregates;
pub(crate) mod cases;
pub mod internal;
pub(crate) mod invitations;
mod responses;
mod settings;
mod surveys;
mod triggers;

use std::pin::Pin;

use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_service_server::SurveyService;
use cx_runtime::cache::Cache;
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::store::SurveyStore;

/// The survey service's gRPC face.
#[derive(Clone, Debug)]
pub struct SurveyApi {
    store: SurveyStore,
    cache: Cache,
}

impl SurveyApi {
    pub fn new(store: SurveyStore, cache: Cache) -> Self {
        Self { store, cache }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// The invitations a StreamInvitations call sends.
pub type InvitationStream = Pin<Box<dyn Stream<Item = Result<pb::StreamInvitationsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl SurveyService for SurveyApi {
    type StreamInvitationsStream = InvitationStream;

    async fn get_score_aggregates(
        &self,
        request: Request<pb::GetScoreAggregatesRequest>,
    ) -> Reply<pb::GetScoreAggregatesResponse> {
        aggregates::get_score_aggregates(self, request).await
    }

    async fn get_case(&self, request: Request<pb::GetCaseRequest>) -> Reply<pb::GetCaseResponse> {
        cases::get_case(self, request).await
    }

    async fn list_cases(&self, request: Request<pb::ListCasesRequest>) -> Reply<pb::ListCasesResponse> {
        cases::list_cases(self, request).await
    }

    async fn assign_case(&self, request: Request<pb::AssignCaseRequest>) -> Reply<pb::AssignCaseResponse> {
        cases::assign_case(self, request).await
    }

    async fn comment_case(&self, request: Request<pb::CommentCaseRequest>) -> Reply<pb::CommentCaseResponse> {
        cases::comment_case(self, request).await
    }

    async fn resolve_case(&self, request: Request<pb::ResolveCaseRequest>) -> Reply<pb::ResolveCaseResponse> {
        cases::resolve_case(self, request).await
    }

    async fn reopen_case(&self, request: Request<pb::ReopenCaseRequest>) -> Reply<pb::ReopenCaseResponse> {
        cases::reopen_case(self, request).await
    }

    async fn get_case_report(&self, request: Request<pb::GetCaseReportRequest>) -> Reply<pb::GetCaseReportResponse> {
        cases::get_case_report(self, request).await
    }

    async fn get_invitation(&self, request: Request<pb::GetInvitationRequest>) -> Reply<pb::GetInvitationResponse> {
        invitations::get_invitation(self, request).await
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Reply<pb::ListInvitationsResponse> {
        invitations::list_invitations(self, request).await
    }

    async fn stream_invitations(
        &self,
        request: Request<pb::StreamInvitationsRequest>,
    ) -> Reply<Self::StreamInvitationsStream> {
        invitations::stream_invitations(self, request).await
    }

    async fn mark_invitation_sent(
        &self,
        request: Request<pb::MarkInvitationSentRequest>,
    ) -> Reply<pb::MarkInvitationSentResponse> {
        invitations::mark_invitation_sent(self, request).await
    }

    async fn count_invitations(
        &self,
        request: Request<pb::CountInvitationsRequest>,
    ) -> Reply<pb::CountInvitationsResponse> {
        invitations::count_invitations(self, request).await
    }

    async fn submit_response(&self, request: Request<pb::SubmitResponseRequest>) -> Reply<pb::SubmitResponseResponse> {
        responses::submit_response(self, request).await
    }

    async fn get_response(&self, request: Request<pb::GetResponseRequest>) -> Reply<pb::GetResponseResponse> {
        responses::get_response(self, request).await
    }

    async fn list_responses(&self, request: Request<pb::ListResponsesRequest>) -> Reply<pb::ListResponsesResponse> {
        responses::list_responses(self, request).await
    }

    async fn search_verbatims(
        &self,
        request: Request<pb::SearchVerbatimsRequest>,
    ) -> Reply<pb::SearchVerbatimsResponse> {
        responses::search_verbatims(self, request).await
    }

    async fn get_survey_settings(
        &self,
        request: Request<pb::GetSurveySettingsRequest>,
    ) -> Reply<pb::GetSurveySettingsResponse> {
        settings::get_survey_settings(self, request).await
    }

    async fn update_survey_settings(
        &self,
        request: Request<pb::UpdateSurveySettingsRequest>,
    ) -> Reply<pb::UpdateSurveySettingsResponse> {
        settings::update_survey_settings(self, request).await
    }

    async fn create_survey(&self, request: Request<pb::CreateSurveyRequest>) -> Reply<pb::CreateSurveyResponse> {
        surveys::create_survey(self, request).await
    }

    async fn get_survey(&self, request: Request<pb::GetSurveyRequest>) -> Reply<pb::GetSurveyResponse> {
        surveys::get_survey(self, request).await
    }

    async fn list_surveys(&self, request: Request<pb::ListSurveysRequest>) -> Reply<pb::ListSurveysResponse> {
        surveys::list_surveys(self, request).await
    }

    async fn update_survey(&self, request: Request<pb::UpdateSurveyRequest>) -> Reply<pb::UpdateSurveyResponse> {
        surveys::update_survey(self, request).await
    }

    async fn archive_survey(&self, request: Request<pb::ArchiveSurveyRequest>) -> Reply<pb::ArchiveSurveyResponse> {
        surveys::archive_survey(self, request).await
    }

    async fn create_trigger(&self, request: Request<pb::CreateTriggerRequest>) -> Reply<pb::CreateTriggerResponse> {
        triggers::create_trigger(self, request).await
    }

    async fn get_trigger(&self, request: Request<pb::GetTriggerRequest>) -> Reply<pb::GetTriggerResponse> {
        triggers::get_trigger(self, request).await
    }

    async fn list_triggers(&self, request: Request<pb::ListTriggersRequest>) -> Reply<pb::ListTriggersResponse> {
        triggers::list_triggers(self, request).await
    }

    async fn update_trigger(&self, request: Request<pb::UpdateTriggerRequest>) -> Reply<pb::UpdateTriggerResponse> {
        triggers::update_trigger(self, request).await
    }

    async fn delete_trigger(&self, request: Request<pb::DeleteTriggerRequest>) -> Reply<pb::DeleteTriggerResponse> {
        triggers::delete_trigger(self, request).await
    }
}
