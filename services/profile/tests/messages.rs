//! What a client reads when the profile service refuses a call: one whole
//! sentence, nothing appended on the way out (docs/DECISIONS.md, Input).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::common::v1::Channel as PbChannel;
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_runtime::auth::Role;
use cx_testkit::{RunningServer, TestDb, authed, token, unique_tenant};
use tonic::Code;

fn email(value: &str) -> Option<pb::Identity> {
    Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: value.into() })
}

fn standard(purpose: pb::ConsentPurpose) -> Option<pb::Purpose> {
    Some(pb::Purpose { kind: Some(pb::purpose::Kind::Standard(purpose as i32)) })
}

fn answer(status: tonic::Status) -> (Code, String) {
    (status.code(), status.message().to_owned())
}

#[tokio::test]
async fn refusals_read_as_whole_sentences() {
    let db = TestDb::create().await.unwrap();
    let store = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let module = cx_profile::build(&cx_testkit::context(store, None)).await.unwrap();
    let server = RunningServer::start(vec![module], cx_testkit::server_args()).await;
    server.wait_serving().await;
    let mut client = ProfileServiceClient::new(server.channel().await);
    let tenant = unique_tenant("messages");
    let (writer, admin) = (token(&tenant, Role::Writer), token(&tenant, Role::Admin));
    let mut profile_of = async |value: &str| {
        let request = pb::ResolveProfileRequest { identity: email(value), create_if_missing: true };
        client.resolve_profile(authed(request, &writer)).await.unwrap().into_inner().profile.unwrap().id
    };
    let ana = profile_of("ana@example.com").await;
    profile_of("bea@example.com").await;

    // Bea's address on Ana's profile: it read "… (merge them instead) already exists".
    let add = pb::AddIdentityRequest { profile_id: ana.clone(), identity: email("bea@example.com") };
    assert_eq!(
        answer(client.add_identity(authed(add, &writer)).await.unwrap_err()),
        (Code::AlreadyExists, "the email identity belongs to another profile (merge them instead)".to_owned())
    );

    // One request id for two decisions: it read "… another decision already exists".
    let consent = |purpose| pb::SetConsentRequest {
        profile_id: ana.clone(),
        purpose,
        granted: true,
        source_channel: PbChannel::Web as i32,
        actor: "customer".into(),
        occur_time: None,
        request_id: "decision-1".into(),
    };
    client.set_consent(authed(consent(standard(pb::ConsentPurpose::Email)), &writer)).await.unwrap();
    let again = consent(standard(pb::ConsentPurpose::Sms));
    assert_eq!(
        answer(client.set_consent(authed(again, &writer)).await.unwrap_err()),
        (Code::AlreadyExists, "request_id was already used for another decision".to_owned())
    );

    // The common forms, composed once.
    let purpose = || pb::CreateConsentPurposeRequest {
        purpose: Some(pb::ConsentPurposeDefinition { name: "wine_club".into(), ..Default::default() }),
    };
    client.create_consent_purpose(authed(purpose(), &admin)).await.unwrap();
    assert_eq!(
        answer(client.create_consent_purpose(authed(purpose(), &admin)).await.unwrap_err()),
        (Code::AlreadyExists, "consent purpose 'wine_club' already exists".to_owned())
    );
    let missing = uuid::Uuid::now_v7().to_string();
    let get = pb::GetProfileRequest { id: missing.clone(), as_of: None };
    assert_eq!(
        answer(client.get_profile(authed(get, &writer)).await.unwrap_err()),
        (Code::NotFound, format!("profile {missing} not found"))
    );
    let remove = pb::RemoveIdentityRequest { profile_id: ana.clone(), identity: email("cleo@example.com") };
    assert_eq!(
        answer(client.remove_identity(authed(remove, &writer)).await.unwrap_err()),
        (Code::NotFound, format!("this email identity on profile {ana} not found"))
    );
    let resolve = pb::ResolveProfileRequest { identity: email("dora@example.com"), create_if_missing: false };
    assert_eq!(
        answer(client.resolve_profile(authed(resolve, &writer)).await.unwrap_err()),
        (Code::NotFound, "no profile has this email identity".to_owned())
    );
    server.stop().await.unwrap();
}
