//! `cx-fault`: runs the fault suite against a `cx` binary and writes the
//! figures to docs/RELIABILITY.md. `scripts/fault.sh` builds the release
//! binary and runs it.

use std::path::PathBuf;

use clap::Parser;
use cx_fault::scenarios::bad_input::Sizes;
use cx_fault::scenarios::{auth, bad_input, forged, replicas};
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sizes = if args.fast { Sizes::FAST } else { Sizes::FULL };
    let mut rows = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let server = Server::start(&args.cx, backend, &[]).await?;
        rows.extend(auth::run(&server, cx_testkit::SECRET).await?);
        rows.extend(forged::run(&server).await?);
        rows.extend(bad_input::run(&server, sizes).await?);
        eprintln!("{}: done", backend.name());
    }
    rows.extend(replicas::run(&args.cx).await?);
    let report = cx_fault::report::document(&rows, &args.command);
    std::fs::write(&args.out, report)?;
    println!("{}", cx_fault::report::table(&rows));
    let failed = rows.iter().filter(|r| !r.holds()).count();
    println!("{} passed, {failed} failed", rows.len() - failed);
    Ok(())
}
