//! One trace from client to handler: the client's span travels as
//! `traceparent` and the server's span is its child, named after the method.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_runtime::propagation::ClientTraceLayer;
use cx_testkit::{RunningServer, TestDb, authed, token, unique_tenant};
use opentelemetry::Value;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SpanData;
use tracing::Instrument;

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

#[tokio::test]
async fn a_call_is_one_trace_from_client_span_to_server_span() {
    let (telemetry, exporter) = cx_testkit::capture_spans();

    let db = TestDb::create().await.unwrap();
    let ctx = cx_testkit::context(cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir()), None);
    let server = RunningServer::start(vec![cx_profile::build(&ctx).await.unwrap()], cx_testkit::server_args()).await;
    server.wait_serving().await;

    let channel = tower::ServiceBuilder::new().layer(ClientTraceLayer::default()).service(server.channel().await);
    let mut client = ProfileServiceClient::new(channel);
    let writer = token(&unique_tenant("trace"), Role::Writer);
    let request = pb::ResolveProfileRequest {
        identity: Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: "t@example.com".into() }),
        create_if_missing: true,
    };
    client
        .resolve_profile(authed(request, &writer))
        .instrument(tracing::info_span!("web shop checkout"))
        .await
        .unwrap();
    server.stop().await.unwrap();
    telemetry.provider().force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let named = |name: &str, kind: SpanKind| {
        spans.iter().find(|s| s.name == name && s.span_kind == kind).unwrap_or_else(|| {
            panic!("no {kind:?} span {name} in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
        })
    };
    let root = named("web shop checkout", SpanKind::Internal);
    let client_span = named("cx.profile.v1.ProfileService/ResolveProfile", SpanKind::Client);
    let server_span = named("cx.profile.v1.ProfileService/ResolveProfile", SpanKind::Server);

    let trace = root.span_context.trace_id();
    assert_eq!(client_span.span_context.trace_id(), trace);
    assert_eq!(server_span.span_context.trace_id(), trace);
    assert_eq!(client_span.parent_span_id, root.span_context.span_id());
    assert_eq!(
        server_span.parent_span_id,
        client_span.span_context.span_id(),
        "the server continues the client's span"
    );
    assert_eq!(attribute(server_span, "rpc.system"), Some(&Value::from("grpc")));
    assert_eq!(attribute(server_span, "rpc.service"), Some(&Value::from("cx.profile.v1.ProfileService")));
    assert_eq!(attribute(server_span, "rpc.method"), Some(&Value::from("ResolveProfile")));
    assert_eq!(attribute(server_span, "rpc.grpc.status_code"), Some(&Value::I64(0)));
    assert_eq!(attribute(server_span, "enduser.id"), Some(&Value::from("test")));
}
