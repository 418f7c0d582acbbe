//! Invitations: reading them, the delivery systems' poll and stream, marking
//! them sent, counts (docs/DOMAIN.md §7.4).

use std::collections::HashSet;
use std::time::Duration;

use cx_proto::common::v1::Channel;
use cx_proto::survey::v1 as pb;
use cx_proto::timestamp;
use cx_runtime::auth::{Role, caller, tenant};
use cx_runtime::error::{FieldViolation, all2, all3};
use cx_runtime::input::{not_future, optional_uuid, parse_uuid, time_range};
use cx_runtime::long_poll::{self, Poll, Polled, Sink};
use cx_runtime::page::{decode_token, next_page_token, page_size, trim_page};
use cx_runtime::store::Db;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{InvitationStream, Reply, SurveyApi};
use crate::domain::invitation::{Reason, State};
use crate::store::entity::invitation;
use crate::store::invitations::{self, Filter, Position};

/// How often a stream looks for invitations that fell due.
/// How long a stream waits with nothing new due before it ends, when the
/// request does not say, and the longest it may ask: short by default for
/// clients with 5-second deadlines; long enough at most for a quiet tenant,
/// short enough that rollouts drain streams quickly.
const STREAM_IDLE: u64 = 2;
const STREAM_IDLE_MAX: i32 = 60;
const STREAM_POLL: Duration = Duration::from_secs(1);
/// Invitations a stream reads per query.
const STREAM_PAGE: u64 = 500;
/// A stream's bound when the request gives none, and the largest allowed.
const STREAM_DEFAULT: usize = 1_000;
const STREAM_MAX: i32 = 100_000;

/// A stored invitation as the API shows it.
pub fn invitation_to_proto(row: &invitation::Model) -> pb::Invitation {
    pb::Invitation {
        id: row.id.to_string(),
        survey_id: row.survey_id.to_string(),
        survey_version: row.survey_version,
        trigger_id: row.trigger_id.to_string(),
        customer_id: row.customer_id.to_string(),
        touchpoint_id: row.touchpoint_id.clone(),
        map_id: row.map_id.map(|m| m.to_string()).unwrap_or_default(),
        step_key: row.step_key.clone().unwrap_or_default(),
        channel: row.channel.into(),
        state: row.state.into(),
        suppression_reason: row.reason.into(),
        create_time: Some(timestamp(row.created_at)),
        send_after: Some(timestamp(row.send_after)),
        send_time: row.sent_at.map(timestamp),
        expire_time: Some(timestamp(row.expire_at)),
        answer_time: row.answered_at.map(timestamp),
        response_id: row.response_id.clone().unwrap_or_default(),
    }
}

/// A channel filter: unspecified is none.
fn channel_filter(code: i32, field: &str) -> Result<Option<i32>, FieldViolation> {
    match Channel::try_from(code) {
        Ok(Channel::Unspecified) => Ok(None),
        Ok(_) => Ok(Some(code)),
        Err(_) => Err(FieldViolation::new(field, "is not a known channel")),
    }
}

fn state_filter(code: i32) -> Result<Option<State>, FieldViolation> {
    match (code, State::from_code(code)) {
        (0, _) => Ok(None),
        (_, Some(state)) => Ok(Some(state)),
        _ => Err(FieldViolation::new("state", "is not a known invitation state")),
    }
}

/// The position after a row, `send_after micros/id`, which the page token
/// encodes.
fn position_of(row: &invitation::Model) -> String {
    format!("{}/{}", row.send_after.timestamp_micros(), row.id)
}

fn parse_page_token(token: &str) -> Result<Option<Position>, FieldViolation> {
    let bad = || FieldViolation::new("page_token", "is not a token this server issued");
    let Some(raw) = decode_token(token, "page_token")? else { return Ok(None) };
    let (micros, id) = raw.split_once('/').ok_or_else(bad)?;
    let at = cx_runtime::page::token_instant(micros).ok_or_else(bad)?;
    Ok(Some((at, Uuid::parse_str(id).map_err(|_| bad())?)))
}

pub(super) async fn get_invitation(
    api: &SurveyApi,
    request: Request<pb::GetInvitationRequest>,
) -> Reply<pb::GetInvitationResponse> {
    let t = tenant(&request, Role::Reader)?;
    let id = parse_uuid(&request.get_ref().id, "id", "an invitation id")?;
    let row = invitations::get(api.store.db(), &t, id).await?;
    Ok(Response::new(pb::GetInvitationResponse { invitation: Some(invitation_to_proto(&row)) }))
}

pub(super) async fn list_invitations(
    api: &SurveyApi,
    request: Request<pb::ListInvitationsRequest>,
) -> Reply<pb::ListInvitationsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListInvitationsRequest { customer_id, survey_id, state, due_only, channel, page_size: size, page_token } =
        request.into_inner();
    let whose = all2(
        optional_uuid(&customer_id, "customer_id", "a profile id"),
        optional_uuid(&survey_id, "survey_id", "a survey id").and_then(|survey| match survey {
            Some(_) if !customer_id.is_empty() => {
                Err(FieldViolation::new("survey_id", "give customer_id or survey_id, not both"))
            }
            survey => Ok(survey),
        }),
    );
    let what = all2(state_filter(state), channel_filter(channel, "channel"));
    let page = all2(page_size(size, "page_size"), parse_page_token(&page_token));
    let ((customer, survey), (state, channel), (size, after)) = all3(whose, what, page)?;
    let due_at = due_only.then(cx_runtime::store::now);
    let filter = Filter { customer, survey, state, due_at, channel };
    let mut rows = invitations::list(api.store.db(), &t, &filter, after, size).await?;
    let more = trim_page(&mut rows, size);
    let next_page_token = next_page_token(more, rows.last().map(position_of));
    Ok(Response::new(pb::ListInvitationsResponse {
        invitations: rows.iter().map(invitation_to_proto).collect(),
        next_page_token,
    }))
}

pub(super) async fn stream_invitations(
    api: &SurveyApi,
    request: Request<pb::StreamInvitationsRequest>,
) -> Reply<InvitationStream> {
    let t = tenant(&request, Role::Reader)?;
    let expiry = caller(&request)?.expiry();
    let pb::StreamInvitationsRequest { channel, max_invitations, wait_seconds } = request.into_inner();
    let (channel, bound, idle) = all3(
        channel_filter(channel, "channel"),
        long_poll::bound(max_invitations, "max_invitations", STREAM_DEFAULT, STREAM_MAX),
        long_poll::wait(wait_seconds, "wait_seconds", STREAM_IDLE, STREAM_IDLE_MAX),
    )?;
    let due = Due { db: api.store.db().clone(), t, channel, bound, sent: HashSet::new() };
    Ok(Response::new(Box::pin(long_poll::serve(due, idle, STREAM_POLL, expiry))))
}

/// One stream's delivery system: the pending invitations of its channel as
/// they fall due.
struct Due {
    db: Db,
    t: cx_runtime::TenantId,
    channel: Option<i32>,
    bound: usize,
    /// Each invitation once per stream, whether or not the client marks it
    /// sent; the poll reads again those it has not marked.
    sent: HashSet<Uuid>,
}

#[async_trait::async_trait]
impl Poll for Due {
    type Item = pb::StreamInvitationsResponse;

    async fn poll(&mut self, sink: &Sink<Self::Item>) -> Polled {
        let filter = Filter {
            state: Some(State::Pending),
            due_at: Some(cx_runtime::store::now()),
            channel: self.channel,
            ..Filter::default()
        };
        let mut after = None;
        let mut new = 0;
        loop {
            let page = match invitations::list(&self.db, &self.t, &filter, after, STREAM_PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    let _ = sink.send(Err(Status::from(err))).await;
                    return Polled::Done;
                }
            };
            let more = page.len() as u64 > STREAM_PAGE;
            for row in page.iter().take(usize::try_from(STREAM_PAGE).unwrap_or(usize::MAX)) {
                after = Some((row.send_after, row.id));
                if self.sent.len() >= self.bound || !self.sent.insert(row.id) {
                    continue;
                }
                let message = pb::StreamInvitationsResponse { invitation: Some(invitation_to_proto(row)) };
                if sink.send(Ok(message)).await.is_err() {
                    return Polled::Done;
                }
                new += 1;
            }
            if !more || self.sent.len() >= self.bound {
                break;
            }
        }
        if self.sent.len() >= self.bound { Polled::Done } else { Polled::Sent(new) }
    }
}

pub(super) async fn mark_invitation_sent(
    api: &SurveyApi,
    request: Request<pb::MarkInvitationSentRequest>,
) -> Reply<pb::MarkInvitationSentResponse> {
    let t = tenant(&request, Role::Writer)?;
    let pb::MarkInvitationSentRequest { id, send_time } = request.into_inner();
    let (id, at) =
        all2(parse_uuid(&id, "id", "an invitation id"), send_time.map(|ts| not_future(&ts, "send_time")).transpose())?;
    let row = invitations::mark_sent(api.store.db(), &t, id, at).await?;
    Ok(Response::new(pb::MarkInvitationSentResponse { invitation: Some(invitation_to_proto(&row)) }))
}

pub(super) async fn count_invitations(
    api: &SurveyApi,
    request: Request<pb::CountInvitationsRequest>,
) -> Reply<pb::CountInvitationsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::CountInvitationsRequest { survey_id, time_range: range } = request.into_inner();
    let (survey, range) = all2(optional_uuid(&survey_id, "survey_id", "a survey id"), time_range(range, "time_range"))?;
    let counts = invitations::count(api.store.db(), &t, survey, range).await?;
    // Every state and reason is listed, 0 included.
    let state_name = |s: State| pb::InvitationState::try_from(i32::from(s.code())).map(|p| p.as_str_name().to_owned());
    let reason_name =
        |r: Reason| pb::SuppressionReason::try_from(i32::from(r.code())).map(|p| p.as_str_name().to_owned());
    let by_state = State::ALL
        .iter()
        .filter_map(|s| Some((state_name(*s).ok()?, counts.by_state.get(s).copied().unwrap_or(0))))
        .collect();
    let suppressed_by_reason = Reason::ALL
        .iter()
        .filter_map(|r| Some((reason_name(*r).ok()?, counts.suppressed_by_reason.get(r).copied().unwrap_or(0))))
        .collect();
    Ok(Response::new(pb::CountInvitationsResponse { by_state, suppressed_by_reason }))
}
