//! Journey's touchpoints reach segmentation's facts across the services:
//! profile, journey and segmentation each on its own loopback server, on
//! PostgreSQL and SQLite. Touchpoints ingested in journey are offered to
//! segmentation through journey's outbox, and a rule over the journey
//! fields then counts the customer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use cx_proto::common::v1::{Channel, Initiator, InteractionKind};
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::evaluate_segment_request::Target;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use cx_runtime::TenantId;
use cx_runtime::auth::Role;
use cx_runtime::days::day_number;
use cx_runtime::registry::Registry;
use cx_runtime::store::scoped;
use cx_segmentation::store::entity::fact;
use cx_testkit::{Backend, Cluster, authed, eventually};

cx_testkit::on_both_backends!(touchpoints_ingested_in_journey_become_facts_a_rule_counts);

const SERVICES: Registry = Registry::new(&[cx_profile::SERVICE, cx_journey::SERVICE, cx_segmentation::SERVICE]);

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

/// Ada: web now and 2 days ago, email 100 days ago: 2 touchpoints in 90
/// days, web|email = 1 + 4 = 5 in 180, last on the web. Bob: web once (1
/// touchpoint). Cy: email twice (no web). Only Ada has web and at least 2.
async fn touchpoints_ingested_in_journey_become_facts_a_rule_counts(backend: Backend) {
    let cluster = Cluster::start(SERVICES, backend).await;
    let tenant = cx_testkit::unique_tenant("feed");
    let t = TenantId::parse(&tenant).unwrap();
    let (writer, reader) = (cx_testkit::token(&tenant, Role::Writer), cx_testkit::token(&tenant, Role::Reader));
    let (ada, bob, cy) = ("ada@example.com", "bob@example.com", "cy@example.com");
    // Windows of whole days: these counts hold whichever day it is when
    // segmentation applies them.
    let start = cx_runtime::store::now() - Duration::minutes(1);
    let ago = |days: i64| start - Duration::days(days);
    let touchpoints = vec![
        touchpoint("a1", ada, Channel::Web, ago(0)),
        touchpoint("a2", ada, Channel::Web, ago(2)),
        touchpoint("a3", ada, Channel::Email, ago(100)),
        touchpoint("b1", bob, Channel::Web, ago(1)),
        touchpoint("c1", cy, Channel::Email, ago(1)),
        touchpoint("c2", cy, Channel::Email, ago(3)),
    ];
    let request = journey::IngestTouchpointsRequest { touchpoints, all_or_nothing: true };
    let mut journey = JourneyServiceClient::new(cluster.server("journey").channel().await);
    let stored = journey.ingest_touchpoints(authed(request, &writer)).await.unwrap().into_inner();
    assert_eq!(stored.accepted, 6);
    let mut profiles = ProfileServiceClient::new(cluster.server("profile").channel().await);
    let request = profile::ResolveProfileRequest { identity: Some(email(ada)), create_if_missing: false };
    let ada_id = profiles.resolve_profile(authed(request, &writer)).await.unwrap().into_inner().profile.unwrap().id;

    let db = cx_runtime::store::open(&cluster.store, "segmentation").await.unwrap();
    let day = |days: i64| Some(day_number(ago(days)));
    let expected = [
        (1, 1, Some("web".to_owned()), day(1)),
        (2, 4, Some("email".to_owned()), day(1)),
        (2, 5, Some("web".to_owned()), day(0)),
    ];
    // Profile's facts may make the rows first: wait for the journey columns.
    eventually(
        "segmentation's facts of the three customers",
        || {
            let (db, t) = (db.clone(), t.clone());
            async move {
                let mut rows: Vec<(i64, i32, Option<String>, Option<i32>)> = scoped::<fact::Entity>(&t)
                    .all(&db)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|f| (f.touchpoints_90d, f.channels_180d, f.last_channel, f.last_touch_day))
                    .collect();
                rows.sort();
                rows
            }
        },
        |rows| rows.as_slice() == expected,
    )
    .await;

    let mut segmentation = SegmentationServiceClient::new(cluster.server("segmentation").channel().await);
    let rule = "journey.channels CONTAINS \"web\" AND journey.touchpoints_90d >= 2";
    let request =
        pb::EvaluateSegmentRequest { target: Some(Target::Rule(rule.into())), page_size: 10, ..Default::default() };
    let evaluated = segmentation.evaluate_segment(authed(request, &reader)).await.unwrap().into_inner();
    assert_eq!((evaluated.count, evaluated.member_ids), (1, vec![ada_id]));
}
