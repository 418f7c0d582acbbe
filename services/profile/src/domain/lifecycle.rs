//! Customer lifecycle (docs/DOMAIN.md §4.3), evaluated as of any day from the days on
//! which the customer purchased.
//!
//! - `prospect`: never purchased;
//! - `active`: last purchase fewer than 90 days ago;
//! - `at_risk`: 90 to 364 days;
//! - `lost`: 365 days or more;
//! - `reactivated`: a purchase after having been lost (a gap of 365 days or
//!   more since the previous one) makes the customer reactivated for 90 days,
//!   then active.
//!
//! Days are calendar days in UTC: a purchase on 1 March is 89 days old on
//! 29 May and 90 days old on 30 May, whatever the hour.

use chrono::NaiveDate;

pub const AT_RISK_AFTER_DAYS: i64 = 90;
pub const LOST_AFTER_DAYS: i64 = 365;
pub const REACTIVATED_FOR_DAYS: i64 = 90;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lifecycle {
    Prospect,
    Active,
    AtRisk,
    Lost,
    Reactivated,
}

impl Lifecycle {
    pub const ALL: [Self; 5] = [Self::Prospect, Self::Active, Self::AtRisk, Self::Lost, Self::Reactivated];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prospect => "prospect",
            Self::Active => "active",
            Self::AtRisk => "at_risk",
            Self::Lost => "lost",
            Self::Reactivated => "reactivated",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// The state as of `as_of`, from the purchase days in ascending order
/// (days after `as_of` are ignored, so history can be replayed).
pub fn lifecycle_as_of(purchase_days: &[NaiveDate], as_of: NaiveDate) -> Lifecycle {
    let known: Vec<NaiveDate> = purchase_days.iter().copied().filter(|d| *d <= as_of).collect();
    let Some(&last) = known.last() else { return Lifecycle::Prospect };
    let idle = (as_of - last).num_days();
    if idle >= LOST_AFTER_DAYS {
        return Lifecycle::Lost;
    }
    if idle >= AT_RISK_AFTER_DAYS {
        return Lifecycle::AtRisk;
    }
    // The latest purchase that ended a lost period, if any.
    let comeback = known.windows(2).rev().find(|pair| (pair[1] - pair[0]).num_days() >= LOST_AFTER_DAYS).map(|p| p[1]);
    match comeback {
        Some(day) if (as_of - day).num_days() < REACTIVATED_FOR_DAYS => Lifecycle::Reactivated,
        _ => Lifecycle::Active,
    }
}

/// The next day on which the state changes by the passing of time alone (no
/// new purchase), for the sweep: active → at_risk → lost, reactivated → active.
pub fn next_change(purchase_days: &[NaiveDate], as_of: NaiveDate) -> Option<NaiveDate> {
    let now = lifecycle_as_of(purchase_days, as_of);
    let last = purchase_days.iter().copied().filter(|d| *d <= as_of).max()?;
    let candidates =
        [last + chrono::Days::new(AT_RISK_AFTER_DAYS as u64), last + chrono::Days::new(LOST_AFTER_DAYS as u64)];
    let reactivation_end = purchase_days
        .windows(2)
        .filter(|pair| pair[1] <= as_of && (pair[1] - pair[0]).num_days() >= LOST_AFTER_DAYS)
        .map(|pair| pair[1] + chrono::Days::new(REACTIVATED_FOR_DAYS as u64))
        .max();
    candidates
        .into_iter()
        .chain(reactivation_end)
        .filter(|day| *day > as_of)
        .filter(|day| lifecycle_as_of(purchase_days, *day) != now)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn after(start: NaiveDate, days: u64) -> NaiveDate {
        start + chrono::Days::new(days)
    }

    #[test]
    fn no_purchase_is_a_prospect() {
        assert_eq!(lifecycle_as_of(&[], day(2026, 1, 1)), Lifecycle::Prospect);
        // A purchase after the evaluation day does not count yet.
        assert_eq!(lifecycle_as_of(&[day(2026, 2, 1)], day(2026, 1, 1)), Lifecycle::Prospect);
    }

    #[test]
    fn idle_days_cross_the_boundaries_at_90_and_365() {
        let bought = [day(2025, 3, 1)];
        let at = |idle| lifecycle_as_of(&bought, after(bought[0], idle));
        assert_eq!(at(0), Lifecycle::Active);
        assert_eq!(at(89), Lifecycle::Active);
        assert_eq!(at(90), Lifecycle::AtRisk);
        assert_eq!(at(364), Lifecycle::AtRisk);
        assert_eq!(at(365), Lifecycle::Lost);
        assert_eq!(at(2000), Lifecycle::Lost);
        // 1 March + 89 days = 29 May; + 90 days = 30 May.
        assert_eq!(after(bought[0], 89), day(2025, 5, 29));
        assert_eq!(after(bought[0], 90), day(2025, 5, 30));
    }

    #[test]
    fn a_purchase_after_being_lost_reactivates_for_exactly_90_days() {
        let first = day(2024, 1, 10);
        let comeback = after(first, 365); // lost on that very day, then buys
        let bought = [first, comeback];
        assert_eq!(lifecycle_as_of(&bought, comeback), Lifecycle::Reactivated);
        assert_eq!(lifecycle_as_of(&bought, after(comeback, 89)), Lifecycle::Reactivated);
        assert_eq!(lifecycle_as_of(&bought, after(comeback, 90)), Lifecycle::AtRisk, "90 idle days: at risk");
        // A further purchase keeps the 90 days counted from the comeback.
        let again = [first, comeback, after(comeback, 30)];
        assert_eq!(lifecycle_as_of(&again, after(comeback, 89)), Lifecycle::Reactivated);
        assert_eq!(lifecycle_as_of(&again, after(comeback, 90)), Lifecycle::Active);
    }

    #[test]
    fn a_gap_of_364_days_is_not_a_comeback() {
        let first = day(2024, 1, 10);
        let bought = [first, after(first, 364)];
        assert_eq!(lifecycle_as_of(&bought, after(first, 364)), Lifecycle::Active);
    }

    #[test]
    fn the_sweep_knows_when_time_alone_changes_the_state() {
        let first = day(2025, 3, 1);
        assert_eq!(next_change(&[first], first), Some(after(first, 90)));
        assert_eq!(next_change(&[first], after(first, 100)), Some(after(first, 365)));
        assert_eq!(next_change(&[first], after(first, 400)), None, "lost stays lost");
        let comeback = after(first, 500);
        let bought = [first, comeback, after(comeback, 10)];
        // Reactivated until comeback + 90, then active until last + 90.
        assert_eq!(next_change(&bought, comeback), Some(after(comeback, 90)));
        assert_eq!(next_change(&bought, after(comeback, 90)), Some(after(comeback, 100)));
        assert_eq!(next_change(&[], first), None);
    }

    #[test]
    fn names_round_trip() {
        for state in Lifecycle::ALL {
            assert_eq!(Lifecycle::parse(state.as_str()), Some(state));
        }
    }
}
