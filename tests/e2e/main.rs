//! End to end: `cx serve profile`, `cx serve journey`, `cx serve survey`,
//! `cx serve segmentation` and `cx serve kpi`
//! as separate processes on loopback ports, over real PostgreSQL and Redis, exporting
//! their traces over OTLP to a receiver in this test — as deployed by the
//! Helm chart or the compose stack.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod collector;

use chrono::{DateTime, Utc};
use collector::{Collector, Exported, SpanKind};
use cx_proto::common::v1::{Channel, Initiator, InteractionKind, Money};
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::kpi::v1 as kpi;
use cx_proto::kpi::v1::kpi_service_client::KpiServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::segmentation::v1 as segmentation;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use cx_proto::survey::v1 as survey;
use cx_proto::survey::v1::survey_service_client::SurveyServiceClient;
use cx_runtime::auth::Role;
use cx_runtime::propagation::{ClientSide, ClientTraceLayer, Traced};
use cx_testkit::process::{CxProcess, free_port};
use cx_testkit::{TestDb, authed};
use opentelemetry_sdk::trace::SpanData;
use tracing::Instrument;

const CX: &str = env!("CARGO_BIN_EXE_cx");

/// A traced client of a service, as an application instrumented with
/// OpenTelemetry calls it.
async fn traced(addr: &str) -> Traced<tonic::transport::Channel, ClientSide> {
    let channel = tonic::transport::Channel::from_shared(addr.to_owned()).unwrap().connect().await.unwrap();
    tower::Layer::layer(&ClientTraceLayer::default(), channel)
}

fn touchpoint(
    id: &str,
    customer: journey::touchpoint::Customer,
    channel: Channel,
    initiator: Initiator,
    at: DateTime<Utc>,
    device: &str,
) -> journey::Touchpoint {
    journey::Touchpoint {
        id: id.into(),
        customer: Some(customer),
        channel: channel as i32,
        occur_time: Some(cx_proto::timestamp(at)),
        kind: InteractionKind::Informative as i32,
        initiator: initiator as i32,
        device_id: device.into(),
        ..Default::default()
    }
}

fn purchase(mut tp: journey::Touchpoint, euros: i64) -> journey::Touchpoint {
    tp.kind = InteractionKind::Transactional as i32;
    tp.purchase_amount = Some(Money { currency_code: "EUR".into(), units: euros, nanos: 0 });
    tp
}

/// Ingests `batch` under a span named `span`, as an application would;
/// returns (accepted, duplicates, refused).
async fn ingest_in_span(
    journeys: &mut JourneyServiceClient<Traced<tonic::transport::Channel, ClientSide>>,
    batch: Vec<journey::Touchpoint>,
    writer: &str,
    span: tracing::Span,
) -> (i32, i32, usize) {
    let request = journey::IngestTouchpointsRequest { touchpoints: batch, all_or_nothing: true };
    let reply = journeys.ingest_touchpoints(authed(request, writer)).instrument(span).await.unwrap().into_inner();
    (reply.accepted, reply.duplicates, reply.errors.len())
}

/// Waits (at most 20 s) until the profile `id` satisfies `check`.
async fn eventually(addr: &str, token: &str, id: &str, check: impl Fn(&profile::Profile) -> bool) -> profile::Profile {
    let read = || async {
        let mut client = ProfileServiceClient::connect(addr.to_owned()).await.map_err(|e| e.to_string())?;
        let request = authed(profile::GetProfileRequest { id: id.into(), as_of: None }, token);
        let found = client.get_profile(request).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(found.into_inner().profile.unwrap())
    };
    let what = format!("profile {id} reaches the expected state");
    cx_testkit::eventually(&what, read, |found| found.as_ref().is_ok_and(&check)).await.unwrap()
}

/// (status, last error) of each of journey's outbox rows of `tenant`.
async fn journey_outbox(db: &TestDb, tenant: &str) -> Vec<(String, String)> {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    let sql = format!("SELECT status, last_error FROM journey.outbox WHERE tenant_id = '{tenant}' ORDER BY id");
    let rows = conn.query_all_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql)).await.unwrap();
    rows.iter().map(|r| (r.try_get("", "status").unwrap(), r.try_get("", "last_error").unwrap())).collect()
}

fn assert_intensity(found: &profile::Profile, index: i32, parts: [f64; 4]) {
    let di = found.digital_intensity.as_ref().expect("a digital intensity");
    assert_eq!(di.index, index);
    assert_eq!(di.category, profile::DigitalCategory::Connected as i32, "50 ≤ {index} < 75");
    let got = [di.digital_share, di.digital_breadth, di.device_factor, di.self_service_share];
    for (got, want) in got.into_iter().zip(parts) {
        assert!((got - want).abs() < 1e-9, "{got} ≠ {want} in {di:?}");
    }
}

fn same_second(a: Option<&prost_types::Timestamp>, b: DateTime<Utc>) {
    assert_eq!(a.map(|t| t.seconds), Some(b.timestamp()));
}

/// `GET /metrics` over plain HTTP/1.1, as Prometheus scrapes it.
async fn scrape(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: cx\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn bytes(span: &SpanData) -> (Vec<u8>, Vec<u8>) {
    (span.span_context.trace_id().to_bytes().to_vec(), span.span_context.span_id().to_bytes().to_vec())
}

#[tokio::test]
async fn one_trace_crosses_the_processes_and_a_killed_profile_service_loses_nothing() {
    let (telemetry, exporter) = cx_testkit::capture_spans();
    let collector = Collector::start().await;
    let db = TestDb::create().await.unwrap();
    let redis = cx_testkit::redis_url();
    let ports = [free_port(), free_port(), free_port(), free_port(), free_port(), free_port()];
    assert!((1..ports.len()).all(|i| !ports[..i].contains(&ports[i])), "distinct ports {ports:?}");
    let [profile_port, journey_port, survey_port, segmentation_port, kpi_port, metrics_port] = ports;
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let profile_addr = format!("http://127.0.0.1:{profile_port}");
    let journey_addr = format!("http://127.0.0.1:{journey_port}");
    let survey_addr = format!("http://127.0.0.1:{survey_port}");
    let segmentation_addr = format!("http://127.0.0.1:{segmentation_port}");
    let kpi_addr = format!("http://127.0.0.1:{kpi_port}");
    let env = [
        ("CX_DATABASE_URL", db.url.as_str()),
        ("CX_REDIS_URL", redis.as_str()),
        ("CX_PROFILE_ENDPOINT", profile_addr.as_str()),
        ("CX_JOURNEY_ENDPOINT", journey_addr.as_str()),
        ("CX_SURVEY_ENDPOINT", survey_addr.as_str()),
        ("CX_SEGMENTATION_ENDPOINT", segmentation_addr.as_str()),
        ("CX_KPI_ENDPOINT", kpi_addr.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()),
        // Export within 100 ms rather than 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut profile_cx = CxProcess::serve(CX, "profile", profile_port, &env);
    let journey_env: Vec<_> = env.iter().copied().chain([("CX_METRICS_LISTEN", metrics_listen.as_str())]).collect();
    let journey_cx = CxProcess::serve(CX, "journey", journey_port, &journey_env);
    let survey_cx = CxProcess::serve(CX, "survey", survey_port, &env);
    let segmentation_cx = CxProcess::serve(CX, "segmentation", segmentation_port, &env);
    let kpi_cx = CxProcess::serve(CX, "kpi", kpi_port, &env);
    profile_cx.wait_serving().await;
    journey_cx.wait_serving().await;
    survey_cx.wait_serving().await;
    segmentation_cx.wait_serving().await;
    kpi_cx.wait_serving().await;
    let tenant = cx_testkit::unique_tenant("e2e");
    let writer = cx_testkit::token(&tenant, Role::Writer);
    let admin = cx_testkit::token(&tenant, Role::Admin);

    // After a web visit, customers are asked their NPS by e-mail.
    let mut surveys = SurveyServiceClient::new(traced(&survey_addr).await);
    let nps = survey::Survey {
        name: "After a web visit".into(),
        r#type: survey::SurveyType::Nps as i32,
        language: "en".into(),
        title: "Your visit".into(),
        score_question: "How likely are you to recommend us?".into(),
        channel: Channel::Email as i32,
        ..Default::default()
    };
    let created = surveys.create_survey(authed(survey::CreateSurveyRequest { survey: Some(nps) }, &admin)).await;
    let survey_id = created.unwrap().into_inner().survey.unwrap().id;
    let trigger = survey::Trigger {
        survey_id: survey_id.clone(),
        name: "web visits".into(),
        enabled: true,
        condition: Some(survey::TouchpointCondition { channels: vec![Channel::Web as i32], ..Default::default() }),
        sampling_rate: 1.0,
        ..Default::default()
    };
    surveys.create_trigger(authed(survey::CreateTriggerRequest { trigger: Some(trigger) }, &admin)).await.unwrap();

    // The web shop resolves a new customer: a prospect until she buys.
    let erin = profile::Identity { kind: profile::IdentityKind::Email as i32, value: "erin@example.com".into() };
    let resolve = profile::ResolveProfileRequest { identity: Some(erin.clone()), create_if_missing: true };
    let mut profiles = ProfileServiceClient::new(traced(&profile_addr).await);
    let resolved = profiles.resolve_profile(authed(resolve, &writer)).await.unwrap().into_inner();
    assert!(resolved.created);
    let id = resolved.profile.unwrap().id;
    assert_eq!(eventually(&profile_addr, &writer, &id, |_| true).await.lifecycle, profile::Lifecycle::Prospect as i32);
    // She agrees to be surveyed.
    let consent = profile::SetConsentRequest {
        profile_id: id.clone(),
        purpose: Some(profile::Purpose {
            kind: Some(profile::purpose::Kind::Standard(profile::ConsentPurpose::Survey as i32)),
        }),
        granted: true,
        source_channel: Channel::Web as i32,
        actor: "customer".into(),
        ..Default::default()
    };
    profiles.set_consent(authed(consent, &writer)).await.unwrap();

    // Four touchpoints over four channels, by her e-mail address; one purchase.
    let now = Utc::now();
    let at = |minutes: i64| now - chrono::Duration::minutes(minutes);
    let by_email = || journey::touchpoint::Customer::Identity(erin.clone());
    let first = vec![
        touchpoint("e2e-1", by_email(), Channel::Web, Initiator::Pull, at(300), "phone-1"),
        purchase(touchpoint("e2e-2", by_email(), Channel::MobileApp, Initiator::Pull, at(240), "phone-1"), 40),
        touchpoint("e2e-3", by_email(), Channel::Phone, Initiator::Push, at(180), ""),
        touchpoint("e2e-4", by_email(), Channel::Email, Initiator::Push, at(120), ""),
    ];
    let mut journeys = JourneyServiceClient::new(traced(&journey_addr).await);
    let stored = ingest_in_span(&mut journeys, first, &writer, tracing::info_span!("web shop checkout")).await;
    assert_eq!(stored, (4, 0, 0));

    // The activity reaches the profile through journey's outbox. 4 touchpoints,
    // 3 digital (web, app, e-mail) of 3 channels, 2 of them hers, 1 device:
    // 0.50·3/4 + 0.20·3/8 + 0.15·1/4 + 0.15·2/3 = 0.375 + 0.075 + 0.0375 + 0.1
    // = 0.5875 → 59, connected; she bought 4 h ago: active.
    let found =
        eventually(&profile_addr, &writer, &id, |p| p.digital_intensity.as_ref().is_some_and(|d| d.index > 0)).await;
    assert_eq!(found.lifecycle, profile::Lifecycle::Active as i32);
    assert_intensity(&found, 59, [0.75, 0.375, 0.25, 2.0 / 3.0]);
    same_second(found.last_touch_time.as_ref(), at(120));

    // One trace: the shop's span → its call → journey's handler → journey's
    // call to profile → profile's handler, and journey's handler → the outbox
    // delivery → its call → profile's inbox.
    telemetry.provider().force_flush().unwrap();
    let local = exporter.get_finished_spans().unwrap();
    let span = |name: &str| local.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no local span {name}"));
    let (trace, root) = bytes(span("web shop checkout"));
    let (_, client) = bytes(span("cx.journey.v1.JourneyService/IngestTouchpoints"));
    assert_eq!(span("cx.journey.v1.JourneyService/IngestTouchpoints").parent_span_id.to_bytes().to_vec(), root);
    let child = |service: &'static str, kind: SpanKind, name: &'static str, parent: Vec<u8>| {
        let trace = trace.clone();
        move |s: &Exported| {
            s.service == service
                && s.kind == kind
                && s.name == name
                && s.trace_id == trace
                && s.parent_span_id == parent
        }
    };
    let chain = &collector;
    let ingest = chain
        .wait_for(
            "journey handles the shop's call",
            child("cx-journey", SpanKind::Server, "cx.journey.v1.JourneyService/IngestTouchpoints", client),
        )
        .await;
    let ingest_id = ingest.span_id.clone();
    let resolve_call = chain
        .wait_for(
            "journey calls profile from its handler",
            child(
                "cx-journey",
                SpanKind::Client,
                "cx.profile.v1.ProfileService/BatchResolveProfiles",
                ingest.span_id.clone(),
            ),
        )
        .await;
    chain
        .wait_for(
            "profile continues journey's call",
            child(
                "cx-profile",
                SpanKind::Server,
                "cx.profile.v1.ProfileService/BatchResolveProfiles",
                resolve_call.span_id,
            ),
        )
        .await;
    let delivery = chain
        .wait_for(
            "the delivery descends from the request that wrote it",
            child(
                "cx-journey",
                SpanKind::Producer,
                "outbox deliver cx.profile.v1.RecordActivityRequest",
                ingest.span_id,
            ),
        )
        .await;
    let deliver_call = chain
        .wait_for(
            "the delivery's call",
            child("cx-journey", SpanKind::Client, "cx.outbox.v1.InboxService/Deliver", delivery.span_id),
        )
        .await;
    chain
        .wait_for(
            "profile's inbox handles it",
            child("cx-profile", SpanKind::Server, "cx.outbox.v1.InboxService/Deliver", deliver_call.span_id),
        )
        .await;

    // Her web visit invites her: journey offers the batch to survey (and to
    // segmentation's facts) through its outbox, in the shop's trace, and
    // survey's trigger invites her. Each offer is a delivery of its own.
    let survey_inbox = chain
        .wait_for("survey's inbox takes the offer, in the request's trace", |s| {
            s.service == "cx-survey"
                && s.kind == SpanKind::Server
                && s.name == "cx.outbox.v1.InboxService/Deliver"
                && s.trace_id == trace
        })
        .await;
    let offer_call = chain
        .wait_for("the offer's call", |s| {
            s.service == "cx-journey" && s.kind == SpanKind::Client && s.span_id == survey_inbox.parent_span_id
        })
        .await;
    chain
        .wait_for("journey's delivery of the offer descends from the request that stored the touchpoints", |s| {
            s.service == "cx-journey"
                && s.kind == SpanKind::Producer
                && s.name == "outbox deliver cx.journey.v1.TouchpointsOffered"
                && s.span_id == offer_call.parent_span_id
                && s.parent_span_id == ingest_id
        })
        .await;
    chain
        .wait_for("segmentation's inbox takes its own offer, in the same trace", |s| {
            s.service == "cx-segmentation"
                && s.kind == SpanKind::Server
                && s.name == "cx.outbox.v1.InboxService/Deliver"
                && s.trace_id == trace
        })
        .await;
    chain
        .wait_for("survey invites within the same trace", |s| {
            s.service == "cx-survey" && s.trace_id == trace && s.parent_span_id == survey_inbox.span_id
        })
        .await;
    // Survey asks profile for her consent as itself, still in the trace.
    chain
        .wait_for("profile answers survey's consent check, in the same trace", |s| {
            s.service == "cx-profile"
                && s.kind == SpanKind::Server
                && s.name == "cx.profile.v1.ProfileInternalService/CheckConsents"
                && s.trace_id == trace
        })
        .await;
    let list = survey::ListInvitationsRequest { customer_id: id.clone(), ..Default::default() };
    let invitations = surveys.list_invitations(authed(list, &writer)).await.unwrap().into_inner().invitations;
    assert_eq!(invitations.len(), 1, "{invitations:?}");
    assert_eq!(invitations[0].touchpoint_id, "e2e-1");
    assert_eq!(invitations[0].state, survey::InvitationState::Pending as i32);

    // She answers 3: a detractor. A follow-up case opens, and her profile
    // shows the score.
    let answer = survey::Response {
        id: "e2e-answer-1".into(),
        survey_id: survey_id.clone(),
        invitation_id: invitations[0].id.clone(),
        score: 3,
        verbatim: "The checkout page kept timing out".into(),
        ..Default::default()
    };
    let submitted = surveys.submit_response(authed(survey::SubmitResponseRequest { response: Some(answer) }, &writer));
    let submitted = submitted.await.unwrap().into_inner();
    assert!(submitted.created);
    assert!(!submitted.response.unwrap().case_id.is_empty(), "a detractor opens a case");
    let scored = eventually(&profile_addr, &writer, &id, |p| p.latest_scores.as_ref().is_some_and(|s| s.nps.is_some()));
    assert_eq!(scored.await.latest_scores.unwrap().nps.unwrap().score, 3);

    // A marketer checks a segment rule naming the tenant's own purpose:
    // segmentation asks profile for the custom purposes as itself, in the
    // marketer's trace.
    let wine_club = profile::ConsentPurposeDefinition { name: "wine_club".into(), ..Default::default() };
    let declare = profile::CreateConsentPurposeRequest { purpose: Some(wine_club) };
    profiles.create_consent_purpose(authed(declare, &admin)).await.unwrap();
    let mut segments = SegmentationServiceClient::new(traced(&segmentation_addr).await);
    let rule = segmentation::ValidateRuleRequest { rule: "consent.wine_club and rfm.r >= 4".into() };
    let checked = segments.validate_rule(authed(rule, &writer)).instrument(tracing::info_span!("segment builder"));
    let checked = checked.await.unwrap().into_inner();
    assert!(checked.valid, "{checked:?}");
    assert_eq!(checked.canonical_rule, "consent.wine_club AND rfm.r >= 4");
    assert_eq!(checked.fields, ["consent.wine_club", "rfm.r"]);
    telemetry.provider().force_flush().unwrap();
    let builder = exporter.get_finished_spans().unwrap();
    let builder = builder.iter().find(|s| s.name == "segment builder").expect("the segment builder span");
    let (builder_trace, _) = bytes(builder);
    chain
        .wait_for("profile lists the custom purposes for segmentation, in the marketer's trace", |s| {
            s.service == "cx-profile"
                && s.kind == SpanKind::Server
                && s.name == "cx.profile.v1.ProfileInternalService/ListCustomPurposes"
                && s.trace_id == builder_trace
        })
        .await;

    // A CX lead reads the NPS of these days: kpi asks survey's roll-ups as
    // itself, in the lead's trace. Her 3 is the one answer: NPS −100, from
    // 1 answer, its margin 0 (p = 0, d = 1: 196 × sqrt((1 − 1) / 1)).
    let today = Utc::now().date_naive();
    let mut kpis = KpiServiceClient::new(traced(&kpi_addr).await);
    let ask = kpi::GetKpiRequest {
        metric: kpi::Metric::Nps as i32,
        start_day: (today - chrono::Days::new(1)).to_string(),
        end_day: (today + chrono::Days::new(1)).to_string(),
        filter: None,
        compare_previous: false,
        acquisition_cost: None,
    };
    let read = kpis.get_kpi(authed(ask, &writer)).instrument(tracing::info_span!("cx dashboard"));
    let nps = read.await.unwrap().into_inner().kpi.unwrap();
    assert_eq!((nps.value, nps.n, nps.low, nps.high), (-100.0, 1, -100.0, -100.0));
    telemetry.provider().force_flush().unwrap();
    let dashboard = exporter.get_finished_spans().unwrap();
    let dashboard = dashboard.iter().find(|s| s.name == "cx dashboard").expect("the dashboard span");
    let (dashboard_trace, _) = bytes(dashboard);
    chain
        .wait_for("survey aggregates the scores for kpi, in the lead's trace", |s| {
            s.service == "cx-survey"
                && s.kind == SpanKind::Server
                && s.name == "cx.survey.v1.SurveyInternalService/AggregateScores"
                && s.trace_id == dashboard_trace
        })
        .await;
    // The whole dashboard in one call: kpi asks every owner, in her trace.
    let page = kpis
        .get_dashboard(authed(kpi::GetDashboardRequest::default(), &writer))
        .instrument(tracing::info_span!("cx dashboard page"));
    let page = page.await.unwrap().into_inner();
    assert_eq!((page.headline.len(), page.missing_services.len()), (9, 0));
    telemetry.provider().force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let page = spans.iter().find(|s| s.name == "cx dashboard page").expect("the dashboard page span");
    let (page_trace, _) = bytes(page);
    for (service, rpc) in [
        ("cx-journey", "cx.journey.v1.JourneyInternalService/SummarizeMaps"),
        ("cx-profile", "cx.profile.v1.ProfileInternalService/AggregateDistributions"),
        ("cx-survey", "cx.survey.v1.SurveyInternalService/CountOpenCases"),
    ] {
        chain
            .wait_for(&format!("{service} answers {rpc} for the dashboard, in the lead's trace"), |s| {
                s.service == service && s.kind == SpanKind::Server && s.name == rpc && s.trace_id == page_trace
            })
            .await;
    }

    // The profile process dies without warning. The store still records her
    // visit by profile id; the activity waits in journey's outbox.
    profile_cx.kill();
    let second = vec![
        purchase(
            touchpoint(
                "e2e-5",
                journey::touchpoint::Customer::ProfileId(id.clone()),
                Channel::Store,
                Initiator::Pull,
                at(60),
                "",
            ),
            25,
        ),
        touchpoint(
            "e2e-6",
            journey::touchpoint::Customer::ProfileId(id.clone()),
            Channel::Chat,
            Initiator::Pull,
            at(30),
            "laptop-1",
        ),
    ];
    let stored = ingest_in_span(&mut journeys, second, &writer, tracing::info_span!("store visit")).await;
    assert_eq!(stored, (2, 0, 0));
    assert!(ProfileServiceClient::connect(profile_addr.clone()).await.is_err(), "profile is down");
    // Journey's dispatcher tries to deliver the visit and cannot: it stays owed.
    let tried =
        |rows: &Vec<(String, String)>| rows.iter().any(|(status, error)| status == "pending" && !error.is_empty());
    cx_testkit::eventually("journey finds the profile service down", || journey_outbox(&db, &tenant), tried).await;

    // Back on the same port, it receives what it missed, once. 6 touchpoints,
    // 4 digital (web, app, e-mail, chat) of 4 channels, 3 of them hers, 2
    // devices: 0.50·4/6 + 0.20·4/8 + 0.15·2/4 + 0.15·3/4
    // = 0.3333 + 0.1 + 0.075 + 0.1125 = 0.6208 → 62, connected.
    profile_cx.restart();
    profile_cx.wait_serving().await;
    let found =
        eventually(&profile_addr, &writer, &id, |p| p.digital_intensity.as_ref().is_some_and(|d| d.index != 59)).await;
    assert_intensity(&found, 62, [4.0 / 6.0, 0.5, 0.5, 0.75]);
    assert_eq!(found.lifecycle, profile::Lifecycle::Active as i32);
    same_second(found.last_touch_time.as_ref(), at(30));

    // The late delivery still belongs to the store visit's trace.
    telemetry.provider().force_flush().unwrap();
    let local = exporter.get_finished_spans().unwrap();
    let visit = local.iter().find(|s| s.name == "store visit").expect("the store visit span");
    let (visit_trace, _) = bytes(visit);
    chain
        .wait_for("the restarted profile's inbox, in the store visit's trace", |s| {
            s.service == "cx-profile"
                && s.kind == SpanKind::Server
                && s.name == "cx.outbox.v1.InboxService/Deliver"
                && s.trace_id == visit_trace
        })
        .await;

    // Journey's metrics count both batches; each was one call.
    let metrics = scrape(metrics_port).await;
    let ingests = r#"grpc_server_handled_total{grpc_service="cx.journey.v1.JourneyService",grpc_method="IngestTouchpoints",grpc_code="OK"} 2"#;
    assert!(metrics.lines().any(|line| line == ingests), "{metrics}");

    // Nothing twice either: journey holds six touchpoints, the profile no
    // more, once journey has nothing left to deliver.
    let all_delivered = |rows: &Vec<(String, String)>| rows.iter().all(|(status, _)| status == "delivered");
    cx_testkit::eventually("journey's outbox is delivered", || journey_outbox(&db, &tenant), all_delivered).await;
    let settled = eventually(&profile_addr, &writer, &id, |_| true).await;
    assert_intensity(&settled, 62, [4.0 / 6.0, 0.5, 0.5, 0.75]);
}
