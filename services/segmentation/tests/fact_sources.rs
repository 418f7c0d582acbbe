//! ReloadFacts and ListFactSources through gRPC, on both backends: the
//! admin asks for a load, anyone reading follows it. Segmentation runs
//! alone here, so its loads stay LOADING (their sources are not deployed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use cx_runtime::error::field_violations;
use cx_runtime::registry::Registry;
use cx_testkit::{Backend, Cluster, Tokens, authed};
use pb::FactSourceState::{FeedOnly, Loading};
use tonic::Code;
use tonic::transport::Channel;

cx_testkit::on_both_backends!(
    a_reload_marks_the_sources_loading_and_the_list_follows,
    only_an_admin_reloads_and_only_known_sources,
);

const SERVICES: Registry = Registry::new(&[cx_segmentation::SERVICE]);

async fn client(cluster: &Cluster) -> SegmentationServiceClient<Channel> {
    SegmentationServiceClient::new(cluster.server("segmentation").channel().await)
}

async fn reload(cluster: &Cluster, token: &str, sources: &[&str]) -> Result<Vec<pb::FactSource>, tonic::Status> {
    let request = pb::ReloadFactsRequest { sources: sources.iter().map(|s| (*s).to_owned()).collect() };
    Ok(client(cluster).await.reload_facts(authed(request, token)).await?.into_inner().sources)
}

async fn list(cluster: &Cluster, token: &str) -> Vec<pb::FactSource> {
    let request = authed(pb::ListFactSourcesRequest {}, token);
    client(cluster).await.list_fact_sources(request).await.unwrap().into_inner().sources
}

fn states(sources: &[pb::FactSource]) -> Vec<(String, pb::FactSourceState)> {
    sources.iter().map(|s| (s.name.clone(), s.state())).collect()
}

fn named(name: &str, state: pb::FactSourceState) -> (String, pb::FactSourceState) {
    (name.to_owned(), state)
}

async fn a_reload_marks_the_sources_loading_and_the_list_follows(backend: Backend) {
    let cluster = Cluster::start(SERVICES, backend).await;
    let who = Tokens::new("sources");
    let never = list(&cluster, &who.reader).await;
    assert_eq!(states(&never), [named("profile", FeedOnly), named("journey", FeedOnly), named("survey", FeedOnly)]);
    assert!(never.iter().all(|s| s.start_time.is_none() && s.high_water_time.is_none()));

    let journey = reload(&cluster, &who.admin, &["journey"]).await.unwrap();
    assert_eq!(states(&journey), [named("journey", Loading)]);
    let journey = journey.into_iter().next().unwrap();
    assert_eq!((journey.loaded_customers, journey.cursor.as_str(), journey.complete_time), (0, "", None));
    // The cut between load and feed is the load's start.
    assert!(journey.start_time.is_some());
    assert_eq!(journey.high_water_time, journey.start_time);
    assert_eq!(
        states(&list(&cluster, &who.reader).await),
        [named("profile", FeedOnly), named("journey", Loading), named("survey", FeedOnly)]
    );

    // All three; journey's load under way goes on from where it is.
    let all = reload(&cluster, &who.admin, &[]).await.unwrap();
    assert_eq!(states(&all), [named("profile", Loading), named("journey", Loading), named("survey", Loading)]);
    assert_eq!(all[1].start_time, journey.start_time);
    // Named twice and out of order: each once, in the list's order.
    let two = reload(&cluster, &who.admin, &["survey", "profile", "survey"]).await.unwrap();
    assert_eq!(states(&two), [named("profile", Loading), named("survey", Loading)]);
    // Another tenant's sources are its own.
    let stranger = list(&cluster, &who.stranger).await;
    assert_eq!(states(&stranger), [named("profile", FeedOnly), named("journey", FeedOnly), named("survey", FeedOnly)]);
}

async fn only_an_admin_reloads_and_only_known_sources(backend: Backend) {
    let cluster = Cluster::start(SERVICES, backend).await;
    let who = Tokens::new("sources");
    for token in [&who.writer, &who.reader] {
        let refused = reload(&cluster, token, &["journey"]).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    let refused = reload(&cluster, &who.admin, &["journey", "orders", ""]).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let violations: Vec<_> =
        field_violations(&refused).into_iter().map(|v| format!("{}: {}", v.field, v.description)).collect();
    assert_eq!(
        violations,
        [
            "sources[1]: is not a source: profile, journey or survey",
            "sources[2]: is not a source: profile, journey or survey"
        ]
    );
    // One violation for a list too long, whatever its items.
    let many = reload(&cluster, &who.admin, &["x"; 1000]).await.unwrap_err();
    let violations: Vec<_> =
        field_violations(&many).into_iter().map(|v| format!("{}: {}", v.field, v.description)).collect();
    assert_eq!(violations, ["sources: has 1000 items; at most 3"]);
    // Nothing was started.
    let sources = list(&cluster, &who.reader).await;
    assert_eq!(states(&sources), [named("profile", FeedOnly), named("journey", FeedOnly), named("survey", FeedOnly)]);
    let unauthenticated = client(&cluster).await.list_fact_sources(pb::ListFactSourcesRequest {}).await.unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
}
