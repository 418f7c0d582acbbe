//! One trace for a batch ingest: the client's call, the journey handler, its
//! call to the profile service, and the outbox delivery of the customers'
//! activity with the profile service's inbox handling it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{email, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_runtime::propagation::ClientTraceLayer;
use cx_testkit::authed;
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::SpanData;
use tracing::Instrument;

#[tokio::test]
async fn a_batch_ingest_is_one_trace_across_journey_profile_and_the_outbox() {
    let (telemetry, exporter) = cx_testkit::capture_spans();
    let s = common::suite().await;
    let channel = tower::ServiceBuilder::new().layer(ClientTraceLayer::default()).service(s.journey().channel().await);
    let mut journey = JourneyServiceClient::new(channel);
    let batch = vec![
        touchpoint("t1", email("tracy@example.com"), Channel::Web, Initiator::Pull, 2),
        touchpoint("t2", email("tracy@example.com"), Channel::Phone, Initiator::Push, 1),
    ];
    journey
        .ingest_touchpoints(authed(
            pb::IngestTouchpointsRequest { touchpoints: batch, all_or_nothing: true },
            &s.writer,
        ))
        .instrument(tracing::info_span!("call centre wrap-up"))
        .await
        .unwrap();
    // The delivery happens in the background: wait until the profile shows it.
    let mut profiles = s.profile_client().await;
    let lookup = cx_proto::profile::v1::ResolveProfileRequest {
        identity: Some(cx_proto::profile::v1::Identity {
            kind: cx_proto::profile::v1::IdentityKind::Email as i32,
            value: "tracy@example.com".into(),
        }),
        create_if_missing: false,
    };
    let id = profiles.resolve_profile(authed(lookup, &s.writer)).await.unwrap().into_inner().profile.unwrap().id;
    s.eventually_profile(&id, |p| p.last_touch_time.is_some()).await;
    telemetry.provider().force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let find = |name: &str, kind: SpanKind| -> &SpanData {
        spans.iter().find(|s| s.name == name && s.span_kind == kind).unwrap_or_else(|| {
            panic!("no {kind:?} span {name} in {:?}", spans.iter().map(|s| (&s.name, &s.span_kind)).collect::<Vec<_>>())
        })
    };
    let root = find("call centre wrap-up", SpanKind::Internal);
    let ingest_client = find("cx.journey.v1.JourneyService/IngestTouchpoints", SpanKind::Client);
    let ingest_server = find("cx.journey.v1.JourneyService/IngestTouchpoints", SpanKind::Server);
    let resolve_client = find("cx.profile.v1.ProfileService/BatchResolveProfiles", SpanKind::Client);
    let resolve_server = find("cx.profile.v1.ProfileService/BatchResolveProfiles", SpanKind::Server);
    let deliver = find("outbox deliver cx.profile.v1.RecordActivityRequest", SpanKind::Producer);
    let inbox_client = spans
        .iter()
        .find(|s| {
            s.name == "cx.outbox.v1.InboxService/Deliver"
                && s.span_kind == SpanKind::Client
                && s.parent_span_id == deliver.span_context.span_id()
        })
        .expect("the delivery's gRPC call");
    let inbox_server = spans
        .iter()
        .find(|s| {
            s.name == "cx.outbox.v1.InboxService/Deliver"
                && s.span_kind == SpanKind::Server
                && s.parent_span_id == inbox_client.span_context.span_id()
        })
        .expect("the profile service's inbox handling it");

    let trace = root.span_context.trace_id();
    let chain: [(&SpanData, SpanId, &str); 7] = [
        (ingest_client, root.span_context.span_id(), "client call under the caller's span"),
        (ingest_server, ingest_client.span_context.span_id(), "journey continues the client"),
        (resolve_client, ingest_server.span_context.span_id(), "journey calls profile from its handler"),
        (resolve_server, resolve_client.span_context.span_id(), "profile continues journey's call"),
        (deliver, ingest_server.span_context.span_id(), "the delivery descends from the request that wrote it"),
        (inbox_client, deliver.span_context.span_id(), "the delivery's call"),
        (inbox_server, inbox_client.span_context.span_id(), "profile's inbox continues it"),
    ];
    for (span, parent, why) in chain {
        assert_eq!(span.span_context.trace_id(), trace, "{}: {why}", span.name);
        assert_eq!(span.parent_span_id, parent, "{}: {why}", span.name);
    }
}
