//! Tokens from an identity provider (`CX_JWT_PUBLIC_KEY_FILE`): the services
//! cannot sign user tokens, yet their deliveries to each other flow, since
//! the service identity does not depend on the user-token mode.

use cx_proto::profile::v1 as profile;
use cx_runtime::auth::Role;
use cx_testkit::{TestDb, authed, idp};

use super::{Pair, customer, erasure_until, timeline, touchpoints};

#[tokio::test]
async fn with_an_identity_providers_key_activity_and_erasures_complete_between_processes() {
    let db = TestDb::create().await.unwrap();
    let keys = cx_testkit::temp_dir();
    let public_key = idp::public_key_file(&keys);
    let public_key = public_key.to_str().unwrap();
    // No shared user secret at all: the provider's public key only.
    let pair = Pair::start(&db.url, &[("CX_JWT_SECRET", ""), ("CX_JWT_PUBLIC_KEY_FILE", public_key)]).await;
    let tenant = cx_testkit::unique_tenant("idp");
    let (writer, admin) = (idp::token(&tenant, Role::Writer), idp::token(&tenant, Role::Admin));

    let dana = customer(&pair, &writer, "dana@example.com").await;
    touchpoints(&pair, &writer, &dana, "dana", 2).await;

    // The activity reaches the profile through journey's outbox: her last
    // touch is set (before, every delivery was refused "missing bearer token").
    let last_touch = || async {
        let request = profile::GetProfileRequest { id: dana.clone(), as_of: None };
        let found = pair.profiles().await.get_profile(authed(request, &writer)).await.unwrap().into_inner();
        found.profile.unwrap().last_touch_time
    };
    cx_testkit::eventually("activity reaches the profile service", last_touch, Option::is_some).await;

    // And an erasure completes in both services.
    let request = profile::EraseCustomerRequest { profile_id: dana.clone() };
    let job = pair.profiles().await.erase_customer(authed(request, &admin)).await.unwrap().into_inner();
    let job = job.erasure.unwrap().id;
    let done = erasure_until(&pair, &admin, &job, |e| e.state == profile::ErasureState::Completed as i32).await;
    let step = done.steps.iter().find(|s| s.service == "journey").unwrap();
    assert_eq!(step.erased_counts.get("touchpoints"), Some(&2));
    assert_eq!(timeline(&pair, &writer, &dana).await, 0);
    std::fs::remove_dir_all(keys).unwrap();
}
