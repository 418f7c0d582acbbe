//! `cx-sweep`: times one lifecycle sweep of the profile store, as the
//! background job runs it. Run by bench/sweep.sh on prepared data.

use std::time::Instant;

use clap::Parser;
use cx_runtime::config::StoreArgs;

#[derive(Debug, Parser)]
#[command(about = "time one lifecycle sweep of the profile store")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = cx_runtime::store::open(&args.store, cx_profile::NAME).await?;
    cx_runtime::store::migrate::<cx_profile::store::migration::Migrator>(&db, cx_profile::NAME).await?;
    let store = cx_profile::store::ProfileStore::new(db);
    let started = Instant::now();
    let swept = store.sweep(chrono::Utc::now().date_naive()).await?;
    let customers: usize = swept.iter().map(|(_, ids)| ids.len()).sum();
    let seconds = started.elapsed().as_secs_f64();
    println!("sweep refreshed {customers} customers in {seconds:.2} s ({:.0} customers/s)", customers as f64 / seconds);
    Ok(())
}
