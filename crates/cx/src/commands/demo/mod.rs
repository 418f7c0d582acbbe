//! `cx demo`: a seeded, realistic data set loaded through the public APIs,
//! an A/B test, then the KPI dashboard of one `GetDashboard` call
//! (docs/DEMO.md).

mod data;
mod experiment;
mod load;
mod progress;
mod server;
mod targets;

pub use server::channel;

use std::process::ExitCode;
use std::time::Instant;

use cx_proto::kpi::v1::GetDashboardRequest;
use cx_runtime::auth::Role;
use cx_runtime::config::AuthArgs;

use super::dashboard;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Size {
    /// 200 customers, about 5,000 touchpoints: seconds (CI).
    Small,
    /// 4,500 customers, over 100,000 touchpoints (about 23 each).
    Default,
    /// 20,000 customers, over 500,000 touchpoints.
    Large,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Same seed, same data.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    #[arg(long, value_enum, default_value = "default")]
    size: Size,
    /// Number of customers (instead of --size).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    customers: Option<u32>,
    /// A running suite: one endpoint for every service (CX_<NAME>_ENDPOINT
    /// overrides it for one service, as for `cx serve`). Without it, the demo
    /// starts the embedded default (`cx serve all`) on a temporary data
    /// directory and stops it at the end.
    #[arg(long, env = "CX_DEMO_ENDPOINT")]
    endpoint: Option<String>,
    /// A token of the demo tenant with the admin role, for --endpoint;
    /// without it one is signed as `cx token` does (CX_JWT_SECRET, or the
    /// secret in --data-dir).
    #[arg(long, env = "CX_DEMO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, default_value = "demo")]
    tenant: String,
    /// Keep the embedded suite running after the demo, to explore it (Ctrl-C stops it).
    #[arg(long)]
    keep: bool,
    /// Also write the dashboard as one self-contained HTML page to this file.
    #[arg(long)]
    html: Option<std::path::PathBuf>,
    /// Directory of the secret of the suite at --endpoint (as `cx token`).
    #[arg(long, env = "CX_DATA_DIR", default_value = "./data")]
    data_dir: std::path::PathBuf,
    #[command(flatten)]
    auth: AuthArgs,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    cx_runtime::TenantId::parse(&args.tenant).map_err(|why| anyhow::anyhow!("--tenant: {why}"))?;
    let (customers, per_month) = match (args.customers, args.size) {
        (Some(n), _) => (n as usize, (n as usize / 100).clamp(5, 60)),
        (None, Size::Small) => (200, 8),
        (None, Size::Default) => (4_500, 40),
        (None, Size::Large) => (20_000, 60),
    };
    let started = Instant::now();
    let embedded = match &args.endpoint {
        Some(_) => None,
        None => {
            println!("Starting the embedded suite (cx serve all, SQLite, in-memory cache)…");
            Some(server::Embedded::start().await?)
        }
    };
    let result = demo(&args, embedded.as_ref(), customers, per_month, started).await;
    match embedded {
        Some(e) if args.keep && result.is_ok() => {
            println!("\nThe suite keeps running at {} (data in {}).", e.addr, e.data_dir.display());
            println!("  token:  cx token --data-dir {} --tenant {} --roles admin", e.data_dir.display(), args.tenant);
            println!(
                "  dashboard: cx dashboard --endpoint {} --data-dir {} --tenant {} --html dashboard.html",
                e.addr,
                e.data_dir.display(),
                args.tenant
            );
            println!(
                "  call:   grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {} list",
                e.addr.trim_start_matches("http://")
            );
            println!("Press Ctrl-C to stop it.");
            tokio::signal::ctrl_c().await.ok();
            e.stop();
        }
        Some(e) => e.stop(),
        None => {}
    }
    result
}

async fn demo(
    args: &DemoArgs,
    embedded: Option<&server::Embedded>,
    customers: usize,
    per_month: usize,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let (endpoint, data_dir) = match embedded {
        Some(e) => (e.addr.clone(), e.data_dir.clone()),
        None => (args.endpoint.clone().unwrap_or_default(), args.data_dir.clone()),
    };
    let token = match (&args.token, embedded) {
        (Some(token), None) => token.clone(),
        _ => {
            let auth = if embedded.is_some() { AuthArgs::default() } else { args.auth.clone() };
            dashboard::sign(&auth, &data_dir, &args.tenant, Role::Admin, "cx-demo")?
        }
    };
    let api = load::Api::new(server::channels(&endpoint).await?, &token)?;
    let now = chrono::Utc::now();
    println!(
        "Loading the demo data set (seed {}, {customers} customers) for tenant '{}' at {endpoint}",
        args.seed, args.tenant
    );
    let plan = load::Plan { seed: args.seed, customers, per_month };
    let loaded = load::load(&api, &plan, now).await?;
    targets::set_targets(&api, &loaded.maps).await?;
    let (exposed, converted) = experiment::run(&api, args.seed, &loaded.ids).await?;
    // The default days: the 30 days ending yesterday, trends by month.
    let view = dashboard::get(api.kpi.clone(), &token, GetDashboardRequest::default(), &args.tenant).await?;
    println!(
        "Loaded {} customers, {} journey maps, {} touchpoints, {} survey answers ({} invited), {} follow-up cases, {exposed} customers in the A/B test ({converted} converted) in {:.1} s",
        loaded.customers,
        loaded.maps.len(),
        loaded.touchpoints,
        loaded.answers,
        loaded.invitations,
        loaded.cases,
        started.elapsed().as_secs_f64()
    );
    dashboard::show(&view, args.html.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
