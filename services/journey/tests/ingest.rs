//! Touchpoint ingest through all three RPCs on PostgreSQL, with the real
//! profile service on loopback resolving identities and receiving activity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{count, email, purchase, suite, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::profile::v1 as profile;
use cx_testkit::authed;

#[tokio::test]
async fn three_ways_in_store_each_touchpoint_once_and_the_profile_follows() {
    let s = suite().await;
    let mut journey = s.journey_client().await;
    let mut profiles = s.profile_client().await;
    // C is known by profile id already.
    let c = profiles
        .resolve_profile(authed(
            profile::ResolveProfileRequest {
                identity: Some(profile::Identity { kind: profile::IdentityKind::CrmId as i32, value: "crm-c".into() }),
                create_if_missing: true,
            },
            &s.writer,
        ))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap()
        .id;
    let c_id = pb::touchpoint::Customer::ProfileId(c.clone());
    let (a, b) = (email("a@example.com"), email("B@Example.com "));
    let with_device = |mut tp: pb::Touchpoint, device: &str| {
        tp.device_id = device.into();
        tp
    };
    let a1 = touchpoint("a1", a.clone(), Channel::Web, Initiator::Pull, 10);
    let a2 = touchpoint("a2", a.clone(), Channel::Web, Initiator::Pull, 9);
    let a3 = with_device(touchpoint("a3", a.clone(), Channel::MobileApp, Initiator::Pull, 8), "phone-a");
    let a4 = purchase(touchpoint("a4", a.clone(), Channel::Store, Initiator::Push, 7), 20);
    let a5 = with_device(touchpoint("a5", a.clone(), Channel::Email, Initiator::Push, 6), "laptop-a");
    let b1 = purchase(touchpoint("b1", b.clone(), Channel::Store, Initiator::Push, 5), 50);
    let b2 = touchpoint("b2", b.clone(), Channel::Phone, Initiator::Pull, 4);
    let b3 = touchpoint("b3", b.clone(), Channel::Web, Initiator::Pull, 3);
    let c1 = touchpoint("c1", c_id.clone(), Channel::Web, Initiator::Pull, 2);
    let c2 = touchpoint("c2", c_id.clone(), Channel::Chat, Initiator::Pull, 1);
    let c3 = with_device(touchpoint("c3", c_id.clone(), Channel::MobileApp, Initiator::Pull, 1), "phone-c");
    // 200 more from 20 customers, 20 of them (10 %) sent twice.
    let bulk: Vec<pb::Touchpoint> = (0..200)
        .map(|i| {
            touchpoint(
                &format!("bulk-{i}"),
                email(&format!("bulk{}@example.com", i % 20)),
                Channel::Web,
                Initiator::Pull,
                20,
            )
        })
        .collect();

    let mut first = vec![a1.clone(), a2.clone(), a3.clone(), b1.clone()];
    first.extend(bulk.iter().cloned());
    first.extend(bulk[..20].iter().cloned());
    let batch = journey
        .ingest_touchpoints(authed(
            pb::IngestTouchpointsRequest { touchpoints: first, all_or_nothing: false },
            &s.writer,
        ))
        .await
        .unwrap()
        .into_inner();
    // 4 + 200 new; the 20 repeats inside the batch are duplicates.
    assert_eq!((batch.accepted, batch.duplicates, batch.errors.len()), (204, 20, 0));

    let mut unary = Vec::new();
    for tp in [a4.clone(), a5.clone(), b2.clone(), b2.clone()] {
        let reply = journey
            .record_touchpoint(authed(pb::RecordTouchpointRequest { touchpoint: Some(tp) }, &s.writer))
            .await
            .unwrap()
            .into_inner();
        unary.push(reply.duplicate);
    }
    assert_eq!(unary, [false, false, false, true], "the second b2 is a replay");

    let chunks = vec![
        pb::StreamTouchpointsRequest { touchpoints: vec![b3.clone(), c1.clone()] },
        pb::StreamTouchpointsRequest { touchpoints: vec![c2.clone(), c3.clone(), a1.clone()] },
    ];
    let mut acks =
        journey.stream_touchpoints(authed(tokio_stream::iter(chunks), &s.writer)).await.unwrap().into_inner();
    let mut seen = Vec::new();
    while let Some(ack) = acks.message().await.unwrap() {
        seen.push((ack.chunk, ack.accepted, ack.duplicates));
    }
    assert_eq!(seen, [(0, 2, 0), (1, 2, 1)], "a1 came again in the second chunk");

    let again = journey
        .ingest_touchpoints(authed(
            pb::IngestTouchpointsRequest { touchpoints: vec![a2.clone(), c3.clone()], all_or_nothing: true },
            &s.writer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 2));

    // 11 hand-made + 200 bulk, each stored once.
    let sql = s.sql("journey").await;
    assert_eq!(count(&sql, "SELECT count(*) FROM touchpoints").await, 211);

    // A: 5 touchpoints, 4 digital (web, web, app, email) → share 0.8;
    // 3 digital channels → breadth 3/8 = 0.375; 2 devices → 0.5; web, web
    // and app are pulls, email is a push → self-service 3/4 = 0.75. DII = 100 × (0.5·0.8 + 0.2·0.375 +
    // 0.15·0.5 + 0.15·0.75) = 100 × (0.4 + 0.075 + 0.075 + 0.1125) = 66.25 → 66.
    let a_id = resolve(&s, profile::IdentityKind::Email, "a@example.com").await;
    let a_profile = s.eventually_profile(&a_id, |p| p.digital_intensity.as_ref().is_some_and(|d| d.index == 66)).await;
    assert_eq!(a_profile.digital_intensity.unwrap().category, profile::DigitalCategory::Connected as i32);
    assert_eq!(a_profile.lifecycle, profile::Lifecycle::Active as i32, "a4 was a purchase 7 hours ago");
    assert_eq!(a_profile.last_touch_time.unwrap().seconds, a5.occur_time.unwrap().seconds);
    // B (store, phone, web): 1 digital of 3 (a pull) → share 1/3, breadth
    // 1/8, no device, self-service 1/1. DII = 100 × (0.5/3 + 0.025 + 0 +
    // 0.15) = 100 × (0.1667 + 0.025 + 0.15) = 34.17 → 34.
    let b_id = resolve(&s, profile::IdentityKind::Email, "b@example.com").await;
    let b_profile = s.eventually_profile(&b_id, |p| p.digital_intensity.as_ref().is_some_and(|d| d.index == 34)).await;
    assert_eq!(b_profile.digital_intensity.unwrap().category, profile::DigitalCategory::Hybrid as i32);
    assert_eq!(b_profile.lifecycle, profile::Lifecycle::Active as i32);
    // C: web, chat, app, all pulls, 1 device: 100 × (0.5 + 0.2·3/8 + 0.15/4 + 0.15)
    // = 100 × (0.5 + 0.075 + 0.0375 + 0.15) = 76.25 → 76; never purchased.
    let c_profile = s.eventually_profile(&c, |p| p.digital_intensity.as_ref().is_some_and(|d| d.index == 76)).await;
    assert_eq!(c_profile.digital_intensity.unwrap().category, profile::DigitalCategory::DigitalNative as i32);
    assert_eq!(c_profile.lifecycle, profile::Lifecycle::Prospect as i32);

    // The adviser's view of A: newest first, two at a time, then web only.
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = journey
            .list_timeline(authed(
                pb::ListTimelineRequest {
                    profile_id: a_id.clone(),
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &s.writer,
            ))
            .await
            .unwrap()
            .into_inner();
        pages.push(page.touchpoints.iter().map(|t| t.id.clone()).collect::<Vec<_>>());
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, [vec!["a5", "a4"], vec!["a3", "a2"], vec!["a1"]]);
    let web = journey
        .list_timeline(authed(
            pb::ListTimelineRequest {
                profile_id: a_id.clone(),
                channels: vec![Channel::Web as i32],
                ..Default::default()
            },
            &s.writer,
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = web.touchpoints.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a2", "a1"]);
    let a4_back = &pages_touchpoint(&mut journey, &s, &a_id, "a4").await;
    let money = a4_back.purchase_amount.as_ref().unwrap();
    assert_eq!((money.currency_code.as_str(), money.units, a4_back.kind), ("EUR", 20, 2));
}

async fn pages_touchpoint(
    journey: &mut pb::journey_service_client::JourneyServiceClient<tonic::transport::Channel>,
    s: &common::Suite,
    profile_id: &str,
    id: &str,
) -> pb::Touchpoint {
    let all = journey
        .list_timeline(authed(
            pb::ListTimelineRequest { profile_id: profile_id.into(), ..Default::default() },
            &s.writer,
        ))
        .await
        .unwrap()
        .into_inner();
    all.touchpoints.into_iter().find(|t| t.id == id).unwrap()
}

async fn resolve(s: &common::Suite, kind: profile::IdentityKind, value: &str) -> String {
    let mut profiles = s.profile_client().await;
    let request = profile::ResolveProfileRequest {
        identity: Some(profile::Identity { kind: kind as i32, value: value.into() }),
        create_if_missing: false,
    };
    profiles.resolve_profile(authed(request, &s.writer)).await.unwrap().into_inner().profile.unwrap().id
}

#[tokio::test]
async fn concurrent_unary_calls_are_stored_once_each_even_when_they_share_an_id() {
    let s = suite().await;
    let journey = s.journey_client().await;
    // 200 calls at once: 180 distinct ids, and one id sent by 20 calls.
    let calls = (0..200).map(|i| {
        let id = if i < 20 { "shared".to_owned() } else { format!("solo-{i}") };
        let tp = touchpoint(&id, email(&format!("u{}@example.com", i % 7)), Channel::Web, Initiator::Pull, 1);
        let mut client = journey.clone();
        let writer = s.writer.clone();
        tokio::spawn(async move {
            let request = authed(pb::RecordTouchpointRequest { touchpoint: Some(tp) }, &writer);
            client.record_touchpoint(request).await.map(|r| (id, r.into_inner().duplicate))
        })
    });
    let mut fresh = std::collections::HashMap::<String, usize>::new();
    for call in futures::future::join_all(calls).await {
        let (id, duplicate) = call.unwrap().unwrap();
        if !duplicate {
            *fresh.entry(id).or_default() += 1;
        }
    }
    // Every id was new exactly once: 180 solo ids + "shared".
    assert_eq!(fresh.len(), 181);
    assert!(fresh.values().all(|n| *n == 1), "{fresh:?}");
    assert_eq!(count(&s.sql("journey").await, "SELECT count(*) FROM touchpoints").await, 181);
}
