//! Chains of merges across the profile and journey services: a into b, b
//! into c, c into s, delivered to journey together in one dispatcher round,
//! end with every touchpoint and instance under s, and later touchpoints
//! sent with any of the merged ids land on s (docs/DOMAIN.md §2.5, §6.3).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, email, on_map, profile_id, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_testkit::{authed, eventually};

cx_testkit::on_both_backends!(
    a_chain_of_merges_in_one_round_ends_with_everything_under_the_last_survivor,
    a_read_by_a_merged_id_follows_to_the_survivor,
);

async fn a_chain_of_merges_in_one_round_ends_with_everything_under_the_last_survivor(backend: Backend) {
    let mut s = common::suite_on(backend).await;
    let map = common::two_step_map(&s).await;
    let (web, store) = (Channel::Web, Channel::Store);
    let at = |id: &str, who: &str, channel, hours_ago| touchpoint(id, email(who), channel, Initiator::Pull, hours_ago);
    let stored = s
        .ingest(vec![
            on_map(at("a1", "a@example.com", web, 6), &map, "visit", "ia", 4),
            on_map(at("b1", "b@example.com", web, 5), &map, "visit", "ib", 6),
            at("c1", "c@example.com", store, 4),
            on_map(at("s1", "s@example.com", store, 3), &map, "order", "is", 9),
        ])
        .await;
    assert_eq!(stored.accepted, 4);
    let [a, b, c, survivor] = ["a", "b", "c", "s"].map(|who| format!("{who}@example.com"));
    let (a, b, c, survivor) = (s.id_of(&a).await, s.id_of(&b).await, s.id_of(&c).await, s.id_of(&survivor).await);

    // Journey is down while profile merges a into b, b into c, c into s:
    // the three messages wait and are then delivered in one round, at once.
    let journey = s.cluster.stop("journey").await;
    s.merge(&b, &a).await;
    s.merge(&c, &b).await;
    s.merge(&survivor, &c).await;
    s.cluster.restart("journey", journey).await;

    // Newest first: s1 (3 h ago), c1, b1, a1 (6 h ago).
    let moved =
        eventually("the chain reaches the survivor's timeline", || timeline(&s, &survivor), |ids| ids.len() == 4);
    assert_eq!(moved.await, ["s1", "c1", "b1", "a1"]);
    // The instances follow their touchpoints: each belongs to s now.
    for instance in ["ia", "ib", "is"] {
        assert_eq!(instance_owner(&s, &map, instance).await, survivor, "instance {instance}");
    }

    // Later touchpoints sent with each merged id land on the survivor.
    let late = vec![
        touchpoint("a2", profile_id(&a), web, Initiator::Pull, 2),
        touchpoint("b2", profile_id(&b), web, Initiator::Pull, 1),
        on_map(touchpoint("c2", profile_id(&c), store, Initiator::Pull, 0), &map, "order", "ia", 8),
    ];
    assert_eq!(s.ingest(late).await.accepted, 3);
    assert_eq!(timeline(&s, &survivor).await, ["c2", "b2", "a2", "s1", "c1", "b1", "a1"]);
    assert_eq!(instance_owner(&s, &map, "ia").await, survivor, "a's instance, continued through c's old id");
    // One instance each for ia, ib and is, all of s; ia has its order now:
    // visit 4 then order 8 (peak 8, end 8 → remembered 8, mean 6).
    let analysis = analyze(&s, &map).await;
    assert_eq!(analysis.instances, 3);
    let listed: Vec<(&str, &str)> =
        analysis.instances_by_gap.iter().map(|i| (i.instance_id.as_str(), i.profile_id.as_str())).collect();
    assert_eq!(listed, [("ia", survivor.as_str()), ("ib", survivor.as_str()), ("is", survivor.as_str())]);
}

/// ListTimeline of a merged id reads the survivor's timeline, as GetProfile
/// of a merged id answers with the survivor (docs/DOMAIN.md §2.5), filters
/// and pages included.
async fn a_read_by_a_merged_id_follows_to_the_survivor(backend: Backend) {
    let s = common::suite_on(backend).await;
    let at = |id: &str, who: &str, channel, hours_ago| touchpoint(id, email(who), channel, Initiator::Pull, hours_ago);
    let stored = s
        .ingest(vec![
            at("a1", "ann@example.com", Channel::Web, 4),
            at("b1", "bob@example.com", Channel::Store, 3),
            at("s1", "sam@example.com", Channel::Web, 2),
        ])
        .await;
    assert_eq!(stored.accepted, 3);
    let (a, b, survivor) =
        (s.id_of("ann@example.com").await, s.id_of("bob@example.com").await, s.id_of("sam@example.com").await);
    s.merge(&b, &a).await;
    s.merge(&survivor, &b).await;
    eventually("both merges reach journey", || timeline(&s, &survivor), |ids| ids.len() == 3).await;

    let mut profiles = s.profile_client().await;
    let request = cx_proto::profile::v1::GetProfileRequest { id: a.clone(), as_of: None };
    let answered = profiles.get_profile(authed(request, &s.writer)).await.unwrap().into_inner().profile.unwrap();
    assert_eq!(answered.id, survivor, "profile answers a's id with the survivor");
    for merged in [&a, &b] {
        assert_eq!(timeline(&s, merged).await, ["s1", "b1", "a1"], "the timeline of {merged}");
    }
    // Web only, one a page: s1, then a1, then nothing more.
    let mut journey = s.journey_client().await;
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListTimelineRequest {
            profile_id: a.clone(),
            channels: vec![Channel::Web as i32],
            page_size: 1,
            page_token: token,
            ..Default::default()
        };
        let page = journey.list_timeline(authed(request, &s.writer)).await.unwrap().into_inner();
        pages.push(page.touchpoints.iter().map(|t| t.id.clone()).collect::<Vec<_>>());
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, [vec!["s1"], vec!["a1"]]);
}

async fn timeline(s: &common::Suite, id: &str) -> Vec<String> {
    s.timeline(id).await
}

/// The profile an instance's peak-end figures name (its customer).
async fn instance_owner(s: &common::Suite, map: &pb::JourneyMap, instance: &str) -> String {
    let request = pb::GetJourneyInstanceRequest {
        map_id: map.id.clone(),
        instance_id: instance.into(),
        profile_id: String::new(),
    };
    let mut journey = s.journey_client().await;
    let answer = journey.get_journey_instance(authed(request, &s.writer)).await.unwrap().into_inner();
    answer.peak_end.unwrap().profile_id
}

async fn analyze(s: &common::Suite, map: &pb::JourneyMap) -> pb::AnalyzeJourneyResponse {
    let request = pb::AnalyzeJourneyRequest { map_id: map.id.clone(), time_range: None, instance_limit: 10 };
    s.journey_client().await.analyze_journey(authed(request, &s.writer)).await.unwrap().into_inner()
}
