//! What a service is built from: validated settings, the shared cache and the
//! token verifier, assembled once per process and handed to each service.

use std::sync::Arc;

use crate::auth::{AuthInterceptor, Keys};
use crate::cache::Cache;
use crate::cache::redis::RedisCache;
use crate::config::{AuthArgs, CacheArgs, ConfigError, JobArgs, ServiceAuthArgs, StoreArgs};
use crate::identity::{InternalAuth, ServiceKey};
use crate::peers::Peers;
use crate::registry::{Feed, Registry};
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
    /// The one PostgreSQL pool of the process's services, when they share it.
    pub shared_pool: Option<crate::store::SharedPool>,
}

impl ServiceContext {
    /// The services built with this context share one PostgreSQL pool of
    /// `CX_DB_MAX_CONNECTIONS` (`cx serve all`), instead of one each.
    pub fn sharing_one_pool(mut self) -> Self {
        self.shared_pool = Some(crate::store::SharedPool::default());
        self
    }

    /// Sets the schedule of background work.
    pub fn with_jobs(mut self, jobs: JobArgs) -> Result<Self, ConfigError> {
        if jobs.sweep_interval.is_zero() {
            return Err(ConfigError::new("CX_SWEEP_INTERVAL", "must be longer than zero"));
        }
        // Renewed every third: shorter would renew in a busy loop.
        if jobs.lease_ttl < std::time::Duration::from_secs(1) {
            return Err(ConfigError::new("CX_JOB_LEASE", "must be at least 1s"));
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
        self.deployed(self.registry.participants(asking), "holds customer data and erasures wait for it")
    }

    /// The services `asking` sends `feed` to: the registered services taking
    /// it that this deployment runs (profile tells them of every consent
    /// decision, journey of every touchpoint…). Like participants, each must
    /// be reachable or declared not deployed, so nothing waits for a service
    /// that is not there.
    pub fn fed(&self, feed: Feed, asking: &str) -> Result<Vec<&'static str>, ConfigError> {
        self.deployed(self.registry.fed(feed, asking), feed.why())
    }

    /// Whether this deployment runs `service`: it is registered and not
    /// named in `CX_NOT_DEPLOYED`. Messages owed to it wait in the outbox
    /// until its endpoint is known.
    pub fn is_deployed(&self, service: &str) -> bool {
        self.registry.get(service).is_some() && !self.peers.is_absent(service)
    }

    /// Those of `names` that are reachable; an error names the setting of
    /// the first that is neither reachable nor declared not deployed.
    fn deployed(&self, names: Vec<&'static str>, why: &str) -> Result<Vec<&'static str>, ConfigError> {
        let mut asked = Vec::new();
        for name in names {
            if self.peers.contains(name) {
                asked.push(name);
            } else if !self.peers.is_absent(name) {
                let setting = self.registry.get(name).map_or_else(|| "CX_PEERS".to_owned(), |d| d.endpoint_setting());
                return Err(ConfigError::new(
                    setting,
                    format!(
                        "the {name} service {why}: set its endpoint, \
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
                let tls = cache.redis_tls()?;
                let redis = match cache.redis_cluster {
                    true => RedisCache::connect_cluster_lazy(&cache.redis_urls(), tls),
                    false => RedisCache::connect_lazy_with(url, tls),
                }
                .map_err(|e| ConfigError::new("CX_REDIS_URL", e.to_string()))?;
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
            shared_pool: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthArgs, CacheArgs, ServiceAuthArgs, StoreArgs};
    use crate::peers::PeerArgs;
    use crate::registry::ServiceDef;

    const SERVICES: &[ServiceDef] = &[
        ServiceDef::elsewhere("profile", true, &[]),
        ServiceDef::elsewhere("survey", true, &[Feed::Consents]),
        ServiceDef::elsewhere("segments", false, &[Feed::Consents]),
    ];
    const REGISTRY: Registry = Registry::new(SERVICES);

    fn context(peers: PeerArgs) -> ServiceContext {
        let dir = std::env::temp_dir().join(format!("cx-context-{}", uuid::Uuid::new_v4().simple()));
        let store = StoreArgs::embedded(dir, 2);
        let auth = AuthArgs { jwt_secret: Some("user-secret-0123456789abcdef-0123".into()), ..AuthArgs::default() };
        let internal =
            ServiceAuthArgs { service_secret: Some("service-key-0123456789abcdef-0123".into()), ..Default::default() };
        let cache = CacheArgs::new(None, std::time::Duration::from_secs(60));
        let ctx = ServiceContext::from_args(&store, &cache, &auth, &internal).unwrap();
        ctx.with_registry(REGISTRY).with_peers(Peers::resolve(&peers, &REGISTRY, None).unwrap())
    }

    #[tokio::test]
    async fn the_consent_feed_is_the_deployed_services_enforcing_consent() {
        let all = PeerArgs::default().with("survey", "http://survey:1").with("segments", "http://segments:1");
        assert_eq!(context(all).fed(Feed::Consents, "profile").unwrap(), ["survey", "segments"]);
        // Segments not deployed: left out, and known not to be there.
        let mut some = PeerArgs::default().with("survey", "http://survey:1");
        some.not_deployed = vec!["segments".into()];
        let ctx = context(some);
        assert_eq!(ctx.fed(Feed::Consents, "profile").unwrap(), ["survey"]);
        assert_eq!(
            (ctx.is_deployed("survey"), ctx.is_deployed("segments"), ctx.is_deployed("kpi")),
            (true, false, false)
        );
        // Neither reachable nor declared absent: the setting is named.
        let err =
            context(PeerArgs::default().with("survey", "http://survey:1")).fed(Feed::Consents, "profile").unwrap_err();
        assert_eq!(err.setting, "CX_SEGMENTS_ENDPOINT");
        assert!(err.to_string().contains("the segments service enforces consent"), "{err}");
    }
}
