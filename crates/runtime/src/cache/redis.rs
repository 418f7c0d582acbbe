//! Redis cache backend, shared by every replica.
//!
//! Fail-open: the connection is made lazily and re-made by the connection
//! manager; after an error the backend stays out of the way for a short while
//! (a circuit breaker) so calls do not wait on a dead Redis. An invalidation
//! that could not be sent is reported, never kept: the cache's epoch covers
//! it (see [`super::epoch`]).
//!
//! Each checked connection gets a name of its own (`CLIENT SETNAME`) beside
//! the server's `run_id`; every read asks the name in the same round trip, so
//! a value that came over a connection made since (a restarted or failed-over
//! Redis) is never taken for one of the checked server.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManagerConfig;

use super::redis_conn::{LazyCluster, Live, Target, by_tenant};
use super::{CacheBackend, CacheKey, Hit, Lease};
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

/// The connection name and the server it was checked against.
#[derive(Clone, Debug)]
struct Checked {
    name: String,
    run_id: Arc<str>,
}

pub struct RedisCache {
    target: Target,
    fill: redis::Script,
    release: redis::Script,
    open_until: Mutex<Option<Instant>>,
    checked: Mutex<Option<Checked>>,
    /// One check at a time: the services of one process share the backend,
    /// and two renames at once could leave the name not the one recorded.
    checking: tokio::sync::Mutex<()>,
}

/// The TLS files of a `rediss://` connection, as the client takes them.
fn certificates(pem: crate::tls::TlsPem) -> redis::TlsCertificates {
    let client_tls = pem.identity.map(|(client_cert, client_key)| redis::ClientTlsConfig { client_cert, client_key });
    redis::TlsCertificates { client_tls, root_cert: pem.ca }
}

/// The `run_id` line of `INFO server`.
fn run_id(info: &str) -> Option<&str> {
    info.lines().find_map(|line| line.strip_prefix("run_id:")).map(str::trim).filter(|id| !id.is_empty())
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
        Self::connect_lazy_with(url, None)
    }

    /// [`Self::connect_lazy`]; a `rediss://` server is checked against
    /// `tls`'s CA (else the system's roots), which may also hold a client
    /// certificate.
    pub fn connect_lazy_with(url: &str, tls: Option<crate::tls::TlsPem>) -> redis::RedisResult<Self> {
        crate::tls::init();
        // Cache commands are tiny: without TCP_NODELAY they wait on delayed ACKs.
        let info = redis::IntoConnectionInfo::into_connection_info(url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = match tls {
            Some(pem) => redis::Client::build_with_tls(info, certificates(pem))?,
            None => redis::Client::open(info)?,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = client.get_connection_manager_lazy(config)?;
        Ok(Self::with(Target::Single(manager)))
    }

    /// A Redis Cluster reached through `seeds` (any of its nodes, or a
    /// managed service's configuration endpoint), made on first use.
    pub fn connect_cluster_lazy(seeds: &[String], tls: Option<crate::tls::TlsPem>) -> redis::RedisResult<Self> {
        crate::tls::init();
        let mut builder = redis::cluster::ClusterClientBuilder::new(seeds.to_vec())
            .connection_timeout(OP_TIMEOUT)
            .response_timeout(OP_TIMEOUT);
        if let Some(pem) = tls {
            builder = builder.certs(certificates(pem));
        }
        let client = builder.build()?;
        Ok(Self::with(Target::Cluster(Arc::new(LazyCluster { client, connection: tokio::sync::OnceCell::new() }))))
    }

    fn with(target: Target) -> Self {
        Self {
            target,
            fill: redis::Script::new(FILL_SCRIPT),
            release: redis::Script::new(RELEASE_SCRIPT),
            open_until: Mutex::new(None),
            checked: Mutex::new(None),
            checking: tokio::sync::Mutex::new(()),
        }
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

    fn checked(&self) -> Option<Checked> {
        self.checked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs one command, unless Redis is known to be down.
    async fn run<T, F, Fut>(&self, command: F) -> Option<T>
    where
        F: FnOnce(Live) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.circuit_open() {
            return None;
        }
        let attempt = async { command(self.target.connect().await?).await };
        match tokio::time::timeout(OP_TIMEOUT, attempt).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => self.fail(&err),
            Err(elapsed) => self.fail(&elapsed),
        }
    }

    fn fail<T>(&self, err: &dyn std::fmt::Display) -> Option<T> {
        self.trip(err);
        None
    }

    /// The connection's name and the server's `INFO server`, in one round trip.
    async fn name_and_info(&self, rename: Option<&str>) -> Option<(Option<String>, String)> {
        self.run(|mut conn| async move {
            let mut pipe = redis::pipe();
            match rename {
                Some(name) => pipe.cmd("CLIENT").arg("SETNAME").arg(name).ignore(),
                None => pipe.cmd("CLIENT").arg("GETNAME"),
            };
            pipe.cmd("INFO").arg("server");
            match rename {
                Some(name) => {
                    let (info,): (String,) = pipe.query_async(&mut conn).await?;
                    Ok((Some(name.to_owned()), info))
                }
                None => pipe.query_async(&mut conn).await,
            }
        })
        .await
    }
}

impl RedisCache {
    /// [`CacheBackend::incarnation`] of a cluster: every master's `run_id`
    /// (a master restarted or failed over is another server), and every
    /// master's connection named alike, so that a read over a connection
    /// made since (to a new master) is not taken for a checked one.
    async fn cluster_incarnation(&self) -> Option<Arc<str>> {
        use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
        let masters = || RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let each = |value: redis::Value| -> Vec<redis::Value> {
            match value {
                redis::Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
                other => vec![other],
            }
        };
        let ask = |cmd: redis::Cmd| {
            let routing = masters();
            self.run(move |conn| async move {
                match conn {
                    Live::Cluster(mut conn) => conn.route_command(cmd, routing).await,
                    // A cluster target only gives cluster connections.
                    Live::Single(_) => Ok(redis::Value::Nil),
                }
            })
        };
        let infos = ask(redis::cmd("INFO").arg("server").clone()).await?;
        let mut run_ids: Vec<String> = each(infos)
            .into_iter()
            .filter_map(|v| redis::from_redis_value::<String>(v).ok())
            .filter_map(|info| run_id(&info).map(str::to_owned))
            .collect();
        run_ids.sort();
        // One identity for the set of masters, as short as a server's run_id.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(run_ids.join(",").as_bytes());
        let fingerprint: Arc<str> = hex::encode(digest)[..40].into();
        let names = each(ask(redis::cmd("CLIENT").arg("GETNAME").clone()).await?);
        if let Some(checked) = self.checked()
            && checked.run_id == fingerprint
            && names.iter().all(|n| redis::from_redis_value::<String>(n.clone()).ok().as_deref() == Some(&checked.name))
        {
            return Some(checked.run_id);
        }
        let fresh = format!("cx-{}", uuid::Uuid::new_v4().simple());
        ask(redis::cmd("CLIENT").arg("SETNAME").arg(&fresh).clone()).await?;
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Checked { name: fresh, run_id: fingerprint.clone() });
        Some(fingerprint)
    }
}

/// How long a group's index outlives its last addition: longer than any
/// entry (the cache's TTL), so a key never outlives the index naming it.
const INDEX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Adds `key` to its group's index, when it has one, in `pipe` (answers
/// nothing).
fn index(pipe: &mut redis::Pipeline, key: &CacheKey) {
    if let Some(index) = key.group_index() {
        pipe.cmd("SADD").arg(index).arg(key.as_str()).ignore();
        pipe.cmd("PEXPIRE").arg(index).arg(INDEX_TTL.as_millis() as u64).ignore();
    }
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &CacheKey) -> Option<Hit> {
        let (name, value): (Option<String>, Option<Vec<u8>>) = self
            .run(|mut conn| async move {
                redis::pipe().cmd("CLIENT").arg("GETNAME").cmd("GET").arg(key.as_str()).query_async(&mut conn).await
            })
            .await?;
        let server = self.checked().filter(|c| name.as_deref() == Some(c.name.as_str())).map(|c| c.run_id);
        Some(Hit { value: value?, server })
    }

    async fn lease(&self, key: &CacheKey, ttl: Duration) -> Option<Lease> {
        self.lease_many(&[key], ttl).await.pop().flatten()
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

    async fn invalidate(&self, key: &CacheKey) -> bool {
        let keys = vec![key.as_str().to_owned(), key.lease()];
        self.run(|mut conn| async move { conn.del::<_, ()>(keys).await }).await.is_some()
    }

    async fn invalidate_group(&self, tenant: &TenantId, kind: &str, group: &str) -> bool {
        // The group's index lists every key leased in it (a fill needs a
        // lease): its keys and their leases go, then the index. Every key
        // shares the tenant's hash tag, so both commands stay on one node.
        let index = super::group_index(tenant, kind, group);
        self.run(|mut conn| async move {
            let members: Vec<String> = conn.smembers(&index).await?;
            let mut doomed: Vec<String> = members.iter().flat_map(|k| [k.clone(), format!("{k}:lease")]).collect();
            doomed.push(index);
            conn.del::<_, ()>(doomed).await
        })
        .await
        .is_some()
    }

    async fn get_many(&self, keys: &[&CacheKey]) -> Vec<Option<Hit>> {
        let mut hits = vec![None; keys.len()];
        for group in by_tenant(self.target.is_cluster(), keys.iter().map(|k| k.as_str())) {
            let names: Vec<&str> = group.iter().map(|&i| keys[i].as_str()).collect();
            let read: Option<(Option<String>, Vec<Option<Vec<u8>>>)> = self
                .run(|mut conn| async move {
                    redis::pipe().cmd("CLIENT").arg("GETNAME").cmd("MGET").arg(&names).query_async(&mut conn).await
                })
                .await;
            let Some((name, values)) = read else { continue };
            let server = self.checked().filter(|c| name.as_deref() == Some(c.name.as_str())).map(|c| c.run_id);
            for (&i, value) in group.iter().zip(values) {
                hits[i] = value.map(|value| Hit { value, server: server.clone() });
            }
        }
        hits
    }

    async fn lease_many(&self, keys: &[&CacheKey], ttl: Duration) -> Vec<Option<Lease>> {
        // One token for the batch: each lease is still this reader's alone.
        let token = uuid::Uuid::new_v4().to_string();
        let mut leases = vec![None; keys.len()];
        for group in by_tenant(self.target.is_cluster(), keys.iter().map(|k| k.as_str())) {
            let mut pipe = redis::pipe();
            for &i in &group {
                pipe.cmd("SET").arg(keys[i].lease()).arg(&token).arg("NX").arg("PX").arg(ttl.as_millis() as u64);
                index(&mut pipe, keys[i]);
            }
            // `SET … NX` answers OK when it set the key, nil when it was taken.
            let set: Option<Vec<Option<String>>> =
                self.run(|mut conn| async move { pipe.query_async(&mut conn).await }).await;
            for (&i, ok) in group.iter().zip(set.unwrap_or_default()) {
                leases[i] = ok.map(|_| Lease(token.clone()));
            }
        }
        leases
    }

    async fn fill_many(&self, fills: &[(&CacheKey, &Lease, Vec<u8>)], ttl: Duration) {
        let ttl_ms = ttl.as_millis() as u64;
        for group in by_tenant(self.target.is_cluster(), fills.iter().map(|(k, _, _)| k.as_str())) {
            let mut pipe = redis::pipe();
            // A pipeline does not load a script by itself.
            pipe.load_script(&self.fill).ignore();
            for &i in &group {
                let (key, lease, value) = &fills[i];
                pipe.invoke_script(self.fill.key(key.as_str()).key(key.lease()).arg(&lease.0).arg(value).arg(ttl_ms))
                    .ignore();
            }
            let _: Option<()> = self.run(|mut conn| async move { pipe.query_async(&mut conn).await }).await;
        }
    }

    async fn release_many(&self, leases: &[(&CacheKey, &Lease)]) {
        for group in by_tenant(self.target.is_cluster(), leases.iter().map(|(k, _)| k.as_str())) {
            let mut pipe = redis::pipe();
            pipe.load_script(&self.release).ignore();
            for &i in &group {
                let (key, lease) = leases[i];
                pipe.invoke_script(self.release.key(key.lease()).arg(&lease.0)).ignore();
            }
            let _: Option<()> = self.run(|mut conn| async move { pipe.query_async(&mut conn).await }).await;
        }
    }

    async fn invalidate_many(&self, keys: &[CacheKey]) -> bool {
        let mut all = true;
        for group in by_tenant(self.target.is_cluster(), keys.iter().map(CacheKey::as_str)) {
            // One DEL per key (each with its lease).
            let mut pipe = redis::pipe();
            for &i in &group {
                pipe.cmd("DEL").arg(keys[i].as_str()).arg(keys[i].lease()).ignore();
            }
            all &= self.run(|mut conn| async move { pipe.query_async::<()>(&mut conn).await }).await.is_some();
        }
        all
    }

    fn shared(&self) -> bool {
        true
    }

    async fn incarnation(&self) -> Option<Arc<str>> {
        let _turn = self.checking.lock().await;
        if self.target.is_cluster() {
            return self.cluster_incarnation().await;
        }
        let (name, info) = self.name_and_info(None).await?;
        let server = run_id(&info)?;
        if let Some(checked) = self.checked()
            && name.as_deref() == Some(checked.name.as_str())
            && &*checked.run_id == server
        {
            return Some(checked.run_id);
        }
        // A connection not named yet (new, or to a new server): name it, so
        // reads can tell it apart from the next one.
        let fresh = format!("cx-{}", uuid::Uuid::new_v4().simple());
        let (_, info) = self.name_and_info(Some(&fresh)).await?;
        let checked = Checked { name: fresh, run_id: run_id(&info)?.into() };
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(checked.clone());
        Some(checked.run_id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_id_is_read_from_info_server() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:3f1a9c\r\ntcp_port:6379\r\n";
        assert_eq!(super::run_id(info), Some("3f1a9c"));
        assert_eq!(super::run_id("# Server\r\n"), None);
    }
}
