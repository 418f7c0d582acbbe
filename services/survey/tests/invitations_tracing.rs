//! The invitation work of a delivery is a span of its own, in the
//! delivery's trace, with the counts as attributes; the consent check it
//! makes is a call under it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod invitations_common;

use cx_proto::outbox::v1::DeliverRequest;
use cx_proto::outbox::v1::inbox_service_client::InboxServiceClient;
use cx_runtime::propagation::ClientTraceLayer;
use cx_testkit::{Backend, authed};
use invitations_common::suite::{Suite, offered};
use invitations_common::{Rule, at_step, write_survey, write_trigger};
use opentelemetry::Value;
use opentelemetry::trace::SpanKind;
use prost::{Message, Name};
use tracing::Instrument;
use uuid::Uuid;

#[tokio::test]
async fn the_invitation_work_is_a_child_span_with_its_counts() {
    let (telemetry, exporter) = cx_testkit::capture_spans();
    let s = Suite::start(Backend::Postgres).await;
    let survey = write_survey(&s.conn, &s.t, cx_proto::common::v1::Channel::Email).await;
    write_trigger(&s.conn, &s.t, Uuid::now_v7(), survey, at_step("checkout")).await;
    let sampled_out = write_survey(&s.conn, &s.t, cx_proto::common::v1::Channel::Email).await;
    let never = Rule { sampling_rate: f64::MIN_POSITIVE, ..at_step("checkout") };
    write_trigger(&s.conn, &s.t, Uuid::now_v7(), sampled_out, never).await;
    let (yes, no) = (s.customer(Some(true)).await, s.customer(Some(false)).await);
    // Yes: invited, and sampled out by the second trigger; no: no consent
    // for the first, sampled out by the second.
    let message = cx_proto::journey::v1::TouchpointsOffered {
        touchpoints: vec![offered("a", yes, "checkout", 1), offered("b", no, "checkout", 1)],
    };
    let request = DeliverRequest {
        message_id: Uuid::now_v7().to_string(),
        kind: cx_proto::journey::v1::TouchpointsOffered::full_name(),
        payload: message.encode_to_vec(),
        source: "journey".into(),
        create_time: None,
        destination: "survey".into(),
    };
    let channel = tower::ServiceBuilder::new().layer(ClientTraceLayer::default()).service(s.survey().channel().await);
    let token = cx_testkit::service_token("journey", s.t.as_str());
    InboxServiceClient::new(channel)
        .deliver(authed(request, &token))
        .instrument(tracing::info_span!("journey outbox round"))
        .await
        .unwrap();
    telemetry.provider().force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let named = |name: &str, kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.name == name && s.span_kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} span {name}"))
    };
    let root = named("journey outbox round", SpanKind::Internal);
    let child_of = |parent: &opentelemetry_sdk::trace::SpanData, name: &str, kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.name == name && s.span_kind == kind && s.parent_span_id == parent.span_context.span_id())
            .unwrap_or_else(|| panic!("no {kind:?} span {name} under {}", parent.name))
    };
    // (Profile's outbox delivers its consent decisions to survey too.)
    let call = child_of(root, "cx.outbox.v1.InboxService/Deliver", SpanKind::Client);
    let inbox = child_of(call, "cx.outbox.v1.InboxService/Deliver", SpanKind::Server);
    // The work runs in the delivery's span: the consent check first, before
    // the transaction opens, then the invitations.
    let asked = child_of(inbox, "survey.consents", SpanKind::Internal);
    child_of(asked, "cx.profile.v1.ProfileInternalService/CheckConsents", SpanKind::Client);
    let invite = child_of(inbox, "survey.invite", SpanKind::Internal);
    assert_eq!(invite.span_context.trace_id(), root.span_context.trace_id());
    let attribute = |key: &str| {
        invite
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
            .unwrap_or_else(|| panic!("no {key}"))
    };
    // 2 touchpoints × 2 triggers = 4 matched: 1 invited; "b" for the first
    // trigger lacks consent; both for the second are sampled out.
    for (key, value) in [
        ("touchpoints", 2),
        ("matched", 4),
        ("invited", 1),
        ("suppressed.consent", 1),
        ("suppressed.sampling", 2),
        ("suppressed.budget", 0),
        ("suppressed.duplicate", 0),
        ("suppressed.expired", 0),
    ] {
        assert_eq!(attribute(key), Value::I64(value), "{key}");
    }
}
