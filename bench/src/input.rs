//! `cx-input`: one hostile or heavy request against a running journey
//! service, and the server's peak resident memory for it (VmHWM, read from
//! /proc of the server's pid), as a multiple of the request's size.
//! `bench/input.sh` starts a fresh server for each case. Loopback only.

use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Case {
    /// 8 MB of empty touchpoints: 4,000,000 items (refused by count).
    EmptyItems8mb,
    /// 100,000 empty touchpoints (all refused, one by one).
    Empty100k,
    /// 100,000 valid touchpoints of one customer (all stored).
    Valid100k,
    /// One touchpoint with 8 MB of empty attributes (refused by estimate).
    Attributes8mb,
    /// One touchpoint whose id is 15 MB (refused, id echoed clipped).
    LongId15mb,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    #[arg(long)]
    token: String,
    /// Pid of the server process whose memory is read.
    #[arg(long)]
    pid: u32,
    #[arg(long, value_enum)]
    case: Case,
}

fn body(case: Case, profile_id: &str) -> Vec<u8> {
    use cx_proto::journey::v1::{IngestTouchpointsRequest, Touchpoint, touchpoint::Customer};
    let items = |n: usize| std::iter::repeat_n([0x0a_u8, 0x00], n).flatten().collect::<Vec<u8>>();
    let one = |touchpoint: Vec<u8>| {
        let mut out = vec![0x0a];
        prost::encoding::encode_varint(touchpoint.len() as u64, &mut out);
        out.extend_from_slice(&touchpoint);
        out
    };
    match case {
        Case::EmptyItems8mb => items(4_000_000),
        Case::Empty100k => items(100_000),
        Case::Valid100k => {
            let now = chrono::Utc::now() - chrono::Duration::minutes(1);
            let touchpoints = (0..100_000)
                .map(|i| Touchpoint {
                    id: format!("rss-{i}"),
                    customer: Some(Customer::ProfileId(profile_id.to_owned())),
                    channel: 1,
                    occur_time: Some(cx_proto::timestamp(now)),
                    kind: 1,
                    initiator: 1,
                    ..Default::default()
                })
                .collect();
            IngestTouchpointsRequest { touchpoints, all_or_nothing: false }.encode_to_vec()
        }
        // Touchpoint.attributes is field 15: an empty entry is 0x7a 0x00.
        Case::Attributes8mb => one(std::iter::repeat_n([0x7a_u8, 0x00], 4_000_000).flatten().collect()),
        Case::LongId15mb => {
            let id = vec![b'x'; 15_000_000];
            let mut tp = vec![0x0a];
            prost::encoding::encode_varint(id.len() as u64, &mut tp);
            tp.extend_from_slice(&id);
            one(tp)
        }
    }
}

async fn customer(channel: tonic::transport::Channel, token: &str) -> anyhow::Result<String> {
    use cx_proto::profile::v1::{Identity, IdentityKind, ResolveProfileRequest};
    let identity = Identity { kind: IdentityKind::Email as i32, value: "rss@example.com".into() };
    let mut request = tonic::Request::new(ResolveProfileRequest { identity: Some(identity), create_if_missing: true });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
    let mut client = cx_proto::profile::v1::profile_service_client::ProfileServiceClient::new(channel);
    let profile = client.resolve_profile(request).await?.into_inner().profile.context("no profile")?;
    Ok(profile.id)
}

/// VmHWM and VmRSS of `pid`, in KiB.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("server process")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.target.starts_with("http://127.0.0.1:") && !args.target.starts_with("http://localhost:") {
        bail!("loopback targets only");
    }
    let channel = tonic::transport::Endpoint::from_shared(args.target.clone())?.connect().await?;
    // Valid touchpoints need a customer: resolved on the same port (`cx serve all`).
    let profile_id = match args.case {
        Case::Valid100k => customer(channel.clone(), &args.token).await?,
        _ => String::new(),
    };
    let request = body(args.case, &profile_id);
    let (before, _) = memory(args.pid)?;
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    grpc.ready().await?;
    let mut call = tonic::Request::new(request.clone());
    call.metadata_mut().insert("authorization", format!("Bearer {}", args.token).parse()?);
    let path = http::uri::PathAndQuery::from_static("/cx.journey.v1.JourneyService/IngestTouchpoints");
    let started = Instant::now();
    let answer = grpc.unary(call, path, Raw).await;
    let elapsed = started.elapsed();
    let (peak, rss) = memory(args.pid)?;
    let (code, answer_bytes, summary) = match answer {
        Ok(reply) => {
            let bytes = reply.into_inner();
            let decoded = cx_proto::journey::v1::IngestTouchpointsResponse::decode(bytes.as_slice())?;
            let summary = format!(
                "accepted {} refused {} errors listed {}",
                decoded.accepted,
                decoded.refused,
                decoded.errors.len()
            );
            ("OK".to_owned(), bytes.len(), summary)
        }
        Err(status) => (format!("{:?}", status.code()), 0, status.message().chars().take(100).collect()),
    };
    let mb = request.len() as f64 / 1e6;
    let grown_mb = (peak.saturating_sub(before)) as f64 * 1024.0 / 1e6;
    println!(
        "{:?}: request {mb:.2} MB, {code} in {:.2} s, answer {answer_bytes} bytes ({summary}); \
         VmHWM {:.1} MB before, {:.1} MB after (+{grown_mb:.1} MB, {:.2}x the request); VmRSS after {:.1} MB",
        args.case,
        elapsed.as_secs_f64(),
        before as f64 * 1024.0 / 1e6,
        peak as f64 * 1024.0 / 1e6,
        grown_mb / mb,
        rss as f64 * 1024.0 / 1e6,
    );
    Ok(())
}

/// Sends and receives bytes as they are.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = bytes::Buf::remaining(buf);
        Ok(Some(bytes::Buf::copy_to_bytes(buf, n).to_vec()))
    }
}
