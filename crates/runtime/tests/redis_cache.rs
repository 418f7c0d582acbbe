//! The Redis backend against a private `redis-server` this test starts, so it
//! can pause and kill it without disturbing other tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cx_runtime::TenantId;
use cx_runtime::cache::epoch as cache_epoch;
use cx_runtime::cache::redis::RedisCache;
use cx_runtime::cache::{Cache, CacheKey};

struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        cx_testkit::eventually_within(Duration::from_secs(5), "the private redis answers", || self.ping(), |up| *up)
            .await;
    }

    async fn ping(&self) -> bool {
        cx_testkit::redis_server::ping(&self.url()).await
    }

    /// Sets `key` to `value` as it is; false while the server does not answer.
    async fn set_raw(&self, key: &str, value: &[u8]) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("SET").arg(key).arg(value).query_async::<()>(&mut conn).await.is_ok()
    }

    /// Makes the server answer nobody for `ms` while keeping its data.
    async fn pause(&self, ms: u64) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(ms).arg("ALL").query_async(&mut conn).await.unwrap();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn load(cache: &Cache, key: &CacheKey, value: &str) -> Vec<u8> {
    let value = value.as_bytes().to_vec();
    cache.get_or_load::<(), _, _>(key, || async move { Ok(Some(value)) }).await.unwrap().unwrap()
}

/// The value Redis holds for `key`, without its epoch header.
async fn raw(cache: &Cache, key: &CacheKey) -> Option<Vec<u8>> {
    cache.backend().get(key).await.map(|hit| hit.value[12..].to_vec())
}

#[tokio::test]
async fn outage_is_served_from_the_database_and_a_missed_invalidation_moves_the_epoch() {
    let redis = PrivateRedis::start(free_port());
    redis.wait_ready().await;
    let db = support::epoch_db().await;
    let cache =
        Cache::new(Arc::new(RedisCache::connect_lazy(&redis.url()).unwrap()), Duration::from_secs(60)).bind(&db);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(cache.keeper(stopped).unwrap());
    let key = CacheKey::new(&TenantId::parse("acme").unwrap(), "profile", "7");
    let epoch = || std::future::ready(cache.epoch());
    let before = cx_testkit::eventually("the keeper reads the epoch", epoch, Option::is_some).await.unwrap();

    assert_eq!(load(&cache, &key, "v1").await, b"v1");
    assert_eq!(raw(&cache, &key).await, Some(b"v1".to_vec()), "filled");
    assert_eq!(load(&cache, &key, "unused").await, b"v1", "and read back");
    let sealed_v1 = cache.backend().get(&key).await.unwrap().value;

    // Redis stops answering; a write happens and its invalidation cannot be
    // sent: the epoch moves on in the database instead.
    redis.pause(1500).await;
    cache.invalidate(&key).await.unwrap();
    assert_eq!(cache_epoch::read(&db).await.unwrap(), before + 1);
    // Values are written under the epoch this process knows: wait until its
    // keeper has read the new one, or a value filled now is dropped later.
    cx_testkit::eventually("the keeper reads the new epoch", epoch, |e| *e == Some(before + 1)).await;
    // Reads go to the database meanwhile.
    assert_eq!(load(&cache, &key, "v2").await, b"v2");

    // Redis answers again, with v1 as it was (a paused Redis runs the DEL
    // it received late; a restarted one may have lost it): put it back.
    cx_testkit::eventually("Redis answers again", || redis.set_raw(key.as_str(), &sealed_v1), |set| *set).await;
    assert_eq!(load(&cache, &key, "v2").await, b"v2", "v1 must not come back");
    assert_eq!(raw(&cache, &key).await, Some(b"v2".to_vec()), "the cache is back");
    // A keeper late under load distrusts the cache for a moment (a miss, by
    // design, which cannot fill over v2): read until it trusts it again.
    let read = || load(&cache, &key, "unused");
    cx_testkit::eventually("v2 read back from the cache", read, |v| v.as_slice() == b"v2").await;
}

#[tokio::test]
async fn the_cache_comes_back_by_itself_after_redis_restarts() {
    let port = free_port();
    let mut redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    let cache = Cache::new(Arc::new(RedisCache::connect_lazy(&redis.url()).unwrap()), Duration::from_secs(60));
    let key = CacheKey::new(&TenantId::parse("acme").unwrap(), "profile", "8");
    assert_eq!(load(&cache, &key, "v1").await, b"v1");

    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    // Down: still answered, from the loader.
    assert_eq!(load(&cache, &key, "v2").await, b"v2");
    assert_eq!(cache.backend().get(&key).await, None);

    let redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    let fill = || async {
        load(&cache, &key, "v3").await;
        cache.backend().get(&key).await
    };
    cx_testkit::eventually("the cache reconnects and fills again", fill, Option::is_some).await;
    assert_eq!(cache.backend().get(&key).await.map(|hit| hit.value[12..].to_vec()), Some(b"v3".to_vec()));
}

#[tokio::test]
async fn many_keys_go_in_one_pipeline_each_way_and_a_raced_fill_is_refused() {
    let redis = PrivateRedis::start(free_port());
    redis.wait_ready().await;
    let (cache, _db, _stop) = support::kept_cache(RedisCache::connect_lazy(&redis.url()).unwrap()).await;
    let t = TenantId::parse("acme").unwrap();
    let keys: Vec<CacheKey> = (0..3_000).map(|i| CacheKey::new(&t, "many", &i.to_string())).collect();
    // Every third key is found; key 1 is invalidated by a writer while read.
    let found = |missing: Vec<usize>| {
        missing.into_iter().filter(|i| i % 3 == 1).map(|i| (i, format!("v{i}").into_bytes())).collect()
    };
    let loaded = cache
        .get_or_load_many::<(), _, _>(&keys, |missing| async {
            cache.invalidate(&keys[1]).await.unwrap();
            Ok::<_, ()>(found(missing))
        })
        .await
        .unwrap();
    assert_eq!(loaded.iter().filter(|v| v.is_some()).count(), 1_000);
    assert_eq!(loaded[4], Some(b"v4".to_vec()));
    assert_eq!(raw(&cache, &keys[4]).await, Some(b"v4".to_vec()), "filled");
    assert_eq!(raw(&cache, &keys[1]).await, None, "the raced fill is refused");
    assert_eq!(raw(&cache, &keys[3]).await, None, "not found is not cached");

    // Read back from Redis: the loader is asked only for what is missing
    // (key 1, the 2,000 never found).
    let asked = std::sync::Mutex::new(Vec::new());
    let again = cache
        .get_or_load_many::<(), _, _>(&keys, |missing| async {
            asked.lock().unwrap().clone_from(&missing);
            Ok::<_, ()>(found(missing))
        })
        .await
        .unwrap();
    assert_eq!(again, loaded);
    let asked = asked.into_inner().unwrap();
    assert_eq!((asked.len(), asked.contains(&1), asked.contains(&4)), (2_001, true, false));

    // Invalidated together, in one pipeline.
    cache.invalidate_all(&keys[..9]).await.unwrap();
    assert_eq!(raw(&cache, &keys[4]).await, None);
    assert_eq!(raw(&cache, &keys[10]).await, Some(b"v10".to_vec()));
}

/// Calls of a command the server answered since it started.
async fn calls(redis: &PrivateRedis, command: &str) -> u64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    let line = stats.lines().find(|l| l.starts_with(&format!("cmdstat_{command}:")));
    line.and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn a_group_is_dropped_through_its_index_with_its_leases_never_by_scanning_the_keyspace() {
    let redis = PrivateRedis::start(free_port());
    redis.wait_ready().await;
    let (cache, _db, _stop) = support::kept_cache(RedisCache::connect_lazy(&redis.url()).unwrap()).await;
    let t = TenantId::parse("acme").unwrap();
    let in_map = |map: &str, id: &str| CacheKey::in_group(&t, "analysis", map, id);
    let doomed: Vec<CacheKey> = (0..3).map(|i| in_map("m1", &format!("g{i}"))).collect();
    for (i, key) in doomed.iter().enumerate() {
        load(&cache, key, &format!("answer {i}")).await;
    }
    let other_map = in_map("m2", "g0");
    let plain = CacheKey::new(&t, "analysis", "m1-not-grouped");
    load(&cache, &other_map, "kept").await;
    load(&cache, &plain, "kept too").await;
    // A load of the group in flight: leased, not filled yet.
    let in_flight = in_map("m1", "g9");
    let lease = cache.backend().lease(&in_flight, Duration::from_secs(10)).await.unwrap();

    let scans = calls(&redis, "scan").await;
    cache.invalidate_group(&t, "analysis", "m1").await.unwrap();
    for key in &doomed {
        assert_eq!(raw(&cache, key).await, None, "{}", key.as_str());
    }
    assert_eq!(raw(&cache, &other_map).await, Some(b"kept".to_vec()), "another group stays");
    assert_eq!(raw(&cache, &plain).await, Some(b"kept too".to_vec()), "a key outside groups stays");
    // The load in flight lost its lease: what it read before the
    // invalidation is not stored.
    cache.backend().fill(&in_flight, &lease, b"\0\0\0\0\0\0\0\0\0\0\0\0stale", Duration::from_secs(60)).await;
    assert_eq!(raw(&cache, &in_flight).await, None);
    assert_eq!(calls(&redis, "scan").await, scans, "no SCAN of the keyspace");
    assert_eq!(calls(&redis, "keys").await, 0);
    // The index itself is gone with its group.
    let left: Vec<String> = {
        let client = redis::Client::open(redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS").arg("cx:{acme}:group:*").query_async(&mut conn).await.unwrap()
    };
    assert_eq!(left, ["cx:{acme}:group:analysis:m2"]);
}
