use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Service to ask about (e.g. cx.profile.v1.ProfileService); empty: the whole server.
    #[arg(long, default_value = "")]
    service: String,
    /// Server address; defaults to the local one CX_LISTEN names.
    #[arg(long)]
    addr: Option<String>,
    #[arg(long, env = "CX_LISTEN", default_value = "0.0.0.0:50051", hide = true)]
    listen: SocketAddr,
    /// Give up after this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub async fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let addr = args.addr.unwrap_or_else(|| {
        let mut local = args.listen;
        if local.ip().is_unspecified() {
            local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{local}")
    });
    let channel = tonic::transport::Endpoint::from_shared(addr.clone())
        .context("--addr")?
        .connect_timeout(args.timeout)
        .timeout(args.timeout)
        .connect()
        .await
        .with_context(|| format!("cannot reach {addr}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: args.service.clone() })
        .await
        .with_context(|| format!("health check of '{}' failed", args.service))?;
    let status = ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown);
    println!("{}", status.as_str_name());
    Ok(if status == ServingStatus::Serving { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
