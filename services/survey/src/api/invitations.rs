//! Invitations: reading them, the delivery systems' poll and stream, marking them sent, counts.

use cx_proto::survey::v1 as pb;
use tonic::{Request, Status};

use super::{InvitationStream, Reply, SurveyApi};

pub(super) async fn get_invitation(
    _api: &SurveyApi,
    _request: Request<pb::GetInvitationRequest>,
) -> Reply<pb::GetInvitationResponse> {
    Err(Status::unimplemented("GetInvitation is not written yet"))
}

pub(super) async fn list_invitations(
    _api: &SurveyApi,
    _request: Request<pb::ListInvitationsRequest>,
) -> Reply<pb::ListInvitationsResponse> {
    Err(Status::unimplemented("ListInvitations is not written yet"))
}

pub(super) async fn stream_invitations(
    _api: &SurveyApi,
    _request: Request<pb::StreamInvitationsRequest>,
) -> Reply<InvitationStream> {
    Err(Status::unimplemented("StreamInvitations is not written yet"))
}

pub(super) async fn mark_invitation_sent(
    _api: &SurveyApi,
    _request: Request<pb::MarkInvitationSentRequest>,
) -> Reply<pb::MarkInvitationSentResponse> {
    Err(Status::unimplemented("MarkInvitationSent is not written yet"))
}

pub(super) async fn count_invitations(
    _api: &SurveyApi,
    _request: Request<pb::CountInvitationsRequest>,
) -> Reply<pb::CountInvitationsResponse> {
    Err(Status::unimplemented("CountInvitations is not written yet"))
}
