//! Data generations: one key per tenant and service that the service's
//! writes advance, so that a reader elsewhere (the kpi service's dashboard)
//! can cache what it derived from that service's data under the generations
//! it read, and never serve it after a write (docs/DECISIONS.md, "Dashboard").
//!
//! A generation is a time-ordered unique id (UUIDv7) made when its key was
//! missing. A write drops the key
//! after its commit ([`Cache::advance_generation`]); the next reader makes a
//! new one. The key lives in the owning service's cache, so the service's
//! epoch covers it: a drop Redis did not take moves the epoch on, and the
//! next read of the generation is a miss, hence a new generation. Readers in
//! other services therefore ask the owner for it (an internal RPC), never
//! Redis directly.

use std::convert::Infallible;
use std::time::Duration;

use super::{Cache, CacheKey, CacheUnavailable};
use crate::tenant::TenantId;

/// How long a generation (and what is cached under it) lives without a
/// write: a day, so an idle tenant's dashboard is worked out about once a
/// day, when its default days move on anyway.
pub const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// The generation key of `service`'s data of tenant `t`.
pub fn key(t: &TenantId, service: &str) -> CacheKey {
    CacheKey::new(t, "data-generation", service)
}

fn new_generation() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

impl Cache {
    /// The same cache with entries living `ttl`.
    pub fn with_ttl(&self, ttl: Duration) -> Self {
        Self { ttl, ..self.clone() }
    }

    /// The current generation of `service`'s data of tenant `t`, made now if
    /// there is none. Never fails: with the cache unreachable every read is
    /// a new generation (nothing derived is reused, nothing stale served).
    pub async fn generation(&self, t: &TenantId, service: &str) -> String {
        let generations = self.with_ttl(GENERATION_TTL);
        let made = generations
            .get_or_load(&key(t, service), || async { Ok::<_, Infallible>(Some(new_generation().into_bytes())) })
            .await;
        match made {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) | Err(_) => new_generation(),
        }
    }

    /// Starts a new generation of `service`'s data of tenant `t`: call after
    /// the commit of every write that changes what is derived from it, and
    /// do not acknowledge the write if it fails (as [`Cache::invalidate`]).
    pub async fn advance_generation(&self, t: &TenantId, service: &str) -> Result<(), CacheUnavailable> {
        self.invalidate(&key(t, service)).await
    }
}

/// What an owner's `GetDataGeneration` answers: the generation of
/// `service`'s data of the calling kpi service's tenant (any other caller is
/// refused).
pub async fn asked<T>(cache: &Cache, request: &tonic::Request<T>, service: &str) -> Result<String, tonic::Status> {
    let t = crate::identity::tenant_of_call_by(request, crate::identity::KPI)?;
    Ok(cache.generation(&t, service).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_generation_stays_until_a_write_advances_it() {
        let cache = Cache::in_memory(Duration::from_secs(60));
        let t = TenantId::parse("acme").unwrap();
        let first = cache.generation(&t, "survey").await;
        assert_eq!(cache.generation(&t, "survey").await, first);
        // Another service's generation is its own.
        let journey = cache.generation(&t, "journey").await;
        cache.advance_generation(&t, "survey").await.unwrap();
        let second = cache.generation(&t, "survey").await;
        assert_ne!(second, first);
        assert_eq!(cache.generation(&t, "journey").await, journey);
        assert_eq!(key(&t, "survey").as_str(), "cx:{acme}:data-generation:survey");
    }
}
