//! What the cache tests share: a cache on a Redis backend, bound to an
//! epoch in a private SQLite database, with its keeper running.

use std::sync::Arc;
use std::time::Duration;

use cx_runtime::cache::Cache;
use cx_runtime::cache::redis::RedisCache;
use cx_runtime::store::Db;

/// A database holding only the cache epoch.
pub async fn epoch_db() -> Db {
    cx_runtime::cache::epoch::in_memory_db().await.unwrap()
}

/// A cache on `redis` (60 s TTL) whose keeper has read the epoch; keep the
/// returned database and sender alive while it is used.
pub async fn kept_cache(redis: RedisCache) -> (Cache, Db, tokio::sync::watch::Sender<bool>) {
    let db = epoch_db().await;
    let cache = Cache::new(Arc::new(redis), Duration::from_secs(60)).bind(&db);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(cache.keeper(stopped).unwrap());
    cx_testkit::eventually("the keeper reads the epoch", || std::future::ready(cache.epoch()), Option::is_some).await;
    (cache, db, stop)
}
