//! Journey maps and their versions; bad input refused with the exact field
//! at fault, and nothing half-written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, count, suite, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_runtime::error::field_violations;
use cx_testkit::authed;
use tonic::Code;

fn step(key: &str, phase: pb::Phase, importance: i32, moment_of_truth: bool, conversion: bool) -> pb::Step {
    pb::Step {
        key: key.into(),
        name: key.replace('_', " "),
        phase: phase as i32,
        expected_channels: vec![Channel::Web as i32, Channel::Store as i32],
        importance,
        target_score: 8.0,
        moment_of_truth,
        conversion,
    }
}

fn purchase_map() -> pb::JourneyMap {
    pb::JourneyMap {
        name: "Buy a sofa".into(),
        customer_type: "young family".into(),
        meta_journey: pb::MetaJourney::Chore as i32,
        steps: vec![
            step("discover", pb::Phase::Before, 2, false, false),
            step("compare", pb::Phase::Before, 3, false, false),
            step("order", pb::Phase::Before, 5, true, true),
            step("delivery", pb::Phase::During, 5, true, false),
            step("after_sales", pb::Phase::After, 4, false, false),
        ],
        ..Default::default()
    }
}

fn fields(status: &tonic::Status) -> Vec<String> {
    field_violations(status).into_iter().map(|v| v.field).collect()
}

#[tokio::test]
async fn maps_are_versioned_and_touchpoints_keep_their_version() {
    let s = suite().await;
    let mut journey = s.journey_client().await;
    let created = journey
        .create_journey_map(authed(pb::CreateJourneyMapRequest { journey_map: Some(purchase_map()) }, &s.admin))
        .await
        .unwrap()
        .into_inner()
        .journey_map
        .unwrap();
    assert_eq!((created.version, created.steps.len()), (1, 5));
    let a = common::email("ana@example.com");
    let mut on_v1 = touchpoint("v1-order", a.clone(), Channel::Web, Initiator::Pull, 2);
    on_v1.map_id = created.id.clone();
    on_v1.step_key = "order".into();
    journey
        .record_touchpoint(authed(pb::RecordTouchpointRequest { touchpoint: Some(on_v1) }, &s.writer))
        .await
        .unwrap();

    // A writer cannot change maps; an admin renames the last step: version 2.
    let mut changed = created.clone();
    changed.steps[4] = step("loyalty", pb::Phase::After, 4, false, false);
    let update = |map: pb::JourneyMap, paths: &[&str]| pb::UpdateJourneyMapRequest {
        journey_map: Some(map),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
    };
    let denied = journey.update_journey_map(authed(update(changed.clone(), &["steps"]), &s.writer)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let v2 = journey
        .update_journey_map(authed(update(changed.clone(), &["steps"]), &s.admin))
        .await
        .unwrap()
        .into_inner()
        .journey_map
        .unwrap();
    assert_eq!((v2.version, v2.steps[4].key.as_str()), (2, "loyalty"));
    let renamed = journey
        .update_journey_map(authed(
            update(pb::JourneyMap { id: created.id.clone(), name: "Sofa".into(), ..Default::default() }, &["name"]),
            &s.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .journey_map
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.version), ("Sofa", 2), "a rename keeps the version");
    let bad_path = journey.update_journey_map(authed(update(changed.clone(), &["owner"]), &s.admin)).await.unwrap_err();
    assert_eq!(fields(&bad_path), ["update_mask"]);

    let mut on_v2 = touchpoint("v2-loyalty", a.clone(), Channel::Email, Initiator::Push, 1);
    on_v2.map_id = created.id.clone();
    on_v2.step_key = "loyalty".into();
    let profile_id = journey
        .record_touchpoint(authed(pb::RecordTouchpointRequest { touchpoint: Some(on_v2) }, &s.writer))
        .await
        .unwrap()
        .into_inner()
        .profile_id;
    let timeline = journey
        .list_timeline(authed(pb::ListTimelineRequest { profile_id, ..Default::default() }, &s.writer))
        .await
        .unwrap()
        .into_inner();
    let kept: Vec<(&str, i32, i32)> =
        timeline.touchpoints.iter().map(|t| (t.id.as_str(), t.map_version, t.phase)).collect();
    // The phase comes from the step when the touchpoint does not say.
    assert_eq!(kept, [("v2-loyalty", 2, pb::Phase::After as i32), ("v1-order", 1, pb::Phase::Before as i32)]);

    let old = journey
        .get_journey_map(authed(pb::GetJourneyMapRequest { id: created.id.clone(), version: 1 }, &s.writer))
        .await
        .unwrap()
        .into_inner()
        .journey_map
        .unwrap();
    assert_eq!((old.version, old.steps[4].key.as_str()), (1, "after_sales"));
    let listed =
        journey.list_journey_maps(authed(pb::ListJourneyMapsRequest::default(), &s.writer)).await.unwrap().into_inner();
    assert_eq!(listed.journey_maps.iter().map(|m| m.version).collect::<Vec<_>>(), [2]);

    journey.delete_journey_map(authed(pb::DeleteJourneyMapRequest { id: created.id.clone() }, &s.admin)).await.unwrap();
    let gone = journey
        .get_journey_map(authed(pb::GetJourneyMapRequest { id: created.id.clone(), version: 0 }, &s.writer))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn a_bad_map_is_refused_with_each_problem_named() {
    let s = suite().await;
    let mut journey = s.journey_client().await;
    let mut map = purchase_map();
    map.steps[0].conversion = true;
    map.steps[1].importance = 0;
    map.steps[2].key = "discover".into();
    map.meta_journey = 0;
    let refused = journey
        .create_journey_map(authed(pb::CreateJourneyMapRequest { journey_map: Some(map) }, &s.admin))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&refused),
        [
            "journey_map.meta_journey",
            "journey_map.steps[1].importance",
            "journey_map.steps[2].key",
            "journey_map.steps",
        ]
    );
}

#[tokio::test]
async fn each_bad_touchpoint_is_reported_and_the_good_ones_are_kept() {
    let s = suite().await;
    let mut journey = s.journey_client().await;
    let map = journey
        .create_journey_map(authed(pb::CreateJourneyMapRequest { journey_map: Some(purchase_map()) }, &s.admin))
        .await
        .unwrap()
        .into_inner()
        .journey_map
        .unwrap();
    let who = common::email("bea@example.com");
    let good = touchpoint("good", who.clone(), Channel::Web, Initiator::Pull, 1);
    let mut unknown_channel = touchpoint("chan", who.clone(), Channel::Web, Initiator::Pull, 1);
    unknown_channel.channel = 99;
    let mut score_11 = touchpoint("score", who.clone(), Channel::Web, Initiator::Pull, 1);
    score_11.experience_score = Some(11);
    let no_id = touchpoint("", who.clone(), Channel::Web, Initiator::Pull, 1);
    let mut no_step = touchpoint("step", who.clone(), Channel::Web, Initiator::Pull, 1);
    no_step.map_id = map.id.clone();
    no_step.step_key = "teleport".into();
    let mut bad_email = touchpoint("email", common::email("not-an-email"), Channel::Web, Initiator::Pull, 1);
    bad_email.device_id = "d".into();
    let batch = vec![
        good.clone(),
        unknown_channel.clone(),
        score_11.clone(),
        no_id.clone(),
        no_step.clone(),
        bad_email.clone(),
    ];

    let all = journey
        .ingest_touchpoints(authed(
            pb::IngestTouchpointsRequest { touchpoints: batch.clone(), all_or_nothing: true },
            &s.writer,
        ))
        .await
        .unwrap_err();
    assert_eq!(all.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&all),
        ["touchpoints[1].channel", "touchpoints[2].experience_score", "touchpoints[3].id", "touchpoints[4].step_key",],
        "identities are not resolved for a batch refused already"
    );
    let sql = s.sql("journey").await;
    assert_eq!(count(&sql, "SELECT count(*) FROM touchpoints").await, 0, "all or nothing: nothing");
    let pair =
        vec![touchpoint("new", common::email("carl@example.com"), Channel::Web, Initiator::Pull, 1), bad_email.clone()];
    let identity = journey
        .ingest_touchpoints(authed(pb::IngestTouchpointsRequest { touchpoints: pair, all_or_nothing: true }, &s.writer))
        .await
        .unwrap_err();
    assert_eq!(fields(&identity), ["touchpoints[1].identity.value"]);
    let mut profiles = s.profile_client().await;
    let lookup = cx_proto::profile::v1::ResolveProfileRequest {
        identity: Some(cx_proto::profile::v1::Identity {
            kind: cx_proto::profile::v1::IdentityKind::Email as i32,
            value: "carl@example.com".into(),
        }),
        create_if_missing: false,
    };
    let carl = profiles.resolve_profile(authed(lookup, &s.writer)).await.unwrap_err();
    assert_eq!(carl.code(), Code::NotFound, "no profile is created for a refused batch");

    let some = journey
        .ingest_touchpoints(authed(
            pb::IngestTouchpointsRequest { touchpoints: batch, all_or_nothing: false },
            &s.writer,
        ))
        .await
        .unwrap()
        .into_inner();
    let errors: Vec<(i32, &str, &str)> =
        some.errors.iter().map(|e| (e.index, e.touchpoint_id.as_str(), e.field.as_str())).collect();
    assert_eq!(
        errors,
        [
            (1, "chan", "channel"),
            (2, "score", "experience_score"),
            (3, "", "id"),
            (4, "step", "step_key"),
            (5, "email", "identity.value"),
        ]
    );
    assert_eq!((some.accepted, some.duplicates), (1, 0));
    assert_eq!(count(&sql, "SELECT count(*) FROM touchpoints").await, 1);

    let unary = journey
        .record_touchpoint(authed(pb::RecordTouchpointRequest { touchpoint: Some(score_11) }, &s.writer))
        .await
        .unwrap_err();
    assert_eq!(fields(&unary), ["touchpoint.experience_score"]);

    let too_many: Vec<pb::Touchpoint> = (0..100_001)
        .map(|i| {
            let mut tp = good.clone();
            tp.id = format!("many-{i}");
            tp
        })
        .collect();
    let refused = journey
        .ingest_touchpoints(authed(
            pb::IngestTouchpointsRequest { touchpoints: too_many, all_or_nothing: false },
            &s.writer,
        ))
        .await
        .unwrap_err();
    assert_eq!((refused.code(), fields(&refused)), (Code::InvalidArgument, vec!["touchpoints".to_owned()]));
    assert_eq!(count(&sql, "SELECT count(*) FROM touchpoints").await, 1);
}

cx_testkit::on_both_backends!(a_time_range_not_moving_forward_is_refused_by_every_rpc_that_takes_one);

/// ListTimeline, AnalyzeJourney and profile's ListLifecycleTransitions refuse
/// a range whose start is not before its end alike (docs/DOMAIN.md §1.2).
async fn a_time_range_not_moving_forward_is_refused_by_every_rpc_that_takes_one(backend: Backend) {
    use cx_proto::profile::v1 as profile;
    let s = common::suite_on(backend).await;
    let map = common::two_step_map(&s).await;
    let stored =
        s.ingest(vec![touchpoint("t1", common::email("tia@example.com"), Channel::Web, Initiator::Pull, 2)]).await;
    assert_eq!(stored.accepted, 1);
    let tia = s.id_of("tia@example.com").await;
    let now = chrono::Utc::now();
    let range = |start: chrono::DateTime<chrono::Utc>, end| cx_proto::common::v1::TimeRange {
        start_time: Some(cx_proto::timestamp(start)),
        end_time: Some(cx_proto::timestamp(end)),
    };
    let (mut journey, mut profiles) = (s.journey_client().await, s.profile_client().await);
    // Inverted by an hour, and empty (start = end).
    for time_range in [range(now, now - chrono::Duration::hours(1)), range(now, now)] {
        let timeline =
            pb::ListTimelineRequest { profile_id: tia.clone(), time_range: Some(time_range), ..Default::default() };
        let analysis =
            pb::AnalyzeJourneyRequest { map_id: map.id.clone(), time_range: Some(time_range), instance_limit: 0 };
        let transitions =
            profile::ListLifecycleTransitionsRequest { time_range: Some(time_range), ..Default::default() };
        let refusals = [
            journey.list_timeline(authed(timeline, &s.writer)).await.map(|_| ()).unwrap_err(),
            journey.analyze_journey(authed(analysis, &s.writer)).await.map(|_| ()).unwrap_err(),
            profiles.list_lifecycle_transitions(authed(transitions, &s.writer)).await.map(|_| ()).unwrap_err(),
        ];
        for status in refusals {
            assert_eq!(
                (status.code(), fields(&status)),
                (Code::InvalidArgument, vec!["time_range".to_owned()]),
                "{status:?}"
            );
        }
    }
    // The same range the right way round is answered.
    let forward = pb::ListTimelineRequest {
        profile_id: tia,
        time_range: Some(range(now - chrono::Duration::hours(3), now)),
        ..Default::default()
    };
    let page = journey.list_timeline(authed(forward, &s.writer)).await.unwrap().into_inner();
    assert_eq!(page.touchpoints.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t1"]);
}
