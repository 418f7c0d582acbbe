use std::process::ExitCode;

use cx_runtime::config::{AuthArgs, CacheArgs, ServiceAuthArgs, StoreArgs, TelemetryArgs};
use cx_runtime::context::ServiceContext;
use cx_runtime::peers::{PeerArgs, Peers};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// `all`, or one service of the registry (profile, journey, …).
    #[arg(default_value = "all")]
    service: String,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let telemetry = cx_runtime::telemetry::Telemetry::init("cx-migrate", &args.telemetry)?;
    // Migrations need neither the cache nor tokens: throwaway keys that
    // verify nothing, so this command needs no secret and generates none.
    let cache = CacheArgs::new(None, std::time::Duration::from_secs(60));
    let throwaway = || Some(cx_runtime::secrets::random_secret());
    let auth = AuthArgs { jwt_secret: throwaway(), ..AuthArgs::default() };
    let internal = ServiceAuthArgs { service_secret: throwaway(), ..ServiceAuthArgs::default() };
    let registry = crate::services::REGISTRY;
    // Nothing is called: every other service counts as not deployed here.
    let peers = PeerArgs { not_deployed: registry.names().map(str::to_owned).collect(), ..PeerArgs::default() };
    let ctx = ServiceContext::from_args(&args.store, &cache, &auth, &internal)?
        .with_registry(registry)
        .with_peers(Peers::resolve(&peers, &registry, None)?);
    let modules = registry.build(&args.service, &ctx).await?;
    for module in modules {
        module.migrate().await.map_err(|e| anyhow::anyhow!("{}: migration failed: {e}", module.name()))?;
        tracing::info!(service = module.name(), "migrated");
    }
    telemetry.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
