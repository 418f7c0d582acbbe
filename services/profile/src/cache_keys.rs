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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_keeps_its_spelling() {
        let id = Uuid::from_u128(7);
        assert_eq!(profile(&TenantId::parse("acme").unwrap(), id).as_str(), format!("cx:{{acme}}:profile:{id}"));
    }
}
