//! Cache-aside over a shared cache (DESIGN §7).
//!
//! [`CacheBackend`] is the one trait; [`redis::RedisCache`] is shared by every
//! replica, [`memory::MemoryCache`] serves the embedded mode. [`Cache`] adds
//! what every service needs on top:
//! - keys always carry the tenant as a Redis Cluster hash tag (`cx:{t}:…`);
//! - single-flight: concurrent misses of one key in a process load it once;
//! - fill leases: a reader takes a lease before reading the database and may
//!   only fill the cache while it still holds it; a writer's invalidation
//!   drops the lease, so a read that raced a write can never put the old
//!   value back (no stale entry survives a write, across replicas);
//! - fail-open: a backend error is a miss, never a failed call.

pub mod memory;
pub mod redis;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::tenant::TenantId;

/// A cache entry's key: `cx:{tenant}:<kind>:<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn new(tenant: &TenantId, kind: &str, id: &str) -> Self {
        Self(format!("cx:{{{tenant}}}:{kind}:{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn lease(&self) -> String {
        format!("{}:lease", self.0)
    }
}

/// A lease on filling one key, proof that no write invalidated it since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease(pub String);

/// A shared key/value cache. Implementations swallow their own errors (a
/// failure is a miss) and log them.
#[async_trait]
pub trait CacheBackend: Send + Sync + std::fmt::Debug + 'static {
    async fn get(&self, key: &CacheKey) -> Option<Vec<u8>>;
    /// Takes the fill lease of `key`, unless another reader holds it.
    async fn lease(&self, key: &CacheKey, ttl: Duration) -> Option<Lease>;
    /// Stores `value` if `lease` is still the key's lease, then drops it.
    async fn fill(&self, key: &CacheKey, lease: &Lease, value: &[u8], ttl: Duration);
    /// Drops `lease` without filling (nothing found, or the load failed).
    async fn release(&self, key: &CacheKey, lease: &Lease);
    /// Removes the entry and any fill lease.
    async fn invalidate(&self, key: &CacheKey);
    /// Removes every key of a tenant that starts with `prefix` (erasure).
    async fn invalidate_prefix(&self, tenant: &TenantId, prefix: &str);
}

/// How long a fill lease lasts: longer than any sane database read.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// The cache as services use it.
#[derive(Clone, Debug)]
pub struct Cache {
    backend: Arc<dyn CacheBackend>,
    ttl: Duration,
    flights: Arc<Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Cache {
    pub fn new(backend: Arc<dyn CacheBackend>, ttl: Duration) -> Self {
        Self { backend, ttl, flights: Arc::default() }
    }

    /// An in-process cache (embedded mode, tests).
    pub fn in_memory(ttl: Duration) -> Self {
        Self::new(Arc::new(memory::MemoryCache::new(100_000)), ttl)
    }

    pub fn backend(&self) -> &Arc<dyn CacheBackend> {
        &self.backend
    }

    /// The cached bytes of `key`, or those `load` reads from the database
    /// (which then fill the cache). `load` returning `None` (not found) is not
    /// cached.
    pub async fn get_or_load<E, F, Fut>(&self, key: &CacheKey, load: F) -> Result<Option<Vec<u8>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Vec<u8>>, E>>,
    {
        if let Some(hit) = self.lookup(key).await {
            return Ok(Some(hit));
        }
        let flight = self.flight(key);
        let _turn = flight.lock().await;
        // Another task of this process may have filled it while we waited.
        if let Some(hit) = self.lookup(key).await {
            self.land(key);
            return Ok(Some(hit));
        }
        let lease = self.backend.lease(key, LEASE_TTL).await;
        let loaded = load().await;
        match (&loaded, &lease) {
            (Ok(Some(value)), Some(lease)) => self.backend.fill(key, lease, value, self.ttl).await,
            (_, Some(lease)) => self.backend.release(key, lease).await,
            (_, None) => {}
        }
        self.land(key);
        loaded
    }

    async fn lookup(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let span = tracing::debug_span!(
            "cache.get",
            db.system = "redis",
            cache.key = key.as_str(),
            cache.hit = tracing::field::Empty
        );
        let _enter = span.enter();
        let hit = self.backend.get(key).await;
        span.record("cache.hit", hit.is_some());
        hit
    }

    /// Drops `key` after a write to what it caches. Call after the commit.
    pub async fn invalidate(&self, key: &CacheKey) {
        self.backend.invalidate(key).await;
    }

    fn flight(&self, key: &CacheKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.entry(key.clone()).or_default().clone()
    }

    /// Forgets the flight of `key` once nobody else waits on it.
    fn land(&self, key: &CacheKey) {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.get(key).is_some_and(|f| Arc::strong_count(f) <= 2) {
            flights.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn keys_carry_the_tenant_as_a_hash_tag() {
        assert_eq!(CacheKey::new(&tenant(), "profile", "42").as_str(), "cx:{acme}:profile:42");
    }

    #[tokio::test]
    async fn concurrent_misses_load_once() {
        let cache = Cache::in_memory(Duration::from_secs(60));
        let key = CacheKey::new(&tenant(), "profile", "1");
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, key, loads) = (cache.clone(), key.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load::<(), _, _>(&key, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(Some(b"v".to_vec()))
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(Some(b"v".to_vec())));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_write_during_a_load_keeps_the_old_value_out() {
        let cache = Cache::in_memory(Duration::from_secs(60));
        let key = CacheKey::new(&tenant(), "profile", "2");
        // The reader loads the old value; a writer invalidates meanwhile.
        let loaded = cache
            .get_or_load::<(), _, _>(&key, || async {
                cache.invalidate(&key).await;
                Ok(Some(b"old".to_vec()))
            })
            .await;
        assert_eq!(loaded, Ok(Some(b"old".to_vec())));
        assert_eq!(cache.backend().get(&key).await, None, "the racing fill must be refused");
        // The next read fills normally.
        let next = cache.get_or_load::<(), _, _>(&key, || async { Ok(Some(b"new".to_vec())) }).await;
        assert_eq!(next, Ok(Some(b"new".to_vec())));
        assert_eq!(cache.backend().get(&key).await, Some(b"new".to_vec()));
    }

    #[tokio::test]
    async fn a_miss_releases_its_lease() {
        let cache = Cache::in_memory(Duration::from_secs(60));
        let key = CacheKey::new(&tenant(), "profile", "3");
        assert_eq!(cache.get_or_load::<(), _, _>(&key, || async { Ok(None) }).await, Ok(None));
        assert!(cache.backend().lease(&key, LEASE_TTL).await.is_some(), "the lease is free again");
    }
}
