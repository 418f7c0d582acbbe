//! The journey service (`cx.journey.v1.JourneyService`): journey maps,
//! high-volume touchpoint ingest and customer timelines (DESIGN §1–3).
//!
//! - [`domain`]: pure rules (maps, steps, touchpoints);
//! - [`store`]: sea-orm entities, migrations, set-based ingest, timelines;
//! - [`api`]: the gRPC service; [`resolver`]: identities through the
//!   profile service; [`inbox`]: merges and erasures from the profile service.

pub mod api;
pub mod cache_keys;
pub mod domain;
pub mod inbox;
pub mod resolver;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cx_proto::journey::v1::journey_service_server::JourneyServiceServer;
use cx_runtime::auth::AuthInterceptor;
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::identity::InternalAuth;
use cx_runtime::outbox::dispatcher::{Dispatcher, DispatcherConfig};
use cx_runtime::outbox::inbox::Inbox;
use cx_runtime::server::ServiceModule;
use futures::future::BoxFuture;
use sea_orm::{DatabaseConnection, DbErr};
use tonic::service::RoutesBuilder;
use tonic::service::interceptor::InterceptedService;

use crate::api::JourneyApi;
use crate::resolver::Resolver;
use crate::store::JourneyStore;
use crate::store::activity::{ActivityExpander, STORED_TOUCHPOINTS};
use crate::store::migration::Migrator;

pub const NAME: &str = "journey";
pub const GRPC_NAME: &str = "cx.journey.v1.JourneyService";

/// How long a resolved identity is remembered by one replica.
const RESOLUTION_TTL: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct JourneyModule {
    db: DatabaseConnection,
    api: JourneyApi,
    auth: AuthInterceptor,
    internal: InternalAuth,
    resolver: Resolver,
    cache: cx_runtime::cache::Cache,
    dispatcher: Dispatcher,
}

impl JourneyModule {
    /// Builds the service over its own database (opened lazily).
    pub async fn new(ctx: &ServiceContext) -> Result<Self, ConfigError> {
        let db = cx_runtime::store::open(&ctx.store, NAME).await?;
        // The cache's epoch lives in this service's database.
        let cache = ctx.cache.bind(&db);
        let resolver = Resolver::new(ctx.peers.traced("profile"), RESOLUTION_TTL, cache.clone());
        let destinations = ctx.peers.destinations(&["profile"]);
        let store = JourneyStore::new(db.clone());
        let dispatcher =
            Dispatcher::new(db.clone(), DispatcherConfig::new(NAME), destinations, ctx.service_key.clone())
                .expand(STORED_TOUCHPOINTS, Arc::new(ActivityExpander(store.clone())));
        let api = JourneyApi::new(store, resolver.clone(), cache.clone());
        Ok(Self { db, api, auth: ctx.auth.clone(), internal: ctx.internal.clone(), resolver, cache, dispatcher })
    }

    pub async fn arc(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
        Ok(Arc::new(Self::new(ctx).await?))
    }
}

#[async_trait]
impl ServiceModule for JourneyModule {
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
        // The codec holds each RPC to its own limit (a batch of touchpoints
        // 16 MiB, a journey map 1 MiB); this admits the largest.
        let server = JourneyServiceServer::new(self.api.clone())
            .max_decoding_message_size(cx_proto::codec::max_request_bytes(GRPC_NAME));
        routes.add_service(InterceptedService::new(server, self.auth.clone()));
    }

    fn inbox(&self) -> Option<(Inbox, InternalAuth)> {
        let handler = Arc::new(inbox::JourneyInbox::new(self.resolver.clone(), self.cache.clone()));
        Some((Inbox::new(self.db.clone(), handler), self.internal.clone()))
    }

    fn background(&self, stop: tokio::sync::watch::Receiver<bool>) -> Vec<BoxFuture<'static, ()>> {
        let mut work: Vec<BoxFuture<'static, ()>> = vec![Box::pin(self.dispatcher.clone().run(stop.clone()))];
        work.extend(self.cache.keeper(stop));
        work
    }
}
