//! The load of facts across the services, on PostgreSQL and SQLite:
//! profile and journey hold data stored while segmentation was not
//! deployed (no feed carried it); segmentation arrives, an admin reloads
//! its facts, and rules then select exactly the customers that data says.
//! Touchpoints ingested while journey's load runs are held, then counted
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use cx_proto::common::v1::{Channel, Initiator, InteractionKind};
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::evaluate_segment_request::Target;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use cx_runtime::config::JobArgs;
use cx_runtime::peers::PeerArgs;
use cx_runtime::registry::Registry;
use cx_testkit::{Backend, Cluster, Tokens, authed, eventually_within};
use tonic::transport::Channel as Transport;

cx_testkit::on_both_backends!(facts_stored_before_segmentation_are_loaded_and_touchpoints_during_the_load_count_once);

const SERVICES: Registry =
    Registry::new(&[cx_profile::SERVICE, cx_journey::SERVICE, cx_survey::SERVICE, cx_segmentation::SERVICE]);
const OWNERS: [&str; 3] = ["profile", "journey", "survey"];
/// Loads, redeliveries of held touchpoints (every 10 s) and the feeds.
const PATIENCE: Duration = Duration::from_secs(90);

fn email(address: &str) -> profile::Identity {
    profile::Identity { kind: profile::IdentityKind::Email as i32, value: address.into() }
}

fn touchpoint(id: &str, who: &str, channel: Channel, at: DateTime<Utc>) -> journey::Touchpoint {
    journey::Touchpoint {
        id: id.into(),
        customer: Some(journey::touchpoint::Customer::Identity(email(who))),
        channel: channel as i32,
        occur_time: Some(cx_proto::timestamp(at)),
        kind: InteractionKind::Informative as i32,
        initiator: Initiator::Pull as i32,
        ..Default::default()
    }
}

/// Restarts `name` where it ran, built with `ctx`.
async fn restart(cluster: &mut Cluster, name: &'static str, ctx: &cx_runtime::context::ServiceContext) {
    let addr = cluster.stop(name).await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = cluster.start_with(name, ctx, listener, cx_testkit::server_args()).await;
    cluster.servers.insert(name, server);
}

async fn ingest(cluster: &Cluster, token: &str, touchpoints: Vec<journey::Touchpoint>) {
    let n = touchpoints.len();
    let mut client = JourneyServiceClient::new(cluster.server("journey").channel().await);
    let request = journey::IngestTouchpointsRequest { touchpoints, all_or_nothing: true };
    let stored = client.ingest_touchpoints(authed(request, token)).await.unwrap().into_inner();
    assert_eq!(usize::try_from(stored.accepted).unwrap(), n);
}

async fn id_of(cluster: &Cluster, token: &str, who: &str) -> String {
    let mut client = ProfileServiceClient::new(cluster.server("profile").channel().await);
    let request = profile::ResolveProfileRequest { identity: Some(email(who)), create_if_missing: false };
    client.resolve_profile(authed(request, token)).await.unwrap().into_inner().profile.unwrap().id
}

async fn segmentation(cluster: &Cluster) -> SegmentationServiceClient<Transport> {
    SegmentationServiceClient::new(cluster.server("segmentation").channel().await)
}

/// The members of `rule`, sorted.
async fn members(cluster: &Cluster, token: &str, rule: &str) -> Vec<String> {
    let request =
        pb::EvaluateSegmentRequest { target: Some(Target::Rule(rule.into())), page_size: 100, ..Default::default() };
    let mut ids =
        segmentation(cluster).await.evaluate_segment(authed(request, token)).await.unwrap().into_inner().member_ids;
    ids.sort();
    ids
}

/// Before segmentation: Ada web now and 2 days ago, Bob email 1 day ago;
/// Ada grants email consent. While journey's load runs: Bob web now, Dee
/// web now (stored after the cut: the feed's, held, then added once).
/// Then: Ada 2 touchpoints (web), Bob 2 (email, web), Dee 1 (web).
async fn facts_stored_before_segmentation_are_loaded_and_touchpoints_during_the_load_count_once(backend: Backend) {
    let mut cluster = Cluster::start(SERVICES, backend).await;
    let who = Tokens::new("loadall");
    let redis = (backend == Backend::Postgres).then(cx_testkit::redis_url);
    // Segmentation not deployed: nothing is written for it.
    let without = PeerArgs {
        peers: cluster.peers.peers.iter().filter(|(name, _)| name != "segmentation").cloned().collect(),
        not_deployed: vec!["segmentation".into()],
        ..PeerArgs::default()
    };
    let alone = cluster.context_with(redis.clone(), &without);
    let segmentation_addr = cluster.stop("segmentation").await;
    for name in OWNERS {
        restart(&mut cluster, name, &alone).await;
    }
    let (ada, bob, dee) = ("ada@example.com", "bob@example.com", "dee@example.com");
    let now = cx_runtime::store::now() - chrono::Duration::minutes(1);
    let ago = |days: i64| now - chrono::Duration::days(days);
    let before = vec![
        touchpoint("a1", ada, Channel::Web, ago(0)),
        touchpoint("a2", ada, Channel::Web, ago(2)),
        touchpoint("b1", bob, Channel::Email, ago(1)),
    ];
    ingest(&cluster, &who.writer, before).await;
    let ada_id = id_of(&cluster, &who.writer, ada).await;
    let consent = profile::SetConsentRequest {
        profile_id: ada_id.clone(),
        purpose: Some(profile::Purpose {
            kind: Some(profile::purpose::Kind::Standard(profile::ConsentPurpose::Email as i32)),
        }),
        granted: true,
        source_channel: Channel::Web as i32,
        actor: "customer".into(),
        ..Default::default()
    };
    let mut profiles = ProfileServiceClient::new(cluster.server("profile").channel().await);
    profiles.set_consent(authed(consent, &who.writer)).await.unwrap();

    // Segmentation arrives; the others now feed it.
    let everyone = cluster.context_with(redis, &cluster.peers);
    for name in OWNERS {
        restart(&mut cluster, name, &everyone).await;
    }
    let jobs = JobArgs { load_settle: Duration::from_secs(2), ..JobArgs::default() };
    let with_settle = everyone.with_jobs(jobs).unwrap();
    let listener = tokio::net::TcpListener::bind(segmentation_addr).await.unwrap();
    let server = cluster.start_with("segmentation", &with_settle, listener, cx_testkit::server_args()).await;
    cluster.servers.insert("segmentation", server);
    assert!(members(&cluster, &who.reader, "journey.touchpoints_90d >= 1").await.is_empty(), "nothing fed before");

    let reload = authed(pb::ReloadFactsRequest { sources: Vec::new() }, &who.admin);
    let started = segmentation(&cluster).await.reload_facts(reload).await.unwrap().into_inner().sources;
    assert!(started.iter().all(|s| s.state() == pb::FactSourceState::Loading));
    // Stored after the cut: journey's load leaves them to the feed.
    ingest(
        &cluster,
        &who.writer,
        vec![touchpoint("b2", bob, Channel::Web, now), touchpoint("d1", dee, Channel::Web, now)],
    )
    .await;

    let reader = who.reader.clone();
    let states = || {
        let (cluster, reader) = (&cluster, reader.clone());
        async move {
            let request = authed(pb::ListFactSourcesRequest {}, &reader);
            let sources = segmentation(cluster).await.list_fact_sources(request).await.unwrap().into_inner().sources;
            sources.iter().map(|s| (s.name.clone(), s.state())).collect::<Vec<_>>()
        }
    };
    let loaded: Vec<_> = OWNERS.iter().map(|n| ((*n).to_owned(), pb::FactSourceState::Loaded)).collect();
    eventually_within(PATIENCE, "every source loaded", states, |s| *s == loaded).await;

    let (bob_id, dee_id) = (id_of(&cluster, &who.writer, bob).await, id_of(&cluster, &who.writer, dee).await);
    let mut two = vec![ada_id.clone(), bob_id.clone()];
    two.sort();
    let rule = "journey.touchpoints_90d = 2";
    let counted = || members(&cluster, &who.reader, rule);
    eventually_within(PATIENCE, "Ada and Bob with 2 touchpoints each", counted, |m| *m == two).await;
    // The held touchpoints came once: nobody has 3, Dee has 1.
    assert!(members(&cluster, &who.reader, "journey.touchpoints_90d >= 3").await.is_empty());
    let mut web = vec![ada_id.clone(), bob_id, dee_id.clone()];
    assert_eq!(members(&cluster, &who.reader, "journey.touchpoints_90d = 1").await, [dee_id]);
    web.sort();
    assert_eq!(members(&cluster, &who.reader, "journey.channels CONTAINS \"web\"").await, web);
    // Profile's facts: Ada's consent came with the load.
    assert_eq!(members(&cluster, &who.reader, "consent.email").await, [ada_id]);
    assert_eq!(members(&cluster, &who.reader, "profile.lifecycle EXISTS").await, web);
}
