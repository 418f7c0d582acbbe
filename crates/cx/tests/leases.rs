//! Jobs run once per deployment: two `cx serve profile` processes on one
//! PostgreSQL, the lifecycle sweep's lease held by one; killed (SIGKILL, no
//! release), the other takes the sweep over when the lease runs out; stopped
//! (SIGTERM), the lease is released.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cx_runtime::store::Db;
use cx_testkit::TestDb;
use cx_testkit::process::{CxProcess, free_port};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

/// The holder of the sweep's lease (`<host>/<pid>/<random>`) while it runs.
async fn sweep_holder(conn: &Db) -> Option<String> {
    let sql = "SELECT holder FROM profile.job_leases WHERE job = 'lifecycle-sweep' AND expires_at > now()";
    let row = conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.ok()??;
    row.try_get("", "holder").ok()
}

fn pid_of(holder: &str) -> u32 {
    holder.split('/').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_killed_sweep_runner_is_replaced_and_a_stopped_one_hands_over() {
    let db = TestDb::create().await.unwrap();
    let env = [
        ("CX_DATABASE_URL", db.url.as_str()),
        ("CX_NOT_DEPLOYED", "journey,survey,segmentation,kpi"),
        ("CX_JOB_LEASE", "2s"),
    ];
    let mut replicas = [
        CxProcess::serve(env!("CARGO_BIN_EXE_cx"), "profile", free_port(), &env),
        CxProcess::serve(env!("CARGO_BIN_EXE_cx"), "profile", free_port(), &env),
    ];
    for replica in &replicas {
        replica.wait_serving().await;
    }
    let conn = Db::from(Database::connect(&db.url).await.unwrap());
    let holder =
        cx_testkit::eventually("one replica holds the sweep", || sweep_holder(&conn), Option::is_some).await.unwrap();
    let first = replicas.iter().position(|r| r.pid() == pid_of(&holder)).expect("the holder is one of the two");
    // Over three lease lengths the holder renews and nobody else takes it.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(sweep_holder(&conn).await.as_deref(), Some(holder.as_str()), "the lease stays with its holder");
    }

    // SIGKILL: the lease is not released; it runs out within 2 s and the
    // other replica, trying every 2/3 s, takes it.
    replicas[first].kill();
    let second = &replicas[1 - first];
    let taken = cx_testkit::eventually_within(
        Duration::from_secs(10),
        "the other replica takes the sweep over",
        || sweep_holder(&conn),
        |h| h.as_deref().is_some_and(|h| pid_of(h) == second.pid()),
    )
    .await
    .unwrap();
    assert_ne!(taken, holder);

    // SIGTERM: the job ends and its lease is given up, not left to run out.
    second.signal("TERM");
    let released = "SELECT count(*) AS n FROM profile.job_leases WHERE job = 'lifecycle-sweep'";
    let count = || async {
        let row = conn.query_one_raw(Statement::from_string(DbBackend::Postgres, released)).await.unwrap().unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    cx_testkit::eventually_within(Duration::from_secs(10), "the stopped replica releases the lease", count, |n| {
        *n == 0
    })
    .await;
}
