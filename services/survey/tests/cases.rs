//! The closed loop (docs/DOMAIN.md §7.10) on both backends: cases opened
//! and worked through the store with chosen times, and through gRPC on a
//! survey service of its own (opening is the responses' part: cases are
//! opened here through the store, as SubmitResponse opens them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use cx_proto::survey::v1 as pb;
use cx_proto::survey::v1::survey_service_client::SurveyServiceClient;
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::error::{FieldViolation, field_violations};
use cx_runtime::registry::Registry;
use cx_runtime::store::Db;
use cx_survey::domain::case::{Action, CaseState, MAX_COMMENTS};
use cx_survey::domain::settings::Settings;
use cx_survey::domain::survey::SurveyType;
use cx_survey::store::cases::{self, CaseFilter, CaseRecord, Comment, Unhappy};
use cx_survey::store::feeds::Feeds;
use cx_survey::store::migration::Migrator;
use cx_testkit::{Backend, Cluster, ServiceDb, authed};
use prost::Message;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement, TransactionTrait};
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

const SURVEY_ALONE: Registry = Registry::new(&[cx_survey::SERVICE]);

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn survey(n: u128) -> Uuid {
    Uuid::from_u128(0x5000 + n)
}

fn customer(n: u128) -> Uuid {
    Uuid::from_u128(0xC000 + n)
}

/// An NPS detractor (score 3) of survey 1 by customer 1.
fn detractor(response: &str, respond: DateTime<Utc>) -> Unhappy {
    Unhappy {
        response_id: response.into(),
        survey_id: survey(1),
        survey_type: SurveyType::Nps,
        customer_id: Some(customer(1)),
        score: 3,
        respond_time: respond,
    }
}

/// Opens the case of `unhappy` at `opened` in a transaction of its own.
async fn open(db: &Db, t: &TenantId, unhappy: &Unhappy, opened: DateTime<Utc>) -> Uuid {
    let txn = db.begin().await.unwrap();
    let id = cases::open_at(&txn, t, unhappy, &Settings::default(), opened).await.unwrap();
    txn.commit().await.unwrap();
    id
}

async fn act(db: &Db, t: &TenantId, id: Uuid, action: Action, when: &str) -> CaseRecord {
    cases::act(db, &Feeds::default(), t, id, &action, "agent", at(when)).await.unwrap()
}

fn assign(owner: &str) -> Action {
    Action::Assign { owner: owner.into() }
}

fn comment(text: &str) -> Action {
    Action::Comment { text: text.into() }
}

fn resolve(cause: &str) -> Action {
    Action::Resolve { root_cause: cause.into(), note: String::new() }
}

fn reopen(reason: &str) -> Action {
    Action::Reopen { reason: reason.into() }
}

fn code(err: cx_survey::store::SurveyError) -> (Code, String) {
    let status = Status::from(err);
    (status.code(), status.message().to_owned())
}

/// A migrated survey store on one backend, dropped with the test.
async fn migrated(backend: Backend) -> (Db, ServiceDb) {
    let service = ServiceDb::open(backend, "survey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<Migrator>(&db, "survey").await.unwrap();
    (db, service)
}

/// The survey service alone, a connection to its store, and the tokens of
/// a tenant of its own.
struct Suite {
    cluster: Cluster,
    db: Db,
    t: TenantId,
    writer: String,
    reader: String,
}

async fn suite(backend: Backend) -> Suite {
    let cluster = Cluster::start(SURVEY_ALONE, backend).await;
    let db = cx_runtime::store::open(&cluster.store, "survey").await.unwrap();
    let name = cx_testkit::unique_tenant("cases");
    let writer = cx_testkit::token(&name, Role::Writer);
    let reader = cx_testkit::token(&name, Role::Reader);
    Suite { cluster, db, t: tenant(&name), writer, reader }
}

impl Suite {
    async fn client(&self) -> SurveyServiceClient<Channel> {
        SurveyServiceClient::new(self.cluster.server("survey").channel().await)
    }

    /// A detractor's case answered `ago` before now, opened now.
    async fn case_answered(&self, response: &str, ago: Duration) -> Uuid {
        let now = Utc::now();
        open(&self.db, &self.t, &detractor(response, now - ago), now).await
    }

    async fn get(&self, id: Uuid, token: &str) -> Result<pb::FollowUpCase, Status> {
        let request = authed(pb::GetCaseRequest { id: id.to_string() }, token);
        Ok(self.client().await.get_case(request).await?.into_inner().case.unwrap())
    }

    async fn assign(&self, id: Uuid, owner: &str, token: &str) -> Result<pb::FollowUpCase, Status> {
        let request = authed(pb::AssignCaseRequest { id: id.to_string(), owner: owner.into() }, token);
        Ok(self.client().await.assign_case(request).await?.into_inner().case.unwrap())
    }

    async fn comment(&self, id: Uuid, text: &str) -> Result<pb::FollowUpCase, Status> {
        let request = authed(pb::CommentCaseRequest { id: id.to_string(), text: text.into() }, &self.writer);
        Ok(self.client().await.comment_case(request).await?.into_inner().case.unwrap())
    }

    async fn resolve(&self, id: Uuid, cause: &str, note: &str) -> Result<pb::FollowUpCase, Status> {
        let message = pb::ResolveCaseRequest { id: id.to_string(), root_cause: cause.into(), note: note.into() };
        Ok(self.client().await.resolve_case(authed(message, &self.writer)).await?.into_inner().case.unwrap())
    }

    async fn reopen(&self, id: Uuid, reason: &str) -> Result<pb::FollowUpCase, Status> {
        let request = authed(pb::ReopenCaseRequest { id: id.to_string(), reason: reason.into() }, &self.writer);
        Ok(self.client().await.reopen_case(request).await?.into_inner().case.unwrap())
    }

    async fn list(&self, request: pb::ListCasesRequest) -> Result<pb::ListCasesResponse, Status> {
        Ok(self.client().await.list_cases(authed(request, &self.reader)).await?.into_inner())
    }

    async fn report(&self, start: &str, end: &str, survey: &str) -> Result<pb::GetCaseReportResponse, Status> {
        let request =
            pb::GetCaseReportRequest { start_day: start.into(), end_day: end.into(), survey_id: survey.into() };
        Ok(self.client().await.get_case_report(authed(request, &self.reader)).await?.into_inner())
    }
}

fn violations(status: &Status) -> Vec<FieldViolation> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
}

fn fv(field: &str, description: &str) -> FieldViolation {
    FieldViolation::new(field, description)
}

fn refused(result: Result<pb::FollowUpCase, Status>) -> (Code, String) {
    let status = result.unwrap_err();
    (status.code(), status.message().to_owned())
}

fn time(ts: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.as_ref().and_then(cx_proto::from_timestamp)
}

fn hours(h: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: h * 3600, nanos: 0 })
}

cx_testkit::on_both_backends!(
    resolving_and_reopening_tell_the_takers_of_cases_the_open_count,
    a_response_opens_one_case_due_after_its_sla,
    actions_are_recorded_with_their_times_and_authors,
    a_case_holds_at_most_its_comments,
    concurrent_actions_on_a_case_take_turns,
    listings_page_earliest_due_first_through_every_filter,
    overdue_listing_reads_the_unresolved_cases_index,
    a_case_is_worked_through_its_states,
    root_causes_are_the_tenants,
    requests_are_checked_and_tenants_kept_apart,
    overdue_cases_are_listed_as_overdue,
    the_report_gives_the_hand_worked_figures,
);

/// Opening: once per response, due at the response's time plus the SLA of
/// its type, in the caller's transaction.
async fn a_response_opens_one_case_due_after_its_sla(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("acme");
    let answered = at("2026-03-01T10:00:00.123456789Z");
    let opened = at("2026-03-01T10:00:01Z");
    let id = open(&db, &t, &detractor("r1", answered), opened).await;
    // Again, even with another score: the same case.
    let again = Unhappy { score: 0, ..detractor("r1", answered) };
    assert_eq!(open(&db, &t, &again, opened + Duration::hours(1)).await, id);
    let case = cases::get(&db, &t, id).await.unwrap();
    // Cut to microseconds; 48 hours by default.
    let answered_micros = at("2026-03-01T10:00:00.123456Z");
    assert_eq!(
        case,
        CaseRecord {
            id,
            response_id: "r1".into(),
            survey_id: survey(1),
            survey_type: SurveyType::Nps,
            customer_id: Some(customer(1)),
            score: 3,
            respond_at: answered_micros,
            due_at: at("2026-03-03T10:00:00.123456Z"),
            created_at: opened,
            progress: cx_survey::domain::case::Progress::opened(),
            comments: vec![],
        }
    );

    // The tenant's SLA for the type: CSAT within 4 hours; anonymous.
    let settings = Settings {
        case_slas: vec![(SurveyType::Nps, Duration::hours(48)), (SurveyType::Csat, Duration::hours(4))],
        ..Settings::default()
    };
    let csat = Unhappy { survey_type: SurveyType::Csat, score: 2, customer_id: None, ..detractor("r2", answered) };
    let txn = db.begin().await.unwrap();
    let csat_case = cases::open(&txn, &t, &csat, &settings).await.unwrap();
    txn.commit().await.unwrap();
    let stored = cases::get(&db, &t, csat_case).await.unwrap();
    assert_eq!((stored.due_at, stored.customer_id), (at("2026-03-01T14:00:00.123456Z"), None));
    assert_ne!(csat_case, id);

    // A case opened in a transaction that rolls back is not there.
    let txn = db.begin().await.unwrap();
    let gone = cases::open_at(&txn, &t, &detractor("r3", answered), &settings, opened).await.unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(code(cases::get(&db, &t, gone).await.unwrap_err()), (Code::NotFound, format!("case {gone} not found")));

    // A happy answer opens nothing (a caller's bug); another tenant sees nothing.
    let passive = Unhappy { score: 7, ..detractor("r4", answered) };
    let txn = db.begin().await.unwrap();
    let err = cases::open_at(&txn, &t, &passive, &settings, opened).await.unwrap_err();
    assert_eq!(code(err), (Code::Internal, "internal error".to_owned()));
    txn.rollback().await.unwrap();
    let other = tenant("other");
    assert_eq!(code(cases::get(&db, &other, id).await.unwrap_err()).0, Code::NotFound);
    let all = cases::list(&db, &t, &CaseFilter::default(), None, 10, opened).await.unwrap();
    assert_eq!(all.iter().map(|c| c.id).collect::<Vec<_>>(), [csat_case, id], "earliest due first");
}

/// The first action, the resolution and the comments as the store keeps
/// them, at the times given.
async fn actions_are_recorded_with_their_times_and_authors(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("acme");
    let id = open(&db, &t, &detractor("r1", at("2026-03-01T10:00:00Z")), at("2026-03-01T10:00:00Z")).await;
    let commented = cases::act(&db, &Feeds::default(), &t, id, &comment("called"), "ana", at("2026-03-01T11:00:00Z"))
        .await
        .unwrap();
    assert_eq!(commented.progress.state, CaseState::InProgress);
    assert_eq!(commented.progress.first_action_at, Some(at("2026-03-01T11:00:00Z")));
    let assigned = act(&db, &t, id, assign("bo"), "2026-03-01T12:00:00Z").await;
    assert_eq!(assigned.progress.owner.as_deref(), Some("bo"));
    assert_eq!(assigned.progress.first_action_at, Some(at("2026-03-01T11:00:00Z")), "the first action stays");
    let resolved = act(&db, &t, id, resolve("billing"), "2026-03-02T10:00:00Z").await;
    assert_eq!(resolved.progress.resolved_at, Some(at("2026-03-02T10:00:00Z")));
    let reopened =
        cases::act(&db, &Feeds::default(), &t, id, &reopen("not refunded"), "cy", at("2026-03-03T10:00:00Z"))
            .await
            .unwrap();
    assert_eq!(
        (reopened.progress.state, reopened.progress.reopen_count, reopened.progress.resolved_at),
        (CaseState::Open, 1, None)
    );
    assert_eq!(
        reopened.comments,
        [
            Comment { author: "ana".into(), text: "called".into(), created_at: at("2026-03-01T11:00:00Z") },
            Comment { author: "cy".into(), text: "not refunded".into(), created_at: at("2026-03-03T10:00:00Z") },
        ]
    );
    // A refused action writes nothing, its comment included.
    let err = cases::act(&db, &Feeds::default(), &t, id, &reopen("again"), "cy", at("2026-03-03T11:00:00Z"))
        .await
        .unwrap_err();
    assert_eq!(
        code(err),
        (Code::FailedPrecondition, format!("case {id} is not resolved: only a resolved case can be reopened"))
    );
    assert_eq!(cases::get(&db, &t, id).await.unwrap(), reopened);
    let err = cases::act(&db, &Feeds::default(), &tenant("other"), id, &assign("x"), "x", at("2026-03-03T11:00:00Z"))
        .await
        .unwrap_err();
    assert_eq!(code(err), (Code::NotFound, format!("case {id} not found")));
}

async fn a_case_holds_at_most_its_comments(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("acme");
    let id = open(&db, &t, &detractor("r1", at("2026-03-01T10:00:00Z")), at("2026-03-01T10:00:00Z")).await;
    for n in 0..MAX_COMMENTS {
        act(&db, &t, id, comment(&format!("note {n}")), "2026-03-01T11:00:00Z").await;
    }
    let err = cases::act(&db, &Feeds::default(), &t, id, &comment("one more"), "ana", at("2026-03-01T12:00:00Z"))
        .await
        .unwrap_err();
    assert_eq!(code(err), (Code::FailedPrecondition, format!("case {id} has 200 comments, the most a case holds")));
    let case = cases::get(&db, &t, id).await.unwrap();
    assert_eq!(case.comments.len(), 200);
    assert_eq!((case.comments[0].text.as_str(), case.comments[199].text.as_str()), ("note 0", "note 199"));
}

/// Ten comments at once: each numbered in turn (a shared number would
/// break the comments' key), the first of them the first action.
async fn concurrent_actions_on_a_case_take_turns(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("acme");
    let id = open(&db, &t, &detractor("r1", at("2026-03-01T10:00:00Z")), at("2026-03-01T10:00:00Z")).await;
    let writers = (0..10).map(|n| {
        let (db, t) = (db.clone(), t.clone());
        tokio::spawn(async move {
            let when = at("2026-03-01T11:00:00Z") + Duration::minutes(n);
            cases::act(&db, &Feeds::default(), &t, id, &comment(&format!("note {n}")), "ana", when).await.unwrap()
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    let case = cases::get(&db, &t, id).await.unwrap();
    let mut texts: Vec<String> = case.comments.iter().map(|c| c.text.clone()).collect();
    texts.sort();
    assert_eq!(texts, (0..10).map(|n| format!("note {n}")).collect::<Vec<_>>());
    let first = case.comments[0].created_at;
    assert_eq!(case.progress.first_action_at, Some(first), "the first comment written is the first action");
}

/// Six cases, listed by each filter and in pages of two.
async fn listings_page_earliest_due_first_through_every_filter(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("acme");
    let opened = at("2026-03-01T00:00:00Z");
    // Answered on the 1st at 01:00 … 06:00: due on the 3rd at the same hours.
    let mut ids = Vec::new();
    for (n, (survey_n, customer_n)) in [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3), (1, 3)].into_iter().enumerate() {
        let unhappy = Unhappy {
            survey_id: survey(survey_n),
            customer_id: Some(customer(customer_n)),
            ..detractor(&format!("r{n}"), opened + Duration::hours(n as i64 + 1))
        };
        ids.push(open(&db, &t, &unhappy, opened).await);
    }
    // Case 0 assigned to ana, 1 to bo, 2 resolved, 3 commented; 4 and 5 open.
    act(&db, &t, ids[0], assign("ana"), "2026-03-01T08:00:00Z").await;
    act(&db, &t, ids[1], assign("bo"), "2026-03-01T08:00:00Z").await;
    act(&db, &t, ids[2], resolve("price"), "2026-03-01T08:00:00Z").await;
    act(&db, &t, ids[3], comment("looking"), "2026-03-01T08:00:00Z").await;
    let list = |filter: CaseFilter, now: &'static str| listed(&db, &t, &ids, filter, now);
    let now = "2026-03-03T03:30:00Z";
    assert_eq!(list(CaseFilter::default(), now).await, [0, 1, 2, 3, 4, 5]);
    let state = |s| CaseFilter { state: Some(s), ..CaseFilter::default() };
    assert_eq!(list(state(CaseState::InProgress), now).await, [0, 1, 3]);
    assert_eq!(list(state(CaseState::Open), now).await, [4, 5]);
    assert_eq!(list(state(CaseState::Resolved), now).await, [2]);
    let owner = CaseFilter { owner: Some("bo".into()), ..CaseFilter::default() };
    assert_eq!(list(owner, now).await, [1]);
    let of_survey = CaseFilter { survey_id: Some(survey(2)), ..CaseFilter::default() };
    assert_eq!(list(of_survey, now).await, [1, 3]);
    let of_customer = CaseFilter { customer_id: Some(customer(3)), ..CaseFilter::default() };
    assert_eq!(list(of_customer, now).await, [4, 5]);
    // At 03:30 on the 3rd, cases due at 01:00, 02:00 and 03:00 are past due;
    // case 2 (03:00) is resolved, so not overdue.
    let overdue = CaseFilter { overdue_only: true, ..CaseFilter::default() };
    assert_eq!(list(overdue.clone(), now).await, [0, 1]);
    assert_eq!(list(overdue.clone(), "2026-03-03T05:00:00.000001Z").await, [0, 1, 3, 4]);
    let open_overdue = CaseFilter { state: Some(CaseState::Open), ..overdue };
    assert_eq!(list(open_overdue, "2026-03-04T00:00:00Z").await, [4, 5]);

    // Pages of two, each after the last of the one before.
    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let mut page = cases::list(&db, &t, &CaseFilter::default(), after, 2, at(now)).await.unwrap();
        let more = cx_runtime::page::trim_page(&mut page, 2);
        pages.push(page.iter().map(|c| ids.iter().position(|id| *id == c.id).unwrap()).collect::<Vec<_>>());
        after = page.last().map(|c| (c.due_at, c.id));
        if !more {
            break;
        }
    }
    assert_eq!(pages, [vec![0, 1], vec![2, 3], vec![4, 5]]);
}

/// The positions in `ids` of the cases `filter` lists at `now`.
async fn listed(db: &Db, t: &TenantId, ids: &[Uuid], filter: CaseFilter, now: &str) -> Vec<usize> {
    let rows = cases::list(db, t, &filter, None, 100, at(now)).await.unwrap();
    rows.iter().map(|c| ids.iter().position(|id| *id == c.id).unwrap()).collect()
}

/// `ListCases(overdue_only)` is one range of `survey_cases_unresolved_by_due`
/// on each backend (sequential scans off on PostgreSQL, whose planner
/// prefers them on a table this small).
async fn overdue_listing_reads_the_unresolved_cases_index(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("acme");
    for n in 0..20 {
        let answered = at("2026-03-01T00:00:00Z") + Duration::hours(n);
        open(&db, &t, &detractor(&format!("r{n}"), answered), answered).await;
    }
    let filter = CaseFilter { overdue_only: true, ..CaseFilter::default() };
    let query = cases::list_query(&t, &filter, None, 50, at("2026-03-10T00:00:00Z"));
    let built = sea_orm::QueryTrait::build(&query, backend_of(&db));
    let values = built.values.map(|v| v.0).unwrap_or_default();
    let txn = db.begin().await.unwrap();
    let explain = match backend {
        Backend::Postgres => {
            txn.execute_unprepared("SET LOCAL enable_seqscan = off").await.unwrap();
            format!("EXPLAIN {}", built.sql)
        }
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {}", built.sql),
    };
    let rows = txn.query_all_raw(Statement::from_sql_and_values(backend_of(&db), explain, values)).await.unwrap();
    let plan: Vec<String> = rows
        .iter()
        .map(|row| match backend {
            Backend::Postgres => row.try_get::<String>("", "QUERY PLAN").unwrap(),
            Backend::Sqlite => row.try_get::<String>("", "detail").unwrap(),
        })
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("survey_cases_unresolved_by_due"), "{plan}");
    let plan = plan.to_lowercase();
    assert!(!plan.contains("sort") && !plan.contains("temp b-tree"), "the index gives the order: {plan}");
}

fn backend_of(db: &Db) -> DbBackend {
    db.get_database_backend()
}

/// Every transition through gRPC, and each refusal's message.
async fn a_case_is_worked_through_its_states(backend: Backend) {
    let s = suite(backend).await;
    let id = s.case_answered("r1", Duration::hours(1)).await;
    let fresh = s.get(id, &s.reader).await.unwrap();
    assert_eq!((fresh.state, fresh.owner.as_str(), fresh.overdue), (pb::CaseState::Open as i32, "", false));
    assert_eq!((fresh.first_action_time, fresh.time_to_first_action), (None, None));
    let due = time(&fresh.due_time).unwrap();
    assert_eq!(due - time(&fresh.respond_time).unwrap(), Duration::hours(48));

    let assigned = s.assign(id, "ana", &s.writer).await.unwrap();
    assert_eq!((assigned.state, assigned.owner.as_str()), (pb::CaseState::InProgress as i32, "ana"));
    let first = time(&assigned.first_action_time).unwrap();
    let to_first = assigned.time_to_first_action.unwrap();
    // Answered an hour before the case was opened, acted on just after.
    assert!((3600..3660).contains(&to_first.seconds), "{to_first:?}");
    assert_eq!(
        Duration::seconds(to_first.seconds) + Duration::nanoseconds(to_first.nanos.into()),
        first - time(&fresh.respond_time).unwrap()
    );

    let commented = s.comment(id, "called the customer").await.unwrap();
    assert_eq!(commented.comments.len(), 1);
    assert_eq!(
        (commented.comments[0].author.as_str(), commented.comments[0].text.as_str()),
        ("test", "called the customer")
    );
    assert_eq!(time(&commented.first_action_time), Some(first), "the first action stays");

    let resolved = s.resolve(id, "price", "discount given").await.unwrap();
    assert_eq!(resolved.state, pb::CaseState::Resolved as i32);
    assert_eq!((resolved.root_cause.as_str(), resolved.resolution_note.as_str()), ("price", "discount given"));
    let resolve_time = time(&resolved.resolve_time).unwrap();
    let to_resolution = resolved.time_to_resolution.unwrap();
    assert_eq!(
        Duration::seconds(to_resolution.seconds) + Duration::nanoseconds(to_resolution.nanos.into()),
        resolve_time - time(&fresh.respond_time).unwrap()
    );

    let closed = format!("case {id} is resolved: reopen it before assigning or commenting");
    assert_eq!(refused(s.assign(id, "bo", &s.writer).await), (Code::FailedPrecondition, closed.clone()));
    assert_eq!(refused(s.comment(id, "late note").await), (Code::FailedPrecondition, closed));
    let twice = format!("case {id} is already resolved");
    assert_eq!(refused(s.resolve(id, "other", "").await), (Code::FailedPrecondition, twice));

    let reopened = s.reopen(id, "the customer wrote again").await.unwrap();
    assert_eq!((reopened.state, reopened.reopen_count), (pb::CaseState::Open as i32, 1));
    assert_eq!((reopened.root_cause.as_str(), reopened.resolution_note.as_str()), ("", ""));
    assert_eq!((reopened.resolve_time, reopened.time_to_resolution), (None, None));
    assert_eq!((reopened.owner.as_str(), time(&reopened.first_action_time)), ("ana", Some(first)));
    let texts: Vec<&str> = reopened.comments.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["called the customer", "the customer wrote again"]);
    let not_resolved = format!("case {id} is not resolved: only a resolved case can be reopened");
    assert_eq!(refused(s.reopen(id, "again").await), (Code::FailedPrecondition, not_resolved));
    assert_eq!(s.get(id, &s.reader).await.unwrap(), reopened);

    // An open case may be resolved at once: that is its first action.
    let direct = s.case_answered("r2", Duration::hours(2)).await;
    let done = s.resolve(direct, "other", "").await.unwrap();
    assert_eq!(done.state, pb::CaseState::Resolved as i32);
    assert_eq!(done.first_action_time, done.resolve_time);
    assert_eq!(done.time_to_first_action, done.time_to_resolution);
}

/// The root cause is checked against the tenant's list: the defaults, then
/// the tenant's own once set.
async fn root_causes_are_the_tenants(backend: Backend) {
    let s = suite(backend).await;
    let id = s.case_answered("r1", Duration::hours(1)).await;
    let not_listed = vec![fv("root_cause", "is not one of the tenant's root causes")];
    assert_eq!(violations(&s.resolve(id, "late-courier", "").await.unwrap_err()), not_listed);
    // Never echoed, however long.
    let long = "x".repeat(5_000);
    let status = s.resolve(id, &long, "").await.unwrap_err();
    assert_eq!(violations(&status), [fv("root_cause", "has more than 100 characters")]);
    assert!(!status.message().contains("xxxxxxxxxx"));

    let settings = Settings { root_causes: vec!["late-courier".into(), "other".into()], ..Settings::default() };
    let body = cx_survey::store::settings::to_proto(&settings).encode_to_vec();
    let row = cx_survey::store::entity::settings::ActiveModel {
        tenant_id: sea_orm::ActiveValue::Set(s.t.to_string()),
        body: sea_orm::ActiveValue::Set(body),
    };
    cx_survey::store::entity::settings::Entity::insert(row).exec_without_returning(&s.db).await.unwrap();
    // "price" was a default, not one of the tenant's.
    assert_eq!(violations(&s.resolve(id, "price", "").await.unwrap_err()), not_listed);
    let resolved = s.resolve(id, "late-courier", "").await.unwrap();
    assert_eq!(resolved.root_cause, "late-courier");
}

async fn requests_are_checked_and_tenants_kept_apart(backend: Backend) {
    let s = suite(backend).await;
    let id = s.case_answered("r1", Duration::hours(1)).await;
    // Readers read; only writers act.
    assert_eq!(s.assign(id, "ana", &s.reader).await.unwrap_err().code(), Code::PermissionDenied);
    let reopen = authed(pb::ReopenCaseRequest { id: id.to_string(), reason: "r".into() }, &s.reader);
    assert_eq!(s.client().await.reopen_case(reopen).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(s.get(id, &s.reader).await.unwrap().state, pb::CaseState::Open as i32);

    // Another tenant's case is not found, for reading and for acting.
    let other = cx_testkit::unique_tenant("other");
    let other_writer = cx_testkit::token(&other, Role::Writer);
    let missing = (Code::NotFound, format!("case {id} not found"));
    assert_eq!(refused(s.get(id, &other_writer).await), missing);
    assert_eq!(refused(s.assign(id, "ana", &other_writer).await), missing);
    let others = authed(pb::ListCasesRequest::default(), &other_writer);
    assert!(s.client().await.list_cases(others).await.unwrap().into_inner().cases.is_empty());
    assert_eq!(s.get(id, &s.reader).await.unwrap().owner, "", "untouched");

    // Every violation of a request at once, none echoing its input.
    let nobody = Uuid::nil();
    assert_eq!(refused(s.assign(nobody, "ana", &s.writer).await), (Code::NotFound, format!("case {nobody} not found")));
    let bad = authed(pb::AssignCaseRequest { id: "nope".into(), owner: "o".repeat(201) }, &s.writer);
    let status = s.client().await.assign_case(bad).await.unwrap_err();
    assert_eq!(
        violations(&status),
        [fv("id", "must be a case id (a UUID)"), fv("owner", "has more than 200 characters")]
    );
    let blank = authed(pb::CommentCaseRequest { id: id.to_string(), text: "  ".into() }, &s.writer);
    assert_eq!(violations(&s.client().await.comment_case(blank).await.unwrap_err()), [fv("text", "is required")]);
    let blank = authed(pb::ReopenCaseRequest { id: String::new(), reason: String::new() }, &s.writer);
    assert_eq!(
        violations(&s.client().await.reopen_case(blank).await.unwrap_err()),
        [fv("id", "is required"), fv("reason", "is required")]
    );
    let long_note = pb::ResolveCaseRequest { id: id.to_string(), root_cause: "price".into(), note: "n".repeat(4_001) };
    let status = s.client().await.resolve_case(authed(long_note, &s.writer)).await.unwrap_err();
    assert_eq!(violations(&status), [fv("note", "has more than 4000 characters")]);
    let listing = pb::ListCasesRequest {
        state: 9,
        survey_id: "x".into(),
        page_size: -1,
        page_token: "!!".into(),
        ..Default::default()
    };
    assert_eq!(
        violations(&s.list(listing).await.unwrap_err()),
        [
            fv("state", "is not a case state"),
            fv("survey_id", "must be a survey id (a UUID)"),
            fv("page_size", "must not be negative"),
            fv("page_token", "is not a token this server issued"),
        ]
    );
    // A forged token at year -251,000 (-8e18 µs): PostgreSQL stops at 4713 BC.
    let forged = cx_runtime::page::encode_token(&format!("-8000000000000000000/{}", uuid::Uuid::now_v7()));
    let forged = pb::ListCasesRequest { page_token: forged, ..Default::default() };
    assert_eq!(violations(&s.list(forged).await.unwrap_err()), [fv("page_token", "is not a token this server issued")]);
    assert_eq!(
        violations(&s.report("", "2026-3-1", "").await.unwrap_err()),
        [fv("start_day", "is required"), fv("end_day", "must be a day written YYYY-MM-DD")]
    );
    assert_eq!(
        violations(&s.report("2026-03-02", "2026-03-01", "").await.unwrap_err()),
        [fv("end_day", "must not be before start_day")]
    );
    // 2016-01-01 to 2026-01-08 is 3,661 days.
    assert_eq!(
        violations(&s.report("2016-01-01", "2026-01-08", "").await.unwrap_err()),
        [fv("end_day", "covers more than 3660 days")]
    );
    assert_eq!(s.report("2016-01-01", "2026-01-07", "").await.unwrap().opened, 0);
}

async fn overdue_cases_are_listed_as_overdue(backend: Backend) {
    let s = suite(backend).await;
    // Due 24 h ago, 1 h ago, and in 47 h; the fourth was due 12 h ago but is resolved.
    let late = s.case_answered("late", Duration::hours(72)).await;
    let just = s.case_answered("just", Duration::hours(49)).await;
    let fine = s.case_answered("fine", Duration::hours(1)).await;
    let done = s.case_answered("done", Duration::hours(60)).await;
    s.resolve(done, "other", "").await.unwrap();
    let overdue = |page_token: String| pb::ListCasesRequest {
        overdue_only: true,
        page_size: 1,
        page_token,
        ..Default::default()
    };
    let first = s.list(overdue(String::new())).await.unwrap();
    assert_eq!(first.cases.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), [late.to_string()]);
    assert!(first.cases[0].overdue);
    let second = s.list(overdue(first.next_page_token)).await.unwrap();
    assert_eq!(second.cases.iter().map(|c| (c.id.clone(), c.overdue)).collect::<Vec<_>>(), [(just.to_string(), true)]);
    assert_eq!(second.next_page_token, "");
    let all = s.list(pb::ListCasesRequest::default()).await.unwrap();
    let flags: Vec<(String, bool)> = all.cases.iter().map(|c| (c.id.clone(), c.overdue)).collect();
    assert_eq!(
        flags,
        [(late.to_string(), true), (done.to_string(), false), (just.to_string(), true), (fine.to_string(), false)]
    );
    assert!(all.cases.iter().all(|c| c.comments.is_empty()), "listings leave comments out");
}

/// Cases opened on 1–3 March 2026 (SLA 48 h), worked at chosen times, and
/// the report of 1–2 March read by gRPC on 3 December 2026 or later.
async fn the_report_gives_the_hand_worked_figures(backend: Backend) {
    let s = suite(backend).await;
    let (db, t) = (&s.db, &s.t);
    let case = |response: &'static str, survey_n: u128, answered: &'static str, opened: &'static str| async move {
        let unhappy = Unhappy { survey_id: survey(survey_n), ..detractor(response, at(answered)) };
        open(db, t, &unhappy, at(opened)).await
    };
    // Survey 1:
    // A: answered 1 Mar 08:00, assigned 09:00 (1 h, within), resolved 12:00 (4 h), billing.
    let a = case("A", 1, "2026-03-01T08:00:00Z", "2026-03-01T08:00:00Z").await;
    act(db, t, a, assign("ana"), "2026-03-01T09:00:00Z").await;
    act(db, t, a, resolve("billing"), "2026-03-01T12:00:00Z").await;
    // B: answered 1 Mar 10:00, commented 2 Mar 10:00 (24 h, within), resolved 3 Mar 10:00 (48 h), billing.
    let b = case("B", 1, "2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z").await;
    act(db, t, b, comment("called"), "2026-03-02T10:00:00Z").await;
    act(db, t, b, resolve("billing"), "2026-03-03T10:00:00Z").await;
    // C: answered 2 Mar 00:00, assigned 5 Mar 00:00 (72 h, late), in progress: overdue.
    let c = case("C", 1, "2026-03-02T00:00:00Z", "2026-03-02T00:00:00Z").await;
    act(db, t, c, assign("bo"), "2026-03-05T00:00:00Z").await;
    // D: answered 2 Mar 12:00, resolved 18:00 (6 h, within), reopened 3 Mar 09:00,
    // resolved again 3 Mar 12:00 (resolution 24 h), product.
    let d = case("D", 1, "2026-03-02T12:00:00Z", "2026-03-02T12:00:00Z").await;
    act(db, t, d, resolve("price"), "2026-03-02T18:00:00Z").await;
    act(db, t, d, reopen("still wrong"), "2026-03-03T09:00:00Z").await;
    act(db, t, d, resolve("product"), "2026-03-03T12:00:00Z").await;
    // E: answered 2 Mar 20:00, untouched: overdue.
    case("E", 1, "2026-03-02T20:00:00Z", "2026-03-02T20:00:00Z").await;
    // Survey 2 — F: answered 1 Mar 09:00, assigned 09:30 (0.5 h, within), resolved 11:00 (2 h), price.
    let f = case("F", 2, "2026-03-01T09:00:00Z", "2026-03-01T09:00:00Z").await;
    act(db, t, f, assign("cy"), "2026-03-01T09:30:00Z").await;
    act(db, t, f, resolve("price"), "2026-03-01T11:00:00Z").await;
    // Opened outside the days: G on 28 Feb; H answered on 2 Mar but opened on 3 Mar.
    case("G", 1, "2026-02-28T23:59:59Z", "2026-02-28T23:59:59Z").await;
    case("H", 1, "2026-03-02T23:00:00Z", "2026-03-03T00:00:00Z").await;

    // Every survey: A–F opened; within SLA A, B, D, F = 4 of 6; resolved A, B, D, F;
    // overdue C, E. First actions 0.5, 1, 6, 24, 72 h: the middle of five, 6 h.
    // Resolutions 2, 4, 24, 48 h: the mean of the middle two, (4 + 24) / 2 = 14 h.
    // Wilson of 4 of 6: p = 0.666667, z²/n = 0.640267;
    // centre = (0.666667 + 0.320133) / 1.640267 = 0.601609;
    // half = 1.96 / 1.640267 × sqrt(0.037037 + 0.026678) = 1.194928 × 0.252418 = 0.301621;
    // 0.299988 to 0.903231.
    let all = s.report("2026-03-01", "2026-03-02", "").await.unwrap();
    let round6 = |x: f64| (x * 1e6).round() / 1e6;
    assert_eq!((all.opened, all.acted_within_sla, all.resolved, all.overdue), (6, 4, 4, 2));
    assert_eq!(
        (round6(all.within_sla_share), round6(all.within_sla_low), round6(all.within_sla_high)),
        (0.666667, 0.299988, 0.903231)
    );
    assert_eq!((all.median_time_to_first_action, all.median_time_to_resolution), (hours(6), hours(14)));
    // The median's interval from order statistics: 4 resolutions are too few
    // for 95 % (median_ranks(4) = 1 and 4, coverage 1 − 2/16 = 87.5 %): the
    // shortest and the longest, 2 h and 48 h, read as two rows.
    let first = at("2026-03-01T00:00:00Z").date_naive();
    let report =
        cases::report(db, t, first, first.succ_opt().unwrap(), None, at("2026-12-03T00:00:00Z")).await.unwrap();
    assert_eq!(report.resolution_interval, Some((Duration::hours(2), Duration::hours(48))));
    let causes = |r: &pb::GetCaseReportResponse| {
        let mut v: Vec<(String, i64)> = r.by_root_cause.iter().map(|(k, v)| (k.clone(), *v)).collect();
        v.sort();
        v
    };
    assert_eq!(causes(&all), [("billing".into(), 2), ("price".into(), 1), ("product".into(), 1)]);

    // Survey 1: A–E; within A, B, D = 3 of 5; resolved A, B, D; overdue C, E.
    // First actions 1, 6, 24, 72 h: (6 + 24) / 2 = 15 h. Resolutions 4, 24, 48 h: 24 h.
    // Wilson of 3 of 5: p = 0.6, z²/n = 0.76832;
    // centre = (0.6 + 0.38416) / 1.76832 = 0.556551;
    // half = 1.96 / 1.76832 × sqrt(0.048 + 0.038416) = 1.108397 × 0.293966 = 0.325831;
    // 0.230720 to 0.882382.
    let one = s.report("2026-03-01", "2026-03-02", &survey(1).to_string()).await.unwrap();
    assert_eq!((one.opened, one.acted_within_sla, one.resolved, one.overdue), (5, 3, 3, 2));
    assert_eq!(
        (round6(one.within_sla_share), round6(one.within_sla_low), round6(one.within_sla_high)),
        (0.6, 0.23072, 0.882382)
    );
    assert_eq!((one.median_time_to_first_action, one.median_time_to_resolution), (hours(15), hours(24)));
    assert_eq!(causes(&one), [("billing".into(), 2), ("product".into(), 1)]);

    // 3 March alone: H, untouched and overdue: no median, no share; Wilson of
    // 0 of 1: centre = (0 + 1.9208) / 4.8416 = 0.396728, half = 1.96 / 4.8416
    // × sqrt(0 + 0.9604) = 0.404825 × 0.98 = 0.396728: 0 to 0.793457.
    let third = s.report("2026-03-03", "2026-03-03", "").await.unwrap();
    assert_eq!(round6(third.within_sla_high), 0.793457);
    assert_eq!(
        third,
        pb::GetCaseReportResponse {
            opened: 1,
            overdue: 1,
            within_sla_high: third.within_sla_high,
            ..Default::default()
        }
    );
    // A day without cases: every figure 0, no median.
    assert_eq!(s.report("2026-02-27", "2026-02-27", "").await.unwrap(), pb::GetCaseReportResponse::default());
}

/// The open counts told to segmentation, in the order written.
async fn told_open_cases(db: &Db, t: &TenantId) -> Vec<(String, i64)> {
    use cx_runtime::outbox::entity::message;
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    let rows = cx_runtime::store::scoped::<message::Entity>(t)
        .filter(message::Column::Kind.eq("cx.survey.v1.OpenCasesChanged"))
        .order_by_asc(message::Column::Id)
        .all(db)
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| {
            let m = cx_proto::survey::v1::OpenCasesChanged::decode(r.payload.as_slice()).unwrap();
            assert_eq!((r.destination.as_str(), m.profile_id), ("segmentation", customer(1).to_string()));
            (m.change_time.map(|_| "at").unwrap_or_default().to_owned(), m.open_cases)
        })
        .collect()
}

async fn resolving_and_reopening_tell_the_takers_of_cases_the_open_count(backend: Backend) {
    let (db, _service) = migrated(backend).await;
    let t = tenant("told");
    let feeds = Feeds { scores: std::sync::Arc::from([]), cases: std::sync::Arc::from(["segmentation"]) };
    // Customer 1 has two cases open.
    let first = open(&db, &t, &detractor("r1", at("2026-03-01T09:00:00Z")), at("2026-03-01T09:00:00Z")).await;
    open(&db, &t, &detractor("r2", at("2026-03-01T09:30:00Z")), at("2026-03-01T09:30:00Z")).await;
    let act = |action: Action, when: &'static str| {
        let (db, feeds, t) = (db.clone(), feeds.clone(), t.clone());
        async move { cases::act(&db, &feeds, &t, first, &action, "agent", at(when)).await.unwrap() }
    };
    // Taking a case stays unresolved: nothing told.
    act(assign("ana"), "2026-03-01T10:00:00Z").await;
    assert!(told_open_cases(&db, &t).await.is_empty());
    // Resolved: 2 - 1 = 1 open; reopened: 2 again.
    act(resolve("refund"), "2026-03-01T11:00:00Z").await;
    act(reopen("not refunded"), "2026-03-02T10:00:00Z").await;
    let at = "at".to_owned();
    assert_eq!(told_open_cases(&db, &t).await, [(at.clone(), 1), (at, 2)]);
}
