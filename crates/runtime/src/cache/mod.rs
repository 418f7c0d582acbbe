//! Cache-aside over a shared cache (docs/DECISIONS.md, Cache).
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
//! - coherence: a shared cache is bound to the service's database, whose
//!   epoch every value carries ([`epoch`]); an invalidation Redis did not
//!   take moves the epoch on instead of being owed in memory;
//! - fail-open reads: a backend error is a miss, never a failed call.

mod coherence;
pub mod epoch;
pub mod generation;
pub mod memory;
pub mod redis;
mod redis_conn;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tracing::Instrument;

use crate::store::Db;
use crate::tenant::TenantId;
use coherence::Coherence;
pub use coherence::{CHECK_PERIOD, ERASURE_WAIT, TRUST};

/// A cache entry's key: `cx:{tenant}:<kind>:<id>`; a key of a group (see
/// [`CacheKey::in_group`]) also names the group's index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(String, Option<String>);

impl CacheKey {
    pub fn new(tenant: &TenantId, kind: &str, id: &str) -> Self {
        Self(format!("cx:{{{tenant}}}:{kind}:{id}"), None)
    }

    /// `cx:{tenant}:<kind>:<group>:<id>`, one of the keys that
    /// [`Cache::invalidate_group`] drops together. The backend keeps the
    /// group's keys in an index beside them (same tenant, so same Redis
    /// Cluster slot): dropping a group reads its index, never the keyspace.
    pub fn in_group(tenant: &TenantId, kind: &str, group: &str, id: &str) -> Self {
        let index = group_index(tenant, kind, group);
        Self(format!("cx:{{{tenant}}}:{kind}:{group}:{id}"), Some(index))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn lease(&self) -> String {
        format!("{}:lease", self.0)
    }

    /// The index of the key's group, if it has one.
    pub fn group_index(&self) -> Option<&str> {
        self.1.as_deref()
    }
}

/// The key of the index of a group of keys (see [`CacheKey::in_group`]).
fn group_index(tenant: &TenantId, kind: &str, group: &str) -> String {
    format!("cx:{{{tenant}}}:group:{kind}:{group}")
}

/// A lease on filling one key, proof that no write invalidated it since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease(pub String);

/// A value as the backend returns it, with the server it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub value: Vec<u8>,
    /// The identity of the server that answered (Redis `run_id`), when the
    /// connection it came over was checked; `None` otherwise.
    pub server: Option<Arc<str>>,
}

/// A shared key/value cache. Implementations swallow their own errors (a
/// failure is a miss) and log them.
#[async_trait]
pub trait CacheBackend: Send + Sync + std::fmt::Debug + 'static {
    async fn get(&self, key: &CacheKey) -> Option<Hit>;
    /// Takes the fill lease of `key`, unless another reader holds it.
    async fn lease(&self, key: &CacheKey, ttl: Duration) -> Option<Lease>;
    /// Stores `value` if `lease` is still the key's lease, then drops it.
    async fn fill(&self, key: &CacheKey, lease: &Lease, value: &[u8], ttl: Duration);
    /// Drops `lease` without filling (nothing found, or the load failed).
    async fn release(&self, key: &CacheKey, lease: &Lease);
    /// Removes the entry and any fill lease; false if that may not be done.
    async fn invalidate(&self, key: &CacheKey) -> bool;
    /// Removes every key of the group `kind`/`group` of `tenant` (see
    /// [`CacheKey::in_group`]) and their fill leases; false if that may not
    /// be done.
    async fn invalidate_group(&self, tenant: &TenantId, kind: &str, group: &str) -> bool;

    // Many keys at once: one round trip where the backend can (Redis
    // pipelines); by default one key after the other.

    /// [`CacheBackend::get`] of each of `keys`, in order.
    async fn get_many(&self, keys: &[&CacheKey]) -> Vec<Option<Hit>> {
        let mut hits = Vec::with_capacity(keys.len());
        for key in keys {
            hits.push(self.get(key).await);
        }
        hits
    }
    /// [`CacheBackend::lease`] of each of `keys`, in order.
    async fn lease_many(&self, keys: &[&CacheKey], ttl: Duration) -> Vec<Option<Lease>> {
        let mut leases = Vec::with_capacity(keys.len());
        for key in keys {
            leases.push(self.lease(key, ttl).await);
        }
        leases
    }
    /// [`CacheBackend::fill`] of each entry.
    async fn fill_many(&self, fills: &[(&CacheKey, &Lease, Vec<u8>)], ttl: Duration) {
        for (key, lease, value) in fills {
            self.fill(key, lease, value, ttl).await;
        }
    }
    /// [`CacheBackend::release`] of each lease.
    async fn release_many(&self, leases: &[(&CacheKey, &Lease)]) {
        for (key, lease) in leases {
            self.release(key, lease).await;
        }
    }
    /// [`CacheBackend::invalidate`] of each of `keys`; false if one may not
    /// have been done.
    async fn invalidate_many(&self, keys: &[CacheKey]) -> bool {
        for key in keys {
            if !self.invalidate(key).await {
                return false;
            }
        }
        true
    }
    /// Whether other processes share it (and so need [`Cache::bind`]).
    fn shared(&self) -> bool {
        false
    }
    /// The identity of the server answering now (Redis `run_id`), checked on
    /// the connection reads use; `None` when it cannot be reached.
    async fn incarnation(&self) -> Option<Arc<str>> {
        None
    }
}

/// How long a fill lease lasts: longer than any sane database read.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// Every cached value starts with this, then its epoch (8 bytes, big endian).
const MAGIC: &[u8; 4] = b"cxE1";

fn seal(epoch: i64, value: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(12 + value.len());
    sealed.extend_from_slice(MAGIC);
    sealed.extend_from_slice(&epoch.to_be_bytes());
    sealed.extend_from_slice(value);
    sealed
}

/// The value inside `sealed` if it was cached under `epoch`.
fn open(epoch: i64, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
    let header = sealed.get(..12)?;
    if &header[..4] != MAGIC || header[4..] != epoch.to_be_bytes() {
        return None;
    }
    sealed.drain(..12);
    Some(sealed)
}

/// An invalidation that neither the cache nor the database took: the write
/// it follows is stored, but must not be acknowledged (`UNAVAILABLE`).
#[derive(Debug, thiserror::Error)]
#[error("the cache could not be invalidated and the database could not record it: {0}")]
pub struct CacheUnavailable(String);

impl From<CacheUnavailable> for crate::error::ServiceError {
    fn from(err: CacheUnavailable) -> Self {
        Self::Unavailable(err.to_string())
    }
}

impl From<CacheUnavailable> for tonic::Status {
    fn from(err: CacheUnavailable) -> Self {
        crate::error::ServiceError::from(err).into()
    }
}

/// How an invalidation was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dropped {
    Deleted,
    /// Redis did not answer; the epoch moved on instead.
    Bumped,
}

/// The cache as services use it.
#[derive(Clone, Debug)]
pub struct Cache {
    backend: Arc<dyn CacheBackend>,
    ttl: Duration,
    flights: Arc<Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>>,
    coherence: Option<Arc<Coherence>>,
    /// The service whose lookups `cx_cache_lookups_total` counts.
    service: &'static str,
}

impl Cache {
    pub fn new(backend: Arc<dyn CacheBackend>, ttl: Duration) -> Self {
        Self { backend, ttl, flights: Arc::default(), coherence: None, service: "" }
    }

    /// An in-process cache (embedded mode, tests).
    pub fn in_memory(ttl: Duration) -> Self {
        Self::new(Arc::new(memory::MemoryCache::new(100_000)), ttl)
    }

    pub fn backend(&self) -> &Arc<dyn CacheBackend> {
        &self.backend
    }

    /// The cache of one service, whose epoch lives in `db` (its migrator
    /// lists [`epoch::CacheEpochTable`]). An in-process cache needs none.
    /// Run [`Cache::keeper`] in the background.
    pub fn bind(&self, db: &Db) -> Self {
        if !self.backend.shared() {
            return self.clone();
        }
        let coherence = Arc::new(Coherence::new(db.clone(), self.backend.clone()));
        Self {
            backend: self.backend.clone(),
            ttl: self.ttl,
            flights: Arc::default(),
            coherence: Some(coherence),
            service: self.service,
        }
    }

    /// The same cache, its lookups counted as `service`'s.
    pub fn named(mut self, service: &'static str) -> Self {
        self.service = service;
        self
    }

    /// Counts lookups that hit and missed (`cx_cache_lookups_total`).
    fn count(&self, hits: u64, misses: u64) {
        let process = crate::metrics::process();
        for (result, n) in [("hit", hits), ("miss", misses)] {
            if n > 0 {
                let label = crate::metrics::LookupLabel { cx_service: self.service.to_owned(), result };
                process.cache_lookups.get_or_create(&label).inc_by(n);
            }
        }
    }

    /// The background work of a bound cache: keeps its epoch fresh.
    pub fn keeper(&self, stop: tokio::sync::watch::Receiver<bool>) -> Option<BoxFuture<'static, ()>> {
        let coherence = self.coherence.clone()?;
        Some(Box::pin(coherence.run(stop)))
    }

    /// The epoch values may be trusted under now; `None`: trust nothing
    /// cached (not checked lately). Local memories of a service (identity
    /// resolutions) keep it beside each entry and drop entries of another.
    pub fn epoch(&self) -> Option<i64> {
        match &self.coherence {
            Some(coherence) => coherence.epoch(),
            None => Some(0),
        }
    }

    /// The epoch a value read from `server` must carry.
    fn epoch_for(&self, server: Option<&str>) -> Option<i64> {
        match &self.coherence {
            Some(coherence) => coherence.epoch_for(server),
            None => Some(0),
        }
    }

    /// The cached bytes of `key`, or those `load` reads from the database
    /// (which then fill the cache). `load` returning `None` (not found) is not
    /// cached.
    pub async fn get_or_load<E, F, Fut>(&self, key: &CacheKey, load: F) -> Result<Option<Vec<u8>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Vec<u8>>, E>>,
    {
        // Counted once per call: a hit when the cache answered, a miss when
        // the database did.
        if let Some(hit) = self.lookup(key).await {
            self.count(1, 0);
            return Ok(Some(hit));
        }
        let flight = self.flight(key);
        let _turn = flight.lock().await;
        // Another task of this process may have filled it while we waited.
        if let Some(hit) = self.lookup(key).await {
            self.land(key);
            self.count(1, 0);
            return Ok(Some(hit));
        }
        self.count(0, 1);
        // The epoch before the read: a bump during it makes this fill a miss.
        let epoch = self.epoch();
        let lease = match epoch {
            Some(_) => self.backend.lease(key, LEASE_TTL).await,
            None => None,
        };
        let loaded = load().await;
        match (&loaded, &lease, epoch) {
            (Ok(Some(value)), Some(lease), Some(epoch)) => {
                self.backend.fill(key, lease, &seal(epoch, value), self.ttl).await;
            }
            (_, Some(lease), _) => self.backend.release(key, lease).await,
            (_, None, _) => {}
        }
        self.land(key);
        loaded
    }

    /// The cached bytes of each of `keys` (distinct), in order; those not
    /// cached are read together by `load`, given their positions, which
    /// answers the values it found by position (not found: absent, not
    /// cached). What it finds fills the cache under fill leases taken
    /// before it reads, as in [`Cache::get_or_load`], so a read that raced a
    /// write never puts the old value back. One round trip to Redis for the
    /// reads, one for the leases, one for the fills; no single flight
    /// (concurrent loaders of a key each read the database, the lease holder
    /// alone fills).
    pub async fn get_or_load_many<E, F, Fut>(&self, keys: &[CacheKey], load: F) -> Result<Vec<Option<Vec<u8>>>, E>
    where
        F: FnOnce(Vec<usize>) -> Fut,
        Fut: Future<Output = Result<HashMap<usize, Vec<u8>>, E>>,
    {
        let all: Vec<&CacheKey> = keys.iter().collect();
        let hits = self.backend.get_many(&all).await;
        let mut values: Vec<Option<Vec<u8>>> = hits
            .into_iter()
            .map(|hit| hit.and_then(|hit| open(self.epoch_for(hit.server.as_deref())?, hit.value)))
            .collect();
        values.resize(keys.len(), None);
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.count(hits, keys.len() as u64 - hits);
        let missing: Vec<usize> = (0..keys.len()).filter(|i| values[*i].is_none()).collect();
        if missing.is_empty() {
            return Ok(values);
        }
        // The epoch before the read: a bump during it makes these fills misses.
        let epoch = self.epoch();
        let missing_keys: Vec<&CacheKey> = missing.iter().map(|i| &keys[*i]).collect();
        let mut leases = match epoch {
            Some(_) => self.backend.lease_many(&missing_keys, LEASE_TTL).await,
            None => Vec::new(),
        };
        leases.resize(missing.len(), None);
        let loaded = load(missing.clone()).await;
        let found = loaded.as_ref().ok();
        let (mut fills, mut releases) = (Vec::new(), Vec::new());
        for (i, lease) in missing.iter().zip(&leases) {
            let Some(lease) = lease else { continue };
            match (found.and_then(|f| f.get(i)), epoch) {
                (Some(value), Some(epoch)) => fills.push((&keys[*i], lease, seal(epoch, value))),
                _ => releases.push((&keys[*i], lease)),
            }
        }
        if !fills.is_empty() {
            self.backend.fill_many(&fills, self.ttl).await;
        }
        if !releases.is_empty() {
            self.backend.release_many(&releases).await;
        }
        for (i, value) in loaded? {
            if let Some(slot) = values.get_mut(i) {
                *slot = Some(value);
            }
        }
        Ok(values)
    }

    async fn lookup(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let span = tracing::debug_span!(
            "cache.get",
            db.system = "redis",
            cache.key = key.as_str(),
            cache.hit = tracing::field::Empty
        );
        // Instrumented, not entered: a guard held across the await would be
        // dropped on whichever thread the task resumes on, and corrupt the
        // span stacks of both threads.
        let hit = self.backend.get(key).instrument(span.clone()).await;
        let value = hit.and_then(|hit| open(self.epoch_for(hit.server.as_deref())?, hit.value));
        span.record("cache.hit", value.is_some());
        value
    }

    /// Drops `key` after a write to what it caches. Call after the commit,
    /// and do not acknowledge the write if it fails.
    pub async fn invalidate(&self, key: &CacheKey) -> Result<(), CacheUnavailable> {
        self.drop_keys(std::slice::from_ref(key)).await.map(|_| ())
    }

    /// Drops `keys` (see [`Cache::invalidate`]).
    pub async fn invalidate_all(&self, keys: &[CacheKey]) -> Result<(), CacheUnavailable> {
        self.drop_keys(keys).await.map(|_| ())
    }

    /// Drops an erased customer's `keys`. When Redis did not take them, it
    /// returns only once no replica can still trust what it cached before
    /// ([`ERASURE_WAIT`]): an erasure is acknowledged when it is true.
    pub async fn invalidate_erased(&self, keys: &[CacheKey]) -> Result<(), CacheUnavailable> {
        if self.drop_keys(keys).await? == Dropped::Bumped {
            tokio::time::sleep(ERASURE_WAIT).await;
        }
        Ok(())
    }

    /// Drops every key of a group (see [`CacheKey::in_group`] and
    /// [`Cache::invalidate_erased`]).
    pub async fn invalidate_group(&self, tenant: &TenantId, kind: &str, group: &str) -> Result<(), CacheUnavailable> {
        if self.backend.invalidate_group(tenant, kind, group).await {
            return Ok(());
        }
        self.bump().await?;
        tokio::time::sleep(ERASURE_WAIT).await;
        Ok(())
    }

    async fn drop_keys(&self, keys: &[CacheKey]) -> Result<Dropped, CacheUnavailable> {
        let dropped = match keys {
            [] => true,
            [key] => self.backend.invalidate(key).await,
            _ => self.backend.invalidate_many(keys).await,
        };
        // One failure is enough: the epoch covers every key at once.
        if dropped {
            return Ok(Dropped::Deleted);
        }
        self.bump().await?;
        Ok(Dropped::Bumped)
    }

    async fn bump(&self) -> Result<(), CacheUnavailable> {
        match &self.coherence {
            Some(coherence) => coherence.bump().await.map_err(|e| CacheUnavailable(e.to_string())),
            None => Err(CacheUnavailable("the cache is not bound to a database".into())),
        }
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
    async fn lookups_are_counted_as_hits_and_misses_of_their_service() {
        let cache = Cache::in_memory(Duration::from_secs(60)).named("counted");
        let key = CacheKey::new(&tenant(), "profile", "1");
        let load = || async { Ok::<_, ()>(Some(b"v".to_vec())) };
        // A miss (loaded), then two hits; then three keys, one cached.
        for _ in 0..3 {
            cache.get_or_load(&key, load).await.unwrap();
        }
        let keys = [key.clone(), CacheKey::new(&tenant(), "profile", "2"), CacheKey::new(&tenant(), "profile", "3")];
        cache
            .get_or_load_many::<(), _, _>(&keys, |missing| async move {
                Ok(missing.into_iter().map(|i| (i, b"w".to_vec())).collect())
            })
            .await
            .unwrap();
        let lookups = |result| {
            let label = crate::metrics::LookupLabel { cx_service: "counted".into(), result };
            crate::metrics::process().cache_lookups.get_or_create(&label).get()
        };
        assert_eq!((lookups("hit"), lookups("miss")), (3, 3));
    }

    #[tokio::test]
    async fn a_group_goes_together_and_nothing_else_in_process() {
        let cache = Cache::in_memory(Duration::from_secs(60));
        let (a, b) = (
            CacheKey::in_group(&tenant(), "analysis", "m1", "x"),
            CacheKey::in_group(&tenant(), "analysis", "m1", "y"),
        );
        let (other, near) =
            (CacheKey::in_group(&tenant(), "analysis", "m2", "x"), CacheKey::new(&tenant(), "analysis", "m10"));
        for key in [&a, &b, &other, &near] {
            cache.get_or_load(key, || async { Ok::<_, ()>(Some(b"v".to_vec())) }).await.unwrap();
        }
        cache.invalidate_group(&tenant(), "analysis", "m1").await.unwrap();
        let cached = |key: &CacheKey| {
            let key = key.clone();
            let backend = cache.backend().clone();
            async move { backend.get(&key).await.is_some() }
        };
        assert_eq!((cached(&a).await, cached(&b).await), (false, false));
        assert_eq!((cached(&other).await, cached(&near).await), (true, true), "m2 and m10 are other groups");
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
                cache.invalidate(&key).await.unwrap();
                Ok(Some(b"old".to_vec()))
            })
            .await;
        assert_eq!(loaded, Ok(Some(b"old".to_vec())));
        assert_eq!(cache.backend().get(&key).await, None, "the racing fill must be refused");
        // The next read fills normally.
        let next = cache.get_or_load::<(), _, _>(&key, || async { Ok(Some(b"new".to_vec())) }).await;
        assert_eq!(next, Ok(Some(b"new".to_vec())));
        assert_eq!(cache.backend().get(&key).await.map(|hit| hit.value), Some(seal(0, b"new")));
    }

    #[test]
    fn a_value_opens_only_under_its_own_epoch() {
        let sealed = seal(7, b"v");
        assert_eq!(&sealed[..4], b"cxE1");
        assert_eq!(open(7, sealed.clone()), Some(b"v".to_vec()));
        assert_eq!(open(8, sealed), None);
        // Values cached before epochs existed carry no header: a miss.
        assert_eq!(open(0, b"v".to_vec()), None);
    }

    #[tokio::test]
    async fn many_keys_load_what_is_missing_once_and_refuse_fills_a_write_raced() {
        let cache = Cache::in_memory(Duration::from_secs(60));
        let keys: Vec<CacheKey> = (0..4).map(|i| CacheKey::new(&tenant(), "many", &i.to_string())).collect();
        // Key 0 is cached already; 1 and 2 are found; 3 is not found.
        cache.get_or_load::<(), _, _>(&keys[0], || async { Ok(Some(b"zero".to_vec())) }).await.unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let loaded = cache
            .get_or_load_many::<(), _, _>(&keys, |missing| {
                let asked = asked.clone();
                let cache = cache.clone();
                let raced = keys[2].clone();
                async move {
                    asked.lock().unwrap().extend(missing);
                    // A writer invalidates key 2 while it is read.
                    cache.invalidate(&raced).await.unwrap();
                    Ok(HashMap::from([(1, b"one".to_vec()), (2, b"old".to_vec())]))
                }
            })
            .await
            .unwrap();
        assert_eq!(*asked.lock().unwrap(), [1, 2, 3], "only the keys not cached are loaded");
        assert_eq!(loaded, [Some(b"zero".to_vec()), Some(b"one".to_vec()), Some(b"old".to_vec()), None]);
        let cached: Vec<_> = futures::future::join_all(keys.iter().map(|k| cache.backend().get(k))).await;
        let cached: Vec<_> = cached.into_iter().map(|hit| hit.map(|h| h.value)).collect();
        assert_eq!(cached, [Some(seal(0, b"zero")), Some(seal(0, b"one")), None, None], "the raced fill is refused");
        // Every lease was given back: key 3 (not found) and key 2 can be leased again.
        assert!(cache.backend().lease(&keys[3], LEASE_TTL).await.is_some());
        assert!(cache.backend().lease(&keys[2], LEASE_TTL).await.is_some());
    }

    #[tokio::test]
    async fn a_miss_releases_its_lease() {
        let cache = Cache::in_memory(Duration::from_secs(60));
        let key = CacheKey::new(&tenant(), "profile", "3");
        assert_eq!(cache.get_or_load::<(), _, _>(&key, || async { Ok(None) }).await, Ok(None));
        assert!(cache.backend().lease(&key, LEASE_TTL).await.is_some(), "the lease is free again");
    }
}
