//! The profile service over gRPC: a real server on a loopback port, a real
//! client, PostgreSQL and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use cx_proto::common::v1::{AttributeValue, Channel as PbChannel, attribute_value::Kind};
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::{Claims, Role, Signer};
use cx_runtime::error::field_violations;
use cx_testkit::{RunningServer, TestDb, authed, token, unique_tenant};
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

/// Calls every RPC once on its happy path, checking what each returns.
async fn exercise_every_rpc(client: &mut Client, tenant: &str) {
    let (writer, admin) = (token(tenant, Role::Writer), token(tenant, Role::Admin));

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
}

#[tokio::test]
async fn every_rpc_answers_its_happy_path() {
    let db = TestDb::create().await.unwrap();
    let tenant = unique_tenant("happy");
    let (server, mut client) = serving(&db, Some(cx_testkit::redis_url())).await;
    exercise_every_rpc(&mut client, &tenant).await;
    cx_testkit::clear_redis(&tenant).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn with_redis_unreachable_every_rpc_still_succeeds() {
    let db = TestDb::create().await.unwrap();
    // Nothing listens on port 1: every cache call fails, and must not matter.
    let (server, mut client) = serving(&db, Some("redis://127.0.0.1:1".into())).await;
    exercise_every_rpc(&mut client, &unique_tenant("noredis")).await;
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.health("").await, Some(not_serving));
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
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    tokio::time::sleep(Duration::from_millis(300)).await;
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
