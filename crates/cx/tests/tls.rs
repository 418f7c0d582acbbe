//! TLS on the gRPC side: a `cx serve profile` process that speaks TLS only
//! and asks its clients for a certificate (mutual TLS), reached by `cx
//! health`, by another service's peer channel, and exporting its traces to
//! an OTLP collector over TLS (spans and the rpc.server.duration metric). Certificates are made by the test (rcgen).

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The e2e suite's collector; this file uses a part of it.
#[allow(dead_code)]
#[path = "../../../tests/e2e/collector.rs"]
mod collector;

use std::process::Command;

use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_runtime::peers::{PeerArgs, PeerTlsArgs, Peers};
use cx_testkit::process::{CxProcess, free_port};
use cx_testkit::tls::TestPki;
use cx_testkit::{authed, unique_tenant};

const CX: &str = env!("CARGO_BIN_EXE_cx");

/// `cx health` of the process at `port` with the given environment.
fn health(port: u16, env: &[(&str, &str)]) -> bool {
    let out = Command::new(CX)
        .args(["health", "--addr", &format!("https://127.0.0.1:{port}"), "--timeout", "3s"])
        .env("CX_TLS_SERVER_NAME", "localhost")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    out.status.success()
}

#[tokio::test]
async fn a_tls_only_server_with_client_certificates_is_reached_by_health_peers_and_traced_over_tls() {
    let pki = TestPki::new();
    let collector = collector::Collector::start_tls(
        &std::fs::read(&pki.server_cert).unwrap(),
        &std::fs::read(&pki.server_key).unwrap(),
    )
    .await;
    let port = free_port();
    let (ca, cert, key) =
        (pki.ca.to_str().unwrap(), pki.server_cert.to_str().unwrap(), pki.server_key.to_str().unwrap());
    let (client_cert, client_key) = (pki.client_cert.to_str().unwrap(), pki.client_key.to_str().unwrap());
    let profile = CxProcess::serve(
        CX,
        "profile",
        port,
        &[
            ("CX_TLS_CERT_FILE", cert),
            ("CX_TLS_KEY_FILE", key),
            ("CX_TLS_CLIENT_CA_FILE", ca),
            ("CX_NOT_DEPLOYED", "journey,survey,segmentation,kpi"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let mutual =
        [("CX_PEER_CA_FILE", ca), ("CX_PEER_CLIENT_CERT_FILE", client_cert), ("CX_PEER_CLIENT_KEY_FILE", client_key)];
    let serving = || std::future::ready(health(port, &mutual));
    cx_testkit::eventually("the TLS server reports SERVING", serving, |up| *up).await;
    // Without a client certificate, or without the CA, or in plain text: refused.
    assert!(!health(port, &[("CX_PEER_CA_FILE", ca)]), "no client certificate");
    assert!(!health(port, &[("CX_PEER_CLIENT_CERT_FILE", client_cert), ("CX_PEER_CLIENT_KEY_FILE", client_key)]));
    let plain = Command::new(CX).args(["health", "--addr", &format!("http://127.0.0.1:{port}")]).output().unwrap();
    assert!(!plain.status.success(), "plain HTTP/2 is refused");

    // Another service's channel to it: https, the CA and the pod's certificate.
    let tls = PeerTlsArgs {
        ca_file: Some(pki.ca.clone()),
        client_cert_file: Some(pki.client_cert.clone()),
        client_key_file: Some(pki.client_key.clone()),
    };
    let peers = PeerArgs { tls, ..PeerArgs::default() }.with("profile", format!("https://localhost:{port}"));
    const REGISTRY: cx_runtime::registry::Registry = cx_runtime::registry::Registry::new(&[cx_profile::SERVICE]);
    let channel = Peers::resolve(&peers, &REGISTRY, None).unwrap().traced("profile").unwrap();
    let writer = cx_testkit::token(&unique_tenant("tls"), Role::Writer);
    let request = pb::ResolveProfileRequest {
        identity: Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: "tls@example.com".into() }),
        create_if_missing: true,
    };
    let resolved = ProfileServiceClient::new(channel).resolve_profile(authed(request, &writer)).await.unwrap();
    assert!(resolved.into_inner().profile.is_some());

    // Its spans reach the collector over TLS.
    collector
        .wait_for("cx-profile's ResolveProfile", |s| s.service == "cx-profile" && s.name.ends_with("ResolveProfile"))
        .await;
    // And the call's rpc.server.duration, with the semantic conventions' attributes.
    let resolve = |p: &collector::ExportedPoint| {
        p.metric == "rpc.server.duration"
            && p.attributes.iter().any(|(k, v)| k == "rpc.method" && v == "ResolveProfile")
    };
    let point = collector.wait_for_point("rpc.server.duration of ResolveProfile", resolve).await;
    assert_eq!((point.service.as_str(), point.unit.as_str()), ("cx-profile", "ms"));
    let mut attributes = point.attributes.clone();
    attributes.sort();
    let expected = [
        ("rpc.grpc.status_code", "0"),
        ("rpc.method", "ResolveProfile"),
        ("rpc.service", "cx.profile.v1.ProfileService"),
        ("rpc.system", "grpc"),
    ];
    assert_eq!(attributes, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
    drop(profile);
}
