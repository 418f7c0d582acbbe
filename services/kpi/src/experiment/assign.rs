//! The variant of a customer: a pure function of the experiment id, the
//! customer id and the weights, so every call and every replica gives the
//! same answer without storing the choice (docs/DOMAIN.md §9.6).

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The customer's bucket: the first 8 bytes, big-endian, of SHA-256 over
/// "<experiment id>:<customer id>" (both lowercase and hyphenated).
/// SHA-256 rather than a std hasher: std's hashes may change between Rust
/// releases, and a customer must keep her variant across deployments.
pub fn bucket(experiment: Uuid, customer: Uuid) -> u64 {
    let digest = Sha256::digest(format!("{experiment}:{customer}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The index of the customer's variant: the bucket modulo the sum of the
/// weights falls in one variant's run of the cumulative weights, in order.
/// The weights are checked positive (`definition`); with none it answers 0.
pub fn variant(experiment: Uuid, customer: Uuid, weights: &[u32]) -> usize {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return 0;
    }
    let mut point = bucket(experiment, customer) % total;
    for (i, w) in weights.iter().enumerate() {
        let w = u64::from(*w);
        if point < w {
            return i;
        }
        point -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPERIMENT: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00e1);

    fn customer(n: u128) -> Uuid {
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
    }

    #[test]
    fn the_bucket_is_the_documented_digest() {
        // printf '01900000-0000-7000-8000-0000000000e1:01900000-0000-7000-8000-000000000001' | sha256sum
        // begins 76e2ac2469eb5450; even, so the first of two equal weights.
        let got = bucket(EXPERIMENT, customer(1));
        assert_eq!(format!("{got:016x}"), "76e2ac2469eb5450");
        assert_eq!(variant(EXPERIMENT, customer(1), &[1, 1]), 0);
    }

    #[test]
    fn the_weights_split_a_fixed_set_of_customers() {
        // Customers 1 to 1,000, counted with Python's hashlib over the same
        // text (an independent implementation of the rule): 500/500, and
        // 244/516/240 against 250/500/250 expected (each within 1.96
        // standard errors: sqrt(1000 × 0.25 × 0.75) = 13.7, sqrt(250) = 15.8).
        let count = |weights: &[u32]| {
            let mut counts = vec![0; weights.len()];
            for n in 1..=1000 {
                counts[variant(EXPERIMENT, customer(n), weights)] += 1;
            }
            counts
        };
        assert_eq!(count(&[1, 1]), [500, 500]);
        assert_eq!(count(&[1, 2, 1]), [244, 516, 240]);
        // Same answer every time.
        assert_eq!(variant(EXPERIMENT, customer(7), &[1, 2, 1]), variant(EXPERIMENT, customer(7), &[1, 2, 1]));
        assert_eq!(variant(EXPERIMENT, customer(7), &[]), 0);
    }
}
