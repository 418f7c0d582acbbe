//! SubmitResponse, GetResponse, ListResponses and SearchVerbatims through
//! the survey service on loopback, on PostgreSQL and SQLite: every
//! validation error with its message, idempotency on the client's id, the
//! invitation cases, anonymous answers, and verbatim search
//! (docs/DOMAIN.md §7.7, §7.9).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod responding;

use cx_proto::common::v1::Channel;
use cx_proto::survey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::field_violations;
use cx_runtime::store::Db;
use cx_survey::store::rollups::{self, CellKey};
use cx_survey::store::surveys;
use cx_testkit::authed;
use prost::Message;
use responding::{Backend, Invite, Suite, answer, at, create, invite, reason, suite, survey};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use tonic::Code;
use uuid::Uuid;

fn statement(db: &Db, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres { sql.to_owned() } else { sql.replace('$', "?") };
    Statement::from_sql_and_values(backend, sql, values)
}

async fn rows(db: &Db, sql: &str, values: Vec<Value>) -> Vec<QueryResult> {
    db.query_all_raw(statement(db, sql, values)).await.unwrap()
}

async fn execute(db: &Db, sql: &str, values: Vec<Value>) {
    db.execute_raw(statement(db, sql, values)).await.unwrap();
}

/// Rows of `table` of tenant `t`.
async fn count(db: &Db, table: &str, t: &TenantId) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = $1");
    rows(db, &sql, vec![t.as_str().into()]).await[0].try_get("", "n").unwrap()
}

fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status).into_iter().map(|v| (v.field, v.description)).collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(f, d)| (f.to_string(), d.to_string())).collect()
}

fn refused(result: Result<pb::SubmitResponseResponse, tonic::Status>, code: Code, message: &str) {
    let status = result.unwrap_err();
    assert_eq!((status.code(), status.message()), (code, message), "{status:?}");
}

/// One INVALID_ARGUMENT lists every violation: the request's shape and what
/// the survey version says. Nothing is stored.
async fn every_violation_is_reported_at_once(backend: Backend) {
    let s = suite(backend).await;
    let id = create(&s.db, &s.t, &survey(pb::SurveyType::Nps, false)).await;

    let mut bad = answer("r1", id, None, 11, "2026-03-01T10:00:00Z");
    bad.respond_time = Some(cx_proto::timestamp(chrono::Utc::now() + chrono::Duration::hours(1)));
    bad.verbatim = "v".repeat(4_001);
    bad.answers = vec![reason("nope")];
    bad.language = "de".into();
    let status = s.submit(bad).await.unwrap_err();
    assert_eq!(status.message(), "6 invalid fields, first response.respond_time: is in the future");
    assert_eq!(
        violations(&status),
        pairs(&[
            ("response.respond_time", "is in the future"),
            ("response.invitation_id", "is required: this survey does not accept anonymous responses"),
            ("response.score", "must be between 0 and 10 (NPS)"),
            ("response.verbatim", "has at most 4000 characters"),
            ("response.answers[0].choice_ids", "'nope' is not a choice of question 'reason'"),
            ("response.language", "'de' is not a language of this survey (en, fr)"),
        ])
    );

    // Without an id and a survey id nothing else can be judged.
    let shapeless = pb::Response { survey_id: "x".into(), invitation_id: "y".into(), ..Default::default() };
    assert_eq!(
        violations(&s.submit(shapeless).await.unwrap_err()),
        pairs(&[("response.id", "has 1 to 128 characters"), ("response.survey_id", "must be a survey id (a UUID)")])
    );
    // 129 characters are one too many.
    let long = answer(&"é".repeat(129), id, None, 9, "2026-03-01T10:00:00Z");
    assert_eq!(violations(&s.submit(long).await.unwrap_err()), pairs(&[("response.id", "has 1 to 128 characters")]));
    let mut bad_invitation = answer("r2", id, None, 9, "2026-03-01T10:00:00Z");
    bad_invitation.invitation_id = "nope".into();
    bad_invitation.answers = vec![reason("price")];
    assert_eq!(
        violations(&s.submit(bad_invitation).await.unwrap_err()),
        pairs(&[("response.invitation_id", "must be an invitation id (a UUID)")])
    );
    let empty = pb::SubmitResponseRequest { response: None };
    let status = s.client().await.submit_response(authed(empty, &s.writer)).await.unwrap_err();
    assert_eq!(violations(&status), pairs(&[("response", "is required")]));
    // 128 characters (256 bytes) make an id; the survey is then looked up.
    let unknown = answer(&"é".repeat(128), Uuid::now_v7(), None, 9, "2026-03-01T10:00:00Z");
    let status = s.submit(unknown.clone()).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message().to_owned()),
        (Code::NotFound, format!("survey {} not found", unknown.survey_id))
    );

    // A reader may not answer.
    let request = pb::SubmitResponseRequest { response: Some(answer("r3", id, None, 9, "2026-03-01T10:00:00Z")) };
    let denied = s.client().await.submit_response(authed(request, &s.reader)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    assert_eq!(count(&s.db, "survey_responses", &s.t).await, 0);
    assert_eq!(count(&s.db, "survey_rollups", &s.t).await, 0);
}

/// The same id and content again is the stored response (created false);
/// the same id with other content is ALREADY_EXISTS; the roll-up counts it
/// once.
async fn a_retry_is_the_same_response(backend: Backend) {
    let s = suite(backend).await;
    let id = create(&s.db, &s.t, &survey(pb::SurveyType::Nps, true)).await;
    let mut sent = answer("web-1", id, None, 9, "2026-03-01T10:00:00Z");
    sent.answers = vec![reason("price")];
    sent.verbatim = "Great".into();
    sent.language = "FR".into();
    let first = s.submit(sent.clone()).await.unwrap();
    assert!(first.created);
    let stored = first.response.unwrap();
    let expected = pb::Response {
        id: "web-1".into(),
        survey_id: id.to_string(),
        survey_version: 1,
        survey_type: pb::SurveyType::Nps as i32,
        channel: Channel::Web as i32,
        score: 9,
        verbatim: "Great".into(),
        answers: vec![reason("price")],
        language: "fr".into(),
        respond_time: Some(cx_proto::timestamp(at("2026-03-01T10:00:00Z"))),
        ..Default::default()
    };
    assert_eq!(stored, expected);

    // Output-only fields a client echoes back are not content.
    let mut echoed = sent.clone();
    echoed.channel = Channel::Email as i32;
    echoed.survey_version = 7;
    let again = s.submit(echoed).await.unwrap();
    assert_eq!((again.created, again.response.unwrap()), (false, expected.clone()));

    let mut other = sent.clone();
    other.score = 8;
    refused(s.submit(other).await, Code::AlreadyExists, "response 'web-1' was already recorded with other content");
    let mut later = sent.clone();
    later.respond_time = None;
    refused(s.submit(later).await, Code::AlreadyExists, "response 'web-1' was already recorded with other content");

    let got = s.client().await.get_response(authed(pb::GetResponseRequest { id: "web-1".into() }, &s.reader)).await;
    assert_eq!(got.unwrap().into_inner().response.unwrap(), expected);
    let missing = s.client().await.get_response(authed(pb::GetResponseRequest { id: "nope".into() }, &s.reader)).await;
    let status = missing.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::NotFound, "response 'nope' not found"));

    assert_eq!(count(&s.db, "survey_responses", &s.t).await, 1);
    // 1 March 2026 is day 20,513: one promoter on the web, no map.
    let cells = rollups::cells(&s.db, &s.t, 20_513, 20_513).await.unwrap();
    let key = CellKey { day: 20_513, survey_id: id, map_id: Uuid::nil(), step_key: String::new(), channel: 1 };
    assert_eq!(cells.len(), 1);
    assert_eq!(
        (&cells[0].key, cells[0].counts.n, cells[0].counts.promoters, cells[0].counts.score_sum),
        (&key, 1, 1, 9)
    );
}

/// An answer through an invitation takes the invitation's customer,
/// touchpoint, map, step, channel and survey version, marks it answered and
/// tells profile the score; unknown, foreign, wrong-survey, late, expired,
/// suppressed and already answered invitations are refused, each clearly.
async fn invitations_link_and_guard_their_answers(backend: Backend) {
    let s = suite(backend).await;
    let mut v1 = survey(pb::SurveyType::Nps, false);
    let id = create(&s.db, &s.t, &v1).await;
    let other_survey = create(&s.db, &s.t, &survey(pb::SurveyType::Nps, false)).await;
    let customer = Uuid::now_v7();
    let i1 = invite(&s.db, &s.t, &Invite::to(id, customer)).await;
    // Version 2 requires a text answer; the invitation keeps version 1.
    v1.version = 2;
    v1.questions.push(pb::Question {
        id: "extra".into(),
        kind: pb::QuestionKind::Text as i32,
        text: "More?".into(),
        required: true,
        ..Default::default()
    });
    surveys::insert_version(&s.db, &s.t, id, &v1).await.unwrap();
    execute(
        &s.db,
        "UPDATE surveys SET version = 2 WHERE tenant_id = $1 AND id = $2",
        vec![s.t.as_str().into(), id.into()],
    )
    .await;

    let mut sent = answer("inv-1", id, Some(i1), 9, "2026-03-01T10:00:00Z");
    sent.answers = vec![reason("service")];
    let stored = s.submit(sent).await.unwrap().response.unwrap();
    let (map, touchpoint) = (Uuid::from_u128(0x3A9), format!("tp-{i1}"));
    assert_eq!(
        (stored.customer_id.as_str(), stored.touchpoint_id.as_str(), stored.map_id.as_str(), stored.step_key.as_str()),
        (customer.to_string().as_str(), touchpoint.as_str(), map.to_string().as_str(), "delivery")
    );
    assert_eq!(
        (stored.channel, stored.survey_version, stored.invitation_id),
        (Channel::Email as i32, 1, i1.to_string())
    );

    let row = &rows(
        &s.db,
        "SELECT state, answered_at, response_id FROM survey_invitations WHERE tenant_id = $1 AND id = $2",
        vec![s.t.as_str().into(), i1.into()],
    )
    .await[0];
    let state: i16 = row.try_get("", "state").unwrap();
    let answered: chrono::DateTime<chrono::Utc> = row.try_get("", "answered_at").unwrap();
    let response: String = row.try_get("", "response_id").unwrap();
    assert_eq!(
        (state, answered, response.as_str()),
        (pb::InvitationState::Answered as i16, at("2026-03-01T10:00:00Z"), "inv-1")
    );

    let sent =
        rows(&s.db, "SELECT destination, kind, payload FROM outbox WHERE tenant_id = $1", vec![s.t.as_str().into()])
            .await;
    assert_eq!(sent.len(), 1);
    let (destination, kind): (String, String) =
        (sent[0].try_get("", "destination").unwrap(), sent[0].try_get("", "kind").unwrap());
    assert_eq!((destination.as_str(), kind.as_str()), ("profile", "cx.survey.v1.ScoreRecorded"));
    let payload: Vec<u8> = sent[0].try_get("", "payload").unwrap();
    assert_eq!(
        pb::ScoreRecorded::decode(payload.as_slice()).unwrap(),
        pb::ScoreRecorded {
            profile_id: customer.to_string(),
            survey_type: pb::SurveyType::Nps as i32,
            score: 9,
            survey_id: id.to_string(),
            response_id: "inv-1".into(),
            respond_time: Some(cx_proto::timestamp(at("2026-03-01T10:00:00Z"))),
        }
    );

    let with = |rid: &str, invitation: Uuid, when: &str| {
        let mut r = answer(rid, id, Some(invitation), 8, when);
        r.answers = vec![reason("price")];
        r
    };
    let when = "2026-03-01T10:00:00Z";
    refused(
        s.submit(with("inv-2", i1, when)).await,
        Code::AlreadyExists,
        &format!("invitation {i1} was already answered by another response"),
    );
    let unknown = Uuid::now_v7();
    refused(s.submit(with("inv-3", unknown, when)).await, Code::NotFound, &format!("invitation {unknown} not found"));
    let elsewhere = TenantId::parse("other-tenant").unwrap();
    let foreign = invite(&s.db, &elsewhere, &Invite::to(id, customer)).await;
    refused(s.submit(with("inv-4", foreign, when)).await, Code::NotFound, &format!("invitation {foreign} not found"));
    let to_other = invite(&s.db, &s.t, &Invite::to(other_survey, customer)).await;
    // Not this survey's invitation: the answer is judged by the current version (2).
    assert_eq!(
        violations(&s.submit(with("inv-5", to_other, when)).await.unwrap_err()),
        pairs(&[
            ("response.invitation_id", "is an invitation to another survey"),
            ("response.answers", "question 'extra' is required"),
        ])
    );
    let short = invite(&s.db, &s.t, &Invite { expires: at("2026-03-01T00:00:00Z"), ..Invite::to(id, customer) }).await;
    refused(
        s.submit(with("inv-6", short, when)).await,
        Code::FailedPrecondition,
        &format!("invitation {short} expired at 2026-03-01T00:00:00Z: the answer is late"),
    );
    let expired =
        invite(&s.db, &s.t, &Invite { state: pb::InvitationState::Expired, ..Invite::to(id, customer) }).await;
    refused(
        s.submit(with("inv-7", expired, when)).await,
        Code::FailedPrecondition,
        &format!("invitation {expired} has expired: the answer is late"),
    );
    let suppressed =
        invite(&s.db, &s.t, &Invite { state: pb::InvitationState::Suppressed, ..Invite::to(id, customer) }).await;
    refused(
        s.submit(with("inv-8", suppressed, when)).await,
        Code::FailedPrecondition,
        &format!("invitation {suppressed} was suppressed: it cannot be answered"),
    );
    let pending =
        invite(&s.db, &s.t, &Invite { state: pb::InvitationState::Pending, ..Invite::to(id, customer) }).await;
    assert_eq!(
        violations(&s.submit(with("inv-9", pending, "2026-02-19T10:00:00Z")).await.unwrap_err()),
        pairs(&[("response.respond_time", "is before the invitation was made")])
    );
    // A pending invitation (its sending not yet recorded) can be answered.
    assert!(s.submit(with("inv-9", pending, when)).await.unwrap().created);
    // Anonymous answers need a survey that takes them.
    let mut anonymous = answer("anon-1", id, None, 9, when);
    anonymous.answers = vec![reason("price")];
    assert_eq!(
        violations(&s.submit(anonymous).await.unwrap_err()),
        pairs(&[
            ("response.invitation_id", "is required: this survey does not accept anonymous responses"),
            ("response.answers", "question 'extra' is required"),
        ])
    );

    assert_eq!(count(&s.db, "survey_responses", &s.t).await, 2);
    let cells = rollups::cells(&s.db, &s.t, 20_513, 20_513).await.unwrap();
    // inv-1 (9: a promoter) and inv-9 (8: a passive), both by email at the delivery step.
    assert_eq!(cells.len(), 1);
    assert_eq!(
        (cells[0].counts.n, cells[0].counts.promoters, cells[0].counts.passives, cells[0].key.channel),
        (2, 1, 1, 3)
    );
}

/// Anonymous web answers where the survey allows them: no customer, the web
/// channel, the current version, nothing for profile, no case however
/// unhappy; a verbatim the survey did not ask for is kept. An archived survey
/// still takes the answers of its open invitations, not anonymous ones.
async fn anonymous_answers_and_archived_surveys(backend: Backend) {
    let s = suite(backend).await;
    let mut quiet = survey(pb::SurveyType::Csat, true);
    quiet.verbatim_enabled = false;
    let id = create(&s.db, &s.t, &quiet).await;
    let mut unasked = answer("a-1", id, None, 2, "2026-03-01T10:00:00Z");
    unasked.verbatim = "Nobody asked, but: slow".into();
    let stored = s.submit(unasked).await.unwrap().response.unwrap();
    assert_eq!(
        (stored.customer_id.as_str(), stored.invitation_id.as_str(), stored.channel, stored.case_id.as_str()),
        ("", "", Channel::Web as i32, "")
    );
    assert_eq!((stored.verbatim.as_str(), stored.survey_version), ("Nobody asked, but: slow", 1));
    assert_eq!(count(&s.db, "outbox", &s.t).await, 0, "no customer, no score for profile");

    let customer = Uuid::now_v7();
    let open = invite(&s.db, &s.t, &Invite::to(id, customer)).await;
    execute(
        &s.db,
        "UPDATE surveys SET archived = $3 WHERE tenant_id = $1 AND id = $2",
        vec![s.t.as_str().into(), id.into(), true.into()],
    )
    .await;
    refused(
        s.submit(answer("a-2", id, None, 4, "2026-03-01T11:00:00Z")).await,
        Code::FailedPrecondition,
        &format!("survey {id} is archived: only its open invitations can be answered"),
    );
    let invited = s.submit(answer("a-3", id, Some(open), 5, "2026-03-01T12:00:00Z")).await.unwrap();
    assert_eq!(invited.response.unwrap().customer_id, customer.to_string());
    assert_eq!(count(&s.db, "outbox", &s.t).await, 1);
}

/// An anonymous answer's `respond_time` is any valid protobuf instant at
/// most: years before 0001 (which PostgreSQL or the day roll-up cannot keep)
/// are the client's error, not the server's.
async fn a_respond_time_before_year_one_is_invalid(backend: Backend) {
    let s = suite(backend).await;
    let id = create(&s.db, &s.t, &survey(pb::SurveyType::Csat, true)).await;
    // -62,135,596,800 s is 0001-01-01T00:00:00Z; one second earlier is refused.
    for seconds in [-62_135_596_801, -8_000_000_000_000, i64::MIN] {
        let mut old = answer("old", id, None, 4, "2026-03-01T10:00:00Z");
        old.respond_time = Some(prost_types::Timestamp { seconds, nanos: 0 });
        assert_eq!(
            violations(&s.submit(old).await.unwrap_err()),
            pairs(&[("response.respond_time", "is not a valid timestamp")]),
            "{seconds}"
        );
    }
    let mut first = answer("first", id, None, 4, "2026-03-01T10:00:00Z");
    first.respond_time = Some(prost_types::Timestamp { seconds: -62_135_596_800, nanos: 0 });
    let stored = s.submit(first).await.unwrap().response.unwrap();
    assert_eq!(stored.respond_time, Some(prost_types::Timestamp { seconds: -62_135_596_800, nanos: 0 }));
    assert_eq!(count(&s.db, "survey_responses", &s.t).await, 1);
}

/// Answers and choices past what a survey can hold (50 questions of 50
/// choices) are one violation each list, their items not read: 300,000
/// blank answers were 300,000 violations.
async fn long_answer_lists_are_refused_whole(backend: Backend) {
    let s = suite(backend).await;
    let id = create(&s.db, &s.t, &survey(pb::SurveyType::Nps, true)).await;
    let mut many = answer("many", id, None, 9, "2026-03-01T10:00:00Z");
    many.answers = vec![pb::Answer::default(); 300_000];
    assert_eq!(
        violations(&s.submit(many).await.unwrap_err()),
        pairs(&[("response.answers", "has at most 50 answers (has 300000)")])
    );
    let mut chosen = answer("chosen", id, None, 9, "2026-03-01T10:00:00Z");
    chosen.answers =
        vec![pb::Answer { question_id: "reason".into(), choice_ids: vec!["x".into(); 51], ..Default::default() }];
    assert_eq!(
        violations(&s.submit(chosen).await.unwrap_err()),
        pairs(&[("response.answers[0].choice_ids", "has at most 50 choices (has 51)")])
    );
    assert_eq!(count(&s.db, "survey_responses", &s.t).await, 0);
}

/// An unhappy answer of a known customer opens its follow-up case in the
/// response's transaction: either the case is there, or nothing is.
async fn an_unhappy_customer_opens_a_case_or_nothing_is_stored(backend: Backend) {
    let s = suite(backend).await;
    let id = create(&s.db, &s.t, &survey(pb::SurveyType::Ces, false)).await;
    let invitation = invite(&s.db, &s.t, &Invite::to(id, Uuid::now_v7())).await;
    match s.submit(answer("sad-1", id, Some(invitation), 2, "2026-03-01T10:00:00Z")).await {
        Ok(done) => assert!(!done.response.unwrap().case_id.is_empty(), "the case is named on the response"),
        Err(status) => {
            // Follow-up cases not written yet: the whole answer is rolled back.
            assert_eq!(status.code(), Code::Internal, "{status:?}");
            assert_eq!(count(&s.db, "survey_responses", &s.t).await, 0);
            assert_eq!(count(&s.db, "survey_rollups", &s.t).await, 0);
            assert_eq!(count(&s.db, "outbox", &s.t).await, 0);
            let state =
                &rows(&s.db, "SELECT state FROM survey_invitations WHERE tenant_id = $1", vec![s.t.as_str().into()])
                    .await[0];
            assert_eq!(state.try_get::<i16>("", "state").unwrap(), pb::InvitationState::Sent as i16);
        }
    }
}

/// Responses listed newest first (ties by id, descending), a page at a time,
/// of a survey or of a customer.
async fn responses_are_listed_newest_first(backend: Backend) {
    let s = suite(backend).await;
    let id = create(&s.db, &s.t, &survey(pb::SurveyType::Csat, true)).await;
    let customer = Uuid::now_v7();
    for (rid, when) in [("b", "2026-03-01T10:00:00Z"), ("a", "2026-03-02T10:00:00Z"), ("c", "2026-03-02T10:00:00Z")] {
        s.submit(answer(rid, id, None, 4, when)).await.unwrap();
    }
    let invitation = invite(&s.db, &s.t, &Invite::to(id, customer)).await;
    s.submit(answer("d", id, Some(invitation), 5, "2026-02-28T10:00:00Z")).await.unwrap();

    let mut client = s.client().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListResponsesRequest {
            survey_id: id.to_string(),
            page_size: 3,
            page_token: token,
            ..Default::default()
        };
        let page = client.list_responses(authed(request, &s.reader)).await.unwrap().into_inner();
        seen.push(page.responses.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, [vec!["c", "a", "b"], vec!["d"]]);
    let mine = pb::ListResponsesRequest { customer_id: customer.to_string(), ..Default::default() };
    let page = client.list_responses(authed(mine, &s.reader)).await.unwrap().into_inner();
    assert_eq!(page.responses.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["d"]);

    let both =
        pb::ListResponsesRequest { survey_id: id.to_string(), customer_id: customer.to_string(), ..Default::default() };
    let status = client.list_responses(authed(both, &s.reader)).await.unwrap_err();
    assert_eq!(violations(&status), pairs(&[("survey_id", "give exactly one of survey_id and customer_id")]));
    let bad = pb::ListResponsesRequest { page_size: -1, page_token: "%%".into(), ..Default::default() };
    let status = client.list_responses(authed(bad, &s.reader)).await.unwrap_err();
    assert_eq!(
        violations(&status),
        pairs(&[
            ("survey_id", "give exactly one of survey_id and customer_id"),
            ("page_size", "must not be negative"),
            ("page_token", "is not a token this server issued"),
        ])
    );
    // A forged token at year -251,000 (-8e18 µs) is refused, not sent to
    // PostgreSQL (which stops at 4713 BC: INTERNAL).
    let forged = cx_runtime::page::encode_token("-8000000000000000000/x");
    let request = pb::ListResponsesRequest { survey_id: id.to_string(), page_token: forged, ..Default::default() };
    let status = client.list_responses(authed(request, &s.reader)).await.unwrap_err();
    assert_eq!(violations(&status), pairs(&[("page_token", "is not a token this server issued")]));
    let unknown = Uuid::now_v7();
    let request = pb::ListResponsesRequest { survey_id: unknown.to_string(), ..Default::default() };
    let status = client.list_responses(authed(request, &s.reader)).await.unwrap_err();
    assert_eq!((status.code(), status.message().to_owned()), (Code::NotFound, format!("survey {unknown} not found")));
}

async fn search(s: &Suite, survey: Uuid, query: &str, page_size: i32, page_token: &str) -> pb::SearchVerbatimsResponse {
    let request = pb::SearchVerbatimsRequest {
        survey_id: survey.to_string(),
        query: query.into(),
        page_size,
        page_token: page_token.into(),
    };
    s.client().await.search_verbatims(authed(request, &s.reader)).await.unwrap().into_inner()
}

fn ids(found: &pb::SearchVerbatimsResponse) -> Vec<&str> {
    found.hits.iter().map(|h| h.response_id.as_str()).collect()
}

/// Verbatims are found within their survey, newest first: on PostgreSQL by
/// full-text search in the language each was written in (every word, as
/// stemmed), on SQLite as a substring ignoring ASCII case.
async fn verbatims_are_found_within_their_survey(backend: Backend) {
    let s = suite(backend).await;
    let id = create(&s.db, &s.t, &survey(pb::SurveyType::Csat, true)).await;
    let other = create(&s.db, &s.t, &survey(pb::SurveyType::Csat, true)).await;
    let said = |rid: &str, survey: Uuid, score: i32, when: &str, text: &str, language: &str| {
        let mut r = answer(rid, survey, None, score, when);
        r.verbatim = text.into();
        r.language = language.into();
        r
    };
    for r in [
        said("v1", id, 2, "2026-03-01T10:00:00Z", "The courier was running late", ""),
        said("v2", id, 1, "2026-03-02T10:00:00Z", "Le livreur était en retard", "fr"),
        said("v3", id, 5, "2026-03-03T10:00:00Z", "Lovely staff", "en"),
        said("v4", id, 3, "2026-03-04T10:00:00Z", "LATE again, late every time", "en"),
        said("v5", id, 4, "2026-03-05T10:00:00Z", "", ""),
        said("w1", other, 1, "2026-03-05T10:00:00Z", "late late late", ""),
    ] {
        s.submit(r).await.unwrap();
    }

    // Newest first, a page at a time, with what each was said about.
    let first = search(&s, id, "late", 1, "").await;
    assert_eq!(ids(&first), ["v4"]);
    let hit = &first.hits[0];
    assert_eq!(
        (hit.verbatim.as_str(), hit.score, hit.map_id.as_str(), hit.step_key.as_str()),
        ("LATE again, late every time", 3, "", "")
    );
    assert_eq!(hit.respond_time, Some(cx_proto::timestamp(at("2026-03-04T10:00:00Z"))));
    let second = search(&s, id, "late", 1, &first.next_page_token).await;
    assert_eq!(ids(&second), ["v1"]);
    assert_eq!(second.next_page_token, "");

    if backend == Backend::Postgres {
        // English stems "runs" and "running" alike; every word is required.
        assert_eq!(ids(&search(&s, id, "runs late", 0, "").await), ["v1"]);
        assert_eq!(ids(&search(&s, id, "late staff", 0, "").await), Vec::<&str>::new());
        // French stems "retards" to "retard", as in v2, written in French.
        assert_eq!(ids(&search(&s, id, "retards", 0, "").await), ["v2"]);
    } else {
        assert_eq!(ids(&search(&s, id, "runs late", 0, "").await), Vec::<&str>::new());
        assert_eq!(ids(&search(&s, id, "RUNNING L", 0, "").await), ["v1"]);
        assert_eq!(ids(&search(&s, id, "en retard", 0, "").await), ["v2"]);
    }

    let mut client = s.client().await;
    let blank = pb::SearchVerbatimsRequest { survey_id: id.to_string(), query: "  ".into(), ..Default::default() };
    let status = client.search_verbatims(authed(blank, &s.reader)).await.unwrap_err();
    assert_eq!(violations(&status), pairs(&[("query", "has 1 to 200 characters (not counting spaces around)")]));
    let long = pb::SearchVerbatimsRequest { survey_id: "x".into(), query: "q".repeat(201), ..Default::default() };
    let status = client.search_verbatims(authed(long, &s.reader)).await.unwrap_err();
    assert_eq!(
        violations(&status),
        pairs(&[
            ("survey_id", "must be a survey id (a UUID)"),
            ("query", "has 1 to 200 characters (not counting spaces around)"),
        ])
    );
    let unknown = Uuid::now_v7();
    let request =
        pb::SearchVerbatimsRequest { survey_id: unknown.to_string(), query: "late".into(), ..Default::default() };
    let status = client.search_verbatims(authed(request, &s.reader)).await.unwrap_err();
    assert_eq!((status.code(), status.message().to_owned()), (Code::NotFound, format!("survey {unknown} not found")));
}

cx_testkit::on_both_backends!(
    every_violation_is_reported_at_once,
    a_retry_is_the_same_response,
    invitations_link_and_guard_their_answers,
    anonymous_answers_and_archived_surveys,
    a_respond_time_before_year_one_is_invalid,
    long_answer_lists_are_refused_whole,
    an_unhappy_customer_opens_a_case_or_nothing_is_stored,
    responses_are_listed_newest_first,
    verbatims_are_found_within_their_survey,
);
