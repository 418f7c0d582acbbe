//! A silent-connection flood under a low file-descriptor limit: the server
//! may open 256 files, and 600 connections arrive that never send a byte.
//! Health must answer throughout on a connection opened before, a new
//! client must be served within the handshake timeout and a little, silent
//! connections must be closed, and the accept loop must not spin.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::procfs::cpu_seconds;
use crate::server::{Backend, Server};
use crate::{Outcomes, Row};

const FILES: u32 = 256;
const HANDSHAKE: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(6);
/// How long after the window the last silent connection may stay open.
const LINGER: Duration = Duration::from_secs(20);
/// Of one core, over the window.
const MAX_CPU: f64 = 0.25;

pub async fn run(bin: &Path, connections: usize) -> anyhow::Result<Row> {
    let handshake = format!("{}s", HANDSHAKE.as_secs());
    let server = Server::start(bin, Backend::Sqlite, &[("CX_HANDSHAKE_TIMEOUT", handshake.as_str())]).await?;
    let pid = server.process.pid();
    let limit = format!("--nofile={FILES}:{FILES}");
    let limited = Command::new("prlimit").args(["--pid", &pid.to_string(), &limit]).status()?;
    anyhow::ensure!(limited.success(), "prlimit failed");
    let before = server.channel().await?;
    let addr = format!("127.0.0.1:{}", server.process.port());

    let cpu_start = cpu_seconds(pid).unwrap_or_default();
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..connections {
        // Past the backlog a connect hangs: 100 ms each at most.
        if let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(&addr)).await {
            silent.push(conn);
        }
    }
    let mut health = Outcomes::default();
    let mut new_client_served = None;
    // Bounded by the window.
    while started.elapsed() < WINDOW {
        health.add(&check(before.clone()).await);
        if new_client_served.is_none() && new_client(&server.process.addr).await {
            new_client_served = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu = (cpu_seconds(pid).unwrap_or_default() - cpu_start) / started.elapsed().as_secs_f64();
    // Connections past the file limit wait in the backlog and are accepted
    // (and timed out) as files free up: each batch takes a handshake timeout.
    let mut closed = 0;
    while started.elapsed() < WINDOW + LINGER {
        closed = silent.iter().filter(|c| closed_by_peer(c)).count();
        if closed == silent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_closed_after = started.elapsed();

    let mut row = Row::new("silent-connection flood, 256 file descriptors", Backend::Sqlite.name());
    row.attempts = health.total();
    row.unexpected = health.total() - health.count("OK")
        + u64::from(new_client_served.is_none())
        + u64::from(cpu > MAX_CPU)
        + u64::from(closed < silent.len());
    row.outcomes = health;
    row.note = format!(
        "{} silent connections opened, {closed} closed by the server {:.1} s after the flood began; health on an open connection every 100 ms; \
         a new client served after {}; server CPU {:.0} % of a core (at most {:.0} %)",
        silent.len(),
        all_closed_after.as_secs_f64(),
        new_client_served.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64())),
        cpu * 100.0,
        MAX_CPU * 100.0
    );
    Ok(row)
}

/// Health on an existing connection, as its outcome.
async fn check(channel: tonic::transport::Channel) -> String {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic::Request::new(tonic_health::pb::HealthCheckRequest { service: String::new() });
    match tokio::time::timeout(Duration::from_secs(1), client.check(request)).await {
        Ok(Ok(_)) => "OK".into(),
        Ok(Err(status)) => crate::grpc::outcome_of(&status),
        Err(_) => "timed out".into(),
    }
}

/// Whether a client connecting now gets health answered within a second.
async fn new_client(addr: &str) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(addr.to_owned()) else { return false };
    let endpoint = endpoint.connect_timeout(Duration::from_millis(500));
    match tokio::time::timeout(Duration::from_secs(1), endpoint.connect()).await {
        Ok(Ok(channel)) => check(channel).await == "OK",
        _ => false,
    }
}

/// Whether the server closed `conn` (what it sent before is read past).
fn closed_by_peer(conn: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    // Bounded: the server sends a settings frame at most, never 400 kB.
    for _ in 0..100 {
        match conn.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
    false
}
