//! Security as an attacker and an operator meet it: `cx serve` processes on
//! loopback ports over real PostgreSQL, called the way any token holder can.
//!
//! - [`internal`]: the outbox's `Deliver` takes only a service identity, each
//!   kind only from the service that owns it, and an erasure is confirmed only
//!   by a service that was asked, after its request arrived;
//! - [`idp`]: with an identity provider's public key, deliveries still flow;
//! - [`secrets`]: split deployments without secrets, or a profile without the
//!   endpoint of a customer-data service, refuse to start; secrets never come
//!   from flags, the embedded data directory is private.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod idp;
mod internal;
mod secrets;

use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_testkit::authed;
use cx_testkit::process::{CxProcess, free_port};

const CX: &str = env!("CARGO_BIN_EXE_cx");

/// `cx serve profile` and `cx serve journey` over one PostgreSQL database,
/// each knowing the other; `env` is added to both.
struct Pair {
    profile: CxProcess,
    journey: CxProcess,
}

impl Pair {
    async fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        let (profile_port, journey_port) = (free_port(), free_port());
        let profile_addr = format!("http://127.0.0.1:{profile_port}");
        let journey_addr = format!("http://127.0.0.1:{journey_port}");
        let mut all = vec![
            ("CX_DATABASE_URL", database_url),
            ("CX_PROFILE_ENDPOINT", profile_addr.as_str()),
            ("CX_JOURNEY_ENDPOINT", journey_addr.as_str()),
            // Survey and segmentation are not run here.
            ("CX_NOT_DEPLOYED", "survey,segmentation,kpi"),
        ];
        all.extend_from_slice(env);
        let profile = CxProcess::serve(CX, "profile", profile_port, &all);
        let journey = CxProcess::serve(CX, "journey", journey_port, &all);
        profile.wait_serving().await;
        journey.wait_serving().await;
        Self { profile, journey }
    }

    async fn profiles(&self) -> ProfileServiceClient<tonic::transport::Channel> {
        ProfileServiceClient::connect(self.profile.addr.clone()).await.unwrap()
    }

    async fn journeys(&self) -> JourneyServiceClient<tonic::transport::Channel> {
        JourneyServiceClient::connect(self.journey.addr.clone()).await.unwrap()
    }
}

fn email(value: &str) -> profile::Identity {
    profile::Identity { kind: profile::IdentityKind::Email as i32, value: value.into() }
}

/// The id of the customer with `address`, created if new.
async fn customer(pair: &Pair, token: &str, address: &str) -> String {
    let request = profile::ResolveProfileRequest { identity: Some(email(address)), create_if_missing: true };
    let resolved = pair.profiles().await.resolve_profile(authed(request, token)).await.unwrap().into_inner();
    resolved.profile.unwrap().id
}

/// Stores `n` web touchpoints of `profile_id`, ids `<prefix>-<i>`.
async fn touchpoints(pair: &Pair, token: &str, profile_id: &str, prefix: &str, n: usize) {
    let now = chrono::Utc::now();
    let batch = (0..n)
        .map(|i| journey::Touchpoint {
            id: format!("{prefix}-{i}"),
            customer: Some(journey::touchpoint::Customer::ProfileId(profile_id.into())),
            channel: cx_proto::common::v1::Channel::Web as i32,
            occur_time: Some(cx_proto::timestamp(now - chrono::Duration::minutes(10 + i as i64))),
            kind: cx_proto::common::v1::InteractionKind::Informative as i32,
            initiator: cx_proto::common::v1::Initiator::Pull as i32,
            ..Default::default()
        })
        .collect();
    let request = journey::IngestTouchpointsRequest { touchpoints: batch, all_or_nothing: true };
    let reply = pair.journeys().await.ingest_touchpoints(authed(request, token)).await.unwrap().into_inner();
    assert_eq!((reply.accepted, reply.errors.len()), (n as i32, 0));
}

/// How many touchpoints the timeline of `profile_id` lists.
async fn timeline(pair: &Pair, token: &str, profile_id: &str) -> usize {
    let request = journey::ListTimelineRequest { profile_id: profile_id.into(), ..Default::default() };
    let reply = pair.journeys().await.list_timeline(authed(request, token)).await.unwrap().into_inner();
    reply.touchpoints.len()
}

/// The erasure job `id` once `done` holds (at most 20 s).
async fn erasure_until(
    pair: &Pair,
    token: &str,
    id: &str,
    done: impl Fn(&profile::Erasure) -> bool,
) -> profile::Erasure {
    let read = || async {
        let request = profile::GetErasureRequest { id: id.into() };
        let erasure = pair.profiles().await.get_erasure(authed(request, token)).await.unwrap().into_inner().erasure;
        erasure.unwrap()
    };
    cx_testkit::eventually(&format!("erasure {id} reaches the expected state"), read, done).await
}
