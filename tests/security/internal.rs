//! `cx.outbox.v1.InboxService/Deliver` is reachable by anyone who reaches the
//! port. It must take a service identity only, each kind only from the
//! service that owns it, and never let a confirmation complete an erasure
//! whose request was not delivered.

use cx_proto::outbox::v1::inbox_service_client::InboxServiceClient;
use cx_proto::profile::v1 as profile;
use cx_runtime::auth::Role;
use cx_testkit::{TestDb, authed, service_token};
use prost::{Message, Name};
use tonic::Code;

use super::{Pair, customer, erasure_until, timeline, touchpoints};

/// Sends one message to the inbox at `addr` with `token`; the gRPC code.
async fn deliver(addr: &str, token: &str, destination: &str, kind: &str, payload: Vec<u8>) -> Code {
    let request = cx_testkit::raw::forged_delivery(destination, kind, payload);
    let mut client = InboxServiceClient::connect(addr.to_owned()).await.unwrap();
    match client.deliver(authed(request, token)).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn erasure_requested(profile_id: &str) -> (String, Vec<u8>) {
    let message = profile::ErasureRequested {
        erasure_id: uuid::Uuid::now_v7().to_string(),
        profile_id: profile_id.into(),
        merged_profile_ids: Vec::new(),
    };
    (profile::ErasureRequested::full_name(), message.encode_to_vec())
}

fn profile_merged(survivor: &str, merged: &str) -> (String, Vec<u8>) {
    let message = profile::ProfileMerged {
        survivor_profile_id: survivor.into(),
        merged_profile_id: merged.into(),
        merge_time: None,
    };
    (profile::ProfileMerged::full_name(), message.encode_to_vec())
}

fn erasure_confirmed(erasure_id: &str) -> (String, Vec<u8>) {
    let message = profile::ErasureConfirmed {
        erasure_id: erasure_id.into(),
        service: "journey".into(),
        counts: [("touchpoints".to_owned(), 0)].into(),
        complete_time: None,
    };
    (profile::ErasureConfirmed::full_name(), message.encode_to_vec())
}

/// The services the reflection service of `addr` lists.
async fn listed_services(addr: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
    let channel = tonic::transport::Channel::from_shared(addr.to_owned()).unwrap().connect().await.unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client.server_reflection_info(tokio_stream::once(request)).await.unwrap().into_inner();
    let answer: ServerReflectionResponse = answers.message().await.unwrap().unwrap();
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("not a service list: {other:?}"),
    }
}

#[tokio::test]
async fn deliver_takes_a_service_identity_and_each_kind_from_its_owner_only() {
    let db = TestDb::create().await.unwrap();
    let pair = Pair::start(&db.url, &[]).await;
    let tenant = cx_testkit::unique_tenant("forge");
    let (writer, admin) = (cx_testkit::token(&tenant, Role::Writer), cx_testkit::token(&tenant, Role::Admin));
    let (ann, bob) =
        (customer(&pair, &writer, "ann@example.com").await, customer(&pair, &writer, "bob@example.com").await);
    touchpoints(&pair, &writer, &ann, "ann", 2).await;
    let journey_addr = pair.journey.addr.clone();
    let profile_addr = pair.profile.addr.clone();

    // (a) a forged erasure, (b) a forged merge, with a writer's and even an
    // admin's token: refused, and Ann keeps her two touchpoints.
    for token in [&writer, &admin] {
        let (kind, payload) = erasure_requested(&ann);
        assert_eq!(deliver(&journey_addr, token, "journey", &kind, payload).await, Code::Unauthenticated);
        let (kind, payload) = profile_merged(&bob, &ann);
        assert_eq!(deliver(&journey_addr, token, "journey", &kind, payload).await, Code::Unauthenticated);
        // (c) a forged confirmation to profile.
        let (kind, payload) = erasure_confirmed(&uuid::Uuid::now_v7().to_string());
        assert_eq!(deliver(&profile_addr, token, "profile", &kind, payload).await, Code::Unauthenticated);
    }
    assert_eq!((timeline(&pair, &writer, &ann).await, timeline(&pair, &writer, &bob).await), (2, 0));

    // A service identity, but not the owner of the kind: merges and
    // erasures are the profile service's to announce.
    let as_journey = service_token("journey", &tenant);
    let (kind, payload) = profile_merged(&bob, &ann);
    assert_eq!(deliver(&journey_addr, &as_journey, "journey", &kind, payload).await, Code::PermissionDenied);
    let (kind, payload) = erasure_requested(&ann);
    assert_eq!(
        deliver(&journey_addr, &service_token("survey", &tenant), "journey", &kind, payload).await,
        Code::PermissionDenied
    );
    assert_eq!((timeline(&pair, &writer, &ann).await, timeline(&pair, &writer, &bob).await), (2, 0));

    // A destination that does not run there can never succeed.
    let (kind, payload) = profile_merged(&bob, &ann);
    let as_profile = service_token("profile", &tenant);
    assert_eq!(deliver(&journey_addr, &as_profile, "kpi", &kind, payload).await, Code::InvalidArgument);

    // The real owner is heard: Ann's touchpoints move to Bob.
    let (kind, payload) = profile_merged(&bob, &ann);
    assert_eq!(deliver(&journey_addr, &as_profile, "journey", &kind, payload).await, Code::Ok);
    assert_eq!(timeline(&pair, &writer, &bob).await, 2);

    // Clients are not told the internal services exist (the inbox, the
    // customer-data export).
    for addr in [&journey_addr, &profile_addr] {
        let listed = listed_services(addr).await;
        let internal = |s: &String| s.starts_with("cx.outbox.") || s.starts_with("cx.gdpr.");
        assert!(!listed.iter().any(internal), "{addr} lists {listed:?}");
        assert!(listed.iter().any(|s| s.starts_with("cx.")), "{addr} lists {listed:?}");
    }
}

#[tokio::test]
async fn an_erasure_is_confirmed_only_by_a_service_asked_and_after_its_request_arrived() {
    let db = TestDb::create().await.unwrap();
    let mut pair = Pair::start(&db.url, &[]).await;
    let tenant = cx_testkit::unique_tenant("confirm");
    let (writer, admin) = (cx_testkit::token(&tenant, Role::Writer), cx_testkit::token(&tenant, Role::Admin));
    let cleo = customer(&pair, &writer, "cleo@example.com").await;
    touchpoints(&pair, &writer, &cleo, "cleo", 3).await;

    // Journey is down when Cleo is erased: its request waits in the outbox.
    pair.journey.kill();
    let request = profile::EraseCustomerRequest { profile_id: cleo.clone() };
    let job = pair.profiles().await.erase_customer(authed(request, &admin)).await.unwrap().into_inner();
    let job = job.erasure.unwrap().id;

    // A confirmation before the request arrived (what a forger holding a
    // service key, or a confused service, would send) is refused, to be
    // retried; one from a service never asked is refused outright.
    let (kind, payload) = erasure_confirmed(&job);
    let profile_addr = pair.profile.addr.clone();
    let as_journey = service_token("journey", &tenant);
    assert_eq!(deliver(&profile_addr, &as_journey, "profile", &kind, payload.clone()).await, Code::Aborted);
    let as_survey = service_token("survey", &tenant);
    assert_eq!(deliver(&profile_addr, &as_survey, "profile", &kind, payload).await, Code::PermissionDenied);
    let pending = erasure_until(&pair, &admin, &job, |_| true).await;
    assert_eq!(pending.state, profile::ErasureState::Pending as i32);

    // Journey comes back, receives the request, erases Cleo's three
    // touchpoints and confirms: the job completes with journey's counts.
    pair.journey.restart();
    pair.journey.wait_serving().await;
    let done = erasure_until(&pair, &admin, &job, |e| e.state == profile::ErasureState::Completed as i32).await;
    let step = done.steps.iter().find(|s| s.service == "journey").unwrap();
    assert_eq!(step.erased_counts.get("touchpoints"), Some(&3));
    assert_eq!(timeline(&pair, &writer, &cleo).await, 0);
}
