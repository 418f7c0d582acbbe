//! Peak memory per request size: a fresh server takes one request of N MB
//! — a batch of empty touchpoints, or one touchpoint whose id is N MB — and
//! its peak resident memory (VmHWM) must grow by at most 4 × N plus a
//! constant, and the answer must be a clean refusal or success.

use std::path::Path;

use cx_runtime::auth::Role;
use prost::Message as _;

use super::NEVER_FOR_BAD_INPUT;
use crate::grpc::call;
use crate::procfs::peak_rss;
use crate::server::{Backend, Server};
use crate::{Outcomes, Row};

const MB: usize = 1024 * 1024;
/// What any request may cost beyond 4 × its size: buffers, a connection, a task.
const CONSTANT: u64 = 32 * MB as u64;
const INGEST: &str = "/cx.journey.v1.JourneyService/IngestTouchpoints";

/// The request shapes, by name, for `mb` megabytes.
fn shapes(mb: usize) -> Vec<(&'static str, Vec<u8>)> {
    // An empty touchpoint is 2 bytes on the wire (tag, zero length).
    let empties = cx_proto::journey::v1::IngestTouchpointsRequest {
        touchpoints: vec![Default::default(); mb * MB / 2],
        all_or_nothing: false,
    };
    let long_id = cx_proto::journey::v1::IngestTouchpointsRequest {
        touchpoints: vec![cx_proto::journey::v1::Touchpoint { id: "x".repeat(mb * MB), ..Default::default() }],
        all_or_nothing: false,
    };
    vec![("empty touchpoints", empties.encode_to_vec()), ("one touchpoint with a huge id", long_id.encode_to_vec())]
}

pub async fn run(bin: &Path, sizes_mb: &[usize]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &mb in sizes_mb {
        for (shape, payload) in shapes(mb) {
            // A fresh process each time: the peak only ever rises.
            let server = Server::start(bin, Backend::Sqlite, &[]).await?;
            let channel = server.channel().await?;
            let pid = server.process.pid();
            let header = format!("Bearer {}", cx_testkit::token(&cx_testkit::unique_tenant("rss"), Role::Writer));
            let before = peak_rss(pid).unwrap_or_default();
            let size = payload.len() as u64;
            let answer = call(&channel, INGEST, payload, Some(&header), false).await;
            let after = peak_rss(pid).unwrap_or_default();
            let grown = after.saturating_sub(before);
            let mut outcomes = Outcomes::default();
            outcomes.add(&answer.outcome());
            let mut row = Row::new(format!("peak memory, {mb} MB of {shape}"), Backend::Sqlite.name());
            row.attempts = 1;
            row.unexpected = u64::from(grown > 4 * size + CONSTANT)
                + u64::from(answer.bytes.len() > 4 * MB)
                + NEVER_FOR_BAD_INPUT.iter().map(|code| outcomes.count(code)).sum::<u64>();
            row.outcomes = outcomes;
            row.note = format!(
                "peak RSS +{:.1} MB = {:.1} × the request (at most 4 × + {} MB); answer {} bytes",
                grown as f64 / MB as f64,
                grown as f64 / size as f64,
                CONSTANT / MB as u64,
                answer.bytes.len()
            );
            rows.push(row);
        }
    }
    Ok(rows)
}
