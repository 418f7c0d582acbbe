//! The `cx` binary as operators run it: a separate process, real signals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_testkit::process::{CxProcess, free_port};
use cx_testkit::{TestDb, authed, unique_tenant};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};

/// A client of `cx`'s profile service, a writer of a new tenant, and the
/// profile it made for one email address.
async fn first_profile(
    cx: &CxProcess,
    tenant: &str,
) -> ((ProfileServiceClient<tonic::transport::Channel>, String), pb::Profile) {
    let mut client = ProfileServiceClient::connect(cx.addr.clone()).await.unwrap();
    let writer = cx_testkit::token(&unique_tenant(tenant), Role::Writer);
    let request = pb::ResolveProfileRequest {
        identity: Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: format!("{tenant}@example.com") }),
        create_if_missing: true,
    };
    let profile = client.resolve_profile(authed(request, &writer)).await.unwrap().into_inner().profile.unwrap();
    ((client, writer), profile)
}

/// `cx serve all` on PostgreSQL: the five services share one pool of
/// CX_DB_MAX_CONNECTIONS, each transaction naming its service's schema.
#[tokio::test]
async fn serve_all_shares_one_pool_of_the_configured_size() {
    let db = TestDb::create().await.unwrap();
    let cx = CxProcess::serve(
        env!("CARGO_BIN_EXE_cx"),
        "all",
        free_port(),
        &[("CX_DATABASE_URL", &db.url), ("CX_DB_MAX_CONNECTIONS", "4")],
    );
    cx.wait_serving().await;
    let (_, profile) = first_profile(&cx, "shared").await;

    // The profile is in profile's schema, and every service migrated its own.
    let conn = Database::connect(&db.url).await.unwrap();
    let count = |sql: String| {
        let conn = conn.clone();
        async move {
            let row = conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(count(format!("SELECT count(*) FROM profile.customers WHERE id = '{}'", profile.id)).await, 1);
    let migrated = "SELECT count(DISTINCT table_schema) FROM information_schema.tables \
                    WHERE table_name = 'seaql_migrations'";
    assert_eq!(count(migrated.to_owned()).await, 5, "profile, journey, survey, segmentation and kpi");
    conn.close().await.unwrap();

    // One application, within its budget (the test's own session is gone).
    let sessions = db.sessions().await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].0, "cx-suite");
    assert!(sessions[0].1 <= 4, "{sessions:?}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_calls_finish_then_exits_zero() {
    let db = TestDb::create().await.unwrap();
    let mut cx = CxProcess::serve(
        env!("CARGO_BIN_EXE_cx"),
        "profile",
        free_port(),
        &[("CX_DATABASE_URL", &db.url), ("CX_NOT_DEPLOYED", "journey,survey,segmentation,kpi")],
    );
    cx.wait_serving().await;
    let ((client, writer), profile) = first_profile(&cx, "sigterm").await;

    // A row lock held by the test keeps one update in flight.
    let conn = Database::connect(&db.url).await.unwrap();
    let lock = conn.begin().await.unwrap();
    let sql = format!("SELECT 1 FROM profile.customers WHERE id = '{}' FOR UPDATE", profile.id);
    lock.execute_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap();
    let in_flight = {
        let (mut client, writer, id) = (client.clone(), writer.clone(), profile.id.clone());
        tokio::spawn(async move {
            let update = pb::UpdateProfileRequest {
                profile: Some(pb::Profile { id, persona: "finished".into(), ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["persona".into()] }),
            };
            client.update_profile(authed(update, &writer)).await
        })
    };
    cx_testkit::eventually("the update waits on the row lock", || db.lock_waiters(), |n| *n == 1).await;

    cx.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cx.try_wait().is_none(), "cx waits for the in-flight call");
    lock.commit().await.unwrap();

    let updated = in_flight.await.unwrap().unwrap().into_inner().profile.unwrap();
    assert_eq!(updated.persona, "finished");
    let exit = cx_testkit::eventually("cx exits", || std::future::ready(cx.try_wait()), Option::is_some).await;
    assert_eq!(exit.map(|s| s.code()), Some(Some(0)), "cx exits cleanly after draining");
}

/// With CX_SHUTDOWN_DELAY, a stopping process says NOT_SERVING at once but
/// goes on answering calls for the delay, so callers have time to move away;
/// only then does it stop accepting and exit.
#[tokio::test]
async fn sigterm_keeps_serving_not_ready_for_the_shutdown_delay() {
    let db = TestDb::create().await.unwrap();
    let cx = CxProcess::serve(
        env!("CARGO_BIN_EXE_cx"),
        "profile",
        free_port(),
        &[
            ("CX_DATABASE_URL", &db.url),
            ("CX_NOT_DEPLOYED", "journey,survey,segmentation,kpi"),
            ("CX_SHUTDOWN_DELAY", "4s"),
        ],
    );
    cx.wait_serving().await;
    let mut client = ProfileServiceClient::connect(cx.addr.clone()).await.unwrap();
    let writer = cx_testkit::token(&unique_tenant("delay"), Role::Writer);
    let resolve = |value: &str| pb::ResolveProfileRequest {
        identity: Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: value.into() }),
        create_if_missing: true,
    };
    let signalled = std::time::Instant::now();
    cx.signal("TERM");
    let health = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cx")).args(["health", "--addr", &cx.addr]).output();
        std::future::ready(out.unwrap().status.success())
    };
    cx_testkit::eventually_within(Duration::from_secs(1), "health says NOT_SERVING", health, |ok| !ok).await;
    // Still answering, on the open connection and on a new one.
    client.resolve_profile(authed(resolve("during@example.com"), &writer)).await.unwrap();
    let mut fresh = ProfileServiceClient::connect(cx.addr.clone()).await.unwrap();
    fresh.resolve_profile(authed(resolve("fresh@example.com"), &writer)).await.unwrap();
    assert!(signalled.elapsed() < Duration::from_millis(3500), "the calls were made within the delay");
    // Then it stops accepting: new connections are refused.
    let refused = || std::future::ready(std::net::TcpStream::connect(("127.0.0.1", cx.port())).is_err());
    cx_testkit::eventually_within(Duration::from_secs(10), "the port closes after the delay", refused, |r| *r).await;
    assert!(signalled.elapsed() >= Duration::from_secs(4), "not before the delay");
}
