//! The cache on a Redis Cluster of three masters started on loopback ports:
//! keys of many tenants spread over the nodes, single and batched reads,
//! fills and invalidations work across them (one pipeline per tenant), a
//! group is dropped through its index, and the coherence check names every
//! master.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cx_runtime::TenantId;
use cx_runtime::cache::CacheKey;
use cx_runtime::cache::redis::RedisCache;
use cx_testkit::redis_server::PrivateRedisCluster;

#[tokio::test]
async fn the_cache_works_across_a_three_master_cluster() {
    let mut cluster = PrivateRedisCluster::start().await;
    let seeds: Vec<String> = cluster.url().split(',').map(str::to_owned).collect();
    // The keeper checked every master and read the epoch: values are trusted.
    let (cache, _db, _stop) = support::kept_cache(RedisCache::connect_cluster_lazy(&seeds, None).unwrap()).await;

    let tenants: Vec<TenantId> = (0..12).map(|i| TenantId::parse(&format!("t{i}")).unwrap()).collect();
    let loads = AtomicUsize::new(0);
    let load = |key: CacheKey| {
        let loads = &loads;
        let cache = &cache;
        async move {
            let value = key.as_str().as_bytes().to_vec();
            cache
                .get_or_load::<(), _, _>(&key, || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok(Some(value))
                })
                .await
                .unwrap()
                .unwrap()
        }
    };
    for t in &tenants {
        load(CacheKey::new(t, "profile", "1")).await;
    }
    assert_eq!(loads.load(Ordering::SeqCst), 12);
    // Read again: served by the cluster.
    for t in &tenants {
        let key = CacheKey::new(t, "profile", "1");
        assert_eq!(load(key.clone()).await, key.as_str().as_bytes());
    }
    assert_eq!(loads.load(Ordering::SeqCst), 12, "every second read is a hit");
    // The tenants' keys lie on more than one master.
    let holders: HashSet<u16> =
        cluster.keys_by_node("cx:*").await.into_iter().filter(|(_, keys)| !keys.is_empty()).map(|(p, _)| p).collect();
    assert!(holders.len() >= 2, "12 tenants spread over the masters: {holders:?}");

    // A batch over every tenant: read, leased and filled per tenant.
    let batch: Vec<CacheKey> =
        tenants.iter().flat_map(|t| (0..3).map(move |i| CacheKey::new(t, "batch", &i.to_string()))).collect();
    let asked = AtomicUsize::new(0);
    let first = cache
        .get_or_load_many::<(), _, _>(&batch, |missing| async {
            asked.fetch_add(missing.len(), Ordering::SeqCst);
            Ok(missing.into_iter().map(|i| (i, format!("b{i}").into_bytes())).collect())
        })
        .await
        .unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 36);
    let again = cache
        .get_or_load_many::<(), _, _>(&batch, |missing| async {
            asked.fetch_add(missing.len(), Ordering::SeqCst);
            Ok(missing.into_iter().map(|i| (i, b"never".to_vec())).collect())
        })
        .await
        .unwrap();
    assert_eq!((asked.load(Ordering::SeqCst), &again), (36, &first), "all 36 came from the cluster");

    // Invalidated together across tenants, then read from the loader again.
    cache.invalidate_all(&batch[..9]).await.unwrap();
    let after = cache
        .get_or_load_many::<(), _, _>(&batch, |missing| async {
            asked.fetch_add(missing.len(), Ordering::SeqCst);
            Ok(missing.into_iter().map(|i| (i, format!("b{i}").into_bytes())).collect())
        })
        .await
        .unwrap();
    assert_eq!((asked.load(Ordering::SeqCst), after), (45, first));

    // A group goes through its index on the tenant's node.
    let grouped: Vec<CacheKey> =
        (0..4).map(|i| CacheKey::in_group(&tenants[5], "analysis", "m1", &i.to_string())).collect();
    for key in &grouped {
        load(key.clone()).await;
    }
    cache.invalidate_group(&tenants[5], "analysis", "m1").await.unwrap();
    let left: Vec<String> = cluster
        .keys_by_node("cx:{t5}:*")
        .await
        .into_iter()
        .flat_map(|(_, keys)| keys)
        .filter(|k| k.contains("analysis"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert!(cache.backend().get(&CacheKey::new(&tenants[5], "profile", "1")).await.is_some(), "the rest stays");

    // A master restarts (empty, a new run_id): it may have missed
    // invalidations, so nothing cached before is trusted on any master, the
    // keys on the two masters that stayed up included.
    let epoch = cache.epoch().unwrap();
    cluster.restart(1).await;
    let moved = |e: &Option<i64>| e.is_some_and(|e| e > epoch);
    cx_testkit::eventually("the epoch moves on", || std::future::ready(cache.epoch()), moved).await;
    // Past the circuit breaker's pause after the restart's failures.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = loads.load(Ordering::SeqCst);
    for t in &tenants {
        load(CacheKey::new(t, "profile", "1")).await;
    }
    assert_eq!(loads.load(Ordering::SeqCst) - before, 12, "every key is read from the database again");
    // And cached again under the new epoch: a pass that loads nothing.
    let pass = || async {
        let start = loads.load(Ordering::SeqCst);
        for t in &tenants {
            load(CacheKey::new(t, "profile", "1")).await;
        }
        loads.load(Ordering::SeqCst) - start
    };
    cx_testkit::eventually_within(Duration::from_secs(5), "every key is a hit again", pass, |n| *n == 0).await;
}
