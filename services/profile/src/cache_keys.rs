//! The profile service's cache keys, in one place: what the API reads
//! through the cache, and what every writer (the API, the inbox, the sweep)
//! drops after changing a profile.

use cx_runtime::TenantId;
use cx_runtime::cache::CacheKey;
use uuid::Uuid;

/// The cache entry of a profile.
pub fn profile(t: &TenantId, id: Uuid) -> CacheKey {
    CacheKey::new(t, "profile", &id.to_string())
}

/// The cache entry of a profile's standing (consents in force, lifecycle,
/// intensity), which other services' consent checks read.
pub fn standing(t: &TenantId, id: Uuid) -> CacheKey {
    CacheKey::new(t, "standing", &id.to_string())
}

/// Every entry showing a customer's lifecycle or intensity: what a change
/// of activity, a sweep, a merge or an erasure drops.
pub fn customer(t: &TenantId, id: Uuid) -> [CacheKey; 2] {
    [profile(t, id), standing(t, id)]
}

/// [`customer`] of each of `ids`, and, when there is one, the generation
/// of the tenant's profile data: counts by lifecycle or intensity derived
/// elsewhere (the kpi dashboard) are old too.
pub fn customers(t: &TenantId, ids: impl IntoIterator<Item = Uuid>) -> Vec<CacheKey> {
    let mut keys: Vec<CacheKey> = ids.into_iter().flat_map(|id| customer(t, id)).collect();
    if !keys.is_empty() {
        keys.push(generation(t));
    }
    keys
}

/// The generation of the tenant's profile data ([`cx_runtime::cache::generation`]).
pub fn generation(t: &TenantId) -> CacheKey {
    cx_runtime::cache::generation::key(t, crate::NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_keeps_its_spelling() {
        let id = Uuid::from_u128(7);
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(profile(&t, id).as_str(), format!("cx:{{acme}}:profile:{id}"));
        assert_eq!(customers(&t, [id]), [profile(&t, id), standing(&t, id), generation(&t)]);
        assert!(customers(&t, []).is_empty());
    }
}
