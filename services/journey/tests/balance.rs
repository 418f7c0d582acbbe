//! Journey's calls to profile spread over profile's replicas, and a rolling
//! replacement of one replica under load fails none of them: three profile
//! servers on loopback share one PostgreSQL; journey resolves profile's name
//! to their addresses as it would a headless Service's, again every 50 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SERVICES, email};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_runtime::auth::Role;
use cx_runtime::balance::Resolve;
use cx_runtime::config::StoreArgs;
use cx_runtime::peers::{PeerArgs, Peers};
use cx_testkit::process::free_port;
use cx_testkit::{RunningServer, TestDb, authed};
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The addresses profile's name resolves to: what the endpoints of a
/// headless Service would list.
#[derive(Clone, Debug, Default)]
struct Endpoints(Arc<Mutex<Vec<SocketAddr>>>);

impl Endpoints {
    fn set(&self, addresses: Vec<SocketAddr>) {
        *self.0.lock().unwrap() = addresses;
    }
}

impl Resolve for Endpoints {
    fn resolve(&self, _: &str, _: u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let addresses = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(addresses) })
    }
}

/// One profile replica, with its metrics endpoint.
struct Replica {
    server: RunningServer,
    addr: SocketAddr,
    metrics: SocketAddr,
}

async fn profile_replica(store: &StoreArgs, journey: SocketAddr) -> Replica {
    let peers = PeerArgs::default().with("journey", format!("http://{journey}"));
    let ctx = cx_testkit::context(store.clone(), Some(cx_testkit::redis_url()))
        .with_registry(SERVICES)
        .with_peers(Peers::resolve(&peers, &SERVICES, None).unwrap());
    let listener = RunningServer::bind().await;
    let addr = listener.local_addr().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Stopping, it keeps serving 500 ms after NOT_SERVING, then drains.
    let args = cx_runtime::config::ServerArgs {
        metrics_listen: Some(metrics),
        shutdown_delay: Duration::from_millis(500),
        ..cx_testkit::server_args()
    };
    let server = RunningServer::start_on(listener, vec![cx_profile::build(&ctx).await.unwrap()], args);
    server.wait_serving().await;
    Replica { server, addr, metrics }
}

/// Calls of profile's `BatchResolveProfiles` a replica answered, by its
/// Prometheus metrics.
async fn resolutions(replica: &Replica) -> u64 {
    let mut stream = tokio::net::TcpStream::connect(replica.metrics).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: cx\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("grpc_server_handled_total{") && l.contains("grpc_method=\"BatchResolveProfiles\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// `n` touchpoints of new customers (each resolved by profile), from
/// `tasks` callers at once; the calls that failed, with their errors.
async fn load(
    journey: &JourneyServiceClient<tonic::transport::Channel>,
    writer: &str,
    tag: &str,
    n: usize,
) -> Vec<String> {
    let tasks = 4;
    let callers = (0..tasks).map(|t| {
        let (mut client, writer, tag) = (journey.clone(), writer.to_owned(), tag.to_owned());
        tokio::spawn(async move {
            let mut failed = Vec::new();
            for i in (t..n).step_by(tasks) {
                let who = email(&format!("{tag}-{i}@example.com"));
                let touchpoint = common::touchpoint(&format!("{tag}-{i}"), who, Channel::Web, Initiator::Pull, 1);
                let request = pb::IngestTouchpointsRequest { touchpoints: vec![touchpoint], all_or_nothing: true };
                match client.ingest_touchpoints(authed(request, &writer)).await {
                    Ok(answer) if answer.get_ref().accepted == 1 => {}
                    Ok(answer) => failed.push(format!("{:?}", answer.into_inner())),
                    Err(status) => failed.push(format!("{status:?}")),
                }
            }
            failed
        })
    });
    let mut failed = Vec::new();
    for caller in futures::future::join_all(callers).await {
        failed.extend(caller.unwrap());
    }
    failed
}

#[tokio::test]
async fn journeys_calls_spread_over_profiles_replicas_and_a_rolled_replica_fails_none() {
    let db = TestDb::create().await.unwrap();
    let store = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let journey_listener = RunningServer::bind().await;
    let journey_addr = journey_listener.local_addr().unwrap();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(profile_replica(&store, journey_addr).await);
    }
    let endpoints = Endpoints::default();
    endpoints.set(replicas.iter().map(|r| r.addr).collect());
    let peers = PeerArgs { refresh: Some(Duration::from_millis(50)), ..PeerArgs::default() }
        .with("profile", "http://cx-profile-peers.test:50051");
    let ctx = cx_testkit::context(store.clone(), Some(cx_testkit::redis_url()))
        .with_registry(SERVICES)
        .with_peers(Peers::resolve_with(&peers, &SERVICES, None, Arc::new(endpoints.clone())).unwrap());
    let journey = RunningServer::start_on(
        journey_listener,
        vec![cx_journey::build(&ctx).await.unwrap()],
        cx_testkit::server_args(),
    );
    journey.wait_serving().await;
    let client = JourneyServiceClient::new(journey.channel().await);
    let writer = cx_testkit::token(&cx_testkit::unique_tenant("balance"), Role::Writer);

    // 90 customers resolved: each replica answers about a third (calls take
    // the replicas in turn; a few of the turns go to the outbox's
    // deliveries of activity, which share them).
    assert_eq!(load(&client, &writer, "spread", 90).await, Vec::<String>::new());
    let mut counts = Vec::new();
    for replica in &replicas {
        counts.push(resolutions(replica).await);
    }
    assert_eq!(counts.iter().sum::<u64>(), 90, "{counts:?}");
    assert!(counts.iter().all(|n| *n >= 20), "every replica takes its share: {counts:?}");

    // A rolling update of profile under load: a new replica comes and
    // joins the endpoints; the oldest leaves them and stops (500 ms of
    // serving after NOT_SERVING, then a drain).
    let rolling = tokio::spawn({
        let (client, writer) = (client.clone(), writer.clone());
        async move { load(&client, &writer, "roll", 240).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let added = profile_replica(&store, journey_addr).await;
    let leaving = replicas.remove(0);
    replicas.push(added);
    endpoints.set(replicas.iter().map(|r| r.addr).collect());
    let stopped = leaving.server.begin_stop();
    tokio::time::timeout(Duration::from_secs(15), stopped).await.unwrap().unwrap().unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(60), rolling).await.unwrap().unwrap();
    assert_eq!(failed, Vec::<String>::new(), "no call fails while profile rolls");
    assert!(resolutions(&replicas[2]).await > 0, "the new replica takes calls");

    // A replica that stops before the endpoints say so (a node lost, a
    // slow endpoint update): calls that meet its closed port go to another.
    let rolling = tokio::spawn({
        let (client, writer) = (client.clone(), writer.clone());
        async move { load(&client, &writer, "lost", 240).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leaving = replicas.remove(0);
    tokio::time::timeout(Duration::from_secs(15), leaving.server.begin_stop()).await.unwrap().unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    endpoints.set(replicas.iter().map(|r| r.addr).collect());
    let failed = tokio::time::timeout(Duration::from_secs(60), rolling).await.unwrap().unwrap();
    assert_eq!(failed, Vec::<String>::new(), "calls meeting a stopped replica are sent to another");
}
