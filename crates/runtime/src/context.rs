//! What a service is built from: validated settings, the shared cache and the
//! token verifier, assembled once per process and handed to each service.

use std::sync::Arc;

use crate::auth::{AuthInterceptor, Keys};
use crate::cache::Cache;
use crate::cache::redis::RedisCache;
use crate::config::{AuthArgs, CacheArgs, ConfigError, JobArgs, ServiceAuthArgs, StoreArgs};
use crate::identity::{InternalAuth, ServiceKey};
use crate::peers::Peers;
use crate::registry::Registry;
use crate::secrets::Fallback;

#[derive(Clone, Debug)]
pub struct ServiceContext {
    pub store: StoreArgs,
    pub cache: Cache,
    pub auth: AuthInterceptor,
    pub keys: Keys,
    /// Signs this process's calls to other services (outbox deliveries).
    pub service_key: ServiceKey,
    /// Admits only other services to internal RPCs.
    pub internal: InternalAuth,
    pub jobs: JobArgs,
    /// The other services this one calls.
    pub peers: Peers,
    /// The services of the suite.
    pub registry: Registry,
}

impl ServiceContext {
    /// Sets the schedule of background work.
    pub fn with_jobs(mut self, jobs: JobArgs) -> Result<Self, ConfigError> {
        if jobs.sweep_interval.is_zero() {
            return Err(ConfigError::new("CX_SWEEP_INTERVAL", "must be longer than zero"));
        }
        self.jobs = jobs;
        Ok(self)
    }

    pub fn with_peers(mut self, peers: Peers) -> Self {
        self.peers = peers;
        self
    }

    pub fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// The services `asking` fans merges and erasures out to: every
    /// registered service holding customer data. Each must be reachable, or
    /// declared not deployed: an erasure never completes without a service
    /// that may hold the customer's data.
    pub fn participants(&self, asking: &str) -> Result<Vec<&'static str>, ConfigError> {
        let mut asked = Vec::new();
        for name in self.registry.participants(asking) {
            if self.peers.contains(name) {
                asked.push(name);
            } else if !self.peers.is_absent(name) {
                let setting = self.registry.get(name).map_or_else(|| "CX_PEERS".to_owned(), |d| d.endpoint_setting());
                return Err(ConfigError::new(
                    setting,
                    format!(
                        "the {name} service holds customer data and erasures wait for it: set its endpoint, \
                         or name it in CX_NOT_DEPLOYED if this deployment does not run it"
                    ),
                ));
            }
        }
        Ok(asked)
    }

    /// Validates the settings and builds the shared pieces. Connections are
    /// made lazily: nothing here waits on the network.
    pub fn from_args(
        store: &StoreArgs,
        cache: &CacheArgs,
        auth: &AuthArgs,
        internal: &ServiceAuthArgs,
    ) -> Result<Self, ConfigError> {
        cache.validate()?;
        // Only the embedded default may make up its secrets: separate
        // processes that each made their own would refuse each other.
        let fallback = if store.is_embedded() { Fallback::Generate } else { Fallback::Refuse };
        let keys = Keys::load(auth, &store.data_dir, fallback)?;
        let service_key = ServiceKey::load(internal, &store.data_dir, fallback)?;
        if service_key.could_sign_for(&keys.verifier) {
            return Err(ConfigError::new(
                "CX_SERVICE_SECRET",
                "must differ from the user-token secret: whoever signs user tokens must not speak as a service",
            ));
        }
        let cache = match cache.redis_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                let redis =
                    RedisCache::connect_lazy(url).map_err(|e| ConfigError::new("CX_REDIS_URL", e.to_string()))?;
                Cache::new(Arc::new(redis), cache.cache_ttl)
            }
            None => Cache::in_memory(cache.cache_ttl),
        };
        Ok(Self {
            store: store.clone(),
            cache,
            auth: AuthInterceptor::new(keys.verifier.clone()),
            keys,
            internal: InternalAuth::new(service_key.clone()),
            service_key,
            jobs: JobArgs::default(),
            peers: Peers::default(),
            registry: Registry::default(),
        })
    }
}
