//! Work stops when the caller has gone: profiles created for a batch of
//! identities whose deadline passed before the commit are not kept, so a
//! client never sees DEADLINE_EXCEEDED for profiles that were created.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_testkit::{RunningServer, TestDb, authed, token, unique_tenant};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tonic::Code;

const CALLS: u64 = 30;
const SIZE: i64 = 20;

#[tokio::test]
async fn identities_resolved_past_the_deadline_create_no_profile() {
    let db = TestDb::create().await.unwrap();
    let store = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let ctx = cx_testkit::context(store, Some(cx_testkit::redis_url()));
    let module = cx_profile::build(&ctx).await.unwrap();
    let server = RunningServer::start(vec![module], cx_testkit::server_args()).await;
    server.wait_serving().await;
    let mut client = ProfileServiceClient::new(server.channel().await);
    let tenant = unique_tenant("deadline");
    let writer = token(&tenant, Role::Writer);

    let mut answers = Vec::new();
    for i in 0..CALLS {
        let identities = (0..SIZE)
            .map(|k| pb::Identity { kind: pb::IdentityKind::Email as i32, value: format!("b{i}-{k}@example.com") })
            .collect();
        let mut request = authed(pb::BatchResolveProfilesRequest { identities, create_if_missing: true }, &writer);
        // 1 to 20 ms.
        request.set_timeout(Duration::from_millis(1 + i * 19 / (CALLS - 1)));
        answers.push((i, client.batch_resolve_profiles(request).await.map(|_| ()).map_err(|e| e.code())));
    }
    // Let the server finish whatever it still had in hand.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let conn = Database::connect(&db.url).await.unwrap();
    let sql = format!(
        "SELECT split_part(value, '-', 1) AS call, count(*) AS n FROM profile.identities \
         WHERE tenant_id = '{tenant}' GROUP BY 1"
    );
    let rows = conn.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap();
    let stored: HashMap<String, i64> =
        rows.iter().map(|r| (r.try_get::<String>("", "call").unwrap(), r.try_get::<i64>("", "n").unwrap())).collect();
    let (mut created, mut expired, mut wrong) = (0, 0, Vec::new());
    for (i, answer) in &answers {
        let n = stored.get(&format!("b{i}")).copied().unwrap_or(0);
        match answer {
            Ok(()) if n == SIZE => created += 1,
            Err(Code::DeadlineExceeded | Code::Cancelled) if n == 0 => expired += 1,
            other => wrong.push(format!("call {i}: {other:?} with {n} of {SIZE} identities stored")),
        }
    }
    eprintln!("batch resolutions: {created} acknowledged and created, {expired} expired and not created");
    assert_eq!(wrong, Vec::<String>::new());
    assert_eq!(created + expired, CALLS);
    assert!(expired > 0, "a 1 ms deadline cannot be met");
    server.stop().await.unwrap();
}
