//! In-process cache backend for the embedded mode: a bounded map with expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{CacheBackend, CacheKey, Hit, Lease};
use crate::tenant::TenantId;

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, (Vec<u8>, Instant)>,
    leases: HashMap<String, (String, Instant)>,
}

/// Bounded: when full, expired entries are swept; if it is still full the new
/// entry is not kept (a miss later, never an error).
#[derive(Debug)]
pub struct MemoryCache {
    state: Mutex<State>,
    capacity: usize,
}

impl MemoryCache {
    pub fn new(capacity: usize) -> Self {
        Self { state: Mutex::default(), capacity }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl CacheBackend for MemoryCache {
    async fn get(&self, key: &CacheKey) -> Option<Hit> {
        let state = self.state();
        let (value, expires) = state.entries.get(key.as_str())?;
        (*expires > Instant::now()).then(|| Hit { value: value.clone(), server: None })
    }

    async fn lease(&self, key: &CacheKey, ttl: Duration) -> Option<Lease> {
        let now = Instant::now();
        let mut state = self.state();
        let lease_key = key.lease();
        if state.leases.get(&lease_key).is_some_and(|(_, expires)| *expires > now) {
            return None;
        }
        let token = uuid::Uuid::new_v4().to_string();
        state.leases.insert(lease_key, (token.clone(), now + ttl));
        Some(Lease(token))
    }

    async fn fill(&self, key: &CacheKey, lease: &Lease, value: &[u8], ttl: Duration) {
        let now = Instant::now();
        let mut state = self.state();
        let lease_key = key.lease();
        if state.leases.get(&lease_key).is_none_or(|(token, _)| *token != lease.0) {
            return;
        }
        state.leases.remove(&lease_key);
        if state.entries.len() >= self.capacity {
            state.entries.retain(|_, (_, expires)| *expires > now);
            state.leases.retain(|_, (_, expires)| *expires > now);
            if state.entries.len() >= self.capacity {
                return;
            }
        }
        state.entries.insert(key.as_str().to_owned(), (value.to_vec(), now + ttl));
    }

    async fn release(&self, key: &CacheKey, lease: &Lease) {
        let mut state = self.state();
        let lease_key = key.lease();
        if state.leases.get(&lease_key).is_some_and(|(token, _)| *token == lease.0) {
            state.leases.remove(&lease_key);
        }
    }

    async fn invalidate(&self, key: &CacheKey) -> bool {
        let mut state = self.state();
        state.entries.remove(key.as_str());
        state.leases.remove(&key.lease());
        true
    }

    async fn invalidate_group(&self, tenant: &TenantId, kind: &str, group: &str) -> bool {
        // In process, the group is its keys' common beginning.
        let start = CacheKey::in_group(tenant, kind, group, "").as_str().to_owned();
        let mut state = self.state();
        state.entries.retain(|k, _| !k.starts_with(&start));
        state.leases.retain(|k, _| !k.starts_with(&start));
        true
    }
}
