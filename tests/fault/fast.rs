//! The fault suite's fast subset, in CI: the auth matrix, forged internal
//! messages and bad input for every RPC, on SQLite and on PostgreSQL, and
//! two replicas across a Redis restart, with the test build of `cx`. The
//! whole suite is `scripts/fault.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cx_fault::report::table;
use cx_fault::scenarios::{auth, forged, replicas};
use cx_fault::server::{Backend, Server};

const CX: &str = env!("CARGO_BIN_EXE_cx");

async fn holds(backend: Backend) {
    let server = Server::start(Path::new(CX), backend, &[]).await.unwrap();
    let mut rows = auth::run(&server, cx_testkit::SECRET).await.unwrap();
    rows.extend(forged::run(&server).await.unwrap());
    // Each case of the matrix and each sender of forgeries has its row.
    assert_eq!(rows.len(), 8 + 3);
    let failing: Vec<_> = rows.iter().filter(|r| !r.holds()).cloned().collect();
    assert!(failing.is_empty(), "rows that do not hold:\n{}", table(&failing));
}

#[tokio::test]
async fn the_fast_subset_holds_on_sqlite() {
    holds(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_fast_subset_holds_on_postgres() {
    holds(Backend::Postgres).await;
}

#[tokio::test]
async fn two_replicas_never_serve_stale_or_erased_data_across_a_redis_restart() {
    let rows = replicas::run(Path::new(CX)).await.unwrap();
    eprintln!("{}", table(&rows));
    assert_eq!(rows.len(), 2);
    let failing: Vec<_> = rows.iter().filter(|r| !r.holds()).cloned().collect();
    assert!(failing.is_empty(), "rows that do not hold:\n{}", table(&rows));
}
