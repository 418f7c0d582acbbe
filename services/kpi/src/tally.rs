//! What an owner counted of one metric over some answers: the sufficient
//! statistics (counts, sums), which add across days, and the figures, the
//! intervals and the changes worked from them by `cx_runtime::stats`
//! (docs/DOMAIN.md §7.1–§7.3, §9.1, §9.7).

use cx_runtime::stats::{
    Change, ClvInputs, Moments, NpsCounts, clv, clv_change, nps, nps_change, nps_margin, proportion_change, welch,
    wilson,
};

use crate::metric::{Figure, Metric};

/// Significance of a period-over-period change (docs/DOMAIN.md §9.6).
pub const ALPHA: f64 = 0.05;

/// One metric's counts over some answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tally {
    /// Promoters and detractors of n NPS answers.
    Nps(NpsCounts),
    /// Satisfied (4–5) of n CSAT answers.
    Csat { satisfied: i64, n: i64 },
    /// Count, sum and sum of squares of CES scores.
    Ces(Moments),
    /// k of n customers or cases, counted by the owner for one period
    /// (churn, retention, reactivation, the closed loop).
    Counted { metric: Metric, k: i64, n: i64 },
    /// What CLV is worked from, in `currency` (None: no purchase to read).
    Clv { inputs: ClvInputs, currency: Option<Currency> },
    /// A median of n values with its interval from order statistics, as
    /// the owner read it (the time to resolution, in hours).
    Median { n: i64, median: f64, low: f64, high: f64 },
}

/// An ISO 4217 code, kept by value so that a tally stays `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Currency([u8; 3]);

impl Currency {
    /// `code` when it is three ASCII letters, as profile answers it.
    pub fn parse(code: &str) -> Option<Self> {
        let bytes: [u8; 3] = code.as_bytes().try_into().ok()?;
        bytes.iter().all(u8::is_ascii_alphabetic).then_some(Self(bytes))
    }

    pub fn code(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl Tally {
    /// Nothing counted yet, of `metric`.
    pub fn empty(metric: Metric) -> Self {
        match metric {
            Metric::Nps => Self::Nps(NpsCounts::default()),
            Metric::Csat => Self::Csat { satisfied: 0, n: 0 },
            Metric::Ces => Self::Ces(Moments::default()),
            Metric::Churn | Metric::Retention | Metric::Reactivation | Metric::ClosedLoop | Metric::Conversion => {
                Self::Counted { metric, k: 0, n: 0 }
            }
            Metric::Clv => Self::Clv { inputs: ClvInputs::default(), currency: None },
            Metric::ResolutionTime => Self::Median { n: 0, median: 0.0, low: 0.0, high: 0.0 },
        }
    }

    /// The currency of a CLV tally, as clients read it; empty for others.
    pub fn currency(&self) -> String {
        match self {
            Self::Clv { currency: Some(c), .. } => c.code(),
            _ => String::new(),
        }
    }

    /// The answers counted.
    pub fn n(&self) -> i64 {
        match self {
            Self::Nps(c) => c.n,
            Self::Csat { n, .. } => *n,
            Self::Ces(m) => m.n,
            Self::Counted { n, .. } => *n,
            Self::Clv { inputs, .. } => inputs.purchase_value.n,
            Self::Median { n, .. } => *n,
        }
    }

    /// Both counts together (of one metric; another's is ignored).
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Nps(a), Self::Nps(b)) => Self::Nps(NpsCounts {
                promoters: a.promoters.saturating_add(b.promoters),
                detractors: a.detractors.saturating_add(b.detractors),
                n: a.n.saturating_add(b.n),
            }),
            (Self::Csat { satisfied: s, n }, Self::Csat { satisfied, n: m }) => {
                Self::Csat { satisfied: s.saturating_add(satisfied), n: n.saturating_add(m) }
            }
            (Self::Ces(a), Self::Ces(b)) => Self::Ces(a.merge(b)),
            // Customers of two periods are not a sum: the owner counts each period.
            (this, _) => this,
        }
    }

    /// The metric's value with its 95 % interval, kept on its scale.
    pub fn figure(&self) -> Figure {
        match *self {
            Self::Nps(c) => {
                let (value, margin) = (nps(c.promoters, c.detractors, c.n), nps_margin(c.promoters, c.detractors, c.n));
                Figure::within(Metric::Nps, value, c.n, value - margin, value + margin)
            }
            Self::Csat { satisfied, n } => {
                let (low, high) = wilson(satisfied, n);
                Figure::within(Metric::Csat, cx_runtime::stats::share(satisfied, n), n, low, high)
            }
            Self::Ces(m) => {
                // One answer says nothing of the spread: the whole scale.
                let (low, high) = if m.n < 2 { Metric::Ces.scale() } else { m.t_interval95() };
                Figure::within(Metric::Ces, m.mean(), m.n, low, high)
            }
            Self::Counted { metric, k, n } => {
                let (low, high) = wilson(k, n);
                Figure::within(metric, cx_runtime::stats::share(k, n), n, low, high)
            }
            Self::Clv { inputs, .. } => {
                let c = clv(inputs);
                Figure::within(Metric::Clv, c.value, inputs.purchase_value.n, c.low, c.high)
            }
            Self::Median { n, median, low, high } => Figure::within(Metric::ResolutionTime, median, n, low, high),
        }
    }

    /// The change from `before` to this (this − before): NPS by a z-test,
    /// CSAT by the two-proportion test, the CES mean by Welch's t-test. Two
    /// medians are not tested: a test of them (Mood's) needs each period's
    /// counts above the pooled median, which the owner does not read; the
    /// difference is given alone, p-value 1 (docs/DOMAIN.md §9.10).
    pub fn change_from(&self, before: &Self) -> Change {
        match (before, self) {
            (Self::Nps(a), Self::Nps(b)) => nps_change(*a, *b, ALPHA),
            (Self::Csat { satisfied: x1, n: n1 }, Self::Csat { satisfied: x2, n: n2 }) => {
                proportion_change(*x1, *n1, *x2, *n2, ALPHA)
            }
            (Self::Ces(a), Self::Ces(b)) => welch(*a, *b, ALPHA),
            (Self::Counted { k: x1, n: n1, .. }, Self::Counted { k: x2, n: n2, .. }) => {
                proportion_change(*x1, *n1, *x2, *n2, ALPHA)
            }
            (Self::Clv { inputs: a, .. }, Self::Clv { inputs: b, .. }) => clv_change(clv(*a), clv(*b), ALPHA),
            (Self::Median { median: a, .. }, Self::Median { median: b, .. }) => Change::without_evidence(b - a),
            _ => welch(Moments::default(), Moments::default(), ALPHA),
        }
    }
}

/// The test a metric's change is made by, as `Change.test` says.
pub fn change_test(metric: Metric) -> &'static str {
    match metric {
        Metric::Nps => "nps-z",
        Metric::Csat
        | Metric::Churn
        | Metric::Retention
        | Metric::Reactivation
        | Metric::ClosedLoop
        | Metric::Conversion => "two-proportion-z",
        Metric::Ces => "welch-t",
        Metric::Clv => "delta-z",
        Metric::ResolutionTime => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round6(x: f64) -> f64 {
        (x * 1e6).round() / 1e6
    }

    fn shown(f: Figure) -> (f64, i64, f64, f64) {
        (round6(f.value), f.n, round6(f.low), round6(f.high))
    }

    #[test]
    fn figures_are_worked_from_the_counts() {
        // NPS 4 promoters, 2 detractors of 8: 25 ± 57.457593 (DOMAIN §7.1).
        let nps = Tally::Nps(NpsCounts { promoters: 4, detractors: 2, n: 8 });
        assert_eq!(shown(nps.figure()), (25.0, 8, -32.457593, 82.457593));
        // CSAT 7 of 10: Wilson 0.396773 to 0.892211.
        assert_eq!(shown(Tally::Csat { satisfied: 7, n: 10 }.figure()), (0.7, 10, 0.396773, 0.892211));
        // CES 7, 7, 6, 5, 5, 4, 3, 2, 2, 1: 4.2 ± 1.537971 (DOMAIN §9.7).
        let ces = Tally::Ces(Moments { n: 10, sum: 42.0, sum_sq: 218.0 });
        assert_eq!(shown(ces.figure()), (4.2, 10, 2.662029, 5.737971));
        // One CES answer: the whole scale.
        assert_eq!(shown(Tally::Ces(Moments { n: 1, sum: 6.0, sum_sq: 36.0 }).figure()), (6.0, 1, 1.0, 7.0));
        assert_eq!(Tally::empty(Metric::Csat).figure(), Figure::NONE);
    }

    #[test]
    fn days_add_up_and_changes_are_tested() {
        let monday = Tally::Csat { satisfied: 30, n: 100 };
        let tuesday = Tally::Csat { satisfied: 70, n: 100 };
        assert_eq!(monday.merge(tuesday), Tally::Csat { satisfied: 100, n: 200 });
        assert_eq!(monday.merge(Tally::empty(Metric::Nps)), monday, "another metric's counts are ignored");
        // 30 % then 70 % of 100: a lift of 0.4; pooled 0.5, se sqrt(0.25 × 0.02)
        // = 0.070711, z = 5.657: p < 0.001, significant.
        let change = tuesday.change_from(&monday);
        assert!((change.difference - 0.4).abs() < 1e-12 && change.significant && change.p_value < 1e-6, "{change:?}");
        // NPS 25 (4, 2 of 8) then 25 again: no change, p 1.
        let same = Tally::Nps(NpsCounts { promoters: 4, detractors: 2, n: 8 });
        let change = same.change_from(&same);
        assert_eq!((change.difference, change.p_value, change.significant), (0.0, 1.0, false));
        // Medians 30 h then 20 h: −10 h, untested (p 1, interval the difference).
        let before = Tally::Median { n: 10, median: 30.0, low: 12.0, high: 50.0 };
        let after = Tally::Median { n: 6, median: 20.0, low: 5.0, high: 40.0 };
        let change = after.change_from(&before);
        assert_eq!((change.difference, change.ci_low, change.ci_high, change.p_value), (-10.0, -10.0, -10.0, 1.0));
        assert_eq!(shown(after.figure()), (20.0, 6, 5.0, 40.0));
        assert_eq!(Tally::empty(Metric::ResolutionTime).figure(), Figure::NONE);
    }
}
