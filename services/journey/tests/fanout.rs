//! The profile service's merges and erasures reach the journey service
//! through the outbox — also when it is down at the time — and an erasure
//! leaves nothing that mentions the customer (PostgreSQL and Redis).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{email, purchase, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::profile::v1 as profile;
use cx_testkit::{authed, eventually};

async fn timeline_ids(s: &common::Suite, profile_id: &str) -> Vec<String> {
    let mut journey = s.journey_client().await;
    let request = pb::ListTimelineRequest { profile_id: profile_id.into(), ..Default::default() };
    let page = journey.list_timeline(authed(request, &s.writer)).await.unwrap().into_inner();
    page.touchpoints.into_iter().map(|t| t.id).collect()
}

async fn erasure(s: &common::Suite, id: &str) -> profile::Erasure {
    let mut profiles = s.profile_client().await;
    let request = authed(profile::GetErasureRequest { id: id.into() }, &s.admin);
    profiles.get_erasure(request).await.unwrap().into_inner().erasure.unwrap()
}

/// The status and last error of the profile service's outbox row that asks
/// the journey service to take part in erasure `job`.
async fn erasure_request(s: &common::Suite, job: &str) -> (String, String) {
    use sea_orm::ConnectionTrait;
    let sql = format!(
        "SELECT status, last_error FROM outbox WHERE tenant_id = '{}' AND destination = 'journey' \
         AND position(convert_to('{job}', 'UTF8') in payload) > 0",
        s.tenant
    );
    let conn = s.sql("profile").await;
    let rows = conn.query_all_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql)).await.unwrap();
    assert_eq!(rows.len(), 1, "one request per participant");
    (rows[0].try_get("", "status").unwrap(), rows[0].try_get("", "last_error").unwrap())
}

fn step_states(job: &profile::Erasure) -> Vec<(String, i32)> {
    job.steps.iter().map(|s| (s.service.clone(), s.state)).collect()
}

#[tokio::test]
async fn merge_reaches_the_journey_service_and_erasure_waits_for_it_then_leaves_nothing() {
    let mut s = common::suite().await;
    let mut journey = s.journey_client().await;
    let mut profiles = s.profile_client().await;
    let (x, y) = (email("xavier@example.com"), email("yann@example.com"));
    let batch = vec![
        touchpoint("x1", x.clone(), Channel::Web, Initiator::Pull, 5),
        purchase(touchpoint("x2", x.clone(), Channel::Store, Initiator::Push, 4), 30),
        touchpoint("y1", y.clone(), Channel::MobileApp, Initiator::Pull, 3),
    ];
    let ingested = journey
        .ingest_touchpoints(authed(
            pb::IngestTouchpointsRequest { touchpoints: batch, all_or_nothing: true },
            &s.writer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ingested.accepted, 3);
    let id_of = |value: &str| profile::ResolveProfileRequest {
        identity: Some(profile::Identity { kind: profile::IdentityKind::Email as i32, value: value.into() }),
        create_if_missing: false,
    };
    let x_id = profiles.resolve_profile(authed(id_of("xavier@example.com"), &s.writer)).await.unwrap();
    let x_id = x_id.into_inner().profile.unwrap().id;
    let y_id = profiles.resolve_profile(authed(id_of("yann@example.com"), &s.writer)).await.unwrap();
    let y_id = y_id.into_inner().profile.unwrap().id;
    s.eventually_profile(&x_id, |p| p.last_touch_time.is_some()).await;

    // Merge Y into X: the journey service moves Y's touchpoints to X.
    let merge = profile::MergeProfilesRequest {
        survivor_id: x_id.clone(),
        merged_id: y_id.clone(),
        prefer_merged_attributes: false,
    };
    profiles.merge_profiles(authed(merge, &s.admin)).await.unwrap();
    let moved = eventually("the merge reaches X's timeline", || timeline_ids(&s, &x_id), |ids| ids.len() == 3).await;
    assert_eq!(moved, ["y1", "x2", "x1"], "newest first, Y's touchpoint now on X's timeline");
    assert_eq!(timeline_ids(&s, &y_id).await, moved, "Y's id reads X's timeline");
    // A touchpoint sent later for the merged id is recorded for the survivor.
    let late =
        vec![touchpoint("y2", pb::touchpoint::Customer::ProfileId(y_id.clone()), Channel::Web, Initiator::Pull, 0)];
    journey
        .ingest_touchpoints(authed(pb::IngestTouchpointsRequest { touchpoints: late, all_or_nothing: true }, &s.writer))
        .await
        .unwrap();
    assert_eq!(timeline_ids(&s, &x_id).await, ["y2", "y1", "x2", "x1"]);
    assert_eq!(timeline_ids(&s, &y_id).await, ["y2", "y1", "x2", "x1"]);

    // The journey service goes down; the erasure starts without it.
    let journey_addr = s.cluster.stop("journey").await;
    let erase = profile::EraseCustomerRequest { profile_id: x_id.clone() };
    let job = profiles.erase_customer(authed(erase, &s.admin)).await.unwrap().into_inner().erasure.unwrap();
    let (pending, completed) = (profile::ErasureState::Pending as i32, profile::ErasureState::Completed as i32);
    assert_eq!(job.state, pending);
    assert_eq!(step_states(&job), [("journey".to_owned(), pending), ("profile".to_owned(), completed)]);
    // Pending for the right reason: the profile service's dispatcher is
    // alive, tried to deliver the request and could not reach the journey
    // service; the request is still owed, and the job waits for it.
    let (status, refused) = eventually(
        "the dispatcher tries to send the erasure request to the journey service",
        || erasure_request(&s, &job.id),
        |(_, last_error)| !last_error.is_empty(),
    )
    .await;
    assert_eq!(status, "pending", "still owed after the attempt refused with: {refused}");
    assert_eq!(erasure(&s, &job.id).await.state, pending, "the job waits for the journey service");

    // It comes back on the same address and the job completes.
    s.cluster.restart("journey", journey_addr).await;
    let receipt = eventually("the erasure completes", || erasure(&s, &job.id), |e| e.state == completed).await;
    let journey_step = receipt.steps.iter().find(|s| s.service == "journey").unwrap();
    // x1, x2, y1 (moved by the merge) and y2 (sent for Y after it); the merge Y → X itself.
    assert_eq!(journey_step.erased_counts.get("touchpoints"), Some(&4));
    assert_eq!(journey_step.erased_counts.get("merges"), Some(&1));

    let needles = [x_id.as_str(), y_id.as_str(), "xavier@example.com", "yann@example.com"];
    assert_eq!(cx_testkit::rows_mentioning(&s.db, "profile", &needles).await, Vec::<String>::new());
    assert_eq!(cx_testkit::rows_mentioning(&s.db, "journey", &needles).await, Vec::<String>::new());
    assert_eq!(cx_testkit::redis_mentioning(&s.tenant, &x_id).await, Vec::<String>::new());

    // The erased identity comes again: a new, empty profile, nothing revived.
    let again = vec![touchpoint("x3", x.clone(), Channel::Web, Initiator::Pull, 1)];
    let mut journey = s.journey_client().await;
    journey
        .ingest_touchpoints(authed(
            pb::IngestTouchpointsRequest { touchpoints: again, all_or_nothing: true },
            &s.writer,
        ))
        .await
        .unwrap();
    let fresh = profiles.resolve_profile(authed(id_of("xavier@example.com"), &s.writer)).await.unwrap();
    let fresh = fresh.into_inner().profile.unwrap();
    assert_ne!(fresh.id, x_id);
    assert_eq!(timeline_ids(&s, &fresh.id).await, ["x3"]);
}
