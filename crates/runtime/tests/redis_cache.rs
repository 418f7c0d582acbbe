//! The Redis backend against a private `redis-server` this test starts, so it
//! can pause and kill it without disturbing other tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cx_runtime::TenantId;
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
        for _ in 0..100 {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis did not start");
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

#[tokio::test]
async fn outage_is_served_from_the_database_and_owed_invalidations_are_replayed() {
    let redis = PrivateRedis::start(free_port());
    redis.wait_ready().await;
    let cache = Cache::new(Arc::new(RedisCache::connect_lazy(&redis.url()).unwrap()), Duration::from_secs(60));
    let key = CacheKey::new(&TenantId::parse("acme").unwrap(), "profile", "7");

    assert_eq!(load(&cache, &key, "v1").await, b"v1");
    assert_eq!(cache.backend().get(&key).await, Some(b"v1".to_vec()), "filled");

    // Redis stops answering; a write happens and its invalidation cannot be sent.
    redis.pause(1500).await;
    cache.invalidate(&key).await;
    // Reads go to the database meanwhile.
    assert_eq!(load(&cache, &key, "v2").await, b"v2");

    // Once Redis answers again (and the breaker closes), the owed DEL goes
    // first: the old entry is gone before anything is read from Redis.
    tokio::time::sleep(Duration::from_millis(2700)).await;
    assert_eq!(cache.backend().get(&key).await, None, "v1 must not come back");
    assert_eq!(load(&cache, &key, "v2").await, b"v2");
    assert_eq!(cache.backend().get(&key).await, Some(b"v2".to_vec()), "the cache is back");
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
    let mut back = false;
    for _ in 0..50 {
        load(&cache, &key, "v3").await;
        if cache.backend().get(&key).await.is_some() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(back, "the cache reconnected and fills again");
    assert_eq!(cache.backend().get(&key).await, Some(b"v3".to_vec()));
}
