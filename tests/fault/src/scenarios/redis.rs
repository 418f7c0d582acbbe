//! Redis killed and restarted with its data under two replicas. Both
//! `cx serve all` processes share one PostgreSQL database and a private
//! Redis that keeps its data on disk. Each round both replicas have the
//! customer cached; Redis dies; replica A changes the customer (or erases
//! her); Redis comes back with the old entries. No call may fail, replica B
//! may serve the old value for at most 1 s after A acknowledged, and never
//! an erased customer's data.

use std::path::Path;
use std::time::{Duration, Instant};

use cx_proto::common::v1::AttributeValue;
use cx_proto::common::v1::attribute_value::Kind;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::auth::Role;
use cx_testkit::process::{CxProcess, free_port};
use cx_testkit::{TestDb, authed};
use prost::Message as _;
use tonic::transport::Channel;

use crate::backing::PrivateRedis;
use crate::{Outcomes, Row};

/// How long a replica may serve what was overwritten.
const BOUND: Duration = Duration::from_secs(1);
/// How long replica B is watched after each acknowledgement.
const WATCH: Duration = Duration::from_millis(2_000);

struct Replicas {
    a: ProfileServiceClient<Channel>,
    b: ProfileServiceClient<Channel>,
    admin: String,
    outcomes: Outcomes,
}

impl Replicas {
    async fn get(&mut self, on_b: bool, id: &str) -> Option<Vec<u8>> {
        let client = if on_b { &mut self.b } else { &mut self.a };
        let request = profile::GetProfileRequest { id: id.to_owned(), as_of: None };
        match client.get_profile(authed(request, &self.admin)).await {
            Ok(found) => {
                self.outcomes.add("OK");
                Some(found.into_inner().encode_to_vec())
            }
            Err(status) => {
                self.outcomes.add(&crate::grpc::outcome_of(&status));
                None
            }
        }
    }

    async fn update(&mut self, id: &str, note: &str) -> bool {
        let request = profile::UpdateProfileRequest {
            profile: Some(profile::Profile {
                id: id.to_owned(),
                attributes: [("note".to_owned(), AttributeValue { kind: Some(Kind::StringValue(note.to_owned())) })]
                    .into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["attributes".into()] }),
        };
        let answer = self.a.update_profile(authed(request, &self.admin)).await;
        self.outcomes.add(&answer.as_ref().map_or_else(crate::grpc::outcome_of, |_| "OK".into()));
        answer.is_ok()
    }

    /// Watches replica B for `WATCH` after `acknowledged`: reads that still
    /// show `old`, before and after `BOUND`.
    async fn stale_reads(&mut self, id: &str, old: &[u8], acknowledged: Instant) -> (u64, u64) {
        let (mut early, mut late) = (0, 0);
        while acknowledged.elapsed() < WATCH {
            let shows_old = self.get(true, id).await.is_some_and(|b| b.windows(old.len()).any(|w| w == old));
            if shows_old && acknowledged.elapsed() > BOUND {
                late += 1;
            } else if shows_old {
                early += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (early, late)
    }
}

pub async fn run(bin: &Path, rounds: usize) -> anyhow::Result<Vec<Row>> {
    let db = TestDb::create().await?;
    let mut redis = PrivateRedis::start().await?;
    let redis_url = redis.url();
    let env = [("CX_DATABASE_URL", db.url.as_str()), ("CX_REDIS_URL", redis_url.as_str()), ("CX_LOG", "error")];
    let (a, b) = (CxProcess::serve(bin, "all", free_port(), &env), CxProcess::serve(bin, "all", free_port(), &env));
    a.wait_serving().await;
    b.wait_serving().await;
    let tenant = cx_testkit::unique_tenant("replicas");
    let mut replicas = Replicas {
        a: ProfileServiceClient::new(Channel::from_shared(a.addr.clone())?.connect().await?),
        b: ProfileServiceClient::new(Channel::from_shared(b.addr.clone())?.connect().await?),
        admin: cx_testkit::token(&tenant, Role::Admin),
        outcomes: Outcomes::default(),
    };

    let mut writes = Row::new("Redis killed and restarted with its data, two replicas: updates", "PostgreSQL");
    let (mut early, mut late) = (0, 0);
    for round in 0..rounds {
        let channel = Channel::from_shared(a.addr.clone())?.connect().await?;
        let id = crate::data::customer(&channel, &replicas.admin).await?;
        let old = format!("before-{round}-{}", uuid::Uuid::new_v4().simple());
        replicas.update(&id, &old).await;
        replicas.get(false, &id).await;
        replicas.get(true, &id).await;
        redis.kill();
        let changed = replicas.update(&id, &format!("after-{round}")).await;
        let acknowledged = Instant::now();
        redis.restart().await?;
        if changed {
            let (e, l) = replicas.stale_reads(&id, old.as_bytes(), acknowledged).await;
            (early, late) = (early + e, late + l);
        }
    }
    writes.outcomes = std::mem::take(&mut replicas.outcomes);
    writes.attempts = writes.outcomes.total();
    writes.unexpected = writes.outcomes.total() - writes.outcomes.count("OK") + late;
    writes.note = format!(
        "{rounds} rounds; every call OK; replica B watched {} s after each update: {early} stale reads within {} s, {late} after",
        WATCH.as_secs(),
        BOUND.as_secs()
    );

    let mut erasures = Row::new("Redis killed and restarted with its data, two replicas: erasures", "PostgreSQL");
    for _ in 0..rounds {
        let channel = Channel::from_shared(a.addr.clone())?.connect().await?;
        let id = crate::data::customer(&channel, &replicas.admin).await?;
        let email = replicas.get(false, &id).await.and_then(|b| email_in(&b)).unwrap_or_default();
        replicas.get(true, &id).await;
        redis.kill();
        let request = profile::EraseCustomerRequest { profile_id: id.clone() };
        let erased = replicas.a.erase_customer(authed(request, &replicas.admin)).await;
        replicas.outcomes.add(&erased.as_ref().map_or_else(crate::grpc::outcome_of, |_| "OK".into()));
        let acknowledged = Instant::now();
        redis.restart().await?;
        if erased.is_ok() && !email.is_empty() {
            // Never, not even within the bound.
            let (e, l) = replicas.stale_reads(&id, email.as_bytes(), acknowledged).await;
            erasures.leaked += e + l;
        }
    }
    erasures.outcomes = std::mem::take(&mut replicas.outcomes);
    erasures.attempts = erasures.outcomes.total();
    // After an erasure GetProfile answers NOT_FOUND.
    erasures.unexpected = erasures.attempts - erasures.outcomes.count("OK") - erasures.outcomes.count("NOT_FOUND");
    erasures.note = format!(
        "{rounds} rounds; replica B watched {} s after each acknowledged erasure; leaked counts reads that showed the erased e-mail",
        WATCH.as_secs()
    );
    drop((a, b));
    Ok(vec![writes, erasures])
}

/// The first e-mail address in an encoded GetProfileResponse.
fn email_in(encoded: &[u8]) -> Option<String> {
    let found = profile::GetProfileResponse::decode(encoded).ok()?.profile?;
    found.identities.into_iter().find(|i| i.kind == profile::IdentityKind::Email as i32).map(|i| i.value)
}
