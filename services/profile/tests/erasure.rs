//! Erasure end to end on PostgreSQL and Redis: after the receipt, nothing in
//! the profile schema or the cache mentions the customer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use cx_proto::common::v1::{AttributeValue, Channel, Initiator, InteractionKind, Money, attribute_value::Kind};
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_testkit::{RunningServer, TestDb, authed, token, unique_tenant};
use tonic::Code;

fn email(value: &str) -> Option<pb::Identity> {
    Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: value.into() })
}

#[tokio::test]
async fn after_the_receipt_nothing_in_the_schema_or_the_cache_mentions_the_customer() {
    let db = TestDb::create().await.unwrap();
    let ctx = cx_testkit::context(
        cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir()),
        Some(cx_testkit::redis_url()),
    );
    let server = RunningServer::start(vec![cx_profile::build(&ctx).await.unwrap()], cx_testkit::server_args()).await;
    server.wait_serving().await;
    let mut client = ProfileServiceClient::new(server.channel().await);
    let tenant = unique_tenant("erase");
    let (writer, admin) = (token(&tenant, Role::Writer), token(&tenant, Role::Admin));
    let resolve = |value: &str| pb::ResolveProfileRequest { identity: email(value), create_if_missing: true };

    let erin = client.resolve_profile(authed(resolve("erin.erased@example.com"), &writer)).await.unwrap();
    let erin = erin.into_inner().profile.unwrap().id;
    let old = client.resolve_profile(authed(resolve("erin.old@example.com"), &writer)).await.unwrap();
    let old = old.into_inner().profile.unwrap().id;
    let bystander = client.resolve_profile(authed(resolve("bob.stays@example.com"), &writer)).await.unwrap();
    let bystander = bystander.into_inner().profile.unwrap().id;

    let phone = Some(pb::Identity { kind: pb::IdentityKind::Phone as i32, value: "+33699887766".into() });
    client
        .add_identity(authed(pb::AddIdentityRequest { profile_id: erin.clone(), identity: phone }, &writer))
        .await
        .unwrap();
    let update = pb::UpdateProfileRequest {
        profile: Some(pb::Profile {
            id: erin.clone(),
            persona: "Erinesque".into(),
            attributes: [("nickname".to_owned(), AttributeValue { kind: Some(Kind::StringValue("Erinette".into())) })]
                .into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["persona".into(), "attributes".into()] }),
    };
    client.update_profile(authed(update, &writer)).await.unwrap();
    let consent = pb::SetConsentRequest {
        profile_id: erin.clone(),
        purpose: Some(pb::Purpose { kind: Some(pb::purpose::Kind::Standard(pb::ConsentPurpose::Email as i32)) }),
        granted: true,
        actor: "Erinette herself".into(),
        ..Default::default()
    };
    client.set_consent(authed(consent, &writer)).await.unwrap();
    let purchase = pb::ActivityRecord {
        profile_id: erin.clone(),
        occur_time: Some(cx_proto::timestamp(Utc::now() - Duration::days(3))),
        channel: Channel::Web as i32,
        initiator: Initiator::Pull as i32,
        kind: InteractionKind::Transactional as i32,
        touchpoints: 1,
        purchases: 1,
        purchase_amount: Some(Money { currency_code: "EUR".into(), units: 42, nanos: 0 }),
        device_id: "erins-phone".into(),
    };
    let batch = pb::RecordActivityRequest { batch_id: "erase-batch".into(), records: vec![purchase] };
    client.record_activity(authed(batch, &writer)).await.unwrap();
    let merge =
        pb::MergeProfilesRequest { survivor_id: erin.clone(), merged_id: old.clone(), prefer_merged_attributes: false };
    client.merge_profiles(authed(merge, &writer)).await.unwrap();
    // Fill the cache with her profile, through both ids.
    for id in [&erin, &old] {
        client.get_profile(authed(pb::GetProfileRequest { id: id.clone(), as_of: None }, &writer)).await.unwrap();
    }
    assert!(!cx_testkit::redis_keys(&tenant).await.is_empty());

    let job = client.erase_customer(authed(pb::EraseCustomerRequest { profile_id: erin.clone() }, &admin)).await;
    let job = job.unwrap().into_inner().erasure.unwrap();
    assert_eq!(job.state, pb::ErasureState::Completed as i32);
    let receipt = client.get_erasure(authed(pb::GetErasureRequest { id: job.id.clone() }, &admin)).await.unwrap();
    let receipt = receipt.into_inner().erasure.unwrap();
    assert_eq!(receipt, job);
    assert_eq!(receipt.steps.len(), 1);
    let step = &receipt.steps[0];
    assert_eq!((step.service.as_str(), step.state), ("profile", pb::ErasureState::Completed as i32));
    let counts: std::collections::BTreeMap<_, _> = step.erased_counts.clone().into_iter().collect();
    // 3 identities (her email, phone and the merged email), 1 consent, 1
    // activity day, 1 purchase day, 1 device, 1 transition (prospect → active),
    // 1 merge record, 1 profile; no survey answer.
    let expected: std::collections::BTreeMap<String, i64> = [
        ("identities", 3),
        ("consent_events", 1),
        ("activity_days", 1),
        ("purchase_days", 1),
        ("devices", 1),
        ("lifecycle_transitions", 1),
        ("merges", 1),
        ("profiles", 1),
        ("survey_scores", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts, expected);

    // Nothing in any table of the profile schema mentions her.
    let needles =
        [erin.as_str(), old.as_str(), "erin.erased", "erin.old", "33699887766", "Erinette", "Erinesque", "erins-phone"];
    assert_eq!(cx_testkit::rows_mentioning(&db, "profile", &needles).await, Vec::<String>::new());
    // Nor any cache key or value.
    let redis = redis::Client::open(cx_testkit::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    for key in cx_testkit::redis_keys(&tenant).await {
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
        let text = format!("{key} {}", String::from_utf8_lossy(&value.unwrap_or_default()));
        assert!(needles.iter().all(|n| !text.contains(n)), "{text}");
    }
    for id in [&erin, &old] {
        let gone = client.get_profile(authed(pb::GetProfileRequest { id: id.clone(), as_of: None }, &writer)).await;
        assert_eq!(gone.unwrap_err().code(), Code::NotFound);
    }

    // Her email coming back makes a new, empty profile; nothing revives.
    let again = client.resolve_profile(authed(resolve("erin.erased@example.com"), &writer)).await.unwrap().into_inner();
    let fresh = again.profile.unwrap();
    assert!(again.created);
    assert_ne!(fresh.id, erin);
    assert_eq!(
        (fresh.persona.as_str(), fresh.attributes.len(), fresh.lifecycle),
        ("", 0, pb::Lifecycle::Prospect as i32)
    );
    assert_eq!(fresh.identities.len(), 1);
    // The bystander is untouched; a writer may not erase.
    client.get_profile(authed(pb::GetProfileRequest { id: bystander.clone(), as_of: None }, &writer)).await.unwrap();
    let status = client.erase_customer(authed(pb::EraseCustomerRequest { profile_id: bystander }, &writer)).await;
    assert_eq!(status.unwrap_err().code(), Code::PermissionDenied);
    cx_testkit::clear_redis(&tenant).await;
    server.stop().await.unwrap();
}
