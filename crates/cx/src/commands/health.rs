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
    /// The local server speaks TLS (it has a certificate): ask over TLS.
    #[arg(long, env = "CX_TLS_CERT_FILE", hide = true)]
    server_cert: Option<std::path::PathBuf>,
    /// Name the server's certificate must carry when asked over TLS.
    #[arg(long, env = "CX_TLS_SERVER_NAME", default_value = "localhost")]
    tls_server_name: String,
    /// Checked and shown over TLS as the services check and show peers.
    #[command(flatten)]
    tls: cx_runtime::peers::PeerTlsArgs,
}

pub async fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let scheme = if args.server_cert.is_some() { "https" } else { "http" };
    let addr = args.addr.clone().unwrap_or_else(|| {
        let mut local = args.listen;
        if local.ip().is_unspecified() {
            local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("{scheme}://{local}")
    });
    let mut endpoint = tonic::transport::Endpoint::from_shared(addr.clone()).context("--addr")?;
    if addr.starts_with("https://") {
        let pem = args.tls.read()?;
        cx_runtime::tls::init();
        endpoint = endpoint.tls_config(cx_runtime::tls::grpc_client(&pem, &args.tls_server_name))?;
    }
    let channel = endpoint
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
