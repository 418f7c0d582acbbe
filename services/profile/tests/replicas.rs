//! Two replicas of the profile service sharing one PostgreSQL database and a
//! private Redis that stops, is killed and comes back with its data (a
//! persistent Redis, a failover): after a write or an erasure is
//! acknowledged, no replica serves the earlier value for more than 1 s, and
//! an erased customer's data is never served again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_testkit::redis_server::PrivateRedis;
use cx_testkit::{RunningServer, TestDb, authed, token, unique_tenant};
use tonic::Code;
use tonic::transport::Channel;

type Client = ProfileServiceClient<Channel>;

/// The bound the issue sets: no stale read once this has passed since the ack.
const BOUND: Duration = Duration::from_secs(1);

/// One replica: its own process state (cache connection, epoch), the shared
/// database and Redis.
async fn replica(db: &TestDb, redis: &PrivateRedis) -> (RunningServer, Client) {
    let store = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let ctx = cx_testkit::context(store, Some(redis.url()));
    let module = cx_profile::build(&ctx).await.unwrap();
    let server = RunningServer::start(vec![module], cx_testkit::server_args()).await;
    server.wait_serving().await;
    let client = ProfileServiceClient::new(server.channel().await);
    (server, client)
}

/// Two replicas on one database and one private Redis, and a writer of a
/// new tenant.
struct Pair {
    redis: PrivateRedis,
    db: TestDb,
    a: RunningServer,
    client_a: Client,
    b: RunningServer,
    client_b: Client,
    tenant: String,
    writer: String,
}

async fn pair() -> Pair {
    let redis = PrivateRedis::start().await;
    let db = TestDb::create().await.unwrap();
    let (a, client_a) = replica(&db, &redis).await;
    let (b, client_b) = replica(&db, &redis).await;
    let tenant = unique_tenant("replicas");
    let writer = token(&tenant, Role::Writer);
    Pair { redis, db, a, client_a, b, client_b, tenant, writer }
}

fn email(value: &str) -> Option<pb::Identity> {
    Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: value.into() })
}

async fn create(client: &mut Client, writer: &str, value: &str) -> String {
    let request = pb::ResolveProfileRequest { identity: email(value), create_if_missing: true };
    client.resolve_profile(authed(request, writer)).await.unwrap().into_inner().profile.unwrap().id
}

async fn set_persona(client: &mut Client, writer: &str, id: &str, persona: &str) -> Result<(), tonic::Status> {
    let request = pb::UpdateProfileRequest {
        profile: Some(pb::Profile { id: id.into(), persona: persona.into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["persona".into()] }),
    };
    client.update_profile(authed(request, writer)).await.map(|_| ())
}

async fn get(client: &mut Client, reader: &str, id: &str) -> Result<pb::Profile, tonic::Status> {
    let request = pb::GetProfileRequest { id: id.into(), as_of: None };
    Ok(client.get_profile(authed(request, reader)).await?.into_inner().profile.unwrap())
}

/// The raw bytes Redis holds for the profile `id` of `tenant`.
async fn cached_bytes(redis: &PrivateRedis, tenant: &str, id: &str) -> Option<Vec<u8>> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("GET").arg(format!("cx:{{{tenant}}}:profile:{id}")).query_async(&mut conn).await.unwrap()
}

fn mentions(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Reads `id` on both replicas until Redis holds a value mentioning
/// `needle` (the first reads after a start find the epoch unchecked).
async fn warm(
    clients: &mut [&mut Client; 2],
    reader: &str,
    redis: &PrivateRedis,
    tenant: &str,
    id: &str,
    needle: &str,
) {
    let read_both = || {
        let mut clients: Vec<Client> = clients.iter().map(|c| (**c).clone()).collect();
        async move {
            for client in &mut clients {
                get(client, reader, id).await.unwrap();
            }
            cached_bytes(redis, tenant, id).await.map(|b| String::from_utf8_lossy(&b).into_owned())
        }
    };
    let what = format!("Redis holds the profile with {needle}");
    cx_testkit::eventually(&what, read_both, |cached| cached.as_ref().is_some_and(|c| c.contains(needle))).await;
}

/// Reads on `client` every 10 ms for `span` after `acked`: (reads, stale
/// reads, stale reads later than [`BOUND`] after the ack).
async fn poll(
    client: &mut Client,
    reader: &str,
    id: &str,
    acked: Instant,
    span: Duration,
    stale: impl Fn(&Result<pb::Profile, tonic::Status>) -> bool,
) -> (usize, usize, usize) {
    let (mut reads, mut stale_reads, mut late) = (0, 0, 0);
    while acked.elapsed() < span {
        let started = acked.elapsed();
        let read = get(client, reader, id).await;
        reads += 1;
        if stale(&read) {
            stale_reads += 1;
            if started > BOUND {
                late += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (reads, stale_reads, late)
}

#[tokio::test]
async fn a_write_made_while_redis_is_down_is_served_by_every_replica_when_it_returns_with_old_data() {
    let Pair { mut redis, db: _db, a, mut client_a, b, mut client_b, tenant, writer } = pair().await;
    let id = create(&mut client_a, &writer, "rita.replica@example.com").await;
    set_persona(&mut client_a, &writer, &id, "before-outage").await.unwrap();
    warm(&mut [&mut client_a, &mut client_b], &writer, &redis, &tenant, &id, "before-outage").await;

    redis.stop();
    set_persona(&mut client_a, &writer, &id, "after-outage").await.expect("acknowledged with Redis down");
    let acked = Instant::now();
    redis.restart().await;
    // Redis came back with the value from before the write.
    let kept = cached_bytes(&redis, &tenant, &id).await.unwrap();
    assert!(
        mentions(&kept, "before-outage"),
        "the restarted Redis must hold the old value for this test to mean anything"
    );

    let (reads, stale, late) = poll(&mut client_b, &writer, &id, acked, Duration::from_secs(3), |read| {
        read.as_ref().unwrap().persona != "after-outage"
    })
    .await;
    eprintln!("replica B after the write: {reads} reads, {stale} stale, {late} stale after 1 s");
    assert_eq!(late, 0, "replica B served the old persona more than 1 s after the write was acknowledged");
    for client in [&mut client_a, &mut client_b] {
        assert_eq!(get(client, &writer, &id).await.unwrap().persona, "after-outage");
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn an_erasure_made_while_redis_is_down_is_never_undone_by_its_old_data() {
    let Pair { mut redis, db: _db, a, mut client_a, b, mut client_b, tenant, writer } = pair().await;
    let admin = token(&tenant, Role::Admin);
    let address = "erika.erased@example.com";
    let id = create(&mut client_a, &writer, address).await;
    warm(&mut [&mut client_a, &mut client_b], &writer, &redis, &tenant, &id, address).await;

    redis.stop();
    let erased = client_a.erase_customer(authed(pb::EraseCustomerRequest { profile_id: id.clone() }, &admin)).await;
    assert_eq!(
        erased.expect("acknowledged with Redis down").into_inner().erasure.unwrap().state,
        pb::ErasureState::Completed as i32
    );
    let acked = Instant::now();
    redis.restart().await;
    let kept = cached_bytes(&redis, &tenant, &id).await.unwrap();
    assert!(mentions(&kept, address), "the restarted Redis must hold her profile for this test to mean anything");

    // Not once, from the acknowledgement on, on either replica.
    let serves_her = |read: &Result<pb::Profile, tonic::Status>| match read {
        Ok(profile) => profile.identities.iter().any(|i| i.value == address),
        Err(status) => status.code() != Code::NotFound,
    };
    let (reads_b, served_b, _) = poll(&mut client_b, &writer, &id, acked, Duration::from_secs(2), serves_her).await;
    let (reads_a, served_a, _) =
        poll(&mut client_a, &writer, &id, Instant::now(), Duration::from_millis(500), serves_her).await;
    eprintln!("after the erasure: B {reads_b} reads, {served_b} served her; A {reads_a} reads, {served_a} served her");
    assert_eq!(
        (served_a, served_b),
        (0, 0),
        "an erased customer's profile was served after the erasure was acknowledged"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn writes_while_redis_is_killed_and_restarted_fail_nothing_and_are_never_stale_after_a_second() {
    let Pair { mut redis, db: _db, a, mut client_a, b, mut client_b, tenant, writer } = pair().await;
    let id = create(&mut client_a, &writer, "kim.killed@example.com").await;
    set_persona(&mut client_a, &writer, &id, "v0").await.unwrap();
    warm(&mut [&mut client_a, &mut client_b], &writer, &redis, &tenant, &id, "v0").await;

    // Replica B reads without pause while replica A writes v1..=v60, Redis
    // being killed after v20 and back with its data after v40.
    let start = Instant::now();
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let reader = {
        let (mut client, writer, id) = (client_b.clone(), writer.clone(), id.clone());
        tokio::spawn(async move {
            let mut reads = Vec::new();
            while !*done_rx.borrow() {
                let started = start.elapsed();
                let persona = get(&mut client, &writer, &id).await.map(|p| p.persona);
                reads.push((started, persona));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            reads
        })
    };
    let mut acks = vec![(0, Duration::ZERO)];
    for version in 1..=60u32 {
        if version == 21 {
            redis.kill();
        }
        if version == 41 {
            redis.restart().await;
        }
        set_persona(&mut client_a, &writer, &id, &format!("v{version}")).await.unwrap();
        acks.push((version, start.elapsed()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    done_tx.send(true).unwrap();
    let reads = reader.await.unwrap();

    let failed = reads.iter().filter(|(_, r)| r.is_err()).count();
    // A read is stale if a later version was acknowledged more than 1 s before it began.
    let late = reads
        .iter()
        .filter_map(|(started, read)| Some((started, read.as_ref().ok()?.trim_start_matches('v').parse::<u32>().ok()?)))
        .filter(|(started, seen)| acks.iter().any(|(version, at)| version > seen && **started > *at + BOUND))
        .count();
    eprintln!("replica B during kill and restart: {} reads, {failed} failed, {late} stale after 1 s", reads.len());
    assert_eq!((failed, late), (0, 0));
    assert_eq!(get(&mut client_b, &writer, &id).await.unwrap().persona, "v60");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
