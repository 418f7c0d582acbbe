use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use cx_runtime::auth::{Keys, Role};
use cx_runtime::config::AuthArgs;
use cx_runtime::secrets::Fallback;

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Tenant the token acts for.
    #[arg(long)]
    tenant: String,
    /// Roles, comma-separated: reader, writer, admin (each includes the ones before it).
    #[arg(long, value_delimiter = ',', default_value = "reader")]
    roles: Vec<String>,
    /// Subject: who or what uses the token.
    #[arg(long, default_value = "cx-cli")]
    sub: String,
    /// Lifetime, e.g. 1h, 30m, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Directory holding the secret `cx serve` generated (same as the
    /// server's); it is read, never created, here.
    #[arg(long, env = "CX_DATA_DIR", default_value = "./data")]
    data_dir: std::path::PathBuf,
    #[command(flatten)]
    auth: AuthArgs,
}

pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    cx_runtime::TenantId::parse(&args.tenant).map_err(|why| anyhow::anyhow!("--tenant: {why}"))?;
    let roles = args
        .roles
        .iter()
        .map(|r| {
            Role::parse(r.trim()).ok_or_else(|| anyhow::anyhow!("--roles: unknown role '{r}' (reader, writer, admin)"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keys = Keys::load(&args.auth, &args.data_dir, Fallback::ReadExisting)?;
    let signer = keys.signer.context(
        "tokens are verified with CX_JWT_PUBLIC_KEY_FILE: get them from your identity provider, cx token signs only with a shared secret",
    )?;
    let token = signer.sign(&args.tenant, &roles, &args.sub, args.ttl)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
