//! Redis cache backend, shared by every replica.
//!
//! Fail-open: the connection is made lazily and re-made by the connection
//! manager; after an error the backend stays out of the way for a short while
//! (a circuit breaker) so calls do not wait on a dead Redis. Invalidations
//! that could not be sent are kept and replayed before the cache is read
//! again, so a write made while Redis was down cannot leave a stale entry.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{CacheBackend, CacheKey, Lease};
use crate::tenant::TenantId;

/// How long Redis is left alone after a failure.
const BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait for one Redis command; the database is the fallback.
const OP_TIMEOUT: Duration = Duration::from_millis(250);

/// Sets the value only while the reader's lease is still there (an
/// invalidation removes it), then drops the lease. Both keys share the
/// tenant's hash tag, so the script is valid on Redis Cluster.
const FILL_SCRIPT: &str = r"
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
";

/// Drops the lease only if it is still the caller's.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

pub struct RedisCache {
    manager: ConnectionManager,
    fill: redis::Script,
    release: redis::Script,
    open_until: Mutex<Option<Instant>>,
    pending: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisCache")
    }
}

impl RedisCache {
    /// Prepares the connection without making it: a Redis that is down at
    /// start does not stop the service.
    pub fn connect_lazy(url: &str) -> redis::RedisResult<Self> {
        // Cache commands are tiny: without TCP_NODELAY they wait on delayed ACKs.
        let info = redis::IntoConnectionInfo::into_connection_info(url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = client.get_connection_manager_lazy(config)?;
        Ok(Self {
            manager,
            fill: redis::Script::new(FILL_SCRIPT),
            release: redis::Script::new(RELEASE_SCRIPT),
            open_until: Mutex::new(None),
            pending: Mutex::default(),
        })
    }

    fn circuit_open(&self) -> bool {
        let open_until = self.open_until.lock().unwrap_or_else(|p| p.into_inner());
        open_until.is_some_and(|until| Instant::now() < until)
    }

    fn trip(&self, err: &dyn std::fmt::Display) {
        let mut open_until = self.open_until.lock().unwrap_or_else(|p| p.into_inner());
        if open_until.is_none_or(|until| Instant::now() >= until) {
            tracing::warn!(error = %err, backoff_ms = BACKOFF.as_millis() as u64, "redis unavailable, serving from the database");
        }
        *open_until = Some(Instant::now() + BACKOFF);
    }

    fn take_pending(&self) -> Vec<String> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.drain().collect()
    }

    fn keep_pending(&self, keys: impl IntoIterator<Item = String>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend(keys);
    }

    /// Runs one command, unless Redis is known to be down or invalidations
    /// are still owed to it (replayed first).
    async fn run<T, F, Fut>(&self, command: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.circuit_open() {
            return None;
        }
        let owed = self.take_pending();
        if !owed.is_empty() {
            let mut conn = self.manager.clone();
            match tokio::time::timeout(OP_TIMEOUT, conn.del::<_, ()>(&owed)).await {
                Ok(Ok(())) => tracing::info!(keys = owed.len(), "replayed cache invalidations after a redis outage"),
                Ok(Err(err)) => return self.fail(owed, &err),
                Err(elapsed) => return self.fail(owed, &elapsed),
            }
        }
        match tokio::time::timeout(OP_TIMEOUT, command(self.manager.clone())).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => self.fail(Vec::new(), &err),
            Err(elapsed) => self.fail(Vec::new(), &elapsed),
        }
    }

    fn fail<T>(&self, owed: Vec<String>, err: &dyn std::fmt::Display) -> Option<T> {
        self.keep_pending(owed);
        self.trip(err);
        None
    }
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &CacheKey) -> Option<Vec<u8>> {
        self.run(|mut conn| async move { conn.get::<_, Option<Vec<u8>>>(key.as_str()).await }).await.flatten()
    }

    async fn lease(&self, key: &CacheKey, ttl: Duration) -> Option<Lease> {
        let token = uuid::Uuid::new_v4().to_string();
        let lease_key = key.lease();
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(ttl.as_millis() as u64));
        let set: Option<Option<String>> = self
            .run(|mut conn| {
                let token = token.clone();
                async move { conn.set_options(&lease_key, token, options).await }
            })
            .await;
        // `SET … NX` answers OK when it set the key, nil when it was taken.
        set.flatten().map(|_| Lease(token))
    }

    async fn fill(&self, key: &CacheKey, lease: &Lease, value: &[u8], ttl: Duration) {
        let lease_key = key.lease();
        let ttl_ms = ttl.as_millis() as u64;
        let _: Option<i64> = self
            .run(|mut conn| async move {
                self.fill
                    .key(key.as_str())
                    .key(&lease_key)
                    .arg(&lease.0)
                    .arg(value)
                    .arg(ttl_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
    }

    async fn release(&self, key: &CacheKey, lease: &Lease) {
        let lease_key = key.lease();
        let _: Option<i64> = self
            .run(|mut conn| async move { self.release.key(&lease_key).arg(&lease.0).invoke_async(&mut conn).await })
            .await;
    }

    async fn invalidate(&self, key: &CacheKey) {
        let keys = vec![key.as_str().to_owned(), key.lease()];
        let done = self
            .run(|mut conn| {
                let keys = keys.clone();
                async move { conn.del::<_, ()>(keys).await }
            })
            .await;
        if done.is_none() {
            self.keep_pending(keys);
        }
    }

    async fn invalidate_prefix(&self, tenant: &TenantId, prefix: &str) {
        let pattern = format!("{}*", CacheKey::new(tenant, prefix, "").as_str().trim_end_matches(':'));
        let _: Option<()> = self
            .run(|mut conn| async move {
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut conn)
                        .await?;
                    if !keys.is_empty() {
                        conn.del::<_, ()>(keys).await?;
                    }
                    if next == 0 {
                        return Ok(());
                    }
                    cursor = next;
                }
            })
            .await;
    }
}
