//! `cx-segment`: times the segmentation service's heavy calls for
//! `bench/segmentation.sh` and measures fact freshness for
//! `bench/segmentation-freshness.sh`. Loopback targets only; every loop is
//! bounded. Prints one line per measurement.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use hdrhistogram::Histogram;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Parser)]
#[command(about = "segmentation benchmarks' client (loopback targets only)")]
struct Args {
    /// The segmentation service, e.g. http://127.0.0.1:50054.
    #[arg(long)]
    target: String,
    #[arg(long, env = "CX_TOKEN")]
    token: String,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Saves a segment (refreshed weekly: the schedule leaves it alone) and prints its id.
    Create {
        #[arg(long)]
        rule: String,
    },
    /// RefreshSegment `--times` times: each call's time and what it did.
    Refresh {
        #[arg(long)]
        segment: String,
        #[arg(long, default_value_t = 3)]
        times: usize,
    },
    /// EvaluateSegment (count and a first page) `--times` times.
    Evaluate {
        #[arg(long)]
        segment: String,
        #[arg(long, default_value_t = 3)]
        times: usize,
    },
    /// ExportSegment by email, read to the end `--times` times.
    Export {
        #[arg(long)]
        segment: String,
        #[arg(long, default_value_t = 10_000)]
        page_size: i32,
        #[arg(long, default_value_t = 3)]
        times: usize,
    },
    /// Freshness: a consent set in profile, and a purchase recorded in
    /// journey, until an evaluation shows each; `--rounds` of each.
    Freshness {
        #[arg(long)]
        profile: String,
        #[arg(long)]
        journey: String,
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
}

fn check_loopback(target: &str) -> anyhow::Result<()> {
    let host = target.split("://").nth(1).unwrap_or(target).split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") {
        bail!("targets must be loopback addresses, not {host}");
    }
    Ok(())
}

async fn connect(target: &str) -> anyhow::Result<Channel> {
    check_loopback(target)?;
    Ok(Endpoint::from_shared(target.to_owned())?.connect().await?)
}

struct Client {
    token: MetadataValue<tonic::metadata::Ascii>,
    segments: SegmentationServiceClient<Channel>,
}

impl Client {
    fn authed<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.token.clone());
        request
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut client = Client {
        token: format!("Bearer {}", args.token).parse()?,
        segments: SegmentationServiceClient::new(connect(&args.target).await?).max_decoding_message_size(64 << 20),
    };
    match args.what {
        What::Create { rule } => {
            let segment = pb::Segment {
                name: format!("bench {}", std::process::id()),
                rule,
                refresh_interval: Some(prost_types::Duration { seconds: 7 * 24 * 3600, nanos: 0 }),
                ..Default::default()
            };
            let request = client.authed(pb::CreateSegmentRequest { segment: Some(segment) });
            let created = client.segments.create_segment(request).await?.into_inner();
            println!("{}", created.segment.context("no segment")?.id);
        }
        What::Refresh { segment, times } => {
            for _ in 0..times {
                let started = Instant::now();
                let request = client.authed(pb::RefreshSegmentRequest { segment_id: segment.clone() });
                let r = client.segments.refresh_segment(request).await?.into_inner();
                println!(
                    "RefreshSegment {:.1} ms: entered {}, left {}, members {}",
                    ms(started.elapsed()),
                    r.entered,
                    r.left,
                    r.member_count
                );
            }
        }
        What::Evaluate { segment, times } => {
            for _ in 0..times {
                let started = Instant::now();
                let request = pb::EvaluateSegmentRequest {
                    target: Some(pb::evaluate_segment_request::Target::SegmentId(segment.clone())),
                    ..Default::default()
                };
                let r = client.segments.evaluate_segment(client.authed(request)).await?.into_inner();
                println!("EvaluateSegment {:.1} ms: count {}", ms(started.elapsed()), r.count);
            }
        }
        What::Export { segment, page_size, times } => {
            for _ in 0..times {
                export(&mut client, &segment, page_size).await?;
            }
        }
        What::Freshness { profile, journey, rounds } => {
            freshness(&mut client, &profile, &journey, rounds).await?;
        }
    }
    Ok(())
}

async fn export(client: &mut Client, segment: &str, page_size: i32) -> anyhow::Result<()> {
    let started = Instant::now();
    let request = pb::ExportSegmentRequest {
        segment_id: segment.to_owned(),
        channel: pb::CampaignChannel::Email as i32,
        page_size,
        ..Default::default()
    };
    let mut stream = client.segments.export_segment(client.authed(request)).await?.into_inner();
    let (mut rows, mut summary) = (0u64, None);
    while let Some(response) = stream.message().await? {
        rows += response.members.iter().map(|m| m.contacts.len() as u64).sum::<u64>();
        summary = response.summary.or(summary);
    }
    let elapsed = started.elapsed();
    let s = summary.context("the export ended without its summary")?;
    println!(
        "ExportSegment {:.1} ms: {rows} contact rows ({:.0} rows/s); exported {}, no consent {}, no identity {}, erased {}, merged {}",
        ms(elapsed),
        rows as f64 / elapsed.as_secs_f64(),
        s.exported,
        s.no_consent,
        s.no_identity,
        s.erased,
        s.merged
    );
    Ok(())
}

/// How long until `holds` is true of an evaluation of `rule`: polled every
/// 10 ms for at most `limit`; `None` when it was not by then.
async fn until(
    client: &mut Client,
    rule: &str,
    limit: Duration,
    holds: impl Fn(i64) -> bool,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let request = pb::EvaluateSegmentRequest {
            target: Some(pb::evaluate_segment_request::Target::Rule(rule.to_owned())),
            ..Default::default()
        };
        let count = client.segments.evaluate_segment(client.authed(request)).await?.into_inner().count;
        if holds(count) {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(None)
}

/// A round's figure: the time `rule` took to hold, or, past 30 s, 30 s
/// counted as a timeout, after waiting (up to 5 minutes, untimed) for it to
/// hold so that the next round starts from a settled state.
async fn timed(
    client: &mut Client,
    rule: &str,
    started: Instant,
    timeouts: &mut u64,
    holds: impl Fn(i64) -> bool + Copy,
) -> anyhow::Result<u64> {
    const LIMIT: Duration = Duration::from_secs(30);
    if until(client, rule, LIMIT, holds).await?.is_some() {
        return Ok(started.elapsed().as_micros() as u64);
    }
    *timeouts += 1;
    if until(client, rule, Duration::from_secs(300), holds).await?.is_none() {
        bail!("{rule}: not reflected within 5 minutes");
    }
    Ok(LIMIT.as_micros() as u64)
}

async fn freshness(
    client: &mut Client,
    profile_target: &str,
    journey_target: &str,
    rounds: usize,
) -> anyhow::Result<()> {
    let mut profiles = ProfileServiceClient::new(connect(profile_target).await?);
    let mut journeys = JourneyServiceClient::new(connect(journey_target).await?);
    // The probe customer: her own email makes her one of a kind.
    let resolve = profile::ResolveProfileRequest {
        identity: Some(profile::Identity {
            kind: profile::IdentityKind::Email as i32,
            value: format!("probe-{}@example.com", std::process::id()),
        }),
        create_if_missing: true,
    };
    let id = profiles.resolve_profile(client.authed(resolve)).await?.into_inner().profile.context("no profile")?.id;
    let mut consent = Histogram::<u64>::new(3)?;
    let mut purchase = Histogram::<u64>::new(3)?;
    let mut timeouts = [0u64; 2];
    for round in 0..rounds {
        let granted = round % 2 == 0;
        let request = profile::SetConsentRequest {
            profile_id: id.clone(),
            purpose: Some(profile::Purpose {
                kind: Some(profile::purpose::Kind::Standard(profile::ConsentPurpose::Sms as i32)),
            }),
            granted,
            actor: "bench".into(),
            ..Default::default()
        };
        let started = Instant::now();
        profiles.set_consent(client.authed(request)).await?;
        // Only the probe customer holds the sms consent in this tenant.
        consent.record(timed(client, "consent.sms", started, &mut timeouts[0], |n| (n == 1) == granted).await?)?;

        // A purchase: her touchpoints in 90 days grow by one.
        let touch = journey::Touchpoint {
            id: format!("probe-{}-{round}", std::process::id()),
            customer: Some(journey::touchpoint::Customer::ProfileId(id.clone())),
            channel: cx_proto::common::v1::Channel::Store as i32,
            occur_time: Some(cx_proto::timestamp(chrono::Utc::now())),
            kind: cx_proto::common::v1::InteractionKind::Transactional as i32,
            initiator: cx_proto::common::v1::Initiator::Pull as i32,
            purchase_amount: Some(cx_proto::common::v1::Money { currency_code: "EUR".into(), units: 50, nanos: 0 }),
            ..Default::default()
        };
        let started = Instant::now();
        let request = journey::RecordTouchpointRequest { touchpoint: Some(touch) };
        journeys.record_touchpoint(client.authed(request)).await?;
        let expected = round as i64 + 1;
        let rule = format!("journey.touchpoints_90d >= {expected} AND journey.last_channel = \"store\"");
        purchase.record(timed(client, &rule, started, &mut timeouts[1], |n| n >= 1).await?)?;
    }
    for ((what, h), late) in [("consent change", &consent), ("purchase", &purchase)].into_iter().zip(timeouts) {
        println!(
            "freshness of a {what}: {} rounds, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; over 30 s (counted as 30 s): {late}",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
    }
    Ok(())
}
