//! The fatigue budget (docs/DOMAIN.md §7.4): at most N invitations per
//! customer per window, across every survey and channel of the tenant.
//!
//! An invitation counts against a window of length w for a new one due at
//! s when it was not suppressed and its own due time (send_after) lies less
//! than w before or after s. Checking both sides keeps the rule whatever
//! order touchpoints arrive in: a late touchpoint dated before an existing
//! invitation is held to the same limit.

use chrono::{DateTime, Duration, Utc};

/// The tenant's windows: `(max, w)` each.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    windows: Vec<(u32, Duration)>,
}

impl Budget {
    pub fn new(windows: Vec<(u32, Duration)>) -> Self {
        Self { windows }
    }

    /// The longest window: invitations further than this from a new one
    /// never count against it.
    pub fn reach(&self) -> Duration {
        self.windows.iter().map(|(_, w)| *w).max().unwrap_or_else(Duration::zero)
    }

    /// Whether an invitation due at `at` fits beside `counted`, the due
    /// times of the customer's invitations that were not suppressed.
    pub fn allows(&self, counted: &[DateTime<Utc>], at: DateTime<Utc>) -> bool {
        self.windows.iter().all(|&(max, window)| {
            let within = counted.iter().filter(|other| (**other - at).abs() < window).count();
            within < usize::try_from(max).unwrap_or(usize::MAX)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::days(n)
    }

    fn defaults() -> Budget {
        Budget::new(vec![(1, Duration::days(30)), (3, Duration::days(365))])
    }

    #[test]
    fn one_in_thirty_days_counts_both_sides_and_the_bound_is_open() {
        let budget = defaults();
        assert!(budget.allows(&[], day(0)));
        // An invitation on day 0: day 29 is 29 days after (< 30), refused;
        // day 30 is exactly 30 days after, allowed.
        assert!(!budget.allows(&[day(0)], day(29)));
        assert!(budget.allows(&[day(0)], day(30)));
        // A late touchpoint dated 10 days before it is refused too.
        assert!(!budget.allows(&[day(0)], day(-10)));
        assert!(budget.allows(&[day(0)], day(-30)));
        assert_eq!(budget.reach(), Duration::days(365));
    }

    #[test]
    fn three_in_a_year_is_the_second_limit() {
        let budget = defaults();
        // Days 0, 40 and 80 are 40 days apart: each fits the 30-day window.
        assert!(budget.allows(&[day(0)], day(40)));
        assert!(budget.allows(&[day(0), day(40)], day(80)));
        // A fourth on day 120: days 0, 40 and 80 are within 365 days → 3, refused.
        assert!(!budget.allows(&[day(0), day(40), day(80)], day(120)));
        // On day 380: only days 40 and 80 are within 365 days (day 0 is 380
        // days before) → 2, allowed.
        assert!(budget.allows(&[day(0), day(40), day(80)], day(380)));
    }

    #[test]
    fn tenant_windows_replace_the_defaults() {
        let three_a_week = Budget::new(vec![(3, Duration::days(7))]);
        assert!(three_a_week.allows(&[day(0), day(0)], day(0)));
        assert!(!three_a_week.allows(&[day(0), day(0), day(0)], day(0)));
        assert!(Budget::new(vec![]).allows(&[day(0); 10], day(0)), "no window, no limit");
    }
}
