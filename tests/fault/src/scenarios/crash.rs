//! kill -9 during streamed ingest. Journey and profile run as separate
//! processes on one PostgreSQL database. A client streams chunks of
//! touchpoints, sends again every chunk that was not acknowledged, and
//! replays one acknowledged chunk in ten; journey is killed a third of the
//! way through, profile two thirds. Nothing acknowledged may be lost,
//! nothing stored twice, and profile's activity must converge to what
//! journey stored.

use std::path::Path;
use std::time::{Duration, Instant};

use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_runtime::auth::Role;
use cx_testkit::process::{CxProcess, free_port};
use cx_testkit::{TestDb, authed};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};

use crate::data::{activity, customer, lost_and_doubled, timeline, touchpoint};
use crate::{Outcomes, Row};

const CHUNK: usize = 100;
const CUSTOMERS: usize = 20;

/// An open StreamTouchpoints call: where chunks go, where answers come from.
type Open = (mpsc::Sender<journey::StreamTouchpointsRequest>, Streaming<journey::StreamTouchpointsResponse>);

pub async fn run(bin: &Path, touchpoints: usize) -> anyhow::Result<Row> {
    let db = TestDb::create().await?;
    let (profile_port, journey_port) = (free_port(), free_port());
    let profile_addr = format!("http://127.0.0.1:{profile_port}");
    let journey_addr = format!("http://127.0.0.1:{journey_port}");
    let env = [
        ("CX_DATABASE_URL", db.url.as_str()),
        ("CX_PROFILE_ENDPOINT", profile_addr.as_str()),
        ("CX_JOURNEY_ENDPOINT", journey_addr.as_str()),
        // Survey and segmentation are not run here.
        ("CX_NOT_DEPLOYED", "survey,segmentation,kpi"),
        ("CX_LOG", "error"),
    ];
    let profile_cx = CxProcess::serve(bin, "profile", profile_port, &env);
    let journey_cx = CxProcess::serve(bin, "journey", journey_port, &env);
    profile_cx.wait_serving().await;
    journey_cx.wait_serving().await;
    let tenant = cx_testkit::unique_tenant("crash");
    // Admin: the activity is read through the customer's data export.
    let token = cx_testkit::token(&tenant, Role::Admin);
    let profiles_channel = lazy(&profile_addr);
    let mut customers = Vec::new();
    for _ in 0..CUSTOMERS {
        customers.push(customer(&profiles_channel, &token).await?);
    }
    let chunks: Vec<Vec<journey::Touchpoint>> = (0..touchpoints.div_ceil(CHUNK))
        .map(|c| {
            (c * CHUNK..((c + 1) * CHUNK).min(touchpoints))
                .map(|i| touchpoint(&format!("crash-{i}"), &customers[i % CUSTOMERS]))
                .collect()
        })
        .collect();

    let mut row = Row::new("kill -9 of journey, then profile, during streamed ingest", "PostgreSQL");
    let mut outcomes = Outcomes::default();
    let mut rng = StdRng::seed_from_u64(13);
    let journey_channel = lazy(&journey_addr);
    let mut open: Option<Open> = None;
    let (mut killing, mut journey_cx, mut profile_cx): (Option<JoinHandle<CxProcess>>, _, _) =
        (None, Some(journey_cx), Some(profile_cx));
    let (mut replays, mut replayed_accepted, mut item_errors) = (0u64, 0i64, 0u64);
    for (index, chunk) in chunks.iter().enumerate() {
        // Kill while this chunk is in flight.
        if index == chunks.len() / 3 {
            killing = journey_cx.take().map(|p| kill_soon(p, &mut rng));
        } else if index == 2 * chunks.len() / 3 {
            journey_cx = Some(back(killing.take()).await?);
            killing = profile_cx.take().map(|p| kill_soon(p, &mut rng));
        }
        let answer = deliver(&journey_channel, &token, &mut open, chunk, &mut outcomes).await?;
        item_errors += answer.errors.len() as u64;
        if rng.random_bool(0.1) {
            // A client that lost the acknowledgement sends an old chunk again.
            let old = &chunks[rng.random_range(0..=index)];
            let again = deliver(&journey_channel, &token, &mut open, old, &mut outcomes).await?;
            replays += 1;
            replayed_accepted += i64::from(again.accepted);
        }
    }
    let profile_cx = match profile_cx {
        Some(p) => p,
        None => back(killing.take()).await?,
    };

    // What journey holds, and how long profile takes to count the same.
    let mut stored = Vec::new();
    for id in &customers {
        stored.extend(timeline(&journey_channel, &token, id).await?);
    }
    let sent: Vec<String> = chunks.iter().flatten().map(|t| t.id.clone()).collect();
    let (lost, doubled) = lost_and_doubled(&sent, &stored);
    let started = Instant::now();
    let mut counted = 0;
    // Bounded: 60 s for the outboxes to drain.
    while started.elapsed() < Duration::from_secs(60) {
        counted = 0;
        for id in &customers {
            counted += activity(&profiles_channel, &token, id).await.unwrap_or(0);
        }
        if counted == stored.len() as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let converged = counted == stored.len() as i64;
    row.attempts = outcomes.total();
    row.outcomes = outcomes;
    row.lost = lost;
    row.doubled = doubled;
    // A replayed chunk must come back all duplicates: "accepted" again would
    // say it was stored twice, whatever the timeline shows.
    row.unexpected = item_errors + u64::from(!converged) + replayed_accepted.max(0) as u64;
    row.note = format!(
        "{touchpoints} touchpoints in chunks of {CHUNK}, {replays} chunks replayed; activity {} ({counted} of {} counted)",
        if converged {
            format!("converged {:.1} s after the last chunk", started.elapsed().as_secs_f64())
        } else {
            "did not converge in 60 s".into()
        },
        stored.len(),
    );
    drop((journey_cx, profile_cx));
    Ok(row)
}

fn lazy(addr: &str) -> Channel {
    Endpoint::from_shared(addr.to_owned())
        .expect("a loopback address")
        .connect_timeout(Duration::from_secs(1))
        .connect_lazy()
}

/// Kills `process` a few milliseconds from now (mid-chunk), then starts it
/// again on the same port.
fn kill_soon(mut process: CxProcess, rng: &mut StdRng) -> JoinHandle<CxProcess> {
    let delay = Duration::from_millis(rng.random_range(1..20));
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        process.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        process.restart();
        process.wait_serving().await;
        process
    })
}

async fn back(killing: Option<JoinHandle<CxProcess>>) -> anyhow::Result<CxProcess> {
    Ok(killing.ok_or_else(|| anyhow::anyhow!("no process was being killed"))?.await?)
}

/// Sends `chunk` until it is acknowledged, opening a new stream whenever
/// the old one failed. Bounded: 300 attempts, 100 ms apart.
async fn deliver(
    channel: &Channel,
    token: &str,
    open: &mut Option<Open>,
    chunk: &[journey::Touchpoint],
    outcomes: &mut Outcomes,
) -> anyhow::Result<journey::StreamTouchpointsResponse> {
    for _ in 0..300 {
        if open.is_none() {
            let (sender, receiver) = mpsc::channel(1);
            let request = authed(ReceiverStream::new(receiver), token);
            match JourneyServiceClient::new(channel.clone()).stream_touchpoints(request).await {
                Ok(response) => *open = Some((sender, response.into_inner())),
                Err(status) => {
                    outcomes.add(&crate::grpc::outcome_of(&status));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let Some((sender, answers)) = open.as_mut() else { continue };
        let request = journey::StreamTouchpointsRequest { touchpoints: chunk.to_vec() };
        let answer = if sender.send(request).await.is_ok() {
            tokio::time::timeout(Duration::from_secs(10), answers.message()).await
        } else {
            Ok(Ok(None))
        };
        match answer {
            Ok(Ok(Some(answer))) => {
                outcomes.add("OK");
                return Ok(answer);
            }
            Ok(Err(status)) => outcomes.add(&crate::grpc::outcome_of(&status)),
            Ok(Ok(None)) => outcomes.add("transport"),
            Err(_) => outcomes.add("timed out"),
        }
        *open = None;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("a chunk was not acknowledged in 300 attempts")
}
