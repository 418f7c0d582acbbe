//! Which touchpoints a trigger fires on (docs/DOMAIN.md §7.4): every
//! condition of the trigger that is set must hold. Pure: the customer's
//! standing (lifecycle, digital category) is given, as the profile service
//! told it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::trigger::Condition;

/// A touchpoint the journey service offered, as matching reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Offered {
    /// The client's touchpoint id (1 to 128 characters).
    pub id: String,
    /// The profile it was recorded for.
    pub customer: Uuid,
    pub at: DateTime<Utc>,
    /// `cx.common.v1.Channel` code.
    pub channel: i32,
    /// `cx.common.v1.InteractionKind` code.
    pub kind: i32,
    pub map: Option<Uuid>,
    pub step: Option<String>,
    /// Experience score, 0 to 10.
    pub score: Option<i32>,
    /// ISO currency and amount in micro-units.
    pub purchase: Option<(String, i64)>,
}

/// What the profile service says of a customer when asked for consent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// The `survey` consent is in force.
    pub consent: bool,
    /// `cx.profile.v1.Lifecycle` code.
    pub lifecycle: i32,
    /// `cx.profile.v1.DigitalCategory` code; 0 without a digital intensity.
    pub category: i32,
}

impl Condition {
    /// Whether the touchpoint meets the conditions about itself: map and
    /// step, channel, kind, score below, purchase above (same currency).
    pub fn fits_touchpoint(&self, tp: &Offered) -> bool {
        let map = self.map_id.is_none_or(|map| tp.map == Some(map));
        let step = self.step_key.as_ref().is_none_or(|step| tp.step.as_ref() == Some(step));
        let channel = self.channels.is_empty() || self.channels.contains(&tp.channel);
        let kind = self.kind.is_none_or(|kind| tp.kind == kind);
        // A touchpoint without a score is never "below"; one without a
        // purchase, or in another currency, never "above".
        let score = self.score_below.is_none_or(|below| tp.score.is_some_and(|s| s < below));
        let purchase = self.purchase_above.as_ref().is_none_or(|(currency, above)| {
            tp.purchase.as_ref().is_some_and(|(paid_in, amount)| paid_in == currency && amount > above)
        });
        map && step && channel && kind && score && purchase
    }

    /// Whether the customer's standing meets the lifecycle and digital
    /// category conditions. A customer without a digital category never
    /// meets a category condition.
    pub fn fits_standing(&self, standing: &Standing) -> bool {
        let lifecycle = self.lifecycles.is_empty() || self.lifecycles.contains(&standing.lifecycle);
        let category = self.digital_categories.is_empty() || self.digital_categories.contains(&standing.category);
        lifecycle && category
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: i32 = 1;
    const EMAIL: i32 = 3;
    const STORE: i32 = 9;
    const INFORMATIVE: i32 = 1;
    const TRANSACTIONAL: i32 = 2;
    const ACTIVE: i32 = 2;
    const LOST: i32 = 4;
    const HYBRID: i32 = 2;
    const DIGITAL_NATIVE: i32 = 4;

    fn map() -> Uuid {
        Uuid::from_u128(0xa)
    }

    fn touchpoint() -> Offered {
        Offered {
            id: "tp-1".into(),
            customer: Uuid::from_u128(1),
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            channel: WEB,
            kind: TRANSACTIONAL,
            map: Some(map()),
            step: Some("checkout".into()),
            score: Some(4),
            purchase: Some(("EUR".into(), 120_000_000)),
        }
    }

    #[test]
    fn each_condition_on_the_touchpoint_is_checked() {
        let tp = touchpoint();
        let none = touchpoint_without_facts();
        let eur = |micros| Some(("EUR".to_owned(), micros));
        // (condition, fits the touchpoint, fits one with no map, score or purchase)
        let table: Vec<(Condition, bool, bool)> = vec![
            (Condition::default(), true, true),
            (Condition { map_id: Some(map()), ..Condition::default() }, true, false),
            (Condition { map_id: Some(Uuid::from_u128(0xb)), ..Condition::default() }, false, false),
            (Condition { map_id: Some(map()), step_key: Some("checkout".into()), ..Condition::default() }, true, false),
            (Condition { step_key: Some("delivery".into()), ..Condition::default() }, false, false),
            (Condition { channels: vec![EMAIL, WEB], ..Condition::default() }, true, true),
            (Condition { channels: vec![EMAIL, STORE], ..Condition::default() }, false, false),
            (Condition { kind: Some(TRANSACTIONAL), ..Condition::default() }, true, false),
            (Condition { kind: Some(INFORMATIVE), ..Condition::default() }, false, true),
            // Score 4: below 5 holds, below 4 does not; no score is never below.
            (Condition { score_below: Some(5), ..Condition::default() }, true, false),
            (Condition { score_below: Some(4), ..Condition::default() }, false, false),
            // 120 EUR: above 119.999999 holds, above 120 does not; another
            // currency never compares.
            (Condition { purchase_above: eur(119_999_999), ..Condition::default() }, true, false),
            (Condition { purchase_above: eur(120_000_000), ..Condition::default() }, false, false),
            (Condition { purchase_above: Some(("USD".into(), 1)), ..Condition::default() }, false, false),
            // Standing conditions are not the touchpoint's.
            (Condition { lifecycles: vec![LOST], ..Condition::default() }, true, true),
        ];
        for (i, (condition, fits, fits_bare)) in table.iter().enumerate() {
            assert_eq!(condition.fits_touchpoint(&tp), *fits, "row {i}: {condition:?}");
            assert_eq!(condition.fits_touchpoint(&none), *fits_bare, "row {i} (bare touchpoint): {condition:?}");
        }
    }

    fn touchpoint_without_facts() -> Offered {
        Offered { map: None, step: None, score: None, purchase: None, kind: INFORMATIVE, ..touchpoint() }
    }

    #[test]
    fn every_set_condition_must_hold_at_once() {
        let all = Condition {
            map_id: Some(map()),
            step_key: Some("checkout".into()),
            channels: vec![WEB],
            kind: Some(TRANSACTIONAL),
            score_below: Some(7),
            purchase_above: Some(("EUR".into(), 100_000_000)),
            lifecycles: vec![],
            digital_categories: vec![],
        };
        assert!(all.fits_touchpoint(&touchpoint()));
        assert!(!all.fits_touchpoint(&Offered { channel: EMAIL, ..touchpoint() }), "one condition failing is enough");
    }

    #[test]
    fn lifecycle_and_category_come_from_the_standing() {
        let active_hybrid = Standing { consent: true, lifecycle: ACTIVE, category: HYBRID };
        let no_category = Standing { consent: true, lifecycle: ACTIVE, category: 0 };
        let table = [
            (Condition::default(), true, true),
            (Condition { lifecycles: vec![ACTIVE, LOST], ..Condition::default() }, true, true),
            (Condition { lifecycles: vec![LOST], ..Condition::default() }, false, false),
            (Condition { digital_categories: vec![HYBRID], ..Condition::default() }, true, false),
            (Condition { digital_categories: vec![DIGITAL_NATIVE], ..Condition::default() }, false, false),
            (
                Condition { lifecycles: vec![ACTIVE], digital_categories: vec![HYBRID], ..Condition::default() },
                true,
                false,
            ),
        ];
        for (i, (condition, fits, fits_without_category)) in table.iter().enumerate() {
            assert_eq!(condition.fits_standing(&active_hybrid), *fits, "row {i}");
            assert_eq!(condition.fits_standing(&no_category), *fits_without_category, "row {i} (no category)");
        }
    }
}
