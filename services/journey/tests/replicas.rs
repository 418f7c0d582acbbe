//! Two replicas of the journey service (and the profile service) sharing one
//! PostgreSQL database and a private Redis that stops and comes back with
//! its data: an ingest acknowledged meanwhile shows in the other replica's
//! analyses within 1 s, and once an erasure is complete no replica resolves
//! the customer's identity to her erased profile from its memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{count, email};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::auth::Role;
use cx_runtime::config::StoreArgs;
use cx_runtime::peers::{PeerArgs, Peers};
use cx_runtime::store::Db;
use cx_testkit::redis_server::PrivateRedis;
use cx_testkit::{RunningServer, TestDb, authed};
use tonic::transport::Channel as GrpcChannel;

type Journey = JourneyServiceClient<GrpcChannel>;

const SERVICES: cx_runtime::registry::Registry =
    cx_runtime::registry::Registry::new(&[cx_profile::SERVICE, cx_journey::SERVICE]);

struct Replicas {
    db: TestDb,
    redis: PrivateRedis,
    profile: RunningServer,
    a: RunningServer,
    b: RunningServer,
    tenant: String,
    writer: String,
    admin: String,
}

async fn start(
    store: &StoreArgs,
    redis: &PrivateRedis,
    peers: &PeerArgs,
    listener: tokio::net::TcpListener,
    profile: bool,
) -> RunningServer {
    let ctx = cx_testkit::context(store.clone(), Some(redis.url()))
        .with_registry(SERVICES)
        .with_peers(Peers::resolve(peers, &SERVICES, None).unwrap());
    let module = if profile { cx_profile::build(&ctx).await.unwrap() } else { cx_journey::build(&ctx).await.unwrap() };
    let server = RunningServer::start_on(listener, vec![module], cx_testkit::server_args());
    server.wait_serving().await;
    server
}

/// Profile, and journey replicas A and B; profile sends erasures to A.
async fn replicas() -> Replicas {
    let redis = PrivateRedis::start().await;
    let db = TestDb::create().await.unwrap();
    let store = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let (p, a, b) = (RunningServer::bind().await, RunningServer::bind().await, RunningServer::bind().await);
    let peers = PeerArgs::default()
        .with("profile", format!("http://{}", p.local_addr().unwrap()))
        .with("journey", format!("http://{}", a.local_addr().unwrap()));
    let profile = start(&store, &redis, &peers, p, true).await;
    let a = start(&store, &redis, &peers, a, false).await;
    let b = start(&store, &redis, &peers, b, false).await;
    let tenant = cx_testkit::unique_tenant("jreplicas");
    let (writer, admin) = (cx_testkit::token(&tenant, Role::Writer), cx_testkit::token(&tenant, Role::Admin));
    Replicas { db, redis, profile, a, b, tenant, writer, admin }
}

async fn ingest(client: &mut Journey, writer: &str, touchpoint: pb::Touchpoint) {
    let request = pb::IngestTouchpointsRequest { touchpoints: vec![touchpoint], all_or_nothing: true };
    let stored = client.ingest_touchpoints(authed(request, writer)).await.unwrap().into_inner();
    assert_eq!(stored.accepted, 1, "{stored:?}");
}

async fn touchpoints_seen(client: &mut Journey, writer: &str, map: &str) -> i64 {
    let request = pb::AnalyzeJourneyRequest { map_id: map.into(), time_range: None, instance_limit: 3 };
    client.analyze_journey(authed(request, writer)).await.unwrap().into_inner().touchpoints
}

#[tokio::test]
async fn an_ingest_made_while_redis_is_down_shows_on_every_replica_when_redis_returns_with_old_data() {
    let mut r = replicas().await;
    let mut a = JourneyServiceClient::new(r.a.channel().await);
    let mut b = JourneyServiceClient::new(r.b.channel().await);
    let step = pb::Step {
        key: "visit".into(),
        name: "visit".into(),
        phase: pb::Phase::Before as i32,
        importance: 1,
        target_score: 7.0,
        conversion: true,
        ..Default::default()
    };
    let map = pb::JourneyMap {
        name: "Returns".into(),
        customer_type: "anyone".into(),
        meta_journey: pb::MetaJourney::Chore as i32,
        steps: vec![step],
        ..Default::default()
    };
    let map = a.create_journey_map(authed(pb::CreateJourneyMapRequest { journey_map: Some(map) }, &r.admin)).await;
    let map = map.unwrap().into_inner().journey_map.unwrap().id;
    let on_map = |id: &str| pb::Touchpoint {
        map_id: map.clone(),
        step_key: "visit".into(),
        instance_id: "i1".into(),
        ..common::touchpoint(id, email("ana@example.com"), Channel::Web, Initiator::Pull, 2)
    };
    ingest(&mut a, &r.writer, on_map("t1")).await;
    // Both replicas read the answer until Redis holds it.
    let pattern = format!("cx:{{{}}}:analysis:*", r.tenant);
    let read_both = || {
        let (mut a, mut b, redis, writer, map, pattern) = (a.clone(), b.clone(), &r.redis, &r.writer, &map, &pattern);
        async move {
            assert_eq!(touchpoints_seen(&mut a, writer, map).await, 1);
            assert_eq!(touchpoints_seen(&mut b, writer, map).await, 1);
            redis.keys(pattern).await
        }
    };
    cx_testkit::eventually("the analysis is cached in Redis", read_both, |keys| !keys.is_empty()).await;

    r.redis.stop();
    ingest(&mut a, &r.writer, on_map("t2")).await;
    let acked = Instant::now();
    r.redis.restart().await;
    assert!(!r.redis.keys(&pattern).await.is_empty(), "the restarted Redis must hold the old answer");

    let (mut reads, mut stale, mut late) = (0, 0, 0);
    while acked.elapsed() < Duration::from_millis(2500) {
        let started = acked.elapsed();
        let seen = touchpoints_seen(&mut b, &r.writer, &map).await;
        reads += 1;
        if seen != 2 {
            stale += 1;
            late += usize::from(started > Duration::from_secs(1));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("journey replica B after the ingest: {reads} analyses, {stale} stale, {late} stale after 1 s");
    assert_eq!(late, 0, "replica B answered the old analysis more than 1 s after the ingest was acknowledged");
    assert_eq!(touchpoints_seen(&mut a, &r.writer, &map).await, 2);
    for server in [r.a, r.b, r.profile] {
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn once_an_erasure_completes_no_replica_resolves_the_identity_to_the_erased_profile() {
    let r = replicas().await;
    let mut a = JourneyServiceClient::new(r.a.channel().await);
    let mut b = JourneyServiceClient::new(r.b.channel().await);
    let mut profiles = ProfileServiceClient::new(r.profile.channel().await);
    let erin = || email("erin.erased@example.com");
    // Both replicas learn her address → profile id.
    ingest(&mut a, &r.writer, common::touchpoint("e1", erin(), Channel::Web, Initiator::Pull, 3)).await;
    ingest(&mut b, &r.writer, common::touchpoint("e2", erin(), Channel::Web, Initiator::Pull, 2)).await;
    let identity =
        profile::Identity { kind: profile::IdentityKind::Email as i32, value: "erin.erased@example.com".into() };
    let resolve =
        |create| profile::ResolveProfileRequest { identity: Some(identity.clone()), create_if_missing: create };
    let erased =
        profiles.resolve_profile(authed(resolve(false), &r.writer)).await.unwrap().into_inner().profile.unwrap().id;

    let job =
        profiles.erase_customer(authed(profile::EraseCustomerRequest { profile_id: erased.clone() }, &r.admin)).await;
    let job = job.unwrap().into_inner().erasure.unwrap();
    let completed = profile::ErasureState::Completed as i32;
    let receipt = || {
        let (mut profiles, request) = (profiles.clone(), profile::GetErasureRequest { id: job.id.clone() });
        let request = authed(request, &r.admin);
        async move { profiles.get_erasure(request).await.unwrap().into_inner().erasure.unwrap() }
    };
    cx_testkit::eventually("the erasure completes", receipt, |e| e.state == completed).await;

    // She comes back at once, through the replica that was not told.
    ingest(&mut b, &r.writer, common::touchpoint("e3", erin(), Channel::Web, Initiator::Pull, 1)).await;
    let sql = {
        let mut options = sea_orm::ConnectOptions::new(r.db.url.clone());
        options.set_schema_search_path("journey").max_connections(1);
        Db::from(sea_orm::Database::connect(options).await.unwrap())
    };
    let under_erased = format!("SELECT count(*) FROM touchpoints WHERE customer_id = '{erased}'");
    assert_eq!(count(&sql, &under_erased).await, 0, "a touchpoint was filed under the erased profile");
    let fresh =
        profiles.resolve_profile(authed(resolve(false), &r.writer)).await.unwrap().into_inner().profile.unwrap().id;
    assert_ne!(fresh, erased);
    assert_eq!(count(&sql, &format!("SELECT count(*) FROM touchpoints WHERE customer_id = '{fresh}'")).await, 1);
    for server in [r.a, r.b, r.profile] {
        server.stop().await.unwrap();
    }
}
