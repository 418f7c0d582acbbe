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
    /// CA (PEM) of the server's certificate; absent: the system's roots.
    #[arg(long, env = "CX_PEER_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for a server that asks for one.
    #[arg(long, env = "CX_PEER_CLIENT_CERT_FILE")]
    client_cert_file: Option<std::path::PathBuf>,
    /// Key (PEM) of the client certificate.
    #[arg(long, env = "CX_PEER_CLIENT_KEY_FILE")]
    client_key_file: Option<std::path::PathBuf>,
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
        let files = cx_runtime::tls::TlsFiles {
            ca: args.ca_file.clone(),
            cert: args.client_cert_file.clone(),
            key: args.client_key_file.clone(),
        };
        let pem = files.read(["CX_PEER_CA_FILE", "CX_PEER_CLIENT_CERT_FILE", "CX_PEER_CLIENT_KEY_FILE"])?;
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
