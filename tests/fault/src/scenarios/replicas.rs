//! Two `cx serve profile` replicas on one PostgreSQL database and a private
//! Redis that is killed (`kill -9`) and comes back with its data, as a
//! persistent Redis or a failover does: replica A writes, replica B reads.
//! After a write or an erasure is acknowledged, B must not serve the earlier
//! value for more than 1 s, and never serve an erased customer again.

use std::path::Path;
use std::time::{Duration, Instant};

use cx_proto::profile::v1 as pb;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_runtime::auth::Role;
use cx_testkit::process::{CxProcess, free_port};
use cx_testkit::redis_server::PrivateRedis;
use cx_testkit::{TestDb, authed};
use tonic::transport::Channel;

use crate::report::Row;

type Client = ProfileServiceClient<Channel>;

/// No stale read once this has passed since the acknowledgement.
const BOUND: Duration = Duration::from_secs(1);

/// `NotFound` → `NOT_FOUND`, as gRPC names codes.
fn code(status: &tonic::Status) -> String {
    let mut name = String::new();
    for (i, c) in format!("{:?}", status.code()).chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

async fn client(process: &CxProcess) -> anyhow::Result<Client> {
    Ok(ProfileServiceClient::new(Channel::from_shared(process.addr.clone())?.connect().await?))
}

async fn get(client: &mut Client, token: &str, id: &str) -> Result<pb::Profile, tonic::Status> {
    let request = pb::GetProfileRequest { id: id.into(), as_of: None };
    Ok(client.get_profile(authed(request, token)).await?.into_inner().profile.unwrap_or_default())
}

async fn set_persona(client: &mut Client, token: &str, id: &str, persona: &str) -> Result<(), tonic::Status> {
    let request = pb::UpdateProfileRequest {
        profile: Some(pb::Profile { id: id.into(), persona: persona.into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["persona".into()] }),
    };
    client.update_profile(authed(request, token)).await.map(|_| ())
}

async fn create(client: &mut Client, token: &str, email: &str) -> anyhow::Result<String> {
    let identity = pb::Identity { kind: pb::IdentityKind::Email as i32, value: email.into() };
    let request = pb::ResolveProfileRequest { identity: Some(identity), create_if_missing: true };
    Ok(client.resolve_profile(authed(request, token)).await?.into_inner().profile.unwrap_or_default().id)
}

/// Reads on both replicas until the profile is cached (bounded).
async fn warm(clients: [&mut Client; 2], token: &str, id: &str, redis: &PrivateRedis) -> anyhow::Result<()> {
    let [a, b] = clients;
    for _ in 0..100 {
        get(a, token, id).await?;
        get(b, token, id).await?;
        if redis.keys(&format!("cx:*:profile:{id}")).await.len() == 1 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the profile was never cached")
}

/// Runs both rows against the `cx` binary `bin`.
pub async fn run(bin: &Path) -> anyhow::Result<Vec<Row>> {
    let mut redis = PrivateRedis::start().await;
    let db = TestDb::create().await?;
    let url = redis.url();
    let env = [
        ("CX_DATABASE_URL", db.url.as_str()),
        ("CX_REDIS_URL", url.as_str()),
        ("CX_NOT_DEPLOYED", "journey,survey,segmentation,kpi"),
        ("CX_LOG", "error"),
    ];
    let a = CxProcess::serve(bin, "profile", free_port(), &env);
    let b = CxProcess::serve(bin, "profile", free_port(), &env);
    a.wait_serving().await;
    b.wait_serving().await;
    let (mut ca, mut cb) = (client(&a).await?, client(&b).await?);
    let tenant = cx_testkit::unique_tenant("replicas");
    let (writer, admin) = (cx_testkit::token(&tenant, Role::Writer), cx_testkit::token(&tenant, Role::Admin));
    let writes = writes_under_a_killed_redis(&mut redis, [&mut ca, &mut cb], &writer).await?;
    let erasure = erasure_under_a_stopped_redis(&mut redis, [&mut ca, &mut cb], &writer, &admin).await?;
    Ok(vec![writes, erasure])
}

/// A writes v1..=v60, Redis killed after v20 and back with its data after
/// v40; B reads all along.
async fn writes_under_a_killed_redis(
    redis: &mut PrivateRedis,
    [a, b]: [&mut Client; 2],
    writer: &str,
) -> anyhow::Result<Row> {
    let mut row = Row::new("Redis killed and restarted with its data, two replicas: writes", "PostgreSQL");
    let id = create(a, writer, "kim.killed@example.com").await?;
    set_persona(a, writer, &id, "v0").await?;
    warm([&mut *a, &mut *b], writer, &id, redis).await?;
    let start = Instant::now();
    let (done, mut finished) = tokio::sync::watch::channel(false);
    let reader = {
        let (mut b, writer, id) = (b.clone(), writer.to_owned(), id.clone());
        tokio::spawn(async move {
            let mut reads = Vec::new();
            while !*finished.borrow_and_update() {
                let began = start.elapsed();
                reads.push((began, get(&mut b, &writer, &id).await.map(|p| p.persona)));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            reads
        })
    };
    let mut acks = Vec::new();
    for version in 1..=60u32 {
        if version == 21 {
            redis.kill();
        }
        if version == 41 {
            redis.restart().await;
        }
        match set_persona(a, writer, &id, &format!("v{version}")).await {
            Ok(()) => {
                row.outcomes.add("OK");
                acks.push((version, start.elapsed()));
            }
            Err(status) => row.outcomes.add(&code(&status)),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    done.send(true)?;
    let reads = reader.await?;
    let mut late = 0;
    for (began, read) in &reads {
        match read {
            Ok(persona) => {
                row.outcomes.add("OK");
                let seen: u32 = persona.trim_start_matches('v').parse().unwrap_or(0);
                if acks.iter().any(|(version, at)| *version > seen && *began > *at + BOUND) {
                    late += 1;
                }
            }
            Err(status) => row.outcomes.add(&code(status)),
        }
    }
    let last = acks.last().map(|(v, _)| format!("v{v}"));
    if get(b, writer, &id).await.ok().map(|p| p.persona) != last {
        row.lost += 1;
    }
    row.attempts = row.outcomes.total();
    row.unexpected = late + row.outcomes.other_than(&["OK"]).values().sum::<u64>();
    row.note = format!(
        "every call OK; no read on B older than a write acknowledged on A over 1 s before ({} reads, {late} stale)",
        reads.len()
    );
    Ok(row)
}

/// A erases a customer while Redis is stopped; Redis comes back with her
/// cached profile; B reads her id for 2 s.
async fn erasure_under_a_stopped_redis(
    redis: &mut PrivateRedis,
    [a, b]: [&mut Client; 2],
    writer: &str,
    admin: &str,
) -> anyhow::Result<Row> {
    let mut row = Row::new("Redis stopped during an erasure, back with its data, two replicas", "PostgreSQL");
    let email = "erika.erased@example.com";
    let id = create(a, writer, email).await?;
    warm([&mut *a, &mut *b], writer, &id, redis).await?;
    redis.stop();
    let erased = a.erase_customer(authed(pb::EraseCustomerRequest { profile_id: id.clone() }, admin)).await;
    row.outcomes.add(&erased.as_ref().map_or_else(code, |_| "OK".into()));
    let acked = Instant::now();
    redis.restart().await;
    let mut served = 0;
    while acked.elapsed() < Duration::from_secs(2) {
        match get(b, writer, &id).await {
            Ok(profile) => {
                row.outcomes.add("OK");
                served += 1;
                if profile.identities.iter().any(|i| i.value == email) {
                    row.leaked += 1;
                }
            }
            Err(status) => row.outcomes.add(&code(&status)),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    row.attempts = row.outcomes.total();
    let erased_ok = u64::from(erased.is_ok());
    row.unexpected = served + (1 - erased_ok) + row.outcomes.other_than(&["OK", "NOT_FOUND"]).values().sum::<u64>();
    row.note = "the erasure OK, then every read of her on B NOT_FOUND (leaked: her profile served)".into();
    Ok(row)
}
