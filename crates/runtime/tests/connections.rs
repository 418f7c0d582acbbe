//! The accept loop under abuse: silent sockets are closed after the
//! handshake timeout, connections over the cap are closed on arrival, and
//! health keeps answering on the connections already open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cx_testkit::RunningServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SERVING: Option<i32> = Some(tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

async fn server(max_connections: usize, handshake: Duration) -> RunningServer {
    let mut args = cx_testkit::server_args();
    args.max_connections = max_connections;
    args.handshake_timeout = handshake;
    let server = RunningServer::start(Vec::new(), args).await;
    server.wait_serving().await;
    server
}

/// Sockets open in this process: the test's and, in process, the server's.
fn sockets() -> usize {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap();
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// How long until the server closes `stream` (EOF or reset), at most `limit`.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0_u8; 256];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            // The server's SETTINGS frame: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_silent_connection_and_a_half_handshake_are_closed_after_the_handshake_timeout() {
    let server = server(64, Duration::from_millis(300)).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    // The preface without the SETTINGS frame that must follow it.
    half.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();

    let silent_closed = closed_after(&mut silent, Duration::from_secs(3)).await.expect("silent connection left open");
    let half_closed = closed_after(&mut half, Duration::from_secs(3)).await.expect("half handshake left open");
    assert!(silent_closed >= Duration::from_millis(250), "closed too early: {silent_closed:?}");
    assert!(half_closed < Duration::from_secs(2), "{half_closed:?}");

    // A real client, idle longer than the timeout after its handshake, keeps working.
    let channel = server.channel().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(Some(answer.into_inner().status), SERVING);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_while_health_answers() {
    let server = server(4, Duration::from_secs(30)).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let mut held = Vec::new();
    let before = sockets();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The server accepts the three (cap reached: 1 channel + 3 silent): both
    // ends of each are sockets of this process then.
    let open = || std::future::ready(sockets());
    cx_testkit::eventually("the server accepts the three", open, |n| *n >= before + 6).await;

    let mut refused = 0;
    for _ in 0..10 {
        let mut extra = TcpStream::connect(server.addr).await.unwrap();
        if closed_after(&mut extra, Duration::from_secs(1)).await.is_some_and(|t| t < Duration::from_millis(500)) {
            refused += 1;
        }
        let answer = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
        assert_eq!(Some(answer.into_inner().status), SERVING);
    }
    assert_eq!(refused, 10, "every connection over the cap is closed at once");

    // Places free up when connections close: a new connection is served.
    held.clear();
    cx_testkit::eventually("a new connection is served", || server.health(""), |status| *status == SERVING).await;
    server.stop().await.unwrap();
}
