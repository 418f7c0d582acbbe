use std::process::ExitCode;

use anyhow::Context as _;
use cx_runtime::config::{AuthArgs, CacheArgs, JobArgs, ServerArgs, ServiceAuthArgs, StoreArgs, TelemetryArgs};
use cx_runtime::context::ServiceContext;
use cx_runtime::peers::{PeerArgs, Peers};
use cx_runtime::telemetry::Telemetry;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// `all`, or one service of the registry (profile, journey, …).
    #[arg(default_value = "all")]
    service: String,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    internal: ServiceAuthArgs,
    #[command(flatten)]
    jobs: JobArgs,
    #[command(flatten)]
    peers: PeerArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let service_name = if args.service == "all" { "cx-suite".to_owned() } else { format!("cx-{}", args.service) };
    let telemetry = Telemetry::init(&service_name, &args.telemetry)?;
    args.server.validate()?;
    let registry = crate::services::REGISTRY;
    let local: Vec<&str> = registry.select(&args.service)?.iter().map(|s| s.name).collect();
    // Bound first: services running here call each other on this port.
    let listener = tokio::net::TcpListener::bind(args.server.listen)
        .await
        .with_context(|| format!("CX_LISTEN: cannot listen on {}", args.server.listen))?;
    let peer_args = args.peers.clone().with_settings(&registry, |name| std::env::var(name).ok());
    let peers = Peers::resolve(&peer_args, &registry, Some((listener.local_addr()?, &local)))?;
    let mut ctx = ServiceContext::from_args(&args.store, &args.cache, &args.auth, &args.internal)?
        .with_jobs(args.jobs.clone())?
        .with_registry(registry)
        .with_peers(peers);
    if local.len() > 1 {
        ctx = ctx.sharing_one_pool();
    }
    let modules = registry.build(&args.service, &ctx).await?;
    let served =
        cx_runtime::server::serve(modules, &args.server, listener, cx_runtime::server::termination_signal()).await;
    telemetry.shutdown().await;
    served?;
    Ok(ExitCode::SUCCESS)
}
