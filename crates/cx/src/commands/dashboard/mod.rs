//! `cx dashboard`: one `GetDashboard` call for a tenant of a running suite,
//! printed (and with --html written as one self-contained page). `cx demo`
//! ends with the same print.

pub mod html;
pub mod terminal;
pub mod view;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use cx_proto::kpi::v1::{GetDashboardRequest, kpi_service_client::KpiServiceClient};
use cx_runtime::auth::{Keys, Role};
use cx_runtime::config::AuthArgs;
use cx_runtime::secrets::Fallback;
use tonic::transport::Channel;

#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// The suite: one endpoint for every service (CX_KPI_ENDPOINT overrides
    /// it for kpi, as for `cx serve`).
    #[arg(long, env = "CX_DASHBOARD_ENDPOINT", default_value = "http://127.0.0.1:50051")]
    endpoint: String,
    /// A token of the tenant (reader is enough); without it one is signed as
    /// `cx token` does (CX_JWT_SECRET, or the secret in --data-dir).
    #[arg(long, env = "CX_DASHBOARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, default_value = "demo")]
    tenant: String,
    /// First day, "YYYY-MM-DD" (with --end-day); default: the 30 days ending yesterday.
    #[arg(long, requires = "end_day")]
    start_day: Option<String>,
    /// Last day, "YYYY-MM-DD" (with --start-day).
    #[arg(long, requires = "start_day")]
    end_day: Option<String>,
    /// Also write the dashboard as one self-contained HTML page to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Directory of the suite's secret, to sign a token (as `cx token`).
    #[arg(long, env = "CX_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    #[command(flatten)]
    auth: AuthArgs,
}

pub async fn run(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    cx_runtime::TenantId::parse(&args.tenant).map_err(|why| anyhow::anyhow!("--tenant: {why}"))?;
    let token = match &args.token {
        Some(token) => token.clone(),
        None => sign(&args.auth, &args.data_dir, &args.tenant, Role::Reader, "cx-dashboard")?,
    };
    let channel = super::demo::channel("kpi", &args.endpoint).await?;
    let request = GetDashboardRequest {
        start_day: args.start_day.clone().unwrap_or_default(),
        end_day: args.end_day.clone().unwrap_or_default(),
        trend_granularity: 0,
    };
    let d = get(KpiServiceClient::new(channel), &token, request, &args.tenant).await?;
    show(&d, args.html.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// A token of `tenant` signed with the configured or stored secret.
pub fn sign(auth: &AuthArgs, data_dir: &Path, tenant: &str, role: Role, sub: &str) -> anyhow::Result<String> {
    let keys = Keys::load(auth, data_dir, Fallback::ReadExisting)?;
    let signer = keys.signer.context("no secret to sign a token with: pass --token")?;
    Ok(signer.sign(tenant, &[role], sub, Duration::from_secs(3_600))?)
}

/// One GetDashboard call, as the view.
pub async fn get(
    mut client: KpiServiceClient<Channel>,
    token: &str,
    message: GetDashboardRequest,
    tenant: &str,
) -> anyhow::Result<view::Dashboard> {
    let mut request = tonic::Request::new(message);
    let bearer = format!("Bearer {token}").parse().context("the token is not a valid header value")?;
    request.metadata_mut().insert("authorization", bearer);
    let answer = client.get_dashboard(request).await.context("GetDashboard")?.into_inner();
    Ok(view::Dashboard::from_response(tenant, answer))
}

/// Prints the dashboard (colour on a terminal without NO_COLOR), and writes
/// the page when asked.
pub fn show(d: &view::Dashboard, html: Option<&Path>) -> anyhow::Result<()> {
    let colour = terminal::use_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    print!("{}", terminal::render(d, colour));
    if let Some(path) = html {
        std::fs::write(path, html::render(d)).with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nWrote {}", path.display());
    }
    Ok(())
}
