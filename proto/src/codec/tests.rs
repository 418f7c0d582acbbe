use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

use super::*;
use crate::journey::v1::{IngestTouchpointsRequest, Touchpoint, UpdateJourneyMapRequest};
use crate::profile::v1::{Identity, UpdateProfileRequest};

fn request(name: &str) -> MessageDescriptor {
    schema().request(name.rsplit_once('.').unwrap().0, name.rsplit_once('.').unwrap().1).unwrap()
}

fn fields(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| (v.field, v.description)).collect())
        .unwrap_or_default()
}

#[test]
fn rpc_inputs_are_known_and_answers_are_not() {
    assert!(schema().request("cx.journey.v1", "IngestTouchpointsRequest").is_some());
    assert!(schema().request("cx.journey.v1", "IngestTouchpointsResponse").is_none());
    // Journey's largest request is a batch of touchpoints; profile's, CheckProfiles.
    assert_eq!(max_request_bytes("cx.journey.v1.JourneyService"), 16 * 1024 * 1024);
    assert_eq!(max_request_bytes("cx.profile.v1.ProfileService"), 8 * 1024 * 1024);
}

#[test]
fn a_nul_is_refused_with_the_fields_path() {
    let mut profile = crate::profile::v1::Profile::default();
    profile.attributes.insert("ok".into(), Default::default());
    profile.persona = "a\0b".into();
    let bytes = UpdateProfileRequest { profile: Some(profile), ..Default::default() }.encode_to_vec();
    let status = inspect(&request("cx.profile.v1.UpdateProfileRequest"), &bytes).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), [("profile.persona".to_owned(), "must not contain NUL characters".to_owned())]);
}

#[test]
fn a_map_key_names_its_entry() {
    let mut profile = crate::profile::v1::Profile::default();
    profile.attributes.insert("k\0".into(), Default::default());
    let bytes = UpdateProfileRequest { profile: Some(profile), ..Default::default() }.encode_to_vec();
    let status = inspect(&request("cx.profile.v1.UpdateProfileRequest"), &bytes).unwrap_err();
    assert_eq!(
        fields(&status),
        [(r#"profile.attributes["k\0"]"#.to_owned(), "must not contain NUL characters".to_owned())]
    );
}

#[test]
fn per_item_batches_leave_nul_to_the_service_but_not_bad_utf8() {
    let tp = |id: &str| Touchpoint { id: id.into(), ..Default::default() };
    let ok = IngestTouchpointsRequest { touchpoints: vec![tp("a"), tp("b\0")], all_or_nothing: false };
    assert!(inspect(&request("cx.journey.v1.IngestTouchpointsRequest"), &ok.encode_to_vec()).is_ok());
    // touchpoints[1].id = 0xff
    let bytes = [0x0a, 0x03, 0x0a, 0x01, b'a', 0x0a, 0x03, 0x0a, 0x01, 0xff];
    let status = inspect(&request("cx.journey.v1.IngestTouchpointsRequest"), &bytes).unwrap_err();
    assert_eq!(fields(&status), [("touchpoints[1].id".to_owned(), "is not valid UTF-8".to_owned())]);
}

#[test]
fn too_many_items_are_counted_before_decoding() {
    // 100,001 empty touchpoints: 2 bytes each.
    let bytes: Vec<u8> = std::iter::repeat_n([0x0a_u8, 0x00], 100_001).flatten().collect();
    let status = inspect(&request("cx.journey.v1.IngestTouchpointsRequest"), &bytes).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), [("touchpoints".to_owned(), "has 100001 items; at most 100000 per call".to_owned())]);
}

#[test]
fn oversize_and_amplifying_requests_are_refused() {
    let big = vec![0_u8; DEFAULT_REQUEST_BYTES + 1];
    let status = inspect(&request("cx.journey.v1.UpdateJourneyMapRequest"), &big).unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // One touchpoint of 4,000,000 empty attribute entries (8 MB): each costs
    // about 24 × 2 fields + 48 bytes decoded, far beyond 4 × 2 bytes.
    let mut entries = Vec::new();
    for _ in 0..4_000_000 {
        entries.extend_from_slice(&[0x7a, 0x00]); // Touchpoint.attributes (field 15)
    }
    let mut batch = vec![0x0a];
    prost::encoding::encode_varint(entries.len() as u64, &mut batch);
    batch.extend_from_slice(&entries);
    let status = inspect(&request("cx.journey.v1.IngestTouchpointsRequest"), &batch).unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{}", status.message());
    let _ = UpdateJourneyMapRequest::default();
}

#[test]
fn undecodable_bytes_are_invalid_argument() {
    let status = inspect(&request("cx.profile.v1.BatchResolveProfilesRequest"), &[0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let ok = crate::profile::v1::BatchResolveProfilesRequest {
        identities: vec![Identity { kind: 1, value: "x".into() }],
        create_if_missing: true,
    };
    assert!(inspect(&request("cx.profile.v1.BatchResolveProfilesRequest"), &ok.encode_to_vec()).is_ok());
}

#[test]
fn clip_cuts_at_a_character_boundary() {
    assert_eq!(clip("abc", 3), "abc");
    // "é" is 2 bytes: 5 bytes allowed = "é" + "…" (3 bytes).
    assert_eq!(clip("ééé", 5), "é…");
}
