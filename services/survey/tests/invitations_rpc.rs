//! The invitation RPCs over gRPC, on both backends: reading, listing with
//! filters and pages, the delivery systems' stream, marking sent, counts,
//! and every error a client can provoke (bad input all at once, roles,
//! another tenant's invitation, a state that cannot be sent).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod invitations_common;

use std::collections::HashMap;

use chrono::{Duration, Utc};
use cx_proto::common::v1::{Channel, TimeRange};
use cx_proto::survey::v1::{self as pb, survey_service_client::SurveyServiceClient};
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::error::{FieldViolation, field_violations};
use cx_runtime::store::Db;
use cx_testkit::{Backend, RunningServer, TestDb, authed, token, unique_tenant};
use invitations_common::{Rule, at_step, offer_in, standing, touchpoint, write_survey, write_trigger};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel as GrpcChannel;
use uuid::Uuid;

cx_testkit::on_both_backends!(
    invitations_are_read_listed_marked_and_counted,
    a_stream_sends_each_due_invitation_once_and_ends_at_its_bound,
    every_error_a_client_can_provoke,
    a_token_valid_for_ever_still_streams,
);

struct Served {
    _db: TestDb,
    _server: RunningServer,
    client: SurveyServiceClient<GrpcChannel>,
    /// The service's store, written directly to set up invitations.
    conn: Db,
    t: TenantId,
    reader: String,
    writer: String,
}

async fn serve(backend: Backend) -> Served {
    let db = TestDb::create().await.unwrap();
    let (url, redis) = match backend {
        Backend::Postgres => (Some(db.url.clone()), Some(cx_testkit::redis_url())),
        Backend::Sqlite => (None, None),
    };
    let store = cx_testkit::store_args(url, cx_testkit::temp_dir());
    let ctx = cx_testkit::context(store.clone(), redis);
    let module = cx_survey::build(&ctx).await.unwrap();
    let server = RunningServer::start(vec![module], cx_testkit::server_args()).await;
    server.wait_serving().await;
    let client = SurveyServiceClient::new(server.channel().await);
    let conn = cx_runtime::store::open(&store, "survey").await.unwrap();
    let tenant = unique_tenant("invitations");
    Served {
        _db: db,
        _server: server,
        client,
        conn,
        t: TenantId::parse(&tenant).unwrap(),
        reader: token(&tenant, Role::Reader),
        writer: token(&tenant, Role::Writer),
    }
}

/// An email survey on step "checkout" and an SMS survey on "delivery"
/// (due a day after the touchpoint); returns their ids.
async fn two_surveys(s: &Served) -> (Uuid, Uuid) {
    let email = write_survey(&s.conn, &s.t, Channel::Email).await;
    let sms = write_survey(&s.conn, &s.t, Channel::Sms).await;
    write_trigger(&s.conn, &s.t, Uuid::now_v7(), email, at_step("checkout")).await;
    let later = Rule { delay: Duration::days(1), ..at_step("delivery") };
    write_trigger(&s.conn, &s.t, Uuid::now_v7(), sms, later).await;
    (email, sms)
}

fn violations(status: &tonic::Status) -> Vec<FieldViolation> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
}

async fn invitations_are_read_listed_marked_and_counted(backend: Backend) {
    let mut s = serve(backend).await;
    let (email, sms) = two_surveys(&s).await;
    let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
    let batch = vec![
        touchpoint("e1", c1, "checkout", 30),
        touchpoint("e2", c2, "checkout", 20),
        // A duplicate of e1: suppressed.
        touchpoint("e3", c1, "checkout", 10),
        touchpoint("s1", c2, "delivery", 5),
    ];
    let consents = standing(&[(c1, true), (c2, true)]);
    // Two in 30 days, so c2 gets both.
    invitations_common::write_budget(&s.conn, &s.t, &[(2, 30)]).await;
    offer_in(&s.conn, &s.t, batch.clone(), &consents).await;

    let lister = s.client.clone();
    let list = |request: pb::ListInvitationsRequest| {
        let (mut client, reader) = (lister.clone(), s.reader.clone());
        async move { client.list_invitations(authed(request, &reader)).await.unwrap().into_inner() }
    };
    let touchpoints = |page: &pb::ListInvitationsResponse| {
        page.invitations.iter().map(|i| i.touchpoint_id.clone()).collect::<Vec<_>>()
    };
    // Oldest due first; pages of two.
    let first = list(pb::ListInvitationsRequest { page_size: 2, ..Default::default() }).await;
    assert_eq!(touchpoints(&first), ["e1", "e2"]);
    let second =
        list(pb::ListInvitationsRequest { page_size: 2, page_token: first.next_page_token, ..Default::default() })
            .await;
    assert_eq!((touchpoints(&second), second.next_page_token.as_str()), (vec!["e3".to_owned(), "s1".to_owned()], ""));
    let of_c1 = list(pb::ListInvitationsRequest { customer_id: c1.to_string(), ..Default::default() }).await;
    assert_eq!(touchpoints(&of_c1), ["e1", "e3"]);
    let of_sms = list(pb::ListInvitationsRequest { survey_id: sms.to_string(), ..Default::default() }).await;
    assert_eq!(touchpoints(&of_sms), ["s1"]);
    // What an email delivery system polls: pending, due, by email.
    let poll = pb::ListInvitationsRequest {
        state: pb::InvitationState::Pending as i32,
        due_only: true,
        channel: Channel::Email as i32,
        ..Default::default()
    };
    let due = list(poll.clone()).await;
    assert_eq!(touchpoints(&due), ["e1", "e2"]);

    let e1 = &due.invitations[0];
    let got = s.client.get_invitation(authed(pb::GetInvitationRequest { id: e1.id.clone() }, &s.reader)).await;
    let got = got.unwrap().into_inner().invitation.unwrap();
    assert_eq!(&got, e1);
    assert_eq!(
        (got.survey_id.as_str(), got.customer_id.as_str()),
        (email.to_string().as_str(), c1.to_string().as_str())
    );
    assert_eq!((got.survey_version, got.channel, got.step_key.as_str()), (1, Channel::Email as i32, "checkout"));
    assert_eq!((got.state, got.suppression_reason), (pb::InvitationState::Pending as i32, 0));
    assert_eq!(got.send_after, Some(cx_proto::timestamp(batch[0].at)));
    assert_eq!(got.expire_time, Some(cx_proto::timestamp(batch[0].at + Duration::days(7))));
    assert_eq!((got.send_time, got.answer_time, got.map_id.as_str()), (None, None, ""));

    let at = invitations_common::stored(Utc::now() - Duration::seconds(5));
    let mark = pb::MarkInvitationSentRequest { id: e1.id.clone(), send_time: Some(cx_proto::timestamp(at)) };
    let sent = s.client.mark_invitation_sent(authed(mark.clone(), &s.writer)).await.unwrap().into_inner();
    let sent = sent.invitation.unwrap();
    assert_eq!((sent.state, sent.send_time), (pb::InvitationState::Sent as i32, Some(cx_proto::timestamp(at))));
    // A retry of the same call: the same answer.
    let again = s.client.mark_invitation_sent(authed(mark, &s.writer)).await.unwrap().into_inner();
    assert_eq!(again.invitation.unwrap(), sent);
    // It is no longer polled.
    assert_eq!(touchpoints(&list(poll).await), ["e2"]);

    // 4 rows: e1 sent; e2 and s1 pending; e3 suppressed as a duplicate.
    let counts = s.client.count_invitations(authed(pb::CountInvitationsRequest::default(), &s.reader)).await;
    let counts = counts.unwrap().into_inner();
    let expected_states: HashMap<String, i64> = [
        ("INVITATION_STATE_PENDING", 2),
        ("INVITATION_STATE_SENT", 1),
        ("INVITATION_STATE_ANSWERED", 0),
        ("INVITATION_STATE_EXPIRED", 0),
        ("INVITATION_STATE_SUPPRESSED", 1),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    let expected_reasons: HashMap<String, i64> = [
        ("SUPPRESSION_REASON_BUDGET", 0),
        ("SUPPRESSION_REASON_CONSENT", 0),
        ("SUPPRESSION_REASON_SAMPLING", 0),
        ("SUPPRESSION_REASON_EXPIRED", 0),
        ("SUPPRESSION_REASON_DUPLICATE", 1),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    assert_eq!((counts.by_state, counts.suppressed_by_reason), (expected_states, expected_reasons));
    // Of the SMS survey, created from an hour ago on: s1 alone.
    let range = TimeRange { start_time: Some(cx_proto::timestamp(Utc::now() - Duration::hours(1))), end_time: None };
    let request = pb::CountInvitationsRequest { survey_id: sms.to_string(), time_range: Some(range) };
    let of_sms = s.client.count_invitations(authed(request, &s.reader)).await.unwrap().into_inner();
    assert_eq!(of_sms.by_state["INVITATION_STATE_PENDING"], 1);
    assert_eq!(of_sms.by_state.values().sum::<i64>(), 1);
}

async fn a_stream_sends_each_due_invitation_once_and_ends_at_its_bound(backend: Backend) {
    let mut s = serve(backend).await;
    two_surveys(&s).await;
    let customers: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let consents = standing(&customers.iter().map(|c| (*c, true)).collect::<Vec<_>>());
    let batch = vec![
        touchpoint("e1", customers[0], "checkout", 30),
        touchpoint("e2", customers[1], "checkout", 20),
        // Not due for a day, and by SMS.
        touchpoint("s1", customers[2], "delivery", 5),
    ];
    offer_in(&s.conn, &s.t, batch, &consents).await;
    let request = pb::StreamInvitationsRequest { channel: Channel::Email as i32, max_invitations: 3, wait_seconds: 10 };
    let mut stream = s.client.stream_invitations(authed(request, &s.reader)).await.unwrap().into_inner();
    let next = |m: Option<Result<pb::StreamInvitationsResponse, tonic::Status>>| {
        m.unwrap().unwrap().invitation.unwrap().touchpoint_id
    };
    assert_eq!(next(stream.next().await), "e1");
    assert_eq!(next(stream.next().await), "e2");
    // Not marked sent, e1 and e2 are not sent again; a new one falls due
    // and comes within a poll.
    offer_in(&s.conn, &s.t, vec![touchpoint("e3", customers[3], "checkout", 1)], &consents).await;
    let third = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await.unwrap();
    assert_eq!(next(third), "e3");
    // Three sent: the stream ends.
    assert!(tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await.unwrap().is_none());
    // Still not marked sent, a new stream sends the three again, then ends
    // by itself a second after nothing new fell due, far below its bound.
    let request = pb::StreamInvitationsRequest { channel: Channel::Email as i32, max_invitations: 0, wait_seconds: 1 };
    let stream = s.client.stream_invitations(authed(request, &s.reader)).await.unwrap().into_inner();
    let all = tokio::time::timeout(std::time::Duration::from_secs(10), stream.collect::<Vec<_>>()).await.unwrap();
    let ids: Vec<String> = all.into_iter().map(|m| next(Some(m))).collect();
    assert_eq!(ids, ["e1", "e2", "e3"]);
}

async fn every_error_a_client_can_provoke(backend: Backend) {
    let mut s = serve(backend).await;
    two_surveys(&s).await;
    let c = Uuid::now_v7();
    let batch = vec![touchpoint("e1", c, "checkout", 30), touchpoint("e2", c, "checkout", 20)];
    offer_in(&s.conn, &s.t, batch, &standing(&[(c, true)])).await;
    let list = s.client.list_invitations(authed(pb::ListInvitationsRequest::default(), &s.reader)).await;
    let rows = list.unwrap().into_inner().invitations;
    let (pending, duplicate) = (rows[0].id.clone(), rows[1].id.clone());

    // Get: a missing, a malformed, an unknown id, another tenant's.
    let get = |id: &str, token: &str| {
        let (mut client, request) = (s.client.clone(), authed(pb::GetInvitationRequest { id: id.into() }, token));
        async move { client.get_invitation(request).await.unwrap_err() }
    };
    assert_eq!(violations(&get("", &s.reader).await), [FieldViolation::new("id", "is required")]);
    assert_eq!(
        violations(&get("x", &s.reader).await),
        [FieldViolation::new("id", "must be an invitation id (a UUID)")]
    );
    let unknown = Uuid::now_v7();
    let status = get(&unknown.to_string(), &s.reader).await;
    assert_eq!((status.code(), status.message()), (Code::NotFound, format!("invitation {unknown} not found").as_str()));
    let stranger = token(&unique_tenant("stranger"), Role::Admin);
    let status = get(&pending, &stranger).await;
    assert_eq!((status.code(), status.message()), (Code::NotFound, format!("invitation {pending} not found").as_str()));
    let status = s.client.get_invitation(tonic::Request::new(pb::GetInvitationRequest { id: pending.clone() })).await;
    assert_eq!(status.unwrap_err().code(), Code::Unauthenticated);

    // List: every violation at once.
    let bad = pb::ListInvitationsRequest {
        customer_id: c.to_string(),
        survey_id: Uuid::now_v7().to_string(),
        state: 42,
        due_only: false,
        channel: 99,
        page_size: -1,
        page_token: "!".into(),
    };
    // A forged token at year -251,000 (-8e18 µs): PostgreSQL stops at 4713 BC.
    let forged = pb::ListInvitationsRequest {
        page_token: cx_runtime::page::encode_token(&format!("-8000000000000000000/{}", Uuid::now_v7())),
        ..Default::default()
    };
    let status = s.client.list_invitations(authed(forged, &s.reader)).await.unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new("page_token", "is not a token this server issued")]);
    let status = s.client.list_invitations(authed(bad, &s.reader)).await.unwrap_err();
    assert_eq!(
        violations(&status),
        [
            FieldViolation::new("survey_id", "give customer_id or survey_id, not both"),
            FieldViolation::new("state", "is not a known invitation state"),
            FieldViolation::new("channel", "is not a known channel"),
            FieldViolation::new("page_size", "must not be negative"),
            FieldViolation::new("page_token", "is not a token this server issued"),
        ]
    );

    // Stream: the bound, the wait and the channel.
    for (max, channel, wait) in [(-1, 0, -1), (100_001, 99, 61)] {
        let request = pb::StreamInvitationsRequest { channel, max_invitations: max, wait_seconds: wait };
        let status = s.client.stream_invitations(authed(request, &s.reader)).await.unwrap_err();
        let mut expected = Vec::new();
        if channel == 99 {
            expected.push(FieldViolation::new("channel", "is not a known channel"));
        }
        expected.push(FieldViolation::new("max_invitations", "must be 1 to 100000 (0: 1000)"));
        expected.push(FieldViolation::new("wait_seconds", "must be 1 to 60 (0: 2)"));
        assert_eq!(violations(&status), expected, "max {max}");
    }

    // Mark sent: a reader may not; a time in the future; a suppressed one.
    let mark = |id: &str, at: Option<chrono::DateTime<Utc>>| pb::MarkInvitationSentRequest {
        id: id.into(),
        send_time: at.map(cx_proto::timestamp),
    };
    let status = s.client.mark_invitation_sent(authed(mark(&pending, None), &s.reader)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::PermissionDenied, "this call needs the writer role"));
    let later = Some(Utc::now() + Duration::hours(1));
    let status = s.client.mark_invitation_sent(authed(mark("nope", later), &s.writer)).await.unwrap_err();
    assert_eq!(
        violations(&status),
        [
            FieldViolation::new("id", "must be an invitation id (a UUID)"),
            FieldViolation::new("send_time", "is in the future")
        ]
    );
    let status = s.client.mark_invitation_sent(authed(mark(&duplicate, None), &s.writer)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::FailedPrecondition, format!("invitation {duplicate} is suppressed and cannot be sent").as_str())
    );

    // Count: a bad survey id and an inverted range.
    let now = Utc::now();
    let range = TimeRange {
        start_time: Some(cx_proto::timestamp(now)),
        end_time: Some(cx_proto::timestamp(now - Duration::hours(1))),
    };
    let request = pb::CountInvitationsRequest { survey_id: "x".into(), time_range: Some(range) };
    let status = s.client.count_invitations(authed(request, &s.reader)).await.unwrap_err();
    assert_eq!(
        violations(&status),
        [
            FieldViolation::new("survey_id", "must be a survey id (a UUID)"),
            FieldViolation::new("time_range", "start_time must be before end_time")
        ]
    );
}

/// A token whose `exp` is u64::MAX (an issuer's "never expires") streams
/// like any other: the stream's end at the token's expiry was computed as
/// an Instant that overflowed, and the stream's task panicked before its
/// first read, ending the stream empty.
async fn a_token_valid_for_ever_still_streams(backend: Backend) {
    let mut s = serve(backend).await;
    two_surveys(&s).await;
    let customer = Uuid::now_v7();
    offer_in(&s.conn, &s.t, vec![touchpoint("e1", customer, "checkout", 30)], &standing(&[(customer, true)])).await;
    let claims = cx_runtime::auth::Claims {
        tenant: s.t.to_string(),
        roles: vec!["reader".into()],
        sub: "forever".into(),
        exp: u64::MAX,
        iat: None,
    };
    let keys = cx_runtime::auth::Keys::hs256(cx_testkit::SECRET.as_bytes());
    let forever = keys.signer.unwrap().sign_claims(&claims).unwrap();
    let request = pb::StreamInvitationsRequest { channel: Channel::Email as i32, max_invitations: 1, wait_seconds: 1 };
    let stream = s.client.stream_invitations(authed(request, &forever)).await.unwrap().into_inner();
    let all = tokio::time::timeout(std::time::Duration::from_secs(10), stream.collect::<Vec<_>>()).await.unwrap();
    let ids: Vec<String> = all.into_iter().map(|m| m.unwrap().invitation.unwrap().touchpoint_id).collect();
    assert_eq!(ids, ["e1"]);
}
