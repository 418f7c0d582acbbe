//! Server bootstrap shared by every service and by `cx serve all`.
//!
//! Start: bind, answer health (`""` and each service NOT_SERVING) and
//! reflection at once, migrate each service in the background (retrying until
//! the database answers), then flip health to SERVING and admit calls.
//! Stop (SIGTERM/SIGINT or the given future): health NOT_SERVING, stop
//! accepting, let in-flight calls finish within the grace period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use futures::future::BoxFuture;
use sea_orm::DbErr;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::ServiceBuilder;

use crate::admission::{AdmissionLayer, Readiness};
use crate::config::ServerArgs;
use crate::deadline::DeadlineLayer;
use crate::metrics::{GrpcMetrics, MetricsLayer};
use crate::propagation::GrpcTraceLayer;
use crate::streams::StreamGuardLayer;

/// One CX service as a server mounts it.
#[async_trait]
pub trait ServiceModule: Send + Sync + 'static {
    /// Short name, as in `cx serve <name>`: "profile".
    fn name(&self) -> &'static str;
    /// Fully qualified gRPC service name, as health and reflection know it.
    fn grpc_name(&self) -> &'static str;
    /// Creates the schema and applies pending migrations; idempotent.
    async fn migrate(&self) -> Result<(), DbErr>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), DbErr>;
    /// Mounts the service (with its authentication) on the routes.
    fn mount(&self, routes: &mut RoutesBuilder);
    /// The service's receiving end of the outbox, if other services send
    /// it messages, with the authentication that admits only services.
    fn inbox(&self) -> Option<(crate::outbox::inbox::Inbox, crate::identity::InternalAuth)> {
        None
    }
    /// The service's answers to access requests, if it holds customer
    /// data, with the authentication that admits only services.
    fn exporter(&self) -> Option<(crate::gdpr::export::Exporter, crate::identity::InternalAuth)> {
        None
    }
    /// Work done in the background once the service is ready (sweeps,
    /// outbox delivery). Each future returns soon after `stop` turns true.
    fn background(&self, _stop: tokio::sync::watch::Receiver<bool>) -> Vec<BoxFuture<'static, ()>> {
        Vec::new()
    }
}

/// Waits for SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

/// Serves `modules` on `listener` until `shutdown` completes.
pub async fn serve(
    modules: Vec<Arc<dyn ServiceModule>>,
    args: &ServerArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::NotServing).await;
    for module in &modules {
        reporter.set_service_status(module.grpc_name(), ServingStatus::NotServing).await;
    }

    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cx_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    let mut reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cx_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    for module in &modules {
        reflection = reflection.with_service_name(module.grpc_name());
        reflection_alpha = reflection_alpha.with_service_name(module.grpc_name());
    }
    // Each module's inbox, built once; one InboxService hands them their messages.
    let mut inboxes = crate::outbox::inbox::InboxRouter::default();
    let mut inbox_auth = None;
    for module in &modules {
        if let Some((inbox, auth)) = module.inbox() {
            inboxes.add(module.name(), inbox);
            inbox_auth = Some(auth);
        }
    }
    // Likewise one CustomerDataService for the modules holding customer data.
    let mut exports = crate::gdpr::export::ExportRouter::default();
    let mut export_auth = None;
    for module in &modules {
        if let Some((exporter, auth)) = module.exporter() {
            exports.add(module.name(), exporter);
            export_auth = Some(auth);
        }
    }
    // Both are internal: served to services, not advertised to clients.

    let mut routes = RoutesBuilder::default();
    routes.add_service(health);
    routes.add_service(reflection.build_v1()?);
    routes.add_service(reflection_alpha.build_v1alpha()?);
    for module in &modules {
        module.mount(&mut routes);
    }
    if let Some(auth) = inbox_auth {
        let inbox = cx_proto::outbox::v1::inbox_service_server::InboxServiceServer::new(inboxes);
        routes.add_service(tonic::service::interceptor::InterceptedService::new(inbox, auth));
    }
    if let Some(auth) = export_auth {
        let exports = cx_proto::gdpr::v1::customer_data_service_server::CustomerDataServiceServer::new(exports);
        routes.add_service(tonic::service::interceptor::InterceptedService::new(exports, auth));
    }

    let readiness = Readiness::default();
    let metrics = GrpcMetrics::default();
    // Turns true at shutdown: background work ends its round, streams end.
    let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
    // Metrics sit outside admission control: refused calls are counted too.
    let middleware = ServiceBuilder::new()
        .layer(GrpcTraceLayer::default())
        .layer(MetricsLayer(metrics.clone()))
        .layer(AdmissionLayer::new(readiness.clone(), args.max_concurrent_requests))
        .layer(StreamGuardLayer::new(args.stream_idle_timeout, background_stopped.clone()))
        .layer(DeadlineLayer)
        .layer(crate::oversize::OversizeLayer);
    let metrics_listener = match args.metrics_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("CX_METRICS_LISTEN: cannot listen on {address}"))?,
        ),
        None => None,
    };

    let address = listener.local_addr()?;
    let names: Vec<&str> = modules.iter().map(|m| m.name()).collect();
    tracing::info!(%address, services = ?names, "listening");

    if let Some(listener) = metrics_listener {
        tracing::info!(address = %listener.local_addr()?, "metrics on GET /metrics");
        tokio::spawn(crate::metrics::serve(listener, metrics, background_stopped.clone()));
    }
    let startup = {
        let (modules, reporter, readiness) = (modules.clone(), reporter.clone(), readiness.clone());
        tokio::spawn(async move {
            let mut stopping = background_stopped.clone();
            tokio::select! {
                () = become_ready(&modules, reporter, readiness) => {}
                // Stopped before the database came: nothing to finish.
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            let work: Vec<_> = modules.iter().flat_map(|m| m.background(background_stopped.clone())).collect();
            futures::future::join_all(work).await;
        })
    };

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(tls) = args.tls()? {
        builder = builder.tls_config(tls).context("CX_TLS_CERT_FILE")?;
    }
    let limits =
        crate::connections::Limits { max_connections: args.max_connections, handshake_timeout: args.handshake_timeout };
    let server = builder
        .timeout(args.request_timeout)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(middleware)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(crate::connections::incoming(listener, limits), async {
            let _ = stop_rx.await;
        });
    let mut server = tokio::spawn(server);

    tokio::select! {
        () = shutdown => {}
        finished = &mut server => {
            startup.abort();
            return finished?.map_err(Into::into);
        }
    }

    // Tell load balancers first and keep serving while they stop sending
    // calls here; then stop accepting and drain. Background work finishes
    // its round meanwhile.
    reporter.set_service_status("", ServingStatus::NotServing).await;
    for module in &modules {
        reporter.set_service_status(module.grpc_name(), ServingStatus::NotServing).await;
    }
    if !args.shutdown_delay.is_zero() {
        tracing::info!(delay = ?args.shutdown_delay, "not serving: still answering while callers move away");
        tokio::select! {
            () = tokio::time::sleep(args.shutdown_delay) => {}
            finished = &mut server => {
                startup.abort();
                return finished?.map_err(Into::into);
            }
        }
    }
    let _ = stop_background.send(true);
    readiness.set(false);
    let _ = stop_tx.send(());
    let drained = tokio::time::timeout(args.shutdown_grace, async {
        let served = (&mut server).await;
        let _ = startup.await;
        served
    })
    .await;
    match drained {
        Ok(finished) => {
            finished??;
            tracing::info!("drained in-flight calls, stopped");
        }
        Err(_) => {
            server.abort();
            tracing::warn!(grace = ?args.shutdown_grace, "grace period over, cutting remaining calls");
        }
    }
    Ok(())
}

/// Migrates every module, retrying with backoff while the database is not
/// there yet, then reports SERVING.
async fn become_ready(modules: &[Arc<dyn ServiceModule>], reporter: HealthReporter, readiness: Readiness) {
    for module in modules {
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = async {
                module.migrate().await?;
                module.ping().await
            };
            match attempt.await {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(service = module.name(), error = %err, retry_in_ms = delay.as_millis() as u64, "database not ready");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        reporter.set_service_status(module.grpc_name(), ServingStatus::Serving).await;
        tracing::info!(service = module.name(), "serving");
    }
    readiness.set(true);
    reporter.set_service_status("", ServingStatus::Serving).await;
}
