//! An instance is one customer's run through a map (docs/DOMAIN.md §5.3): a
//! client instance id used by two customers names two instances, never one
//! that switches channel between two people; once the two are merged into
//! one customer, their instances of that id are one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, email, on_map, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_runtime::error::field_violations;
use cx_testkit::{authed, eventually};

cx_testkit::on_both_backends!(an_instance_id_two_customers_use_is_two_instances_until_they_are_merged);

/// (instances, multi-touch, cross-channel, switches as (from, to, count)).
type Continuity = (i64, i64, i64, Vec<(i32, i32, i64)>);

async fn continuity(s: &common::Suite, map: &pb::JourneyMap) -> Continuity {
    let request = pb::AnalyzeJourneyRequest { map_id: map.id.clone(), time_range: None, instance_limit: 10 };
    let a = s.journey_client().await.analyze_journey(authed(request, &s.writer)).await.unwrap().into_inner();
    let switches = a.channel_switches.iter().map(|c| (c.from_channel, c.to_channel, c.count)).collect();
    (a.instances, a.multi_touch_instances, a.cross_channel_instances, switches)
}

async fn instance(
    s: &common::Suite,
    map: &pb::JourneyMap,
    profile_id: &str,
) -> Result<pb::GetJourneyInstanceResponse, tonic::Status> {
    let request = pb::GetJourneyInstanceRequest {
        map_id: map.id.clone(),
        instance_id: "order-1".into(),
        profile_id: profile_id.into(),
    };
    s.journey_client().await.get_journey_instance(authed(request, &s.writer)).await.map(tonic::Response::into_inner)
}

fn ids(answer: &pb::GetJourneyInstanceResponse) -> (Vec<&str>, &str) {
    let peak_end = answer.peak_end.as_ref().unwrap();
    (answer.touchpoints.iter().map(|t| t.id.as_str()).collect(), peak_end.profile_id.as_str())
}

async fn an_instance_id_two_customers_use_is_two_instances_until_they_are_merged(backend: Backend) {
    let s = common::suite_on(backend).await;
    let map = common::two_step_map(&s).await;
    // Ann visits on the web, then Bob orders in the store, both "order-1".
    let batch = vec![
        on_map(
            touchpoint("a1", email("ann@example.com"), Channel::Web, Initiator::Pull, 3),
            &map,
            "visit",
            "order-1",
            8,
        ),
        on_map(
            touchpoint("b1", email("bob@example.com"), Channel::Store, Initiator::Pull, 2),
            &map,
            "order",
            "order-1",
            4,
        ),
    ];
    assert_eq!(s.ingest(batch).await.accepted, 2);
    let (ann, bob) = (s.id_of("ann@example.com").await, s.id_of("bob@example.com").await);

    // Two instances of one touchpoint each: nothing multi-touch, no switch.
    assert_eq!(continuity(&s, &map).await, (2, 0, 0, vec![]));
    let status = instance(&s, &map, "").await.unwrap_err();
    let named: Vec<String> = field_violations(&status).into_iter().map(|v| v.field).collect();
    assert_eq!((status.code(), named), (tonic::Code::InvalidArgument, vec!["profile_id".to_owned()]));
    assert_eq!(ids(&instance(&s, &map, &ann).await.unwrap()), (vec!["a1"], ann.as_str()));
    assert_eq!(ids(&instance(&s, &map, &bob).await.unwrap()), (vec!["b1"], bob.as_str()));

    // Bob turns out to be Ann: one customer, one instance, web → store.
    s.merge(&ann, &bob).await;
    let web_store = (Channel::Web as i32, Channel::Store as i32, 1);
    let merged = eventually("the merge joins the instances", || continuity(&s, &map), |c| c.0 == 1).await;
    assert_eq!(merged, (1, 1, 1, vec![web_store]));
    // By either id, and without one now that a single customer uses it.
    for id in [ann.as_str(), bob.as_str(), ""] {
        assert_eq!(ids(&instance(&s, &map, id).await.unwrap()), (vec!["a1", "b1"], ann.as_str()), "by {id:?}");
    }
}
