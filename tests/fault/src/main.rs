//! `cx-fault`: runs the fault suite against a `cx` binary and writes the
//! figures to docs/RELIABILITY.md. `scripts/fault.sh` builds the release
//! binary and runs it.

use std::path::PathBuf;

use clap::Parser;
use cx_fault::scenarios::{Scale, auth, bad_input, crash, flood, forged, memory, postgres, replicas, sigterm};
use cx_fault::server::{Backend, Server};

#[derive(Debug, Parser)]
struct Args {
    /// The `cx` binary under test.
    #[arg(long, default_value = "target/release/cx")]
    cx: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "docs/RELIABILITY.md")]
    out: PathBuf,
    /// The command that produced the report, as it is recorded there.
    #[arg(long, default_value = "scripts/fault.sh")]
    command: String,
    /// The CI subset's sizes (faster, smaller requests).
    #[arg(long)]
    fast: bool,
    /// Only these scenarios (auth, input, crash, redis, postgres, sigterm,
    /// flood, memory); all when none is given. The report then holds their
    /// rows only.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

impl Args {
    fn runs(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = if args.fast { Scale::FAST } else { Scale::FULL };
    let bin = args.cx.as_path();
    let mut rows = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if !(args.runs("auth") || args.runs("input")) {
            break;
        }
        let server = Server::start(bin, backend, &[]).await?;
        if args.runs("auth") {
            rows.extend(auth::run(&server, cx_testkit::SECRET).await?);
            rows.extend(forged::run(&server).await?);
        }
        if args.runs("input") {
            rows.extend(bad_input::run(&server, scale.input).await?);
        }
        eprintln!("{}: auth, forgeries and bad input done", backend.name());
    }
    if args.runs("crash") {
        rows.push(crash::run(bin, scale.touchpoints).await?);
    }
    if args.runs("redis") {
        rows.extend(replicas::run(bin).await?);
    }
    if args.runs("postgres") {
        rows.push(postgres::run(bin, scale.outage).await?);
    }
    if args.runs("sigterm") {
        rows.push(sigterm::run(bin).await?);
    }
    if args.runs("flood") {
        rows.push(flood::run(bin, scale.connections).await?);
    }
    if args.runs("memory") {
        rows.extend(memory::run(bin, scale.request_mb).await?);
    }
    let report = cx_fault::report::document(&rows, &args.command);
    std::fs::write(&args.out, report)?;
    println!("{}", cx_fault::report::table(&rows));
    let failed = rows.iter().filter(|r| !r.holds()).count();
    println!("{} rows hold, {failed} do not", rows.len() - failed);
    Ok(())
}
