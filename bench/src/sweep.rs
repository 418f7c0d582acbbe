//! `cx-sweep`: times one lifecycle sweep of the profile store, as the
//! background job runs it; with `--model-change`, times instead what a
//! change of a tenant's intensity model costs. Run by bench/sweep.sh on
//! prepared data.

use std::time::Instant;

use clap::Parser;
use cx_profile::domain::intensity::{Category, IntensityModel};
use cx_profile::store::{ListFilter, ProfileStore};
use cx_runtime::TenantId;
use cx_runtime::config::StoreArgs;

#[derive(Debug, Parser)]
#[command(about = "time one lifecycle sweep of the profile store")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// Change the intensity model of this tenant and time the change, the
    /// distribution and a filtered page under it, instead of sweeping.
    #[arg(long)]
    model_change: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = cx_runtime::store::open(&args.store, cx_profile::NAME).await?;
    cx_runtime::store::migrate::<cx_profile::store::migration::Migrator>(&db, cx_profile::NAME).await?;
    let store = ProfileStore::new(db);
    if let Some(tenant) = args.model_change {
        let t = TenantId::parse(&tenant).map_err(anyhow::Error::msg)?;
        return model_change(&store, &t).await;
    }
    let started = Instant::now();
    let swept = store.sweep(chrono::Utc::now().date_naive()).await?;
    let customers: usize = swept.iter().map(|(_, ids)| ids.len()).sum();
    let seconds = started.elapsed().as_secs_f64();
    println!("sweep refreshed {customers} customers in {seconds:.2} s ({:.0} customers/s)", customers as f64 / seconds);
    Ok(())
}

async fn model_change(store: &ProfileStore, t: &TenantId) -> anyhow::Result<()> {
    let ms = |started: Instant| started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let before = store.intensity_distribution(t).await?;
    println!("distribution under the current model: {:.0} ms {before:?}", ms(started));
    let share_only = IntensityModel::default().with_weights([1.0, 0.0, 0.0, 0.0]);
    let started = Instant::now();
    store.set_intensity_model(t, &share_only).await?;
    println!("model changed in {:.1} ms", ms(started));
    let started = Instant::now();
    let after = store.intensity_distribution(t).await?;
    println!("distribution under the new model: {:.0} ms {after:?}", ms(started));
    let native = ListFilter { category: Some(Category::DigitalNative), ..Default::default() };
    let started = Instant::now();
    let (page, _) = store.list_filtered(t, None, 100, &native).await?;
    println!("first page of 100 digital_native profiles: {:.1} ms ({} listed)", ms(started), page.len());
    store.set_intensity_model(t, &IntensityModel::default()).await?;
    Ok(())
}
