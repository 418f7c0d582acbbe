//! The scaffold every service is built on: its database, its cache, its
//! outbox dispatcher and inbox, its gRPC service behind user authentication
//! (and an internal one behind the service identity), its migrations (the
//! shared tables always included) and its background jobs. A service says
//! only what is its own:
//!
//! ```ignore
//! let parts = Parts::open(ctx, NAME).await?;
//! let api = MyApi::new(parts.db.clone(), parts.cache.clone());
//! Ok(parts
//!     .module::<Migrator>()
//!     .serve(MyServiceServer::new(api))
//!     .participant(Arc::new(MyErasure { .. }))
//!     .build())
//! ```

use std::convert::Infallible;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use sea_orm::DbErr;
use sea_orm_migration::MigratorTrait;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::service::{Interceptor, RoutesBuilder};

use crate::cache::Cache;
use crate::config::ConfigError;
use crate::context::ServiceContext;
use crate::gdpr::Participant;
use crate::gdpr::export::Exporter;
use crate::identity::InternalAuth;
use crate::lease::Leases;
use crate::outbox::Kind;
use crate::outbox::dispatcher::{Dispatcher, DispatcherConfig, Expand};
use crate::outbox::inbox::{Handlers, Inbox};
pub use crate::peers::InternalPeer;
use crate::server::ServiceModule;
use crate::store::Db;

/// What a service is built from, opened for it.
#[derive(Clone, Debug)]
pub struct Parts {
    pub name: &'static str,
    /// The service's own database (opened lazily).
    pub db: Db,
    /// The shared cache, its epoch kept in this service's database.
    pub cache: Cache,
    pub ctx: ServiceContext,
}

impl Parts {
    pub async fn open(ctx: &ServiceContext, name: &'static str) -> Result<Self, ConfigError> {
        let db = crate::store::open_with(&ctx.store, name, ctx.shared_pool.as_ref()).await?;
        let cache = ctx.cache.bind(&db).named(name);
        Ok(Self { name, db, cache, ctx: ctx.clone() })
    }

    /// A traced channel to the `peer` service, when it is configured.
    pub fn peer(&self, peer: &str) -> Option<crate::peers::PeerChannel> {
        self.ctx.peers.traced(peer)
    }

    /// The `peer` service's internal RPCs, called as this service (a
    /// service token per call), when it is configured.
    pub fn internal_peer(&self, peer: &str) -> Option<InternalPeer> {
        let channel = self.ctx.peers.traced(peer)?;
        Some(InternalPeer::new(channel, self.ctx.service_key.clone(), self.name))
    }

    /// Whether the deployment runs `service` (registered, not named in
    /// `CX_NOT_DEPLOYED`): what is owed to a service that is not there is
    /// never written.
    pub fn is_deployed(&self, service: &str) -> bool {
        self.ctx.is_deployed(service)
    }

    /// Starts the module, migrated by `M` (plus the shared tables).
    pub fn module<M: MigratorTrait + 'static>(self) -> ModuleBuilder {
        let dispatcher = Dispatcher::new(
            self.db.clone(),
            DispatcherConfig { claim: self.ctx.store.outbox_claim, ..DispatcherConfig::new(self.name) },
            self.ctx.peers.destinations(),
            self.ctx.service_key.clone(),
        );
        ModuleBuilder {
            handlers: Handlers::new(self.name),
            parts: self,
            migrate: migrate_with::<M>,
            grpc_name: None,
            mounts: Vec::new(),
            participant: None,
            dispatcher,
            jobs: Vec::new(),
            leased_jobs: Vec::new(),
        }
    }
}

type Migrate = for<'a> fn(&'a Db, &'static str) -> BoxFuture<'a, Result<(), DbErr>>;

fn migrate_with<'a, M: MigratorTrait + 'static>(db: &'a Db, name: &'static str) -> BoxFuture<'a, Result<(), DbErr>> {
    Box::pin(crate::store::migrate::<M>(db, name))
}

type Mount = Box<dyn Fn(&mut RoutesBuilder) + Send + Sync>;

/// What a gRPC server of the router is called with and answers.
type HttpRequest = http::Request<tonic::body::Body>;
type HttpResponse = http::Response<tonic::body::Body>;

/// A generated `…ServiceServer`, as the router takes it.
pub trait GrpcServer:
    tower::Service<HttpRequest, Response = HttpResponse, Error = Infallible, Future: Send + 'static>
    + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcServer for S where
    S: tower::Service<HttpRequest, Response = HttpResponse, Error = Infallible, Future: Send + 'static>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Background work: a future per call, ending soon after `stop` turns true.
pub use crate::lease::Job;

/// A service being put together; [`ModuleBuilder::build`] ends it.
pub struct ModuleBuilder {
    parts: Parts,
    migrate: Migrate,
    grpc_name: Option<&'static str>,
    mounts: Vec<Mount>,
    handlers: Handlers,
    participant: Option<Arc<dyn Participant>>,
    dispatcher: Dispatcher,
    jobs: Vec<Job>,
    leased_jobs: Vec<(&'static str, Job)>,
}

impl ModuleBuilder {
    /// Serves `server` (a generated `…ServiceServer`) behind user
    /// authentication; its gRPC name is the service's, for health and
    /// reflection.
    pub fn serve<S: GrpcServer>(mut self, server: S) -> Self {
        self.grpc_name.get_or_insert(S::NAME);
        let auth = self.parts.ctx.auth.clone();
        self.mount(server, auth);
        self
    }

    /// Serves `server`, an internal service of this one (called by other
    /// services, never by users), behind the service identity: only a
    /// service token passes (user tokens are `UNAUTHENTICATED`), and the
    /// handler reads the caller with [`crate::identity::service_identity`].
    /// Like the inbox it is not advertised by reflection, and its health is
    /// the service's: calls wait for the same readiness.
    pub fn serve_internal<S: GrpcServer>(mut self, server: S) -> Self {
        let internal = self.parts.ctx.internal.clone();
        self.mount(server, internal);
        self
    }

    /// Routes `server`'s calls through `interceptor` once the module serves.
    fn mount<S: GrpcServer>(&mut self, server: S, interceptor: impl Interceptor + Clone + Send + Sync + 'static) {
        self.mounts.push(Box::new(move |routes| {
            routes.add_service(InterceptedService::new(server.clone(), interceptor.clone()));
        }));
    }

    /// Messages of the types `handlers` names are applied by them.
    pub fn inbox(mut self, handlers: impl FnOnce(Handlers) -> Handlers) -> Self {
        self.handlers = handlers(self.handlers);
        self
    }

    /// The service holds customer data: it takes part in merges, erasures
    /// and access exports through `participant` (see [`crate::gdpr`]). The
    /// registry must say so too (`customer_data`), so that profile asks it.
    pub fn participant(mut self, participant: Arc<dyn Participant>) -> Self {
        self.participant = Some(participant);
        self
    }

    /// Outbox rows of `kind` are expanded by `expander` when delivered.
    pub fn expand(mut self, kind: &Kind, expander: Arc<dyn Expand>) -> Self {
        self.dispatcher = self.dispatcher.expand(kind, expander);
        self
    }

    /// Runs `job` in the background once the service is ready, on one
    /// replica of the deployment at a time: the holder of its lease
    /// ([`crate::lease`]). For work every replica must do, see [`Self::job`].
    pub fn leased_job(
        mut self,
        name: &'static str,
        job: impl Fn(tokio::sync::watch::Receiver<bool>) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        self.leased_jobs.push((name, Arc::new(job)));
        self
    }

    /// Runs `job` in the background once the service is ready, on every
    /// replica: work that replicas share out among themselves (claims).
    pub fn job(
        mut self,
        job: impl Fn(tokio::sync::watch::Receiver<bool>) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        self.jobs.push(Arc::new(job));
        self
    }

    pub fn build(self) -> Arc<dyn ServiceModule> {
        let mut handlers = self.handlers;
        let exporter = self.participant.as_ref().map(|p| Exporter::new(self.parts.db.clone(), p.clone()));
        if let Some(participant) = self.participant {
            handlers = crate::gdpr::take_part(
                handlers,
                self.parts.name,
                participant,
                self.dispatcher.expanded_kinds(),
                self.parts.cache.clone(),
            );
        }
        let inbox = (!handlers.is_empty()).then(|| Inbox::new(self.parts.db.clone(), Arc::new(handlers)));
        let leases = Leases::new(self.parts.db.clone(), crate::lease::this_process(), self.parts.ctx.jobs.lease_ttl);
        let mut leased_jobs = self.leased_jobs;
        if let Some(inbox) = &inbox {
            let (inbox, retention) = (inbox.clone(), self.parts.ctx.store.inbox_retention);
            let prune: Job = Arc::new(move |stop| Box::pin(inbox.clone().keep_pruned(retention, stop)));
            leased_jobs.push(("inbox-prune", prune));
        }
        Arc::new(Module {
            name: self.parts.name,
            grpc_name: self.grpc_name.unwrap_or(self.parts.name),
            db: self.parts.db,
            migrate: self.migrate,
            mounts: self.mounts,
            inbox,
            exporter,
            internal: self.parts.ctx.internal.clone(),
            cache: self.parts.cache,
            dispatcher: self.dispatcher,
            jobs: self.jobs,
            leased_jobs,
            leases,
        })
    }
}

/// A service as the server runs it.
struct Module {
    name: &'static str,
    grpc_name: &'static str,
    db: Db,
    migrate: Migrate,
    mounts: Vec<Mount>,
    inbox: Option<Inbox>,
    exporter: Option<Exporter>,
    internal: InternalAuth,
    cache: Cache,
    dispatcher: Dispatcher,
    jobs: Vec<Job>,
    leased_jobs: Vec<(&'static str, Job)>,
    leases: Leases,
}

#[async_trait]
impl ServiceModule for Module {
    fn name(&self) -> &'static str {
        self.name
    }

    fn grpc_name(&self) -> &'static str {
        self.grpc_name
    }

    async fn migrate(&self) -> Result<(), DbErr> {
        (self.migrate)(&self.db, self.name).await
    }

    async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    fn mount(&self, routes: &mut RoutesBuilder) {
        for mount in &self.mounts {
            mount(routes);
        }
    }

    fn inbox(&self) -> Option<(Inbox, InternalAuth)> {
        self.inbox.clone().map(|inbox| (inbox, self.internal.clone()))
    }

    fn exporter(&self) -> Option<(Exporter, InternalAuth)> {
        self.exporter.clone().map(|exporter| (exporter, self.internal.clone()))
    }

    fn background(&self, stop: tokio::sync::watch::Receiver<bool>) -> Vec<BoxFuture<'static, ()>> {
        let mut work: Vec<BoxFuture<'static, ()>> = vec![Box::pin(self.dispatcher.clone().run(stop.clone()))];
        work.extend(self.jobs.iter().map(|job| job(stop.clone())));
        for (name, job) in &self.leased_jobs {
            work.push(Box::pin(self.leases.clone().run(name, job.clone(), stop.clone())));
        }
        work.extend(self.cache.keeper(stop));
        work
    }
}
