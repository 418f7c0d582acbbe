//! The fault suite's fast subset, in CI, with the test build of `cx`: each
//! scenario at the small scale, each its own test so they run side by side.
//! The whole suite is `scripts/fault.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cx_fault::Row;
use cx_fault::report::table;
use cx_fault::scenarios::{Scale, auth, bad_input, crash, flood, forged, memory, postgres, replicas, sigterm};
use cx_fault::server::{Backend, Server};

const CX: &str = env!("CARGO_BIN_EXE_cx");
const SCALE: Scale = Scale::FAST;

fn bin() -> &'static Path {
    Path::new(CX)
}

fn assert_hold(rows: &[Row]) {
    let failing: Vec<_> = rows.iter().filter(|r| !r.holds()).cloned().collect();
    assert!(failing.is_empty(), "rows that do not hold:\n{}", table(&failing));
}

async fn auth_forgeries_and_bad_input(backend: Backend) {
    let server = Server::start(bin(), backend, &[]).await.unwrap();
    let mut rows = auth::run(&server, cx_testkit::SECRET).await.unwrap();
    rows.extend(forged::run(&server).await.unwrap());
    // Each case of the matrix and each sender of forgeries has its row.
    assert_eq!(rows.len(), 8 + 3);
    let input = bad_input::run(&server, SCALE.input).await.unwrap();
    // empty, random, raw bytes, NUL, huge, oversized repeated.
    assert_eq!(input.len(), 6, "{}", table(&input));
    rows.extend(input);
    assert_hold(&rows);
}

#[tokio::test]
async fn auth_forgeries_and_bad_input_hold_on_sqlite() {
    auth_forgeries_and_bad_input(Backend::Sqlite).await;
}

#[tokio::test]
async fn auth_forgeries_and_bad_input_hold_on_postgres() {
    auth_forgeries_and_bad_input(Backend::Postgres).await;
}

#[tokio::test]
async fn kill_9_during_streamed_ingest_loses_and_doubles_nothing() {
    let row = crash::run(bin(), SCALE.touchpoints).await.unwrap();
    // Every chunk was acknowledged at last.
    assert!(row.outcomes.count("OK") >= SCALE.touchpoints as u64 / 100, "{}", table(std::slice::from_ref(&row)));
    assert_hold(&[row]);
}

#[tokio::test]
async fn a_postgresql_crash_loses_no_acknowledged_write() {
    let row = postgres::run(bin(), SCALE.outage).await.unwrap();
    assert!(row.outcomes.count("OK") > 0, "{}", table(std::slice::from_ref(&row)));
    assert_hold(&[row]);
}

#[tokio::test]
async fn two_replicas_never_serve_stale_or_erased_data_across_a_redis_restart() {
    let rows = replicas::run(bin()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_hold(&rows);
}

#[tokio::test]
async fn sigterm_with_an_idle_stream_stops_promptly_and_loses_nothing() {
    let row = sigterm::run(bin()).await.unwrap();
    assert!(row.outcomes.count("OK") > 0, "{}", table(std::slice::from_ref(&row)));
    assert_hold(&[row]);
}

#[tokio::test]
async fn a_silent_connection_flood_under_a_low_file_limit_leaves_health_answering() {
    let row = flood::run(bin(), SCALE.connections).await.unwrap();
    assert!(row.attempts > 0, "{}", table(std::slice::from_ref(&row)));
    assert_hold(&[row]);
}

#[tokio::test]
async fn peak_memory_stays_within_four_times_the_request() {
    let rows = memory::run(bin(), SCALE.request_mb).await.unwrap();
    // Two shapes per size.
    assert_eq!(rows.len(), 2 * SCALE.request_mb.len());
    assert_hold(&rows);
}
