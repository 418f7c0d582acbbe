//! Deterministic sampling and invitation ids (docs/DOMAIN.md §7.4). Both are
//! SHA-256 digests of stable bytes, never `DefaultHasher` (whose output may
//! change between Rust releases): a replay, on any replica and any release,
//! decides the same and finds the same invitation.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The customer's draw for a trigger, in [0, 1): the first 53 bits of
/// SHA-256 over a label, the trigger id and the customer id.
pub fn draw(customer: Uuid, trigger: Uuid) -> f64 {
    let digest = Sha256::new()
        .chain_update(b"cx-survey-sampling\0")
        .chain_update(trigger.as_bytes())
        .chain_update(customer.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: every value is exact in an f64.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether the trigger's sampling keeps the customer: their draw is below
/// the rate. A customer sampled out stays out for this trigger.
pub fn sampled(customer: Uuid, trigger: Uuid, rate: f64) -> bool {
    draw(customer, trigger) < rate
}

/// The id of the invitation a trigger makes for a touchpoint: 128 bits of
/// SHA-256 over the trigger id and the touchpoint id, as a version 8 UUID.
pub fn invitation_id(trigger: Uuid, touchpoint: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"cx-survey-invitation\0")
        .chain_update(trigger.as_bytes())
        .chain_update(touchpoint.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_in_the_unit_interval_and_rates_bound_them() {
        let trigger = Uuid::from_u128(42);
        for n in 0..1_000u128 {
            let d = draw(Uuid::from_u128(n), trigger);
            assert!((0.0..1.0).contains(&d), "{d}");
            assert!(sampled(Uuid::from_u128(n), trigger, 1.0), "a rate of 1 keeps everyone");
            assert!(!sampled(Uuid::from_u128(n), trigger, 0.0), "a rate of 0 keeps no one");
        }
    }

    #[test]
    fn the_draw_depends_on_the_trigger_and_not_on_the_order_of_calls() {
        let customer = Uuid::from_u128(7);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(draw(customer, a), draw(customer, a));
        assert_ne!(draw(customer, a), draw(customer, b));
    }

    #[test]
    fn invitation_ids_are_stable_per_trigger_and_touchpoint() {
        let trigger = Uuid::from_u128(42);
        let id = invitation_id(trigger, "web-0001");
        assert_eq!(id, invitation_id(trigger, "web-0001"));
        assert_ne!(id, invitation_id(trigger, "web-0002"));
        assert_ne!(id, invitation_id(Uuid::from_u128(43), "web-0001"));
        assert_eq!(id.get_version_num(), 8);
    }
}
