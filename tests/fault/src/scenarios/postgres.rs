//! PostgreSQL restarted under load: a private cluster crashed (immediate
//! stop, recovery from the WAL) and started again while writers record
//! touchpoints. Every acknowledged write must be there afterwards; the
//! calls during the outage must say UNAVAILABLE; the row gives the time from
//! the database's return to the first acknowledged write.

use std::path::Path;
use std::time::{Duration, Instant};

use cx_runtime::auth::Role;
use cx_testkit::process::{CxProcess, free_port};
use tonic::transport::Channel;

use crate::Row;
use crate::backing::PrivatePostgres;
use crate::data::{customer, lost_and_doubled, timeline};
use crate::load::Load;

pub async fn run(bin: &Path, outage: Duration) -> anyhow::Result<Row> {
    let pg = PrivatePostgres::start().await?;
    let url = pg.url();
    let server = CxProcess::serve(bin, "all", free_port(), &[("CX_DATABASE_URL", url.as_str()), ("CX_LOG", "error")]);
    server.wait_serving().await;
    let tenant = cx_testkit::unique_tenant("pg-restart");
    let token = cx_testkit::token(&tenant, Role::Writer);
    let channel = Channel::from_shared(server.addr.clone())?.connect().await?;
    let id = customer(&channel, &token).await?;

    let load = Load::start(&server.addr, &token, &id, "pg", 4, 100_000);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    pg.crash()?;
    tokio::time::sleep(outage).await;
    pg.restart()?;
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = load.stop().await;

    let stored = timeline(&channel, &token, &id).await?;
    let (lost, doubled) = lost_and_doubled(calls.acknowledged(), &stored);
    let mut row = Row::new("PostgreSQL crashed and restarted under load", "PostgreSQL");
    row.outcomes = calls.outcomes();
    row.attempts = row.outcomes.total();
    row.lost = lost;
    row.doubled = doubled;
    row.unexpected = row.outcomes.other_than(&["OK", "UNAVAILABLE"]).values().sum();
    let recovery = calls.first_ok_after(back).map(|at| at.duration_since(back));
    row.unexpected += u64::from(recovery.is_none());
    row.note = format!(
        "4 writers; database down {:.1} s; OK or UNAVAILABLE; first write acknowledged {} after it came back",
        outage.as_secs_f64(),
        recovery.map_or("never".into(), |r| format!("{} ms", r.as_millis()))
    );
    drop(server);
    Ok(row)
}
