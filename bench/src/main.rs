//! `cx-load`: a closed-loop gRPC load generator for loopback benchmarks.
//!
//! N connections, C calls in flight spread over them, each worker calling
//! again as soon as its call returns, for a fixed duration after a warm-up.
//! Latencies go into an HDR histogram; failed calls are counted apart.
//! Every loop is bounded by the deadline and stops by itself.

mod kpi;
mod survey;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use cx_proto::common::v1::Channel as Ch;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::kpi::v1::kpi_service_client::KpiServiceClient;
use cx_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use cx_proto::survey::v1::survey_service_client::SurveyServiceClient;
use hdrhistogram::Histogram;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Call {
    /// grpc.health.v1.Health/Check: the bare tonic baseline in the same server stack.
    Health,
    /// cx.profile.v1.ProfileService/GetProfile: a cache hit after the first call.
    GetProfile,
    /// cx.profile.v1.ProfileService/RecordActivity: batches of one-touchpoint records.
    RecordActivity,
    /// cx.journey.v1.JourneyService/IngestTouchpoints: batches of new touchpoints
    /// of known profiles (identities already resolved).
    IngestTouchpoints,
    /// cx.journey.v1.JourneyService/RecordTouchpoint: one new touchpoint a call.
    RecordTouchpoint,
    /// cx.journey.v1.JourneyService/AnalyzeJourney of --map-id; the first
    /// call (cold) is timed apart.
    AnalyzeJourney,
    /// cx.survey.v1.SurveyService/SubmitResponse: one anonymous NPS answer
    /// a call, each with a new client id, to --survey-id (created if empty).
    SubmitResponse,
    /// cx.survey.v1.SurveyService/GetScoreAggregates of --survey-id (or all)
    /// over --start-day..=--end-day; the first call (cold) is timed apart
    /// and its NPS figures printed.
    ScoreAggregates,
    /// cx.kpi.v1.KpiService/GetDashboard of the default days (the 30
    /// ending yesterday); the first call (cold unless cached) is timed apart
    /// and its headline printed.
    Dashboard,
}

#[derive(Debug, Parser)]
#[command(about = "closed-loop gRPC load generator (loopback targets only)")]
struct Args {
    /// Target, e.g. http://127.0.0.1:50051 (loopback only).
    #[arg(long)]
    target: String,
    #[arg(long, value_enum)]
    call: Call,
    /// Separate HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Calls in flight in total, spread over the connections.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Bearer token (GetProfile).
    #[arg(long, env = "CX_TOKEN", default_value = "")]
    token: String,
    /// Profile to read; by default one is resolved (created) first.
    #[arg(long)]
    profile_id: Option<String>,
    /// Journey map to analyse; for touchpoint calls, the map their
    /// touchpoints belong to (its steps: discover, compare, order, delivery,
    /// after_sales).
    #[arg(long, default_value = "")]
    map_id: String,
    /// Survey answered or aggregated (survey calls).
    #[arg(long, default_value = "")]
    survey_id: String,
    /// First and last day of the aggregates, YYYY-MM-DD.
    #[arg(long, default_value = "1970-01-01")]
    start_day: String,
    #[arg(long, default_value = "2099-12-31")]
    end_day: String,
    /// IngestTouchpoints: create the benchmark's surveys and triggers in this
    /// survey service first, and grant the `survey` consent to every
    /// --consent-every-th customer (through the profile service).
    #[arg(long)]
    survey_target: Option<String>,
    #[arg(long, default_value_t = 2)]
    consent_every: usize,
    /// Health service name to check.
    #[arg(long, default_value = "")]
    service: String,
    /// Records per RecordActivity batch, touchpoints per IngestTouchpoints batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Profile service to create the customers in (journey calls), if not --target.
    #[arg(long)]
    profile_target: Option<String>,
    /// Customers the activity is spread over (created first).
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Print one JSON object instead of the one-line summary.
    #[arg(long)]
    json: bool,
    /// Send every call with this deadline (grpc-timeout): the server then
    /// commits in a transaction checked before COMMIT.
    #[arg(long, value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
    /// Calls per second in total, paced evenly over the workers; as fast as
    /// the server answers when absent.
    #[arg(long)]
    rate: Option<f64>,
}

/// `--deadline`, set once at start.
static DEADLINE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

#[derive(Debug)]
struct Outcome {
    latencies: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

fn check_loopback(target: &str) -> anyhow::Result<()> {
    let host = target.split("://").nth(1).unwrap_or(target).split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") {
        bail!("--target must be a loopback address, not {host}");
    }
    Ok(())
}

fn authed<T>(message: T, token: &MetadataValue<tonic::metadata::Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", token.clone());
    if let Some(deadline) = DEADLINE.get() {
        request.set_timeout(*deadline);
    }
    request
}

/// What RecordActivity batches are made of.
#[derive(Clone, Debug, Default)]
struct ActivityLoad {
    customers: std::sync::Arc<Vec<String>>,
    batch: usize,
    /// Journey map (steps discover, compare, order, delivery, after_sales)
    /// the touchpoints belong to, so ingest keeps its analytics roll-ups.
    map_id: String,
    /// First and last day of score aggregates.
    days: (String, String),
}

/// The steps a map given to touchpoint calls must have.
const BENCH_STEPS: [&str; 5] = ["discover", "compare", "order", "delivery", "after_sales"];

static NEXT_BATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `n` touchpoints never sent before, spread over the customers and channels.
fn touchpoints(load: &ActivityLoad, n: usize) -> Vec<cx_proto::journey::v1::Touchpoint> {
    use cx_proto::common::v1::{Channel as Ch, Initiator, InteractionKind};
    use cx_proto::journey::v1::touchpoint::Customer;
    let batch = NEXT_BATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let channels = [Ch::Web, Ch::MobileApp, Ch::Email, Ch::Store, Ch::Phone, Ch::Chat];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    (0..n)
        .map(|i| {
            let k = (batch as usize).wrapping_mul(7919).wrapping_add(i.wrapping_mul(104_729));
            cx_proto::journey::v1::Touchpoint {
                id: format!("bench-{}-{batch}-{i}", std::process::id()),
                customer: Some(Customer::ProfileId(load.customers[k % load.customers.len()].clone())),
                channel: channels[k % channels.len()] as i32,
                occur_time: Some(prost_types::Timestamp { seconds: now - (k % 86_400) as i64, nanos: 0 }),
                kind: InteractionKind::Informative as i32,
                initiator: if k % 3 == 0 { Initiator::Push } else { Initiator::Pull } as i32,
                instance_id: format!("instance-{}", k % 50_000),
                map_id: load.map_id.clone(),
                step_key: if load.map_id.is_empty() { String::new() } else { BENCH_STEPS[k % 5].to_owned() },
                experience_score: Some((k % 11) as i32),
                ..Default::default()
            }
        })
        .collect()
}

fn activity_batch(load: &ActivityLoad) -> pb::RecordActivityRequest {
    use cx_proto::common::v1::{Channel as Ch, Initiator, InteractionKind};
    let n = NEXT_BATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let channels = [Ch::Web, Ch::MobileApp, Ch::Email, Ch::Store];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let records = (0..load.batch)
        .map(|i| {
            let k = (n as usize).wrapping_mul(7919).wrapping_add(i.wrapping_mul(104_729));
            pb::ActivityRecord {
                profile_id: load.customers[k % load.customers.len()].clone(),
                occur_time: Some(prost_types::Timestamp { seconds: now - 86_400 * (k % 30) as i64, nanos: 0 }),
                channel: channels[k % channels.len()] as i32,
                initiator: if k % 3 == 0 { Initiator::Push } else { Initiator::Pull } as i32,
                kind: InteractionKind::Informative as i32,
                touchpoints: 1,
                device_id: format!("device-{}", k % 3),
                ..Default::default()
            }
        })
        .collect();
    pb::RecordActivityRequest { batch_id: format!("bench-{}-{n}", std::process::id()), records }
}

async fn create_customers(
    channel: &Channel,
    token: &MetadataValue<tonic::metadata::Ascii>,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let identities = chunk
            .iter()
            .map(|i| pb::Identity { kind: pb::IdentityKind::Email as i32, value: format!("bench-{i}@example.com") })
            .collect();
        let request = authed(pb::BatchResolveProfilesRequest { identities, create_if_missing: true }, token);
        let response = ProfileServiceClient::new(channel.clone()).batch_resolve_profiles(request).await?;
        ids.extend(response.into_inner().resolutions.into_iter().map(|r| r.profile_id));
    }
    Ok(ids)
}

async fn one_call(
    call: Call,
    channel: &Channel,
    token: &MetadataValue<tonic::metadata::Ascii>,
    id: &str,
    service: &str,
    load: &ActivityLoad,
) -> Result<(), tonic::Status> {
    match call {
        Call::RecordActivity => {
            let request = authed(activity_batch(load), token);
            ProfileServiceClient::new(channel.clone()).record_activity(request).await?;
        }
        Call::IngestTouchpoints => {
            let request = cx_proto::journey::v1::IngestTouchpointsRequest {
                touchpoints: touchpoints(load, load.batch),
                all_or_nothing: false,
            };
            let reply = JourneyServiceClient::new(channel.clone()).ingest_touchpoints(authed(request, token)).await?;
            let reply = reply.into_inner();
            if reply.accepted as usize != load.batch {
                return Err(tonic::Status::internal(format!("accepted {} of {}", reply.accepted, load.batch)));
            }
        }
        Call::RecordTouchpoint => {
            let touchpoint = touchpoints(load, 1).pop();
            let request = cx_proto::journey::v1::RecordTouchpointRequest { touchpoint };
            JourneyServiceClient::new(channel.clone()).record_touchpoint(authed(request, token)).await?;
        }
        Call::AnalyzeJourney => {
            let request = cx_proto::journey::v1::AnalyzeJourneyRequest {
                map_id: id.to_owned(),
                time_range: None,
                instance_limit: 0,
            };
            JourneyServiceClient::new(channel.clone()).analyze_journey(authed(request, token)).await?;
        }
        Call::SubmitResponse => {
            let request = authed(survey::response(id), token);
            SurveyServiceClient::new(channel.clone()).submit_response(request).await?;
        }
        Call::ScoreAggregates => {
            let request = authed(survey::aggregates(id, &load.days.0, &load.days.1), token);
            SurveyServiceClient::new(channel.clone()).get_score_aggregates(request).await?;
        }
        Call::Dashboard => {
            KpiServiceClient::new(channel.clone()).get_dashboard(authed(kpi::dashboard(), token)).await?;
        }
        Call::Health => {
            HealthClient::new(channel.clone()).check(HealthCheckRequest { service: service.to_owned() }).await?;
        }
        Call::GetProfile => {
            let request = authed(pb::GetProfileRequest { id: id.to_owned(), as_of: None }, token);
            ProfileServiceClient::new(channel.clone()).get_profile(request).await?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    args_call: Call,
    channel: Channel,
    token: MetadataValue<tonic::metadata::Ascii>,
    id: String,
    service: String,
    load: ActivityLoad,
    measure_from: Instant,
    deadline: Instant,
    pace: Option<Duration>,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome { latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?, errors: BTreeMap::new() };
    let mut ticks = pace.map(|every| {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    while Instant::now() < deadline {
        if let Some(ticks) = ticks.as_mut() {
            ticks.tick().await;
        }
        let started = Instant::now();
        let result = one_call(args_call, &channel, &token, &id, &service, &load).await;
        if started < measure_from {
            continue;
        }
        match result {
            Ok(()) => outcome.latencies.record(started.elapsed().as_micros().max(1) as u64)?,
            Err(status) => *outcome.errors.entry(format!("{:?}", status.code())).or_default() += 1,
        }
    }
    Ok(outcome)
}

async fn resolve_profile(channel: &Channel, token: &MetadataValue<tonic::metadata::Ascii>) -> anyhow::Result<String> {
    let request = pb::ResolveProfileRequest {
        identity: Some(pb::Identity { kind: pb::IdentityKind::Email as i32, value: "bench@example.com".into() }),
        create_if_missing: true,
    };
    let response = ProfileServiceClient::new(channel.clone()).resolve_profile(authed(request, token)).await?;
    Ok(response.into_inner().profile.context("no profile in the response")?.id)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check_loopback(&args.target)?;
    if let Some(deadline) = args.deadline {
        let _ = DEADLINE.set(deadline);
    }
    if args.connections == 0 || args.concurrency < args.connections {
        bail!("--concurrency must be at least --connections, and both at least 1");
    }
    let token: MetadataValue<_> = format!("Bearer {}", args.token).parse().context("--token")?;
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        // One Endpoint per connection: tonic multiplexes calls of a channel on one HTTP/2 connection.
        channels.push(Endpoint::from_shared(args.target.clone())?.connect().await?);
    }
    let id = match (args.call, &args.profile_id) {
        (Call::GetProfile, None) => resolve_profile(&channels[0], &token).await?,
        (Call::AnalyzeJourney, _) => args.map_id.clone(),
        (Call::SubmitResponse, _) if args.survey_id.is_empty() => {
            let nps = cx_proto::survey::v1::SurveyType::Nps;
            let id = survey::create_survey(&channels[0], &token, "bench", nps, Ch::Web).await?;
            println!("survey: {id}");
            id
        }
        (Call::SubmitResponse | Call::ScoreAggregates, _) => args.survey_id.clone(),
        (_, id) => id.clone().unwrap_or_default(),
    };
    let days = (args.start_day.clone(), args.end_day.clone());
    match args.call {
        Call::AnalyzeJourney => {
            let started = Instant::now();
            one_call(args.call, &channels[0], &token, &id, &args.service, &ActivityLoad::default()).await?;
            println!("first (cold) call: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
        }
        Call::ScoreAggregates => {
            let started = Instant::now();
            let request = authed(survey::aggregates(&id, &days.0, &days.1), &token);
            let reply = SurveyServiceClient::new(channels[0].clone()).get_score_aggregates(request).await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            println!("first (cold) call: {ms:.1} ms; {}", survey::nps_line(reply.get_ref()));
        }
        Call::Dashboard => {
            let started = Instant::now();
            let reply =
                KpiServiceClient::new(channels[0].clone()).get_dashboard(authed(kpi::dashboard(), &token)).await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            println!("first call: {ms:.1} ms; {}", kpi::headline_line(reply.get_ref()));
        }
        _ => {}
    }

    let load = match args.call {
        Call::RecordActivity | Call::IngestTouchpoints | Call::RecordTouchpoint => {
            let profile = match &args.profile_target {
                Some(target) => {
                    check_loopback(target)?;
                    Endpoint::from_shared(target.clone())?.connect().await?
                }
                None => channels[0].clone(),
            };
            let customers = create_customers(&profile, &token, args.customers).await?;
            if let Some(target) = &args.survey_target {
                check_loopback(target)?;
                let surveys = Endpoint::from_shared(target.clone())?.connect().await?;
                survey::create_triggers(&surveys, &token).await?;
                let granted = survey::grant_consents(&profile, &token, &customers, args.consent_every).await?;
                println!("triggers created; survey consent granted to {granted} of {} customers", customers.len());
            }
            ActivityLoad {
                customers: std::sync::Arc::new(customers),
                batch: args.batch,
                map_id: args.map_id.clone(),
                days: days.clone(),
            }
        }
        _ => ActivityLoad { days: days.clone(), ..ActivityLoad::default() },
    };
    let start = Instant::now();
    let (measure_from, deadline) = (start + args.warmup, start + args.warmup + args.duration);
    let mut workers = Vec::with_capacity(args.concurrency);
    // Each worker's share of --rate.
    let pace = args.rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(args.concurrency as f64 / r));
    for i in 0..args.concurrency {
        let channel = channels[i % channels.len()].clone();
        workers.push(tokio::spawn(worker(
            args.call,
            channel,
            token.clone(),
            id.clone(),
            args.service.clone(),
            load.clone(),
            measure_from,
            deadline,
            pace,
        )));
    }
    let mut total = Outcome { latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?, errors: BTreeMap::new() };
    for w in workers {
        let outcome = w.await??;
        total.latencies.add(&outcome.latencies)?;
        for (code, n) in outcome.errors {
            *total.errors.entry(code).or_default() += n;
        }
    }

    let h = &total.latencies;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let seconds = args.duration.as_secs_f64();
    let throughput = h.len() as f64 / seconds;
    let errors: u64 = total.errors.values().sum();
    if matches!(args.call, Call::RecordActivity | Call::IngestTouchpoints) {
        println!("touchpoints/s: {:.0} ({} per batch)", throughput * args.batch as f64, args.batch);
    }
    if !args.json {
        println!(
            "{:?}: {} connections, {} in flight, {:.0} calls/s over {:.0} s; latency ms p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}; errors {}",
            args.call,
            args.connections,
            args.concurrency,
            throughput,
            seconds,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1000.0,
            errors
        );
        return Ok(());
    }
    let json = serde_json::json!({
        "call": format!("{:?}", args.call),
        "connections": args.connections,
        "concurrency": args.concurrency,
        "seconds": seconds,
        "calls": h.len(),
        "calls_per_second": throughput.round(),
        "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
        "max_ms": h.max() as f64 / 1000.0,
        "errors": total.errors,
    });
    println!("{json}");
    Ok(())
}
