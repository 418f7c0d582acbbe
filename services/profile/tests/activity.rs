//! RecordActivity over gRPC on PostgreSQL: what the journey service will send,
//! and the lifecycle and digital intensity it drives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use cx_proto::common::v1::{Channel, Initiator, InteractionKind, Money};
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_runtime::error::field_violations;
use cx_testkit::{RunningServer, TestDb, authed, token, unique_tenant};
use tonic::Code;
use tonic::transport::Channel as GrpcChannel;

type Client = ProfileServiceClient<GrpcChannel>;

async fn serving(db: &TestDb) -> (RunningServer, Client) {
    let ctx = cx_testkit::context(cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir()), None);
    let server = RunningServer::start(vec![cx_profile::build(&ctx).await.unwrap()], cx_testkit::server_args()).await;
    server.wait_serving().await;
    let client = ProfileServiceClient::new(server.channel().await);
    (server, client)
}

async fn customer(client: &mut Client, tok: &str, email: &str) -> String {
    let request = pb::ResolveProfileRequest {
        identity: Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: email.into() }),
        create_if_missing: true,
    };
    client.resolve_profile(authed(request, tok)).await.unwrap().into_inner().profile.unwrap().id
}

fn record(id: &str, days_ago: i64, channel: Channel, initiator: Initiator, touchpoints: i64) -> pb::ActivityRecord {
    pb::ActivityRecord {
        profile_id: id.into(),
        occur_time: Some(cx_proto::timestamp(Utc::now() - Duration::days(days_ago))),
        channel: channel as i32,
        initiator: initiator as i32,
        kind: InteractionKind::Informative as i32,
        touchpoints,
        ..Default::default()
    }
}

fn purchase(id: &str, days_ago: i64, euros: i64) -> pb::ActivityRecord {
    pb::ActivityRecord {
        kind: InteractionKind::Transactional as i32,
        purchases: 1,
        purchase_amount: Some(Money { currency_code: "EUR".into(), units: euros, nanos: 0 }),
        ..record(id, days_ago, Channel::Store, Initiator::Pull, 2)
    }
}

/// Customer A: 6 web visits (pull, device d1) and 2 emails (push) 5 days ago,
/// 2 store touchpoints with 1 purchase 100 days ago.
fn batch_a(id: &str) -> Vec<pb::ActivityRecord> {
    let mut web = record(id, 5, Channel::Web, Initiator::Pull, 6);
    web.device_id = "d1".into();
    vec![web, record(id, 5, Channel::Email, Initiator::Push, 2), purchase(id, 100, 50)]
}

async fn get(client: &mut Client, tok: &str, id: &str, as_of_days_ago: Option<i64>) -> pb::Profile {
    let as_of = as_of_days_ago.map(|d| cx_proto::timestamp(Utc::now() - Duration::days(d)));
    let request = pb::GetProfileRequest { id: id.into(), as_of };
    client.get_profile(authed(request, tok)).await.unwrap().into_inner().profile.unwrap()
}

#[tokio::test]
async fn activity_drives_lifecycle_and_digital_intensity_exactly_once_per_batch() {
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db).await;
    let writer = token(&unique_tenant("activity"), Role::Writer);
    let a = customer(&mut client, &writer, "a@example.com").await;
    let b = customer(&mut client, &writer, "b@example.com").await;
    assert_eq!(get(&mut client, &writer, &a, None).await.lifecycle, pb::Lifecycle::Prospect as i32);

    let request = pb::RecordActivityRequest { batch_id: "batch-1".into(), records: batch_a(&a) };
    let response = client.record_activity(authed(request, &writer)).await.unwrap().into_inner();
    assert_eq!((response.duplicate, response.profiles_updated), (false, 1));

    // 10 touchpoints, 8 digital (web 6 + email 2), 6 of them pull, 2 digital
    // channels, 1 device:
    // 0.50·0.8 + 0.20·(2/8) + 0.15·(1/4) + 0.15·(6/8) = 0.4 + 0.05 + 0.0375 + 0.1125 = 0.6 → 60.
    // Last purchase 100 days ago: at risk.
    let profile = get(&mut client, &writer, &a, None).await;
    let dii = profile.digital_intensity.unwrap();
    assert_eq!((dii.index, dii.category), (60, pb::DigitalCategory::Connected as i32));
    assert_eq!(
        (dii.digital_share, dii.digital_breadth, dii.device_factor, dii.self_service_share),
        (0.8, 0.25, 0.25, 0.75)
    );
    assert_eq!(profile.lifecycle, pb::Lifecycle::AtRisk as i32);
    assert!(profile.lifecycle_change_time.is_some());
    let last_touch = cx_proto::from_timestamp(profile.last_touch_time.as_ref().unwrap()).unwrap();
    assert!((Utc::now() - last_touch - Duration::days(5)).num_minutes().abs() < 5, "the web visit 5 days ago");

    // The same batch id again, even with other content, changes nothing.
    let mut replay = batch_a(&a);
    replay.push(record(&a, 1, Channel::Store, Initiator::Push, 40));
    let request = pb::RecordActivityRequest { batch_id: "batch-1".into(), records: replay };
    assert!(client.record_activity(authed(request, &writer)).await.unwrap().into_inner().duplicate);
    assert_eq!(get(&mut client, &writer, &a, None).await.digital_intensity.unwrap().index, 60);

    // As of 50 days ago only the store visit is in the window: DII 0, and the
    // purchase was 50 days old: active. Before the purchase: a prospect.
    let then = get(&mut client, &writer, &a, Some(50)).await;
    assert_eq!(then.lifecycle, pb::Lifecycle::Active as i32);
    let then_dii = then.digital_intensity.unwrap();
    assert_eq!((then_dii.index, then_dii.category), (0, pb::DigitalCategory::Traditional as i32));
    let before = get(&mut client, &writer, &a, Some(101)).await;
    assert_eq!((before.lifecycle, before.digital_intensity), (pb::Lifecycle::Prospect as i32, None));

    // Filters: A is at risk and connected; B is a prospect without an index.
    let list = |lifecycle: pb::Lifecycle, category: pb::DigitalCategory| pb::ListProfilesRequest {
        lifecycle: lifecycle as i32,
        digital_category: category as i32,
        ..Default::default()
    };
    let ids = |r: pb::ListProfilesResponse| r.profiles.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let at_risk =
        client.list_profiles(authed(list(pb::Lifecycle::AtRisk, pb::DigitalCategory::Unspecified), &writer)).await;
    assert_eq!(ids(at_risk.unwrap().into_inner()), vec![a.clone()]);
    let prospects =
        client.list_profiles(authed(list(pb::Lifecycle::Prospect, pb::DigitalCategory::Unspecified), &writer));
    assert_eq!(ids(prospects.await.unwrap().into_inner()), vec![b.clone()]);
    let connected =
        client.list_profiles(authed(list(pb::Lifecycle::Unspecified, pb::DigitalCategory::Connected), &writer));
    assert_eq!(ids(connected.await.unwrap().into_inner()), vec![a.clone()]);

    // A purchase today after 100 idle days: active again (not lost before, so not reactivated).
    let request = pb::RecordActivityRequest { batch_id: "batch-2".into(), records: vec![purchase(&a, 0, 20)] };
    client.record_activity(authed(request, &writer)).await.unwrap();
    assert_eq!(get(&mut client, &writer, &a, None).await.lifecycle, pb::Lifecycle::Active as i32);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_comeback_after_a_year_is_reactivated() {
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db).await;
    let writer = token(&unique_tenant("comeback"), Role::Writer);
    let c = customer(&mut client, &writer, "c@example.com").await;
    let request = pb::RecordActivityRequest { batch_id: "old".into(), records: vec![purchase(&c, 400, 30)] };
    client.record_activity(authed(request, &writer)).await.unwrap();
    assert_eq!(get(&mut client, &writer, &c, None).await.lifecycle, pb::Lifecycle::Lost as i32);
    let request = pb::RecordActivityRequest { batch_id: "new".into(), records: vec![purchase(&c, 10, 30)] };
    client.record_activity(authed(request, &writer)).await.unwrap();
    // Gap of 390 days: a comeback 10 days ago, reactivated for 80 more days.
    assert_eq!(get(&mut client, &writer, &c, None).await.lifecycle, pb::Lifecycle::Reactivated as i32);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_activity_is_refused_with_field_violations_and_nothing_applied() {
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db).await;
    let writer = token(&unique_tenant("badact"), Role::Writer);
    let a = customer(&mut client, &writer, "a@example.com").await;
    let fields = |status: tonic::Status| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        field_violations(&status).into_iter().map(|v| v.field).collect::<Vec<_>>()
    };

    let mut unknown_channel = record(&a, 1, Channel::Web, Initiator::Pull, 1);
    unknown_channel.channel = 99;
    let mut negative = purchase(&a, 1, 10);
    negative.purchase_amount = Some(Money { currency_code: "EUR".into(), units: -10, nanos: 0 });
    let mut future = record(&a, 0, Channel::Web, Initiator::Pull, 1);
    future.occur_time = Some(cx_proto::timestamp(Utc::now() + Duration::days(2)));
    let good = record(&a, 1, Channel::Web, Initiator::Pull, 3);
    let request = pb::RecordActivityRequest {
        batch_id: "bad-1".into(),
        records: vec![good.clone(), unknown_channel, negative, future],
    };
    let status = client.record_activity(authed(request, &writer)).await.unwrap_err();
    assert_eq!(fields(status), ["records[1].channel", "records[2].purchase_amount", "records[3].occur_time"]);

    let oversized = pb::RecordActivityRequest { batch_id: "bad-2".into(), records: vec![good.clone(); 10_001] };
    assert_eq!(fields(client.record_activity(authed(oversized, &writer)).await.unwrap_err()), ["records"]);
    let stranger = record(&uuid::Uuid::now_v7().to_string(), 1, Channel::Web, Initiator::Pull, 1);
    let request = pb::RecordActivityRequest { batch_id: "bad-3".into(), records: vec![good.clone(), stranger] };
    assert_eq!(fields(client.record_activity(authed(request, &writer)).await.unwrap_err()), ["records[1].profile_id"]);

    // Nothing of the above was applied, and the refused batch ids stay free.
    let profile = get(&mut client, &writer, &a, None).await;
    assert_eq!((profile.digital_intensity, profile.last_touch_time), (None, None));
    let request = pb::RecordActivityRequest { batch_id: "bad-3".into(), records: vec![good] };
    assert!(!client.record_activity(authed(request, &writer)).await.unwrap().into_inner().duplicate);
    let reader = token(&unique_tenant("badact"), Role::Reader);
    let request = pb::RecordActivityRequest { batch_id: "r".into(), records: vec![] };
    assert_eq!(client.record_activity(authed(request, &reader)).await.unwrap_err().code(), Code::PermissionDenied);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn transitions_and_the_intensity_distribution_are_listed() {
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db).await;
    let writer = token(&unique_tenant("dist"), Role::Writer);
    let a = customer(&mut client, &writer, "a@example.com").await;
    customer(&mut client, &writer, "b@example.com").await;
    let request = pb::RecordActivityRequest { batch_id: "b".into(), records: batch_a(&a) };
    client.record_activity(authed(request, &writer)).await.unwrap();

    let request = pb::ListLifecycleTransitionsRequest { to_state: pb::Lifecycle::AtRisk as i32, ..Default::default() };
    let listed = client.list_lifecycle_transitions(authed(request, &writer)).await.unwrap().into_inner();
    assert_eq!(listed.transitions.len(), 1);
    let tr = &listed.transitions[0];
    assert_eq!(
        (tr.profile_id.as_str(), tr.from_state, tr.to_state),
        (a.as_str(), pb::Lifecycle::Prospect as i32, pb::Lifecycle::AtRisk as i32)
    );
    // A range that ends before the change finds nothing.
    let earlier = cx_proto::common::v1::TimeRange {
        start_time: None,
        end_time: Some(cx_proto::timestamp(Utc::now() - Duration::hours(1))),
    };
    let request = pb::ListLifecycleTransitionsRequest { time_range: Some(earlier), ..Default::default() };
    assert!(
        client.list_lifecycle_transitions(authed(request, &writer)).await.unwrap().into_inner().transitions.is_empty()
    );
    let bad = pb::ListLifecycleTransitionsRequest { to_state: 42, page_size: -3, ..Default::default() };
    let status = client.list_lifecycle_transitions(authed(bad, &writer)).await.unwrap_err();
    let mut fields: Vec<_> = field_violations(&status).into_iter().map(|v| v.field).collect();
    fields.sort();
    assert_eq!(fields, ["page_size", "to_state"]);

    // A has index 60 (connected), B none.
    let request = pb::GetDigitalIntensityDistributionRequest {};
    let distribution = client.get_digital_intensity_distribution(authed(request, &writer)).await.unwrap().into_inner();
    let counts: Vec<_> = distribution.categories.iter().map(|c| (c.category, c.profiles, c.mean_index)).collect();
    assert_eq!(
        counts,
        [
            (pb::DigitalCategory::Traditional as i32, 0, 0.0),
            (pb::DigitalCategory::Hybrid as i32, 0, 0.0),
            (pb::DigitalCategory::Connected as i32, 1, 60.0),
            (pb::DigitalCategory::DigitalNative as i32, 0, 0.0),
        ]
    );
    assert_eq!((distribution.without_index, distribution.mean_index), (1, 60.0));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_tenants_own_intensity_model_is_validated_and_used() {
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db).await;
    let tenant = unique_tenant("model");
    let (writer, admin) = (token(&tenant, Role::Writer), token(&tenant, Role::Admin));
    let current = client.get_tenant_settings(authed(pb::GetTenantSettingsRequest {}, &writer)).await.unwrap();
    let defaults = current.into_inner().settings.unwrap().intensity_model.unwrap();
    assert_eq!(
        (
            defaults.digital_share_weight,
            defaults.digital_breadth_weight,
            defaults.hybrid_from,
            defaults.digital_native_from
        ),
        (0.5, 0.2, 25, 75)
    );

    let update = |model: pb::IntensityModel, paths: Vec<&str>| pb::UpdateTenantSettingsRequest {
        settings: Some(pb::TenantSettings { intensity_model: Some(model) }),
        update_mask: Some(prost_types::FieldMask { paths: paths.into_iter().map(str::to_owned).collect() }),
    };
    let even = pb::IntensityModel {
        digital_share_weight: 0.25,
        digital_breadth_weight: 0.25,
        device_factor_weight: 0.25,
        self_service_share_weight: 0.25,
        hybrid_from: 40,
        connected_from: 60,
        digital_native_from: 90,
    };
    let status =
        client.update_tenant_settings(authed(update(even, vec!["intensity_model"]), &writer)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let heavy = pb::IntensityModel { digital_share_weight: 0.35, ..even };
    let status =
        client.update_tenant_settings(authed(update(heavy, vec!["intensity_model"]), &admin)).await.unwrap_err();
    assert_eq!(field_violations(&status)[0].field, "settings.intensity_model");
    assert_eq!(field_violations(&status)[0].description, "weights must add up to 1");
    let status = client.update_tenant_settings(authed(update(even, vec!["colour"]), &admin)).await.unwrap_err();
    assert_eq!(field_violations(&status)[0].field, "update_mask.paths[0]");
    client.update_tenant_settings(authed(update(even, vec!["intensity_model"]), &admin)).await.unwrap();

    // Customer A's components (0.8, 0.25, 0.25, 0.75) with even weights:
    // 0.25 × (0.8 + 0.25 + 0.25 + 0.75) = 0.25 × 2.05 = 0.5125 → 51, hybrid under cuts 40/60/90.
    let a = customer(&mut client, &writer, "a@example.com").await;
    let request = pb::RecordActivityRequest { batch_id: "b".into(), records: batch_a(&a) };
    client.record_activity(authed(request, &writer)).await.unwrap();
    let dii = get(&mut client, &writer, &a, None).await.digital_intensity.unwrap();
    assert_eq!((dii.index, dii.category), (51, pb::DigitalCategory::Hybrid as i32));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn merge_profiles_reports_conflicts_and_the_merged_id_resolves_to_the_survivor() {
    use cx_proto::common::v1::{AttributeValue, attribute_value::Kind};
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db).await;
    let writer = token(&unique_tenant("merge"), Role::Writer);
    let kept = customer(&mut client, &writer, "kept@example.com").await;
    let gone = customer(&mut client, &writer, "gone@example.com").await;
    let tier = |v: &str| AttributeValue { kind: Some(Kind::StringValue(v.into())) };
    for (id, value) in [(&kept, "gold"), (&gone, "silver")] {
        let update = pb::UpdateProfileRequest {
            profile: Some(pb::Profile {
                id: id.clone(),
                attributes: [("tier".to_owned(), tier(value))].into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["attributes".into()] }),
        };
        client.update_profile(authed(update, &writer)).await.unwrap();
    }
    // Warm the cache with the profile about to disappear.
    get(&mut client, &writer, &gone, None).await;

    let request =
        pb::MergeProfilesRequest { survivor_id: kept.clone(), merged_id: gone.clone(), prefer_merged_attributes: true };
    let merged = client.merge_profiles(authed(request, &writer)).await.unwrap().into_inner();
    assert_eq!(merged.conflicts.len(), 1);
    let conflict = &merged.conflicts[0];
    assert_eq!((conflict.key.as_str(), conflict.kept_merged), ("tier", true));
    assert_eq!(
        (conflict.survivor_value.clone(), conflict.merged_value.clone()),
        (Some(tier("gold")), Some(tier("silver")))
    );
    let profile = merged.profile.unwrap();
    assert_eq!(profile.attributes.get("tier"), Some(&tier("silver")));
    assert_eq!(profile.identities.len(), 2);

    // The merged id now answers with the survivor, not from a stale cache entry.
    let via_old_id = get(&mut client, &writer, &gone, None).await;
    assert_eq!((via_old_id.id.as_str(), via_old_id.identities.len()), (kept.as_str(), 2));

    let same = pb::MergeProfilesRequest {
        survivor_id: kept.clone(),
        merged_id: kept.clone(),
        prefer_merged_attributes: false,
    };
    let status = client.merge_profiles(authed(same, &writer)).await.unwrap_err();
    assert_eq!((status.code(), field_violations(&status)[0].field.as_str()), (Code::InvalidArgument, "merged_id"));
    let again = pb::MergeProfilesRequest {
        survivor_id: kept.clone(),
        merged_id: gone.clone(),
        prefer_merged_attributes: false,
    };
    assert_eq!(client.merge_profiles(authed(again, &writer)).await.unwrap_err().code(), Code::NotFound);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn export_customer_data_streams_every_record_of_the_customer() {
    use cx_proto::profile::v1::export_customer_data_response::Record;
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db).await;
    let tenant = unique_tenant("export");
    let (writer, admin) = (token(&tenant, Role::Writer), token(&tenant, Role::Admin));
    let a = customer(&mut client, &writer, "a@example.com").await;
    let request = pb::RecordActivityRequest { batch_id: "b".into(), records: batch_a(&a) };
    client.record_activity(authed(request, &writer)).await.unwrap();
    let consent = pb::SetConsentRequest {
        profile_id: a.clone(),
        purpose: Some(pb::Purpose { kind: Some(pb::purpose::Kind::Standard(pb::ConsentPurpose::Survey as i32)) }),
        granted: true,
        ..Default::default()
    };
    client.set_consent(authed(consent, &writer)).await.unwrap();

    let request = pb::ExportCustomerDataRequest { profile_id: a.clone() };
    let mut stream = client.export_customer_data(authed(request, &admin)).await.unwrap().into_inner();
    let mut kinds = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        assert_eq!(message.source_service, "profile");
        kinds.push(match message.record.unwrap() {
            Record::Profile(p) => {
                assert_eq!(p.id, a);
                "profile"
            }
            Record::Consent(_) => "consent",
            Record::Activity(_) => "activity",
            Record::Purchase(p) => {
                assert_eq!(p.amount.unwrap().units, 50);
                "purchase"
            }
            Record::Device(d) => {
                assert_eq!(d.device_id, "d1");
                "device"
            }
            Record::Transition(_) => "transition",
            Record::MergedProfileId(_) => "merged",
            Record::ServiceRecord(_) => "another service's",
        });
    }
    // Web, email and store days; one purchase day; one device; prospect → at_risk.
    assert_eq!(kinds, ["profile", "consent", "activity", "activity", "activity", "purchase", "device", "transition"]);

    let request = pb::ExportCustomerDataRequest { profile_id: a.clone() };
    assert_eq!(client.export_customer_data(authed(request, &writer)).await.unwrap_err().code(), Code::PermissionDenied);
    let request = pb::ExportCustomerDataRequest { profile_id: uuid::Uuid::now_v7().to_string() };
    assert_eq!(client.export_customer_data(authed(request, &admin)).await.unwrap_err().code(), Code::NotFound);
    server.stop().await.unwrap();
}
