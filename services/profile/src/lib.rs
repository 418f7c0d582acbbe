//! The profile service (`cx.profile.v1.ProfileService`): the single view of a
//! customer — identities across channels, typed attributes, persona and
//! consents with their full history (DESIGN §1–3).
//!
//! - [`domain`]: pure rules (identity normal forms, attributes, consent state);
//! - [`store`]: sea-orm entities, migrations and tenant-scoped queries;
//! - [`api`]: the gRPC service, with validation, roles and the profile cache.

pub mod api;
pub mod cache_keys;
pub mod domain;
pub mod error;
pub mod inbox;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use cx_proto::profile::v1::profile_service_server::ProfileServiceServer;
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::outbox::dispatcher::{Dispatcher, DispatcherConfig};
use cx_runtime::outbox::inbox::Inbox;
use cx_runtime::server::ServiceModule;
use futures::future::BoxFuture;
use sea_orm::{DatabaseConnection, DbErr};
use tonic::service::RoutesBuilder;
use tonic::service::interceptor::InterceptedService;

use crate::api::ProfileApi;
use crate::store::ProfileStore;
use crate::store::migration::Migrator;

pub const NAME: &str = "profile";
pub const GRPC_NAME: &str = "cx.profile.v1.ProfileService";

/// The profile service as a server mounts it.
#[derive(Debug)]
pub struct ProfileModule {
    db: DatabaseConnection,
    api: ProfileApi,
    auth: cx_runtime::auth::AuthInterceptor,
    internal: cx_runtime::identity::InternalAuth,
    store: ProfileStore,
    cache: cx_runtime::cache::Cache,
    sweep_interval: std::time::Duration,
    dispatcher: cx_runtime::outbox::dispatcher::Dispatcher,
}

impl ProfileModule {
    /// Builds the service over its own database (opened lazily).
    pub async fn new(ctx: &ServiceContext) -> Result<Self, ConfigError> {
        let db = cx_runtime::store::open(&ctx.store, NAME).await?;
        let fanout: Vec<&'static str> =
            store::events::CUSTOMER_DATA_HOLDERS.iter().copied().filter(|s| ctx.peers.contains(s)).collect();
        let destinations = ctx.peers.destinations(&fanout);
        let dispatcher =
            Dispatcher::new(db.clone(), DispatcherConfig::new(NAME), destinations, ctx.service_key.clone());
        let store = ProfileStore::new(db.clone()).with_fanout(fanout);
        // The cache's epoch lives in this service's database.
        let cache = ctx.cache.bind(&db);
        let api = ProfileApi::new(store.clone(), cache.clone());
        Ok(Self {
            db,
            api,
            auth: ctx.auth.clone(),
            internal: ctx.internal.clone(),
            store,
            cache,
            sweep_interval: ctx.jobs.sweep_interval,
            dispatcher,
        })
    }

    pub async fn arc(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
        Ok(Arc::new(Self::new(ctx).await?))
    }
}

#[async_trait]
impl ServiceModule for ProfileModule {
    fn name(&self) -> &'static str {
        NAME
    }

    fn grpc_name(&self) -> &'static str {
        GRPC_NAME
    }

    async fn migrate(&self) -> Result<(), DbErr> {
        cx_runtime::store::migrate::<Migrator>(&self.db, NAME).await
    }

    async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    fn mount(&self, routes: &mut RoutesBuilder) {
        // The codec holds each RPC to its own limit; this admits the largest.
        let server = ProfileServiceServer::new(self.api.clone())
            .max_decoding_message_size(cx_proto::codec::max_request_bytes(GRPC_NAME));
        routes.add_service(InterceptedService::new(server, self.auth.clone()));
    }

    fn inbox(&self) -> Option<(Inbox, cx_runtime::identity::InternalAuth)> {
        let handler = Arc::new(inbox::ProfileInbox::new(self.cache.clone()));
        Some((Inbox::new(self.db.clone(), handler), self.internal.clone()))
    }

    fn background(&self, stop: tokio::sync::watch::Receiver<bool>) -> Vec<BoxFuture<'static, ()>> {
        let mut work: Vec<BoxFuture<'static, ()>> = vec![
            Box::pin(sweep_loop(self.store.clone(), self.cache.clone(), self.sweep_interval, stop.clone())),
            Box::pin(self.dispatcher.clone().run(stop.clone())),
        ];
        work.extend(self.cache.keeper(stop));
        work
    }
}

/// Runs the lifecycle sweep at start and then every `interval` until `stop`.
async fn sweep_loop(
    store: ProfileStore,
    cache: cx_runtime::cache::Cache,
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        match store.sweep(chrono::Utc::now().date_naive()).await {
            Ok(swept) => {
                for (tenant, ids) in swept {
                    let keys: Vec<_> = ids.into_iter().map(|id| cache_keys::profile(&tenant, id)).collect();
                    // On failure the bump is owed: this process trusts no
                    // cached value until it is made.
                    if let Err(err) = cache.invalidate_all(&keys).await {
                        tracing::error!(error = %err, "swept profiles not invalidated");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "lifecycle sweep failed, will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}
