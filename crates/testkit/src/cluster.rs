//! Several services of a registry, each on its own loopback server and each
//! the others' peer, over one fresh store: what a deployment with one pod
//! per service looks like, in one test process.
//!
//! ```ignore
//! const SUITE: Registry = Registry::new(&[cx_profile::SERVICE, cx_journey::SERVICE]);
//! let cluster = Cluster::start(SUITE, Backend::Postgres).await;
//! let journey = cluster.server("journey");
//! ```

use std::collections::BTreeMap;

use cx_runtime::config::{ServerArgs, StoreArgs};
use cx_runtime::context::ServiceContext;
use cx_runtime::peers::{PeerArgs, Peers};
use cx_runtime::registry::Registry;

use crate::{RunningServer, TestDb};

/// The store a test runs on; [`crate::on_both_backends!`] runs a case on each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (and Redis, in a cluster), as in production.
    Postgres,
    /// SQLite files (and the in-process cache): the embedded default of `cx serve all`.
    Sqlite,
}

/// The running services, by name.
#[derive(Debug)]
pub struct Cluster {
    pub db: TestDb,
    /// Where every service keeps its data (PostgreSQL, or SQLite files).
    pub store: StoreArgs,
    pub backend: Backend,
    pub registry: Registry,
    /// Each service's endpoint, as every service is told.
    pub peers: PeerArgs,
    pub servers: BTreeMap<&'static str, RunningServer>,
}

impl Cluster {
    /// Starts every service of `registry` on `backend`; returns once all
    /// report SERVING.
    pub async fn start(registry: Registry, backend: Backend) -> Self {
        let db = TestDb::create().await.unwrap();
        let store = match backend {
            Backend::Postgres => crate::store_args(Some(db.url.clone()), crate::temp_dir()),
            Backend::Sqlite => crate::store_args(None, crate::temp_dir()),
        };
        // Every port first: each service is the others' peer.
        let mut listeners = Vec::new();
        let mut peers = PeerArgs::default();
        for def in registry.services() {
            let listener = RunningServer::bind().await;
            peers = peers.with(def.name, format!("http://{}", listener.local_addr().unwrap()));
            listeners.push((def.name, listener));
        }
        let mut cluster = Self { db, store, backend, registry, peers, servers: BTreeMap::new() };
        for (name, listener) in listeners {
            let server = cluster.start_service(name, listener, crate::server_args()).await;
            cluster.servers.insert(name, server);
        }
        cluster
    }

    /// The server of `name`.
    pub fn server(&self, name: &str) -> &RunningServer {
        self.servers.get(name).unwrap_or_else(|| panic!("no {name} service in this cluster"))
    }

    /// The context a service of this cluster is built with: its store, the
    /// test secrets, Redis with PostgreSQL (the in-process cache with
    /// SQLite), the registry and every peer.
    pub fn context(&self) -> ServiceContext {
        let redis = (self.backend == Backend::Postgres).then(crate::redis_url);
        self.context_with(redis, &self.peers)
    }

    /// A context like [`Cluster::context`], with its own Redis and peers.
    pub fn context_with(&self, redis_url: Option<String>, peers: &PeerArgs) -> ServiceContext {
        let peers = Peers::resolve(peers, &self.registry, None).unwrap();
        crate::context(self.store.clone(), redis_url).with_registry(self.registry).with_peers(peers)
    }

    /// Starts (another replica of) service `name` on `listener`, with this
    /// cluster's context and server settings `args`; returns once it is
    /// SERVING.
    pub async fn start_service(
        &self,
        name: &str,
        listener: tokio::net::TcpListener,
        args: ServerArgs,
    ) -> RunningServer {
        self.start_with(name, &self.context(), listener, args).await
    }

    /// Starts service `name` built with `ctx` on `listener`.
    pub async fn start_with(
        &self,
        name: &str,
        ctx: &ServiceContext,
        listener: tokio::net::TcpListener,
        args: ServerArgs,
    ) -> RunningServer {
        let def = self.registry.get(name).unwrap_or_else(|| panic!("no {name} service in the registry"));
        let module = (def.build)(ctx).await.unwrap();
        let server = RunningServer::start_on(listener, vec![module], args);
        server.wait_serving().await;
        server
    }

    /// Stops service `name` gracefully; its port is free again.
    pub async fn stop(&mut self, name: &str) -> std::net::SocketAddr {
        let server = self.servers.remove(name).unwrap_or_else(|| panic!("no {name} service running"));
        let addr = server.addr;
        server.stop().await.unwrap();
        addr
    }

    /// Starts service `name` again on `addr`, where it ran before (its
    /// peers know it there).
    pub async fn restart(&mut self, name: &'static str, addr: std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let server = self.start_service(name, listener, crate::server_args()).await;
        self.servers.insert(name, server);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.store.data_dir);
    }
}
