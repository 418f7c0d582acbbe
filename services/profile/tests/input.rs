//! Any bytes get a clean answer from the profile service, and nothing a
//! request carries is echoed unbounded (issue 13, items 4 and 6), on both
//! backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::common::v1::AttributeValue;
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_runtime::error::{FieldViolation, field_violations};
use cx_testkit::{RunningServer, TestDb, authed, raw, token, unique_tenant};
use prost_types::FieldMask;
use tonic::Code;
use tonic::transport::Channel;

const NUL: &str = "must not contain NUL characters";

#[derive(Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite,
}

struct Served {
    _db: TestDb,
    server: RunningServer,
    client: ProfileServiceClient<Channel>,
    writer: String,
    admin: String,
}

async fn serve(backend: Backend) -> Served {
    let db = TestDb::create().await.unwrap();
    let (url, redis) = match backend {
        Backend::Postgres => (Some(db.url.clone()), Some(cx_testkit::redis_url())),
        Backend::Sqlite => (None, None),
    };
    let ctx = cx_testkit::context(cx_testkit::store_args(url, cx_testkit::temp_dir()), redis);
    let module = cx_profile::build(&ctx).await.unwrap();
    let server = RunningServer::start(vec![module], cx_testkit::server_args()).await;
    server.wait_serving().await;
    let client = ProfileServiceClient::new(server.channel().await);
    let tenant = unique_tenant("input");
    Served { _db: db, server, client, writer: token(&tenant, Role::Writer), admin: token(&tenant, Role::Admin) }
}

fn email(value: &str) -> Option<pb::Identity> {
    Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: value.into() })
}

fn violations(status: &tonic::Status) -> Vec<FieldViolation> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
}

async fn resolve(s: &mut Served, value: &str) -> String {
    let request = pb::ResolveProfileRequest { identity: email(value), create_if_missing: true };
    s.client.resolve_profile(authed(request, &s.writer)).await.unwrap().into_inner().profile.unwrap().id
}

async fn raw_bytes_are_invalid_argument(backend: Backend) {
    let s = serve(backend).await;
    let channel = s.server.channel().await;
    for path in ["/cx.profile.v1.ProfileService/ResolveProfile", "/cx.profile.v1.ProfileService/UpdateProfile"] {
        let status = raw::call(channel.clone(), path, vec![0xff, 0xff, 0xff], &s.writer).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
    }
}

async fn a_nul_is_invalid_argument_with_its_path(backend: Backend) {
    let mut s = serve(backend).await;
    // Was INTERNAL "database error" on PostgreSQL.
    let request = pb::ResolveProfileRequest { identity: email("ana\0@example.com"), create_if_missing: true };
    let status = s.client.resolve_profile(authed(request, &s.writer)).await.unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new("identity.value", NUL)]);
    let identities = vec![pb::Identity { kind: 1, value: "a@example.com".into() }, email("b\0").unwrap()];
    let request = pb::BatchResolveProfilesRequest { identities, create_if_missing: true };
    let status = s.client.batch_resolve_profiles(authed(request, &s.writer)).await.unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new("identities[1].value", NUL)]);
    let id = resolve(&mut s, "ana@example.com").await;
    let text = AttributeValue { kind: Some(cx_proto::common::v1::attribute_value::Kind::StringValue("v\0".into())) };
    let profile =
        pb::Profile { id, persona: "\0".into(), attributes: [("tier".to_owned(), text)].into(), ..Default::default() };
    let request = pb::UpdateProfileRequest { profile: Some(profile), update_mask: Some(FieldMask { paths: vec![] }) };
    let status = s.client.update_profile(authed(request, &s.writer)).await.unwrap_err();
    assert_eq!(
        violations(&status),
        [
            FieldViolation::new("profile.persona", NUL),
            FieldViolation::new(r#"profile.attributes["tier"].string_value"#, NUL)
        ]
    );
}

async fn long_paths_and_keys_are_clipped(backend: Backend) {
    let mut s = serve(backend).await;
    let id = resolve(&mut s, "ana@example.com").await;
    // A 20 KB update-mask path: the default client reads the answer.
    let path = "k".repeat(20_000);
    let profile = pb::Profile { id: id.clone(), ..Default::default() };
    let request =
        pb::UpdateProfileRequest { profile: Some(profile), update_mask: Some(FieldMask { paths: vec![path] }) };
    let status = s.client.update_profile(authed(request, &s.writer)).await.unwrap_err();
    let found = violations(&status);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].field, "update_mask.paths[0]");
    // "'kkk…' is not an updatable field…": 197 bytes of it, then "…".
    assert_eq!(found[0].description, format!("'{}…", "k".repeat(196)));
    assert!(status.message().len() <= 250, "{}", status.message());
    // A 20 KB attribute key.
    let key = "a".repeat(20_000);
    let value = AttributeValue { kind: Some(cx_proto::common::v1::attribute_value::Kind::BoolValue(true)) };
    let profile = pb::Profile { id, attributes: [(key, value)].into(), ..Default::default() };
    let mask = FieldMask { paths: vec!["attributes".into()] };
    let request = pb::UpdateProfileRequest { profile: Some(profile), update_mask: Some(mask) };
    let status = s.client.update_profile(authed(request, &s.writer)).await.unwrap_err();
    let found = violations(&status);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].field, format!("profile.attributes[\"{}…", "a".repeat(177)));
}

async fn check_profiles_names_the_unknown_ids(backend: Backend) {
    let mut s = serve(backend).await;
    let (ana, bob) = (resolve(&mut s, "ana@example.com").await, resolve(&mut s, "bob@example.com").await);
    let merge = pb::MergeProfilesRequest { survivor_id: ana.clone(), merged_id: bob.clone(), ..Default::default() };
    s.client.merge_profiles(authed(merge, &s.admin)).await.unwrap();
    let stranger = uuid::Uuid::now_v7().to_string();
    let other_tenant = {
        let tok = token(&unique_tenant("other"), Role::Writer);
        let request = pb::ResolveProfileRequest { identity: email("eve@example.com"), create_if_missing: true };
        s.client.resolve_profile(authed(request, &tok)).await.unwrap().into_inner().profile.unwrap().id
    };
    let asked = vec![ana.clone(), stranger.clone(), bob, "not-a-uuid".into(), other_tenant.clone(), stranger.clone()];
    let request = pb::CheckProfilesRequest { profile_ids: asked };
    let answer = s.client.check_profiles(authed(request, &s.writer)).await.unwrap().into_inner();
    // Ana lives, Bob was merged into her: both known; each unknown id once.
    assert_eq!(answer.unknown_profile_ids, [stranger, "not-a-uuid".to_owned(), other_tenant]);
    // 100,001 ids are refused before they are decoded.
    let request = pb::CheckProfilesRequest { profile_ids: vec![ana; 100_001] };
    let status = s.client.check_profiles(authed(request, &s.writer)).await.unwrap_err();
    assert_eq!(violations(&status), [FieldViolation::new("profile_ids", "has 100001 items; at most 100000 per call")]);
}

cx_testkit::on_both_backends!(
    raw_bytes_are_invalid_argument,
    a_nul_is_invalid_argument_with_its_path,
    long_paths_and_keys_are_clipped,
    check_profiles_names_the_unknown_ids,
);
