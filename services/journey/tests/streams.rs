//! Streams are calls like the others: admission control counts them until
//! they end, a silent one is closed after the idle timeout, one whose token
//! expires is closed, and none holds a shutdown for its grace period.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Suite, email, suite, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_runtime::auth::{Claims, Keys, unix_now};
use cx_runtime::config::ServerArgs;
use cx_testkit::{RunningServer, authed};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

/// A second journey server on the suite's database, with `args`.
async fn journey_with(s: &Suite, args: ServerArgs) -> RunningServer {
    s.start_service("journey", RunningServer::bind().await, args).await
}

fn chunk(id: &str) -> pb::StreamTouchpointsRequest {
    let tp = touchpoint(id, email(&format!("{id}@example.com")), Channel::Web, Initiator::Pull, 1);
    pb::StreamTouchpointsRequest { touchpoints: vec![tp] }
}

/// An open stream whose first chunk was acknowledged.
struct Open {
    send: mpsc::Sender<pb::StreamTouchpointsRequest>,
    acks: Streaming<pb::StreamTouchpointsResponse>,
}

async fn open(server: &RunningServer, token: &str, first: &str) -> Result<Open, tonic::Status> {
    let mut client = JourneyServiceClient::new(server.channel().await);
    let (send, chunks) = mpsc::channel(4);
    send.send(chunk(first)).await.unwrap();
    let mut acks = client.stream_touchpoints(authed(ReceiverStream::new(chunks), token)).await?.into_inner();
    let ack = acks.message().await?.expect("first chunk acknowledged");
    assert_eq!(ack.accepted, 1);
    Ok(Open { send, acks })
}

async fn stored(s: &Suite, id: &str) -> i64 {
    let sql = s.sql("journey").await;
    common::count(&sql, &format!("SELECT count(*) FROM touchpoints WHERE tenant_id = '{}' AND id = '{id}'", s.tenant))
        .await
}

#[tokio::test]
async fn streams_are_shed_by_admission_control_like_unary_calls() {
    let s = suite().await;
    let mut args = cx_testkit::server_args();
    args.max_concurrent_requests = 3;
    let server = journey_with(&s, args).await;

    let mut open_streams = Vec::new();
    for i in 0..3 {
        open_streams.push(open(&server, &s.writer, &format!("shed-{i}")).await.unwrap());
    }
    // The three streams hold every permit: a fourth stream and a unary call are refused.
    let refused = open(&server, &s.writer, "shed-3").await.err().expect("fourth stream admitted");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let mut client = JourneyServiceClient::new(server.channel().await);
    let unary = pb::RecordTouchpointRequest { touchpoint: chunk("shed-unary").touchpoints.pop() };
    let refused = client.record_touchpoint(authed(unary.clone(), &s.writer)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);

    // A stream that ends gives its permit back.
    let Open { send, mut acks } = open_streams.pop().unwrap();
    drop(send);
    assert!(acks.message().await.unwrap().is_none());
    client.record_touchpoint(authed(unary, &s.writer)).await.unwrap();
    assert_eq!(stored(&s, "shed-3").await, 0);
    drop(open_streams);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_stream_silent_past_the_idle_timeout_is_closed() {
    let s = suite().await;
    let mut args = cx_testkit::server_args();
    args.stream_idle_timeout = Duration::from_millis(500);
    let server = journey_with(&s, args).await;

    let Open { send, mut acks } = open(&server, &s.writer, "idle-0").await.unwrap();
    let start = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), acks.message()).await.expect("idle stream left open");
    let elapsed = start.elapsed();
    assert_eq!(closed.unwrap_err().code(), Code::DeadlineExceeded);
    assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    drop(send);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_chunk_sent_after_the_token_expired_is_refused_and_not_stored() {
    let s = suite().await;
    // Expired three seconds ago: still inside the five seconds of leeway when the stream opens.
    let exp = unix_now() - 3;
    let claims =
        Claims { tenant: s.tenant.clone(), roles: vec!["writer".into()], sub: "expiring".into(), exp, iat: None };
    let token = Keys::hs256(cx_testkit::SECRET.as_bytes()).signer.unwrap().sign_claims(&claims).unwrap();

    let Open { send, mut acks } = open(s.journey(), &token, "exp-0").await.unwrap();
    while unix_now() <= exp + 6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = send.send(chunk("exp-1")).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), acks.message()).await.expect("stream left open");
    assert_eq!(answer.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(stored(&s, "exp-0").await, 1);
    assert_eq!(stored(&s, "exp-1").await, 0, "a chunk sent after the token expired was stored");
}

#[tokio::test]
async fn shutdown_ends_an_idle_stream_instead_of_waiting_for_the_grace_period() {
    let s = suite().await;
    let mut args = cx_testkit::server_args();
    args.shutdown_grace = Duration::from_secs(10);
    let server = journey_with(&s, args).await;

    let Open { send, mut acks } = open(&server, &s.writer, "stop-0").await.unwrap();
    let start = Instant::now();
    let stopping = server.begin_stop();
    let ended = tokio::time::timeout(Duration::from_secs(5), acks.message()).await.expect("stream left open");
    assert_eq!(ended.unwrap_err().code(), Code::Unavailable);
    tokio::time::timeout(Duration::from_secs(5), stopping).await.expect("shutdown waited").unwrap().unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(3), "shutdown took {elapsed:?} with an idle stream open");
    drop(send);
}
