//! The journey service's cache keys, in one place: each map's generation
//! and the analyses cached under it (`api::analysis` reads through them;
//! ingest drops a map's generation, an erasure its answers).

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::cache::CacheKey;
use uuid::Uuid;

/// The kind of the cached answers. Those of a map are one group, dropped
/// together (`Cache::invalidate_group(t, ANSWERS, &answers_group(map))`).
pub const ANSWERS: &str = "analysis";

/// The group of every cached answer of `map`.
pub fn answers_group(map: Uuid) -> String {
    map.to_string()
}

/// The generation key of `map`.
pub fn generation_key(t: &TenantId, map: Uuid) -> CacheKey {
    CacheKey::new(t, "analysis-generation", &map.to_string())
}

/// The answer of the analysis of `map` at `version` over `[since, until)`
/// listing `listed` instances, cached in `generation` (in the group
/// [`answers_group`]).
pub fn answer_key(
    t: &TenantId,
    map: Uuid,
    generation: &str,
    version: i32,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    listed: u64,
) -> CacheKey {
    let (since, until) = (since.timestamp_micros(), until.timestamp_micros());
    let id = format!("{generation}:v{version}:{since}:{until}:{listed}");
    CacheKey::in_group(t, ANSWERS, &answers_group(map), &id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_lie_in_their_maps_group_and_keep_their_spelling() {
        let t = TenantId::parse("acme").unwrap();
        let map = Uuid::from_u128(7);
        let (since, until) = (DateTime::from_timestamp(0, 0).unwrap(), DateTime::from_timestamp(86_400, 0).unwrap());
        let answer = answer_key(&t, map, "42", 3, since, until, 20);
        assert_eq!(answer.as_str(), format!("cx:{{acme}}:analysis:{map}:42:v3:0:86400000000:20"));
        // The group the inbox drops for the map, indexed beside the answers.
        assert_eq!(answer.group_index(), Some(format!("cx:{{acme}}:group:analysis:{map}").as_str()));
        assert_eq!(answers_group(map), map.to_string());
        assert_eq!(generation_key(&t, map).as_str(), format!("cx:{{acme}}:analysis-generation:{map}"));
    }
}
