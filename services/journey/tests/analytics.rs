//! Journey analytics on a hand-worked fixture: a map of 5 steps with 2
//! moments of truth and 20 instances over 4 channels (web, app, store,
//! phone). Every expected number is worked out in the comments.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, email};
use cx_proto::common::v1::{Channel, Initiator, InteractionKind};
use cx_proto::journey::v1 as pb;
use cx_testkit::authed;

const W: Channel = Channel::Web;
const A: Channel = Channel::MobileApp;
const S: Channel = Channel::Store;
const P: Channel = Channel::Phone;

fn step(key: &str, phase: pb::Phase, importance: i32, target: f64, mot: bool, conversion: bool) -> pb::Step {
    pb::Step {
        key: key.into(),
        name: key.into(),
        phase: phase as i32,
        expected_channels: vec![],
        importance,
        target_score: target,
        moment_of_truth: mot,
        conversion,
    }
}

/// One touchpoint of a shape: step, channel, score.
type Visit = (&'static str, Channel, Option<i32>);

/// The five instance shapes: name, instances, visits in time order.
fn shapes() -> Vec<(&'static str, usize, Vec<Visit>)> {
    vec![
        // A, instances i01–i08: 8, 7, 9, 4, 7.
        (
            "A",
            8,
            vec![
                ("discover", W, Some(8)),
                ("compare", W, Some(7)),
                ("order", W, Some(9)),
                ("delivery", S, Some(4)),
                ("after_sales", P, Some(7)),
            ],
        ),
        // B, i09–i12: 6, 5, 8, 3.
        (
            "B",
            4,
            vec![("discover", A, Some(6)), ("compare", A, Some(5)), ("order", S, Some(8)), ("delivery", S, Some(3))],
        ),
        // C, i13–i16: 9, 6, on the web only.
        ("C", 4, vec![("discover", W, Some(9)), ("compare", W, Some(6))]),
        // D, i17–i18: one unscored call.
        ("D", 2, vec![("discover", P, None)]),
        // E, i19–i20: 9, 1, 8, 6 — 9 and 1 tie for the peak; the later (1) wins.
        (
            "E",
            2,
            vec![
                ("discover", W, Some(9)),
                ("order", A, Some(1)),
                ("delivery", S, Some(8)),
                ("after_sales", P, Some(6)),
            ],
        ),
    ]
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: got {got}, want {want}");
}

cx_testkit::on_both_backends!(
    the_fixture_gives_the_hand_worked_numbers,
    the_funnel_never_grows_an_instance_that_skips_a_step_passes_it,
);

async fn the_fixture_gives_the_hand_worked_numbers(backend: Backend) {
    let s = common::suite_on(backend).await;
    let mut journey = s.journey_client().await;
    let map = pb::JourneyMap {
        name: "Sofa".into(),
        customer_type: "young family".into(),
        meta_journey: pb::MetaJourney::Chore as i32,
        steps: vec![
            step("discover", pb::Phase::Before, 2, 8.0, false, false),
            step("compare", pb::Phase::Before, 3, 7.0, false, false),
            step("order", pb::Phase::Before, 5, 8.0, true, true),
            step("delivery", pb::Phase::During, 5, 8.0, true, false),
            step("after_sales", pb::Phase::After, 4, 7.0, false, false),
        ],
        ..Default::default()
    };
    let map = journey
        .create_journey_map(authed(pb::CreateJourneyMapRequest { journey_map: Some(map) }, &s.admin))
        .await
        .unwrap()
        .into_inner()
        .journey_map
        .unwrap();
    let mut touchpoints = Vec::new();
    let mut n = 0;
    let now = chrono::Utc::now();
    for (_, count, shape) in shapes() {
        for _ in 0..count {
            n += 1;
            let instance = format!("i{n:02}");
            let start = now - chrono::Duration::days(40 - n);
            for (j, (key, channel, score)) in shape.iter().enumerate() {
                touchpoints.push(pb::Touchpoint {
                    id: format!("{instance}-{key}"),
                    customer: Some(email(&format!("customer{n}@example.com"))),
                    channel: *channel as i32,
                    occur_time: Some(cx_proto::timestamp(start + chrono::Duration::hours(j as i64))),
                    kind: InteractionKind::Informative as i32,
                    initiator: Initiator::Pull as i32,
                    map_id: map.id.clone(),
                    step_key: (*key).into(),
                    instance_id: instance.clone(),
                    experience_score: *score,
                    ..Default::default()
                });
            }
        }
    }
    // 8×5 + 4×4 + 4×2 + 2×1 + 2×4 = 40 + 16 + 8 + 2 + 8 = 74 touchpoints.
    let stored = journey
        .ingest_touchpoints(authed(pb::IngestTouchpointsRequest { touchpoints, all_or_nothing: true }, &s.writer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.accepted, 74);

    let request = || pb::AnalyzeJourneyRequest { map_id: map.id.clone(), time_range: None, instance_limit: 3 };
    let a = journey.analyze_journey(authed(request(), &s.writer)).await.unwrap().into_inner();
    assert_eq!((a.map_version, a.touchpoints, a.instances), (1, 74, 20));

    let steps: Vec<(&str, i64, i64, i64, i64, i64, i64)> = a
        .steps
        .iter()
        .map(|s| (s.step_key.as_str(), s.touchpoints, s.instances, s.scored, s.disappointing, s.neutral, s.delight))
        .collect();
    assert_eq!(
        steps,
        [
            // discover: A8 + B4 + C4 + D2 + E2 = 20, D unscored → 18 scored;
            // 6 (B) neutral, 8/9/9 (A, C, E) delight.
            ("discover", 20, 20, 18, 0, 4, 14),
            // compare: A8 (7) + B4 (5) + C4 (6).
            ("compare", 16, 16, 16, 0, 8, 8),
            // order: A8 (9) + B4 (8) + E2 (1).
            ("order", 14, 14, 14, 2, 0, 12),
            // delivery: A8 (4) + B4 (3) + E2 (8).
            ("delivery", 14, 14, 14, 12, 0, 2),
            // after_sales: A8 (7) + E2 (6).
            ("after_sales", 10, 10, 10, 0, 2, 8),
        ]
    );
    let by_key = |key: &str| a.steps.iter().find(|s| s.step_key == key).unwrap();
    // Means: discover (64 + 24 + 36 + 18) / 18 = 142/18 = 7.889; compare
    // (56 + 20 + 24) / 16 = 6.25; order (72 + 32 + 2) / 14 = 7.571; delivery
    // (32 + 12 + 16) / 14 = 4.286; after_sales (56 + 12) / 10 = 6.8.
    // Gap = max(0, target − mean); priority = importance × gap × (2 if MoT):
    // discover 2 × 0.111 = 0.222; compare 3 × 0.75 = 2.25; order
    // 5 × 0.429 × 2 = 4.286; delivery 5 × 3.714 × 2 = 37.143; after_sales 4 × 0.2 = 0.8.
    for (key, mean, gap, priority) in [
        ("discover", 142.0 / 18.0, 8.0 - 142.0 / 18.0, 2.0 * (8.0 - 142.0 / 18.0)),
        ("compare", 6.25, 0.75, 2.25),
        ("order", 106.0 / 14.0, 8.0 - 106.0 / 14.0, 5.0 * (8.0 - 106.0 / 14.0) * 2.0),
        ("delivery", 60.0 / 14.0, 8.0 - 60.0 / 14.0, 5.0 * (8.0 - 60.0 / 14.0) * 2.0),
        ("after_sales", 6.8, 0.2, 0.8),
    ] {
        close(by_key(key).mean_score, mean, &format!("{key} mean"));
        close(by_key(key).gap, gap, &format!("{key} gap"));
        close(by_key(key).priority, priority, &format!("{key} priority"));
    }
    close(by_key("delivery").disappointing_share, 12.0 / 14.0, "delivery disappointing share");
    close(by_key("discover").delight_share, 14.0 / 18.0, "discover delight share");
    assert!(by_key("order").moment_of_truth && by_key("delivery").moment_of_truth);
    assert_eq!(a.improvement_plan, ["delivery", "order", "compare", "after_sales", "discover"]);

    // Funnel from 20 started, each step counting the instances that reached
    // it or a later one: discover all 20 (1.0); compare A8 + B4 + C4 and E2,
    // which skipped it, = 18 (0.9, −2); order A8 + B4 + E2 = 14 (14/18, −4);
    // delivery 14 (1.0, 0); after_sales A8 + E2 = 10 (10/14, −4).
    // Conversion at "order": 14/20 = 0.7.
    let funnel: Vec<(&str, i64, i64)> =
        a.funnel.iter().map(|f| (f.step_key.as_str(), f.instances, f.drop_off)).collect();
    assert_eq!(
        funnel,
        [("discover", 20, 0), ("compare", 18, 2), ("order", 14, 4), ("delivery", 14, 0), ("after_sales", 10, 4)]
    );
    for (f, rate) in a.funnel.iter().zip([1.0, 0.9, 14.0 / 18.0, 1.0, 10.0 / 14.0]) {
        close(f.rate_from_previous, rate, &f.step_key);
    }
    assert_eq!(a.conversions, 14);
    close(a.conversion_rate, 0.7, "conversion");

    // Continuity: 18 instances have ≥ 2 touchpoints (all but D); C stays on
    // the web, so 8 + 4 + 2 = 14 use two channels or more: 14/18.
    assert_eq!((a.multi_touch_instances, a.cross_channel_instances), (18, 14));
    close(a.continuity, 14.0 / 18.0, "continuity");
    // Switches: A web→store, store→phone (×8); B app→store (×4); E
    // web→app, app→store, store→phone (×2).
    let switches: Vec<(i32, i32, i64)> =
        a.channel_switches.iter().map(|c| (c.from_channel, c.to_channel, c.count)).collect();
    assert_eq!(
        switches,
        [(S as i32, P as i32, 10), (W as i32, S as i32, 8), (A as i32, S as i32, 6), (W as i32, A as i32, 2)]
    );

    // Peak-end: A peak 9, end 7 → 8.0 vs mean 7.0; B 8 and 3 → 5.5 vs 5.5;
    // C 9 and 6 → 7.5 vs 7.5; E 1 (tie with 9, later) and 6 → 3.5 vs 6.0.
    // 18 scored instances; remembered (64 + 22 + 30 + 7) / 18 = 123/18;
    // plain (56 + 22 + 30 + 12) / 18 = 120/18; E differs by ≥ 2: 2/18.
    assert_eq!(a.scored_instances, 18);
    close(a.mean_remembered_score, 123.0 / 18.0, "mean remembered");
    close(a.mean_plain_score, 120.0 / 18.0, "mean plain");
    close(a.peak_end_divergence_share, 2.0 / 18.0, "divergence share");
    let listed: Vec<(&str, i32, i32, f64, f64)> = a
        .instances_by_gap
        .iter()
        .map(|i| (i.instance_id.as_str(), i.peak_score, i.end_score, i.remembered_score, i.mean_score))
        .collect();
    assert_eq!(listed, [("i19", 1, 6, 3.5, 6.0), ("i20", 1, 6, 3.5, 6.0), ("i01", 9, 7, 8.0, 7.0)]);

    let one = journey
        .get_journey_instance(authed(
            pb::GetJourneyInstanceRequest {
                map_id: map.id.clone(),
                instance_id: "i19".into(),
                profile_id: String::new(),
            },
            &s.writer,
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = one.touchpoints.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["i19-discover", "i19-order", "i19-delivery", "i19-after_sales"]);
    let pe = one.peak_end.unwrap();
    assert_eq!((pe.peak_score, pe.end_score, pe.remembered_score, pe.mean_score, pe.scored), (1, 6, 3.5, 6.0, 4));

    // Cached: the same answer again; a new touchpoint of the map starts a
    // new generation and the next answer counts it.
    let again = journey.analyze_journey(authed(request(), &s.writer)).await.unwrap().into_inner();
    assert_eq!(again, a);
    let late = pb::Touchpoint {
        id: "i18-compare".into(),
        customer: Some(email("customer18@example.com")),
        channel: W as i32,
        occur_time: Some(cx_proto::timestamp(now - chrono::Duration::hours(1))),
        kind: InteractionKind::Informative as i32,
        initiator: Initiator::Pull as i32,
        map_id: map.id.clone(),
        step_key: "compare".into(),
        instance_id: "i18".into(),
        experience_score: Some(10),
        ..Default::default()
    };
    journey.record_touchpoint(authed(pb::RecordTouchpointRequest { touchpoint: Some(late) }, &s.writer)).await.unwrap();
    let after = journey.analyze_journey(authed(request(), &s.writer)).await.unwrap().into_inner();
    assert_eq!((after.touchpoints, by_key_of(&after, "compare").touchpoints), (75, 17));
    // i18 now has two touchpoints on two channels (phone, web): 19 and 15.
    assert_eq!((after.multi_touch_instances, after.cross_channel_instances), (19, 15));
}

fn by_key_of<'a>(a: &'a pb::AnalyzeJourneyResponse, key: &str) -> &'a pb::StepStats {
    a.steps.iter().find(|s| s.step_key == key).unwrap()
}

/// Three instances of a map of two steps, visit then order: i1 visits and
/// orders, i2 orders without visiting, i3 has a touchpoint at no step. A
/// funnel counting each step on its own showed visit 1 then order 2: a rate
/// of 2.0 and a drop-off of −1. Counting at each step the instances that
/// reached it or a later one (docs/DOMAIN.md §5.6): visit 2 (i1, i2) of 3
/// started, rate 2/3, drop-off 1; order 2 of 2, rate 1.0, drop-off 0.
async fn the_funnel_never_grows_an_instance_that_skips_a_step_passes_it(backend: Backend) {
    let s = common::suite_on(backend).await;
    let map = common::two_step_map(&s).await;
    let at = |id: &str, who: &str, hours_ago| common::touchpoint(id, email(who), W, Initiator::Pull, hours_ago);
    let mut off_step = at("i3-a", "cy@example.com", 1);
    (off_step.map_id, off_step.instance_id) = (map.id.clone(), "i3".into());
    let batch = vec![
        common::on_map(at("i1-a", "al@example.com", 3), &map, "visit", "i1", 7),
        common::on_map(at("i1-b", "al@example.com", 2), &map, "order", "i1", 8),
        common::on_map(at("i2-a", "bo@example.com", 2), &map, "order", "i2", 9),
        off_step,
    ];
    assert_eq!(s.ingest(batch).await.accepted, 4);
    let request = pb::AnalyzeJourneyRequest { map_id: map.id.clone(), time_range: None, instance_limit: 0 };
    let a = s.journey_client().await.analyze_journey(authed(request, &s.writer)).await.unwrap().into_inner();
    assert_eq!(a.instances, 3);
    let funnel: Vec<(&str, i64, f64, i64)> =
        a.funnel.iter().map(|f| (f.step_key.as_str(), f.instances, f.rate_from_previous, f.drop_off)).collect();
    assert_eq!(funnel, [("visit", 2, 2.0 / 3.0, 1), ("order", 2, 1.0, 0)]);
    // The steps' own counts are unchanged: visit 1 instance, order 2.
    let own: Vec<(&str, i64)> = a.steps.iter().map(|s| (s.step_key.as_str(), s.instances)).collect();
    assert_eq!(own, [("visit", 1), ("order", 2)]);
    // Conversion (order): i1 and i2 of 3.
    assert_eq!(a.conversions, 2);
    close(a.conversion_rate, 2.0 / 3.0, "conversion");
}
