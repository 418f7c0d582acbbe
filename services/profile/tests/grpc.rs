//! The profile service over gRPC: a real server on a loopback port, a real
//! client, PostgreSQL and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use cx_proto::common::v1::{
    AttributeValue, Channel as PbChannel, Initiator, InteractionKind, Money, attribute_value::Kind,
};
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1::export_customer_data_response::Record;
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::{Claims, Role, Signer};
use cx_runtime::error::field_violations;
use cx_runtime::peers::{PeerArgs, Peers};
use cx_runtime::registry::Registry;
use cx_testkit::rpc::Recording;
use cx_testkit::{RunningServer, TestDb, authed, eventually, token, unique_tenant};
use prost_types::FieldMask;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
use tonic::Code;
use tonic::transport::Channel;

type Client = ProfileServiceClient<Channel>;

async fn server(db: &TestDb, redis_url: Option<String>, max_concurrent: usize) -> RunningServer {
    let store = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let ctx = cx_testkit::context(store, redis_url);
    let module = cx_profile::build(&ctx).await.unwrap();
    let mut args = cx_testkit::server_args();
    args.max_concurrent_requests = max_concurrent;
    RunningServer::start(vec![module], args).await
}

async fn serving(db: &TestDb, redis_url: Option<String>) -> (RunningServer, Client) {
    let server = server(db, redis_url, 1024).await;
    server.wait_serving().await;
    let client = ProfileServiceClient::new(server.channel().await);
    (server, client)
}

fn email(value: &str) -> Option<pb::Identity> {
    Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: value.into() })
}

fn standard(purpose: pb::ConsentPurpose) -> Option<pb::Purpose> {
    Some(pb::Purpose { kind: Some(pb::purpose::Kind::Standard(purpose as i32)) })
}

fn string_value(s: &str) -> AttributeValue {
    AttributeValue { kind: Some(Kind::StringValue(s.into())) }
}

fn fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status).into_iter().map(|v| v.field).collect()
}

async fn resolve(client: &mut Client, tok: &str, value: &str) -> pb::Profile {
    let request = pb::ResolveProfileRequest { identity: email(value), create_if_missing: true };
    client.resolve_profile(authed(request, tok)).await.unwrap().into_inner().profile.unwrap()
}

/// The profile and journey services in one server, each the other's peer
/// (as `cx serve all`), their cache on `redis_url`; and a channel to it that
/// notes every RPC called through it.
async fn both_services(db: &TestDb, redis_url: Option<String>) -> (RunningServer, Recording) {
    let listener = RunningServer::bind().await;
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let registry = Registry::new(&[cx_profile::SERVICE, cx_journey::SERVICE]);
    let peers = PeerArgs::default().with("profile", endpoint.clone()).with("journey", endpoint);
    let store = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let ctx = cx_testkit::context(store, redis_url)
        .with_registry(registry)
        .with_peers(Peers::resolve(&peers, &registry, None).unwrap());
    let modules = vec![cx_profile::build(&ctx).await.unwrap(), cx_journey::build(&ctx).await.unwrap()];
    let server = RunningServer::start_on(listener, modules, cx_testkit::server_args());
    server.wait_serving().await;
    let channel = Recording::new(server.channel().await);
    (server, channel)
}

/// Calls every RPC of the profile and journey services on its happy path,
/// checking what each returns; fails when either service has an RPC (in
/// its proto) that it did not call.
async fn exercise_every_rpc(channel: &Recording, tenant: &str) {
    let (writer, admin) = (token(tenant, Role::Writer), token(tenant, Role::Admin));
    let mut client = ProfileServiceClient::new(channel.clone());

    let request = pb::ResolveProfileRequest { identity: email("  Jane.Doe@Example.com "), create_if_missing: true };
    let resolved = client.resolve_profile(authed(request, &writer)).await.unwrap().into_inner();
    assert!(resolved.created);
    let jane = resolved.profile.unwrap();
    assert_eq!(jane.identities, vec![email("jane.doe@example.com").unwrap()]);
    assert_eq!(jane.version, 1);

    let got =
        client.get_profile(authed(pb::GetProfileRequest { id: jane.id.clone(), as_of: None }, &writer)).await.unwrap();
    assert_eq!(got.into_inner().profile.unwrap(), jane);

    let batch = pb::BatchResolveProfilesRequest {
        identities: vec![
            email("JANE.DOE@example.com").unwrap(),
            pb::Identity { kind: pb::IdentityKind::Phone as i32, value: "+33 6 12 34 56 78".into() },
        ],
        create_if_missing: true,
    };
    let resolutions = client.batch_resolve_profiles(authed(batch, &writer)).await.unwrap().into_inner().resolutions;
    assert_eq!(resolutions[0], pb::Resolution { profile_id: jane.id.clone(), created: false });
    assert!(resolutions[1].created);

    let listed = client
        .list_profiles(authed(
            pb::ListProfilesRequest { page_size: 1, page_token: String::new(), ..Default::default() },
            &writer,
        ))
        .await;
    let listed = listed.unwrap().into_inner();
    assert_eq!(listed.profiles.len(), 1);
    assert_eq!(listed.profiles[0].id, jane.id);
    let rest = pb::ListProfilesRequest { page_size: 10, page_token: listed.next_page_token, ..Default::default() };
    let rest = client.list_profiles(authed(rest, &writer)).await.unwrap().into_inner();
    assert_eq!((rest.profiles.len(), rest.next_page_token.as_str()), (1, ""));
    assert_eq!(rest.profiles[0].id, resolutions[1].profile_id);

    let update = pb::UpdateProfileRequest {
        profile: Some(pb::Profile {
            id: jane.id.clone(),
            persona: "young family".into(),
            attributes: HashMap::from([("tier".to_owned(), string_value("gold"))]),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["persona".into(), "attributes.tier".into()] }),
    };
    let updated = client.update_profile(authed(update, &writer)).await.unwrap().into_inner().profile.unwrap();
    assert_eq!((updated.persona.as_str(), updated.version), ("young family", 2));
    assert_eq!(updated.attributes.get("tier"), Some(&string_value("gold")));

    let card = Some(pb::Identity { kind: pb::IdentityKind::LoyaltyCard as i32, value: "CARD-77".into() });
    let added = pb::AddIdentityRequest { profile_id: jane.id.clone(), identity: card.clone() };
    let added = client.add_identity(authed(added, &writer)).await.unwrap().into_inner().profile.unwrap();
    assert_eq!(added.identities.len(), 2);
    let removed = pb::RemoveIdentityRequest { profile_id: jane.id.clone(), identity: card };
    let removed = client.remove_identity(authed(removed, &writer)).await.unwrap().into_inner().profile.unwrap();
    assert_eq!((removed.identities.len(), removed.version), (1, 4));

    let definition =
        pb::ConsentPurposeDefinition { name: "wine_club".into(), description: "Wine offers".into(), create_time: None };
    let created = pb::CreateConsentPurposeRequest { purpose: Some(definition) };
    client.create_consent_purpose(authed(created, &admin)).await.unwrap();
    let purposes = client.list_consent_purposes(authed(pb::ListConsentPurposesRequest {}, &writer)).await.unwrap();
    assert_eq!(purposes.into_inner().purposes[0].name, "wine_club");

    let consent = pb::SetConsentRequest {
        profile_id: jane.id.clone(),
        purpose: standard(pb::ConsentPurpose::Email),
        granted: true,
        source_channel: PbChannel::Web as i32,
        actor: "customer".into(),
        occur_time: None,
        request_id: "consent-1".into(),
    };
    let set = client.set_consent(authed(consent, &writer)).await.unwrap().into_inner();
    assert!(set.state.unwrap().granted);
    assert_eq!(set.event.unwrap().source_channel, PbChannel::Web as i32);
    let custom = pb::SetConsentRequest {
        profile_id: jane.id.clone(),
        purpose: Some(pb::Purpose { kind: Some(pb::purpose::Kind::Custom("wine_club".into())) }),
        granted: false,
        ..Default::default()
    };
    assert!(!client.set_consent(authed(custom, &writer)).await.unwrap().into_inner().state.unwrap().granted);

    let check = pb::CheckConsentRequest { profile_id: jane.id.clone(), purpose: standard(pb::ConsentPurpose::Email) };
    let state = client.check_consent(authed(check, &writer)).await.unwrap().into_inner().state.unwrap();
    assert!(state.granted);
    assert_eq!(state.decided_by.unwrap().actor, "customer");
    let unknown = pb::CheckConsentRequest { profile_id: jane.id.clone(), purpose: standard(pb::ConsentPurpose::Sms) };
    let state = client.check_consent(authed(unknown, &writer)).await.unwrap().into_inner().state.unwrap();
    assert!(!state.granted && state.decided_by.is_none(), "no decision means no consent");

    let history =
        pb::ListConsentHistoryRequest { profile_id: jane.id.clone(), page_size: 0, page_token: String::new() };
    let history = client.list_consent_history(authed(history, &writer)).await.unwrap().into_inner();
    assert_eq!(history.events.len(), 2);
    assert!(!history.events[0].granted, "newest first: the wine club refusal");

    let phone = resolutions[1].profile_id.clone();
    let unknown = uuid::Uuid::now_v7().to_string();
    let check = pb::CheckProfilesRequest { profile_ids: vec![jane.id.clone(), unknown.clone(), "not-a-uuid".into()] };
    let check = client.check_profiles(authed(check, &writer)).await.unwrap().into_inner();
    assert_eq!(check.unknown_profile_ids, [unknown, "not-a-uuid".to_owned()]);

    exercise_journey(channel, &writer, &admin, &jane.id).await;

    // Journey's outbox tells the profile service of her four touchpoints.
    let profile_of = |id: &str| {
        let (mut client, request) =
            (client.clone(), authed(pb::GetProfileRequest { id: id.into(), as_of: None }, &writer));
        async move { client.get_profile(request).await.unwrap().into_inner().profile.unwrap() }
    };
    eventually("her activity reaches her profile", || profile_of(&jane.id), |p| p.last_touch_time.is_some()).await;

    // The phone's owner buys in store today: a prospect becomes active.
    let purchase = pb::ActivityRecord {
        profile_id: phone.clone(),
        occur_time: Some(cx_proto::timestamp(chrono::Utc::now() - chrono::Duration::hours(1))),
        channel: PbChannel::Store as i32,
        initiator: Initiator::Pull as i32,
        kind: InteractionKind::Transactional as i32,
        touchpoints: 1,
        purchases: 1,
        purchase_amount: Some(Money { currency_code: "EUR".into(), units: 40, nanos: 0 }),
        ..Default::default()
    };
    let recorded = pb::RecordActivityRequest { batch_id: "batch-1".into(), records: vec![purchase] };
    let recorded = client.record_activity(authed(recorded, &writer)).await.unwrap().into_inner();
    assert_eq!((recorded.duplicate, recorded.profiles_updated), (false, 1));
    let active = pb::ListLifecycleTransitionsRequest { to_state: pb::Lifecycle::Active as i32, ..Default::default() };
    let active = client.list_lifecycle_transitions(authed(active, &writer)).await.unwrap().into_inner();
    let moves: Vec<_> = active.transitions.iter().map(|t| (t.profile_id.as_str(), t.from_state, t.to_state)).collect();
    assert_eq!(moves, [(phone.as_str(), pb::Lifecycle::Prospect as i32, pb::Lifecycle::Active as i32)]);
    let request = pb::GetDigitalIntensityDistributionRequest {};
    let distribution = client.get_digital_intensity_distribution(authed(request, &writer)).await.unwrap().into_inner();
    let counted: i64 = distribution.categories.iter().map(|c| c.profiles).sum();
    assert_eq!((distribution.categories.len(), counted + distribution.without_index), (4, 2), "Jane and the phone");

    let settings = client.get_tenant_settings(authed(pb::GetTenantSettingsRequest {}, &writer)).await.unwrap();
    let model = settings.into_inner().settings.unwrap().intensity_model.unwrap();
    assert_eq!((model.digital_share_weight, model.hybrid_from, model.digital_native_from), (0.5, 25, 75));
    let even = pb::IntensityModel {
        digital_share_weight: 0.25,
        digital_breadth_weight: 0.25,
        device_factor_weight: 0.25,
        self_service_share_weight: 0.25,
        hybrid_from: 40,
        connected_from: 60,
        digital_native_from: 90,
    };
    let update = pb::UpdateTenantSettingsRequest {
        settings: Some(pb::TenantSettings { intensity_model: Some(even) }),
        update_mask: Some(FieldMask { paths: vec!["intensity_model".into()] }),
    };
    let updated = client.update_tenant_settings(authed(update, &admin)).await.unwrap().into_inner();
    assert_eq!(updated.settings.unwrap().intensity_model, Some(even));

    // The phone's owner is Jane.
    let merge = pb::MergeProfilesRequest {
        survivor_id: jane.id.clone(),
        merged_id: phone.clone(),
        prefer_merged_attributes: false,
    };
    let merged = client.merge_profiles(authed(merge, &writer)).await.unwrap().into_inner();
    assert_eq!((merged.conflicts.len(), merged.profile.unwrap().identities.len()), (0, 2));

    let export = pb::ExportCustomerDataRequest { profile_id: jane.id.clone() };
    let mut records = client.export_customer_data(authed(export, &admin)).await.unwrap().into_inner();
    let mut kinds = Vec::new();
    while let Some(message) = records.message().await.unwrap() {
        kinds.push(match message.record.unwrap() {
            Record::Profile(p) => format!("profile {}", p.id == jane.id),
            Record::MergedProfileId(id) => format!("merged {}", id == phone),
            Record::Purchase(p) => format!("purchase {}", p.amount.unwrap().units),
            Record::Consent(_) => "consent".into(),
            Record::Activity(_) => "activity".into(),
            Record::Device(_) => "device".into(),
            Record::Transition(_) => "transition".into(),
            Record::ServiceRecord(r) => format!("{} record", r.type_url),
        });
    }
    assert_eq!(kinds[0], "profile true", "{kinds:?}");
    for one in ["merged true", "purchase 40"] {
        assert_eq!(kinds.iter().filter(|k| *k == one).count(), 1, "{one} in {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| *k == "consent").count(), 2, "e-mail and wine club: {kinds:?}");

    // Erased in both services: the journey service confirms her four touchpoints.
    let erase = pb::EraseCustomerRequest { profile_id: jane.id.clone() };
    let job = client.erase_customer(authed(erase, &admin)).await.unwrap().into_inner().erasure.unwrap();
    let erasure = || {
        let (mut client, request) = (client.clone(), authed(pb::GetErasureRequest { id: job.id.clone() }, &admin));
        async move { client.get_erasure(request).await.unwrap().into_inner().erasure.unwrap() }
    };
    let completed = pb::ErasureState::Completed as i32;
    let receipt = eventually("the erasure completes in both services", erasure, |e| e.state == completed).await;
    let journey_step = receipt.steps.iter().find(|s| s.service == "journey").unwrap();
    assert_eq!(journey_step.erased_counts.get("touchpoints"), Some(&4));

    for service in [cx_proto::profile::v1::profile_service_server::SERVICE_NAME, "cx.journey.v1.JourneyService"] {
        assert_eq!(channel.not_called(service), BTreeSet::new(), "RPCs of {service} this test does not call");
    }
}

/// The journey service's RPCs for customer `jane`, on one map.
async fn exercise_journey(channel: &Recording, writer: &str, admin: &str, jane: &str) {
    use cx_proto::journey::v1::{self as journey, touchpoint::Customer};
    let mut client = JourneyServiceClient::new(channel.clone());
    let step = |key: &str, conversion: bool| journey::Step {
        key: key.into(),
        name: key.into(),
        phase: journey::Phase::Before as i32,
        importance: 3,
        target_score: 8.0,
        conversion,
        ..Default::default()
    };
    let map = journey::JourneyMap {
        name: "Sofa".into(),
        customer_type: "young family".into(),
        meta_journey: journey::MetaJourney::Chore as i32,
        steps: vec![step("discover", false), step("order", true)],
        ..Default::default()
    };
    let created = client.create_journey_map(authed(journey::CreateJourneyMapRequest { journey_map: Some(map) }, admin));
    let created = created.await.unwrap().into_inner().journey_map.unwrap();
    assert_eq!((created.version, created.steps.len()), (1, 2));
    let get = || journey::GetJourneyMapRequest { id: created.id.clone(), version: 0 };
    let got = client.get_journey_map(authed(get(), writer)).await.unwrap().into_inner().journey_map.unwrap();
    assert_eq!(got, created);
    let listed = client.list_journey_maps(authed(journey::ListJourneyMapsRequest::default(), writer)).await;
    assert_eq!(listed.unwrap().into_inner().journey_maps, std::slice::from_ref(&created));
    let steps = vec![step("discover", false), step("order", true), step("delivery", false)];
    let update = journey::UpdateJourneyMapRequest {
        journey_map: Some(journey::JourneyMap { id: created.id.clone(), steps, ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["steps".into()] }),
    };
    let updated = client.update_journey_map(authed(update, admin)).await.unwrap().into_inner().journey_map.unwrap();
    assert_eq!((updated.version, updated.steps.len()), (2, 3));

    let at = |hours: i64| Some(cx_proto::timestamp(chrono::Utc::now() - chrono::Duration::hours(hours)));
    let visit = |id: &str, channel: PbChannel, hours: i64| journey::Touchpoint {
        id: id.into(),
        customer: Some(Customer::ProfileId(jane.into())),
        channel: channel as i32,
        occur_time: at(hours),
        kind: InteractionKind::Informative as i32,
        initiator: Initiator::Pull as i32,
        ..Default::default()
    };
    let on_map = |id: &str, channel: PbChannel, hours: i64, step: &str, score: i32| journey::Touchpoint {
        map_id: created.id.clone(),
        step_key: step.into(),
        instance_id: "visit-1".into(),
        experience_score: Some(score),
        ..visit(id, channel, hours)
    };
    let record = journey::RecordTouchpointRequest { touchpoint: Some(on_map("t1", PbChannel::Web, 4, "discover", 8)) };
    let recorded = client.record_touchpoint(authed(record, writer)).await.unwrap().into_inner();
    assert_eq!((recorded.profile_id.as_str(), recorded.duplicate), (jane, false));
    // By her e-mail address, which the profile service resolves to her.
    let by_email = journey::Touchpoint {
        customer: Some(Customer::Identity(pb::Identity {
            kind: pb::IdentityKind::Email as i32,
            value: "JANE.DOE@example.com".into(),
        })),
        ..visit("t3", PbChannel::Email, 2)
    };
    let batch = vec![on_map("t2", PbChannel::Store, 3, "order", 6), by_email];
    let ingest = journey::IngestTouchpointsRequest { touchpoints: batch, all_or_nothing: true };
    let ingested = client.ingest_touchpoints(authed(ingest, writer)).await.unwrap().into_inner();
    assert_eq!((ingested.accepted, ingested.duplicates, ingested.refused), (2, 0, 0));
    let chunk = journey::StreamTouchpointsRequest { touchpoints: vec![visit("t4", PbChannel::Phone, 1)] };
    let mut acks =
        client.stream_touchpoints(authed(futures::stream::iter([chunk]), writer)).await.unwrap().into_inner();
    let ack = acks.message().await.unwrap().unwrap();
    assert_eq!((ack.chunk, ack.accepted, ack.refused), (0, 1, 0));

    let timeline = |client: &JourneyServiceClient<Recording>| {
        let request = journey::ListTimelineRequest { profile_id: jane.into(), ..Default::default() };
        let mut client = client.clone();
        async move {
            let touchpoints = client.list_timeline(authed(request, writer)).await.unwrap().into_inner().touchpoints;
            touchpoints.into_iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(timeline(&client).await, ["t4", "t3", "t2", "t1"], "newest first");

    // Instance visit-1: discover 8 then order 6 (the conversion step).
    let analyze = journey::AnalyzeJourneyRequest { map_id: created.id.clone(), time_range: None, instance_limit: 5 };
    let analysis = client.analyze_journey(authed(analyze, writer)).await.unwrap().into_inner();
    let figures = (analysis.map_version, analysis.touchpoints, analysis.instances, analysis.conversions);
    assert_eq!(figures, (2, 2, 1, 1));
    let instance = journey::GetJourneyInstanceRequest {
        map_id: created.id.clone(),
        instance_id: "visit-1".into(),
        profile_id: String::new(),
    };
    let instance = client.get_journey_instance(authed(instance, writer)).await.unwrap().into_inner();
    assert_eq!(instance.touchpoints.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t1", "t2"]);
    // 8 and 6 are 3 and 1 from 5: peak 8, end 6, remembered 7.
    let peak_end = instance.peak_end.unwrap();
    assert_eq!((peak_end.peak_score, peak_end.end_score, peak_end.remembered_score), (8, 6, 7.0));

    // Deleted, the map is gone; its touchpoints stay on her timeline.
    let delete = journey::DeleteJourneyMapRequest { id: created.id.clone() };
    client.delete_journey_map(authed(delete, admin)).await.unwrap();
    assert_eq!(client.get_journey_map(authed(get(), writer)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(timeline(&client).await.len(), 4);
}

#[tokio::test]
async fn every_rpc_answers_its_happy_path() {
    let db = TestDb::create().await.unwrap();
    let tenant = unique_tenant("happy");
    let (server, channel) = both_services(&db, Some(cx_testkit::redis_url())).await;
    exercise_every_rpc(&channel, &tenant).await;
    cx_testkit::clear_redis(&tenant).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn with_redis_unreachable_every_rpc_still_succeeds() {
    let db = TestDb::create().await.unwrap();
    // Nothing listens on port 1: every cache call fails, and must not matter.
    let (server, channel) = both_services(&db, Some("redis://127.0.0.1:1".into())).await;
    exercise_every_rpc(&channel, &unique_tenant("noredis")).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_invalid_argument_with_field_violations_and_writes_nothing() {
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db, None).await;
    let tenant = unique_tenant("bad");
    let (writer, admin) = (token(&tenant, Role::Writer), token(&tenant, Role::Admin));
    let jane = resolve(&mut client, &writer, "jane@example.com").await;

    let resolve_with = |kind: pb::IdentityKind, value: &str| pb::ResolveProfileRequest {
        identity: Some(pb::Identity { kind: kind as i32, value: value.into() }),
        create_if_missing: true,
    };
    let empty = client.resolve_profile(authed(resolve_with(pb::IdentityKind::Email, "  "), &writer)).await.unwrap_err();
    assert_eq!(fields(&empty), ["identity.value"]);
    let bad_email =
        client.resolve_profile(authed(resolve_with(pb::IdentityKind::Email, "jane.example.com"), &writer)).await;
    assert_eq!(fields(&bad_email.unwrap_err()), ["identity.value"]);
    let phone = client.resolve_profile(authed(resolve_with(pb::IdentityKind::Phone, "06 12 34 56 78"), &writer)).await;
    let phone = phone.unwrap_err();
    assert_eq!(fields(&phone), ["identity.value"]);
    assert_eq!(
        field_violations(&phone)[0].description,
        "must be in international (E.164) format: '+', country code, number"
    );
    let no_kind = client.resolve_profile(authed(resolve_with(pb::IdentityKind::Unspecified, "x"), &writer)).await;
    assert_eq!(fields(&no_kind.unwrap_err()), ["identity.kind"]);
    let missing = pb::ResolveProfileRequest { identity: None, create_if_missing: true };
    assert_eq!(fields(&client.resolve_profile(authed(missing, &writer)).await.unwrap_err()), ["identity"]);

    let batch = pb::BatchResolveProfilesRequest {
        identities: vec![email("ok@example.com").unwrap(), email("broken").unwrap(), email("new@example.com").unwrap()],
        create_if_missing: true,
    };
    assert_eq!(
        fields(&client.batch_resolve_profiles(authed(batch, &writer)).await.unwrap_err()),
        ["identities[1].value"]
    );
    let oversized = pb::BatchResolveProfilesRequest {
        identities: (0..1001).map(|i| email(&format!("u{i}@example.com")).unwrap()).collect(),
        create_if_missing: true,
    };
    assert_eq!(fields(&client.batch_resolve_profiles(authed(oversized, &writer)).await.unwrap_err()), ["identities"]);

    let unknown_purpose = pb::SetConsentRequest {
        profile_id: jane.id.clone(),
        purpose: Some(pb::Purpose { kind: Some(pb::purpose::Kind::Standard(99)) }),
        granted: true,
        ..Default::default()
    };
    assert_eq!(fields(&client.set_consent(authed(unknown_purpose, &writer)).await.unwrap_err()), ["purpose.standard"]);
    let undefined_custom = pb::SetConsentRequest {
        profile_id: jane.id.clone(),
        purpose: Some(pb::Purpose { kind: Some(pb::purpose::Kind::Custom("fax_offers".into())) }),
        granted: true,
        ..Default::default()
    };
    assert_eq!(fields(&client.set_consent(authed(undefined_custom, &writer)).await.unwrap_err()), ["purpose.custom"]);
    let future = pb::SetConsentRequest {
        profile_id: "not-a-uuid".into(),
        purpose: standard(pb::ConsentPurpose::Email),
        occur_time: Some(cx_proto::timestamp(chrono::Utc::now() + chrono::Duration::days(1))),
        ..Default::default()
    };
    let mut both = fields(&client.set_consent(authed(future, &writer)).await.unwrap_err());
    both.sort();
    assert_eq!(both, ["occur_time", "profile_id"], "every violation is reported at once");

    let update = |paths: Vec<&str>, attributes: HashMap<String, AttributeValue>| pb::UpdateProfileRequest {
        profile: Some(pb::Profile { id: jane.id.clone(), persona: "changed".into(), attributes, ..Default::default() }),
        update_mask: Some(FieldMask { paths: paths.into_iter().map(str::to_owned).collect() }),
    };
    let bad_mask = client.update_profile(authed(update(vec!["persona", "identities"], HashMap::new()), &writer)).await;
    assert_eq!(fields(&bad_mask.unwrap_err()), ["update_mask.paths[1]"]);
    let no_mask = client.update_profile(authed(update(vec![], HashMap::new()), &writer)).await;
    assert_eq!(fields(&no_mask.unwrap_err()), ["update_mask"]);
    let oversized: HashMap<String, AttributeValue> = (0..101).map(|i| (format!("k{i}"), string_value("v"))).collect();
    let too_many = client.update_profile(authed(update(vec!["attributes"], oversized), &writer)).await;
    assert_eq!(fields(&too_many.unwrap_err()), ["profile.attributes"]);

    let negative = pb::ListProfilesRequest { page_size: -1, page_token: String::new(), ..Default::default() };
    assert_eq!(fields(&client.list_profiles(authed(negative, &writer)).await.unwrap_err()), ["page_size"]);
    let forged_page = pb::ListProfilesRequest { page_size: 1, page_token: "not a token".into(), ..Default::default() };
    assert_eq!(fields(&client.list_profiles(authed(forged_page, &writer)).await.unwrap_err()), ["page_token"]);
    let bad_name = pb::CreateConsentPurposeRequest {
        purpose: Some(pb::ConsentPurposeDefinition {
            name: "Email".into(),
            description: String::new(),
            create_time: None,
        }),
    };
    assert_eq!(fields(&client.create_consent_purpose(authed(bad_name, &admin)).await.unwrap_err()), ["purpose.name"]);

    // Nothing was written: one profile, unchanged, with no consent and no purpose.
    let all = client.list_profiles(authed(pb::ListProfilesRequest::default(), &writer)).await.unwrap().into_inner();
    assert_eq!(all.profiles, vec![jane.clone()]);
    let history = pb::ListConsentHistoryRequest { profile_id: jane.id.clone(), ..Default::default() };
    assert!(client.list_consent_history(authed(history, &writer)).await.unwrap().into_inner().events.is_empty());
    let purposes = client.list_consent_purposes(authed(pb::ListConsentPurposesRequest {}, &writer)).await.unwrap();
    assert!(purposes.into_inner().purposes.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn missing_forged_expired_and_underprivileged_tokens_are_refused() {
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db, None).await;
    let tenant = unique_tenant("auth");
    let get = || pb::GetProfileRequest { id: uuid::Uuid::now_v7().to_string(), as_of: None };

    let status = client.get_profile(get()).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "missing bearer token"));

    let forged = Signer::hs256(b"not-the-server-secret-not-the-server").sign(
        &tenant,
        &[Role::Admin],
        "x",
        Duration::from_secs(60),
    );
    let status = client.get_profile(authed(get(), &forged.unwrap())).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "token signature is invalid"));

    let signer = Signer::hs256(cx_testkit::SECRET.as_bytes());
    let claims = Claims {
        tenant: tenant.clone(),
        roles: vec!["admin".into()],
        sub: "x".into(),
        exp: cx_runtime::auth::unix_now() - 600,
        iat: None,
    };
    let status = client.get_profile(authed(get(), &signer.sign_claims(&claims).unwrap())).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "token expired"));

    let status = client.get_profile(authed(get(), "garbage")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let reader = token(&tenant, Role::Reader);
    let create = pb::ResolveProfileRequest { identity: email("r@example.com"), create_if_missing: true };
    let status = client.resolve_profile(authed(create, &reader)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::PermissionDenied, "this call needs the writer role"));
    let purpose = pb::CreateConsentPurposeRequest {
        purpose: Some(pb::ConsentPurposeDefinition { name: "club".into(), ..Default::default() }),
    };
    let status = client.create_consent_purpose(authed(purpose, &token(&tenant, Role::Writer))).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let no_roles = signer.sign(&tenant, &[], "x", Duration::from_secs(60)).unwrap();
    assert_eq!(client.get_profile(authed(get(), &no_roles)).await.unwrap_err().code(), Code::PermissionDenied);
    // A reader may read.
    let status = client.get_profile(authed(get(), &reader)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn another_tenants_profile_is_not_found_even_through_the_cache() {
    let db = TestDb::create().await.unwrap();
    let (a, b) = (unique_tenant("tenant-a"), unique_tenant("tenant-b"));
    let (server, mut client) = serving(&db, Some(cx_testkit::redis_url())).await;
    let profile = resolve(&mut client, &token(&a, Role::Writer), "shared@example.com").await;
    let get = || pb::GetProfileRequest { id: profile.id.clone(), as_of: None };
    // Tenant A reads it twice: the second read is served from Redis.
    client.get_profile(authed(get(), &token(&a, Role::Reader))).await.unwrap();
    client.get_profile(authed(get(), &token(&a, Role::Reader))).await.unwrap();
    assert_eq!(cx_testkit::redis_keys(&a).await, vec![format!("cx:{{{a}}}:profile:{}", profile.id)]);
    let status = client.get_profile(authed(get(), &token(&b, Role::Admin))).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(cx_testkit::redis_keys(&b).await.is_empty(), "a miss of tenant B caches nothing");
    cx_testkit::clear_redis(&a).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn fifty_concurrent_resolves_of_one_new_email_create_one_profile() {
    let db = TestDb::create().await.unwrap();
    let (server, client) = serving(&db, None).await;
    let writer = token(&unique_tenant("race"), Role::Writer);
    let mut calls = Vec::new();
    for _ in 0..50 {
        let (mut client, writer) = (client.clone(), writer.clone());
        calls.push(tokio::spawn(async move {
            let request = pb::ResolveProfileRequest { identity: email("Race@Example.com"), create_if_missing: true };
            client.resolve_profile(authed(request, &writer)).await.unwrap().into_inner()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for call in calls {
        let response = call.await.unwrap();
        ids.insert(response.profile.unwrap().id);
        created += usize::from(response.created);
    }
    assert_eq!((ids.len(), created), (1, 1));
    let mut client = client;
    let all = client.list_profiles(authed(pb::ListProfilesRequest::default(), &writer)).await.unwrap().into_inner();
    assert_eq!(all.profiles.len(), 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_server_on_the_same_redis_never_serves_a_stale_profile() {
    let db = TestDb::create().await.unwrap();
    let tenant = unique_tenant("replicas");
    let writer = token(&tenant, Role::Writer);
    let (first, mut one) = serving(&db, Some(cx_testkit::redis_url())).await;
    let (second, mut two) = serving(&db, Some(cx_testkit::redis_url())).await;
    let profile = resolve(&mut one, &writer, "cached@example.com").await;
    let get = || authed(pb::GetProfileRequest { id: profile.id.clone(), as_of: None }, &writer);

    // The second server reads it: now it is in Redis.
    assert_eq!(two.get_profile(get()).await.unwrap().into_inner().profile.unwrap().persona, "");
    assert_eq!(cx_testkit::redis_keys(&tenant).await.len(), 1);

    // The first server writes; the second must see the write at once.
    let update = pb::UpdateProfileRequest {
        profile: Some(pb::Profile { id: profile.id.clone(), persona: "ritual shopper".into(), ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["persona".into()] }),
    };
    one.update_profile(authed(update, &writer)).await.unwrap();
    assert_eq!(two.get_profile(get()).await.unwrap().into_inner().profile.unwrap().persona, "ritual shopper");
    let card = pb::AddIdentityRequest {
        profile_id: profile.id.clone(),
        identity: Some(pb::Identity { kind: pb::IdentityKind::CrmId as i32, value: "CRM-1".into() }),
    };
    one.add_identity(authed(card, &writer)).await.unwrap();
    assert_eq!(two.get_profile(get()).await.unwrap().into_inner().profile.unwrap().identities.len(), 2);
    cx_testkit::clear_redis(&tenant).await;
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn health_goes_from_not_serving_to_serving_when_the_database_comes() {
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    let serving_status = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let db = TestDb::reserve();
    let server = server(&db, None, 1024).await;
    let health = eventually("the server answers health checks", || server.health(""), Option::is_some).await;
    assert_eq!(health, Some(not_serving));
    assert_eq!(server.health(cx_proto::profile::v1::profile_service_server::SERVICE_NAME).await, Some(not_serving));
    // Calls are refused as retriable while the service is not ready.
    let mut client = ProfileServiceClient::new(server.channel().await);
    let tenant = unique_tenant("health");
    let request = pb::GetProfileRequest { id: uuid::Uuid::now_v7().to_string(), as_of: None };
    let status = client.get_profile(authed(request, &token(&tenant, Role::Reader))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);

    db.create_now().await.unwrap();
    server.wait_serving().await;
    assert_eq!(server.health(cx_proto::profile::v1::profile_service_server::SERVICE_NAME).await, Some(serving_status));
    resolve(&mut client, &token(&tenant, Role::Writer), "late@example.com").await;
    server.stop().await.unwrap();
}

/// Holds a row lock on a profile so that an update of it waits: an
/// in-flight call the test controls.
async fn lock_profile(db: &TestDb, id: &str) -> sea_orm::DatabaseTransaction {
    let conn = Database::connect(&db.url).await.unwrap();
    let txn = conn.begin().await.unwrap();
    let sql = format!("SELECT 1 FROM profile.customers WHERE id = '{id}' FOR UPDATE");
    txn.execute_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap();
    txn
}

fn slow_update(
    client: &Client,
    writer: &str,
    id: &str,
) -> tokio::task::JoinHandle<Result<tonic::Response<pb::UpdateProfileResponse>, tonic::Status>> {
    let (mut client, writer, id) = (client.clone(), writer.to_owned(), id.to_owned());
    tokio::spawn(async move {
        let update = pb::UpdateProfileRequest {
            profile: Some(pb::Profile { id, persona: "drained".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["persona".into()] }),
        };
        client.update_profile(authed(update, &writer)).await
    })
}

#[tokio::test]
async fn a_graceful_stop_lets_in_flight_calls_finish() {
    let db = TestDb::create().await.unwrap();
    let (server, mut client) = serving(&db, None).await;
    let writer = token(&unique_tenant("drain"), Role::Writer);
    let profile = resolve(&mut client, &writer, "drain@example.com").await;

    let lock = lock_profile(&db, &profile.id).await;
    let in_flight = slow_update(&client, &writer, &profile.id);
    eventually("the update waits on the row lock", || db.lock_waiters(), |n| *n == 1).await;
    assert!(!in_flight.is_finished(), "the update waits on the row lock");

    let stopping = server.begin_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stopping.is_finished(), "the server waits for the in-flight call");
    lock.commit().await.unwrap();

    let response = in_flight.await.unwrap().unwrap().into_inner();
    assert_eq!(response.profile.unwrap().persona, "drained");
    tokio::time::timeout(Duration::from_secs(10), stopping).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_shed_with_resource_exhausted() {
    let db = TestDb::create().await.unwrap();
    let server = server(&db, None, 1).await;
    server.wait_serving().await;
    let mut client = ProfileServiceClient::new(server.channel().await);
    let writer = token(&unique_tenant("shed"), Role::Writer);
    let profile = resolve(&mut client, &writer, "shed@example.com").await;

    let lock = lock_profile(&db, &profile.id).await;
    let in_flight = slow_update(&client, &writer, &profile.id);
    eventually("the update waits on the row lock", || db.lock_waiters(), |n| *n == 1).await;
    let shed = client
        .get_profile(authed(pb::GetProfileRequest { id: profile.id.clone(), as_of: None }, &writer))
        .await
        .unwrap_err();
    assert_eq!(shed.code(), Code::ResourceExhausted);
    // Health is never shed, so probes keep telling the truth.
    assert!(server.health("").await.is_some());
    lock.commit().await.unwrap();
    in_flight.await.unwrap().unwrap();
    client.get_profile(authed(pb::GetProfileRequest { id: profile.id.clone(), as_of: None }, &writer)).await.unwrap();
    server.stop().await.unwrap();
}
