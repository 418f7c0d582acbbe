//! Sampling is deterministic per customer and trigger, and invitation ids
//! per trigger and touchpoint: the digests are pinned, so a change of hash
//! (or a `DefaultHasher` creeping in) fails here rather than re-deciding
//! replays differently after an upgrade.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_survey::domain::sampling::{draw, invitation_id, sampled};
use uuid::Uuid;

/// The trigger of tests/invitations_store.rs's batch of 10,000.
const TRIGGER: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_5a3b_1e00_0030);

fn customers() -> impl Iterator<Item = Uuid> {
    (1..=10_000u128).map(Uuid::from_u128)
}

#[test]
fn ten_thousand_fixed_customers_at_three_tenths() {
    // 3,016 of 10,000 draws fall below 0.3: within 0.4 standard deviations
    // (sqrt(10,000 × 0.3 × 0.7) = 45.8) of 3,000.
    let kept: Vec<Uuid> = customers().filter(|c| sampled(*c, TRIGGER, 0.3)).collect();
    assert_eq!(kept.len(), 3_016);
    // A replay decides the same for every one of them.
    let again: Vec<Uuid> = customers().filter(|c| sampled(*c, TRIGGER, 0.3)).collect();
    assert_eq!(again, kept);
    // A higher rate keeps everyone a lower one kept.
    assert!(kept.iter().all(|c| sampled(*c, TRIGGER, 0.5)));
}

/// Worked out apart from this code, with Python's hashlib:
///
/// ```text
/// t = UUID(int=0x019000000000700080005a3b1e000030).bytes
/// d = sha256(b"cx-survey-sampling\0" + t + UUID(int=1).bytes).digest()
/// (int.from_bytes(d[:8], "big") >> 11) / 2**53            → 0.10331679327485888
/// h = sha256(b"cx-survey-invitation\0" + t + b"web-0001").digest()[:16],
///     version nibble 8, variant bits 10                    → 89768d23-c2ad-8f3c-93ee-67975091e555
/// sum(draw(UUID(int=i)) < 0.3 for i in 1..=10,000)         → 3016
/// ```
#[test]
fn the_digests_are_pinned() {
    assert_eq!(draw(Uuid::from_u128(1), TRIGGER), PINNED_DRAW);
    assert_eq!(invitation_id(TRIGGER, "web-0001").to_string(), PINNED_ID);
}

const PINNED_DRAW: f64 = 0.103_316_793_274_858_88;
const PINNED_ID: &str = "89768d23-c2ad-8f3c-93ee-67975091e555";
