//! SIGTERM under load with an idle stream open: the process must stop
//! promptly (an idle stream does not hold it for the whole grace period),
//! every write it acknowledged must be there when it starts again, and
//! nothing in flight may end as a server failure.

use std::path::Path;
use std::time::{Duration, Instant};

use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_runtime::auth::Role;
use cx_testkit::authed;
use tokio_stream::wrappers::ReceiverStream;

use crate::Row;
use crate::data::{customer, lost_and_doubled, timeline};
use crate::load::Load;
use crate::server::{Backend, Server};

/// The default grace period (CX_SHUTDOWN_GRACE).
const GRACE: Duration = Duration::from_secs(20);
/// What "promptly" means: the in-flight calls drain in well under this.
const PROMPT: Duration = Duration::from_secs(5);

pub async fn run(bin: &Path) -> anyhow::Result<Row> {
    let mut server = Server::start(bin, Backend::Sqlite, &[]).await?;
    let tenant = cx_testkit::unique_tenant("sigterm");
    let token = cx_testkit::token(&tenant, Role::Writer);
    let channel = server.channel().await?;
    let id = customer(&channel, &token).await?;

    // A client that opened a stream and sends nothing.
    let (idle_sender, receiver) = tokio::sync::mpsc::channel::<journey::StreamTouchpointsRequest>(1);
    let mut idle = JourneyServiceClient::new(channel.clone())
        .stream_touchpoints(authed(ReceiverStream::new(receiver), &token))
        .await?
        .into_inner();
    let load = Load::start(&server.process.addr, &token, &id, "term", 4, 100_000);
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.process.signal("TERM");
    let sent = Instant::now();
    let mut exited = None;
    // Bounded: the grace period and 5 s more.
    while sent.elapsed() < GRACE + Duration::from_secs(5) {
        if server.process.try_wait().is_some() {
            exited = Some(sent.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let idle_end = match tokio::time::timeout(Duration::from_secs(1), idle.message()).await {
        Ok(Ok(None)) => "ended".to_owned(),
        Ok(Ok(Some(_))) => "answered".to_owned(),
        Ok(Err(status)) => crate::grpc::outcome_of(&status),
        Err(_) => "still open".to_owned(),
    };
    drop(idle_sender);
    let calls = load.stop().await;

    server.process.restart();
    server.process.wait_serving().await;
    let channel = server.channel().await?;
    let stored = timeline(&channel, &token, &id).await?;
    let (lost, doubled) = lost_and_doubled(calls.acknowledged(), &stored);
    let mut row = Row::new("SIGTERM under load with an idle stream open", Backend::Sqlite.name());
    row.outcomes = calls.outcomes();
    row.attempts = row.outcomes.total();
    row.lost = lost;
    row.doubled = doubled;
    // Refused once draining (UNAVAILABLE) or not connected at all once gone.
    row.unexpected = row.outcomes.other_than(&["OK", "UNAVAILABLE", "transport"]).values().sum::<u64>()
        + u64::from(exited.is_none_or(|e| e > PROMPT));
    row.note = format!(
        "4 writers; exited {} after SIGTERM (grace {} s, prompt is under {} s); the idle stream: {idle_end}",
        exited.map_or("not at all".into(), |e| format!("{} ms", e.as_millis())),
        GRACE.as_secs(),
        PROMPT.as_secs()
    );
    Ok(row)
}
