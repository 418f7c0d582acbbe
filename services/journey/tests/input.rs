//! Any bytes get a clean answer, and no request costs memory out of
//! proportion to its size (issue 13, items 4 and 6), on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Suite, suite_on, touchpoint};
use cx_proto::common::v1::{Channel, Initiator};
use cx_proto::journey::v1 as pb;
use cx_proto::profile::v1 as profile;
use cx_runtime::error::{FieldViolation, field_violations};
use cx_testkit::{authed, raw};
use prost::Message;
use tonic::Code;

const INGEST: &str = "/cx.journey.v1.JourneyService/IngestTouchpoints";
const CREATE_MAP: &str = "/cx.journey.v1.JourneyService/CreateJourneyMap";
const NUL: &str = "must not contain NUL characters";

/// A profile of the suite's tenant, by its email.
async fn profile_id(s: &Suite, email: &str) -> String {
    let identity = profile::Identity { kind: profile::IdentityKind::Email as i32, value: email.into() };
    let request = profile::ResolveProfileRequest { identity: Some(identity), create_if_missing: true };
    let mut client = s.profile_client().await;
    client.resolve_profile(authed(request, &s.writer)).await.unwrap().into_inner().profile.unwrap().id
}

fn by_id(id: &str, profile_id: &str) -> pb::Touchpoint {
    touchpoint(id, pb::touchpoint::Customer::ProfileId(profile_id.into()), Channel::Web, Initiator::Pull, 1)
}

async fn timeline_len(s: &Suite, profile_id: &str) -> usize {
    let request = pb::ListTimelineRequest { profile_id: profile_id.into(), page_size: 1000, ..Default::default() };
    let mut journey = s.journey_client().await;
    journey.list_timeline(authed(request, &s.writer)).await.unwrap().into_inner().touchpoints.len()
}

fn violations(status: &tonic::Status) -> Vec<FieldViolation> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
}

async fn raw_bytes_are_invalid_argument(backend: Backend) {
    let s = suite_on(backend).await;
    let channel = s.journey().channel().await;
    // An unfinished varint: not protobuf at all (INTERNAL before).
    let status = raw::call(channel.clone(), INGEST, vec![0xff, 0xff, 0xff], &s.writer).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = raw::call(channel.clone(), CREATE_MAP, vec![0x0a, 0x05, 0x01], &s.writer).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // touchpoints[0].id is the byte 0xff: not UTF-8, named by its path.
    let status = raw::call(channel, INGEST, vec![0x0a, 0x03, 0x0a, 0x01, 0xff], &s.writer).await.unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new("touchpoints[0].id", "is not valid UTF-8")]);
}

async fn a_nul_is_invalid_argument_with_its_path(backend: Backend) {
    let s = suite_on(backend).await;
    let mut journey = s.journey_client().await;
    let map = pb::JourneyMap { name: "sofa\0".into(), ..Default::default() };
    let status = journey
        .create_journey_map(authed(pb::CreateJourneyMapRequest { journey_map: Some(map) }, &s.admin))
        .await
        .unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new("journey_map.name", NUL)]);
    let ana = profile_id(&s, "ana@example.com").await;
    let mut tp = by_id("unary-1", &ana);
    tp.instance_id = "visit\0".into();
    let status =
        journey.record_touchpoint(authed(pb::RecordTouchpointRequest { touchpoint: Some(tp) }, &s.writer)).await;
    assert_eq!(violations(&status.unwrap_err()), [FieldViolation::new("touchpoint.instance_id", NUL)]);
    let request = pb::ListTimelineRequest { profile_id: ana.clone(), page_token: "\0".into(), ..Default::default() };
    let status = journey.list_timeline(authed(request, &s.writer)).await.unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new("page_token", NUL)]);
    // An attribute key in a batch: that item alone, named by its key.
    let mut tp = by_id("attr-1", &ana);
    tp.attributes.insert("k\0".into(), Default::default());
    let request = pb::IngestTouchpointsRequest { touchpoints: vec![tp], all_or_nothing: true };
    let status = journey.ingest_touchpoints(authed(request, &s.writer)).await.unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new(r#"touchpoints[0].attributes["k\0"]"#, NUL)]);
    assert_eq!(timeline_len(&s, &ana).await, 0);
}

async fn one_nul_id_refuses_only_its_touchpoint(backend: Backend) {
    let s = suite_on(backend).await;
    let ana = profile_id(&s, "ana@example.com").await;
    let touchpoints: Vec<pb::Touchpoint> =
        (0..100).map(|i| by_id(&if i == 37 { "bad\0id".to_owned() } else { format!("tp-{i}") }, &ana)).collect();
    let request = pb::IngestTouchpointsRequest { touchpoints, all_or_nothing: false };
    let mut journey = s.journey_client().await;
    let answer = journey.ingest_touchpoints(authed(request, &s.writer)).await.unwrap().into_inner();
    assert_eq!((answer.accepted, answer.duplicates, answer.refused), (99, 0, 1));
    let expected = pb::TouchpointError {
        index: 37,
        touchpoint_id: "bad\0id".into(),
        field: "id".into(),
        description: NUL.into(),
        code: Code::InvalidArgument as i32,
    };
    assert_eq!(answer.errors, [expected]);
    assert_eq!(timeline_len(&s, &ana).await, 99);
}

async fn a_stream_chunk_refuses_a_nul_touchpoint_alone(backend: Backend) {
    let s = suite_on(backend).await;
    let ana = profile_id(&s, "ana@example.com").await;
    let stranger = uuid::Uuid::now_v7().to_string();
    let chunk = pb::StreamTouchpointsRequest {
        touchpoints: vec![by_id("s-1", &ana), by_id("s-\0", &ana), by_id("s-3", &stranger), by_id("s-4", &ana)],
    };
    let mut journey = s.journey_client().await;
    let mut acks =
        journey.stream_touchpoints(authed(tokio_stream::iter(vec![chunk]), &s.writer)).await.unwrap().into_inner();
    let ack = acks.message().await.unwrap().unwrap();
    assert_eq!((ack.chunk, ack.accepted, ack.refused), (0, 2, 2));
    let found: Vec<(i32, &str, i32)> = ack.errors.iter().map(|e| (e.index, e.field.as_str(), e.code)).collect();
    assert_eq!(found, [(1, "id", Code::InvalidArgument as i32), (2, "profile_id", Code::NotFound as i32)]);
    assert_eq!(timeline_len(&s, &ana).await, 2);
}

async fn an_unknown_profile_is_a_per_item_not_found(backend: Backend) {
    let s = suite_on(backend).await;
    let ana = profile_id(&s, "ana@example.com").await;
    let stranger = uuid::Uuid::now_v7().to_string();
    let touchpoints = vec![by_id("known-1", &ana), by_id("stranger-1", &stranger)];
    let mut journey = s.journey_client().await;
    let request = pb::IngestTouchpointsRequest { touchpoints, all_or_nothing: false };
    let answer = journey.ingest_touchpoints(authed(request, &s.writer)).await.unwrap().into_inner();
    assert_eq!((answer.accepted, answer.refused), (1, 1));
    let expected = pb::TouchpointError {
        index: 1,
        touchpoint_id: "stranger-1".into(),
        field: "profile_id".into(),
        description: "no such profile".into(),
        code: Code::NotFound as i32,
    };
    assert_eq!(answer.errors, [expected]);
    assert_eq!(timeline_len(&s, &stranger).await, 0);
    // Alone, or all or nothing: NOT_FOUND, nothing stored.
    let request = pb::RecordTouchpointRequest { touchpoint: Some(by_id("stranger-2", &stranger)) };
    let status = journey.record_touchpoint(authed(request, &s.writer)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::NotFound, "touchpoint.profile_id: no such profile"));
    // Another tenant's profile is unknown here too.
    let other = cx_testkit::token(&cx_testkit::unique_tenant("other"), cx_runtime::auth::Role::Writer);
    let request = pb::RecordTouchpointRequest { touchpoint: Some(by_id("other-1", &ana)) };
    let status = journey.record_touchpoint(authed(request, &other)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(timeline_len(&s, &ana).await, 1);
}

async fn a_full_batch_of_bad_touchpoints_answers_under_4_mib(backend: Backend) {
    let s = suite_on(backend).await;
    // 100,000 touchpoints with a 130-byte id and nothing else: 6 faults each.
    let touchpoints: Vec<pb::Touchpoint> =
        (0..100_000).map(|i| pb::Touchpoint { id: format!("{i:0>130}"), ..Default::default() }).collect();
    let request = pb::IngestTouchpointsRequest { touchpoints, all_or_nothing: false };
    // The generated client keeps the default 4 MiB decoding limit.
    let mut journey = s.journey_client().await;
    let answer = journey.ingest_touchpoints(authed(request, &s.writer)).await.unwrap().into_inner();
    assert_eq!((answer.accepted, answer.refused, answer.errors.len()), (0, 100_000, 1_000));
    assert!(answer.encoded_len() < 4 * 1024 * 1024, "{} bytes", answer.encoded_len());
    let first = &answer.errors[0];
    assert_eq!((first.index, first.field.as_str()), (0, "id"));
}

async fn a_full_batch_of_unknown_profiles_is_refused_item_by_item(backend: Backend) {
    let s = suite_on(backend).await;
    // 100,000 distinct ids nobody has: one CheckProfiles call of 3.8 MB,
    // answered with all of them.
    let touchpoints: Vec<pb::Touchpoint> =
        (0..100_000).map(|i| by_id(&format!("u-{i}"), &uuid::Uuid::now_v7().to_string())).collect();
    let request = pb::IngestTouchpointsRequest { touchpoints, all_or_nothing: false };
    let mut journey = s.journey_client().await;
    let answer = journey.ingest_touchpoints(authed(request, &s.writer)).await.unwrap().into_inner();
    assert_eq!((answer.accepted, answer.refused, answer.errors.len()), (0, 100_000, 1_000));
    assert!(answer.errors.iter().all(|e| e.code == Code::NotFound as i32 && e.field == "profile_id"));
}

async fn huge_values_are_clipped_in_errors(backend: Backend) {
    let s = suite_on(backend).await;
    let mut journey = s.journey_client().await;
    // A 10 MB touchpoint id in a batch: echoed as its first 200 bytes.
    let tp = pb::Touchpoint { id: "x".repeat(10_000_000), ..Default::default() };
    let request = pb::IngestTouchpointsRequest { touchpoints: vec![tp], all_or_nothing: false };
    let answer = journey.ingest_touchpoints(authed(request, &s.writer)).await.unwrap().into_inner();
    assert_eq!(answer.refused, 1);
    assert_eq!(answer.errors[0].touchpoint_id, format!("{}…", "x".repeat(197)));
    // A 20 KB step key under a unary call: INVALID_ARGUMENT a standard
    // client reads, its values clipped.
    let mut tp = by_id("long-key", &uuid::Uuid::now_v7().to_string());
    tp.map_id = uuid::Uuid::now_v7().to_string();
    tp.step_key = "k".repeat(20_000);
    let status = journey
        .record_touchpoint(authed(pb::RecordTouchpointRequest { touchpoint: Some(tp) }, &s.writer))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().len() <= 450, "{}", status.message().len());
    assert!(field_violations(&status).iter().all(|v| v.field.len() <= 200 && v.description.len() <= 200));
}

async fn oversize_requests_are_refused_quickly(backend: Backend) {
    let s = suite_on(backend).await;
    let channel = s.journey().channel().await;
    // 8 MB of empty touchpoints: 4,000,000 items, counted before decoding.
    let empty: Vec<u8> = std::iter::repeat_n([0x0a_u8, 0x00], 4_000_000).flatten().collect();
    let started = Instant::now();
    let status = raw::call(channel.clone(), INGEST, empty, &s.writer).await.unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new("touchpoints", "has 4000000 items; at most 100000 per call")]);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // A journey map needs far less than a batch of touchpoints: 2 MB is refused.
    let map = pb::CreateJourneyMapRequest {
        journey_map: Some(pb::JourneyMap { name: "n".repeat(2_000_000), ..Default::default() }),
    };
    let status = raw::call(channel.clone(), CREATE_MAP, map.encode_to_vec(), &s.admin).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Past the largest request of the service (16 MiB): refused from the
    // length prefix, before it is read (tonic's OUT_OF_RANGE, relabelled).
    let status = raw::call(channel, INGEST, vec![0; 17 * 1024 * 1024], &s.writer).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::ResourceExhausted,
            "Error, decoded message length too large: found 17825792 bytes, the limit is: 16777216 bytes"
        )
    );
}

cx_testkit::on_both_backends!(
    raw_bytes_are_invalid_argument,
    a_nul_is_invalid_argument_with_its_path,
    one_nul_id_refuses_only_its_touchpoint,
    a_stream_chunk_refuses_a_nul_touchpoint_alone,
    an_unknown_profile_is_a_per_item_not_found,
    a_full_batch_of_bad_touchpoints_answers_under_4_mib,
    a_full_batch_of_unknown_profiles_is_refused_item_by_item,
    huge_values_are_clipped_in_errors,
    oversize_requests_are_refused_quickly,
);
