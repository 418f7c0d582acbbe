//! Period-over-period changes in one shape for every KPI: proportions by the two-proportion
//! test, means by Welch's t-test (docs/DOMAIN.md §9.1, §9.6).

use super::ab::two_proportions;
use super::mean::{Moments, finite};
use super::{Z95, dist};

/// The change from period a to period b (b − a) with its 95 % interval and two-sided p-value
/// (docs/DOMAIN.md §9.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    pub difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
    /// p-value < alpha.
    pub significant: bool,
}

impl Change {
    /// Too little data to test: the difference alone, p-value 1 (docs/DOMAIN.md §1.3).
    pub fn without_evidence(difference: f64) -> Self {
        let difference = finite(difference);
        Self { difference, ci_low: difference, ci_high: difference, p_value: 1.0, significant: false }
    }

    /// difference ± critical × se, p-value of difference / se (docs/DOMAIN.md §9.6). A zero
    /// error makes any difference certain (p 0) and no difference p 1 (0 / 0 is NaN).
    pub(crate) fn from_statistic(
        difference: f64,
        se: f64,
        critical: f64,
        two_sided: impl Fn(f64) -> f64,
        alpha: f64,
    ) -> Self {
        let difference = finite(difference);
        let half = finite(critical * se);
        let p_value = two_sided(difference / se);
        Self {
            difference,
            ci_low: difference - half,
            ci_high: difference + half,
            p_value,
            significant: p_value < alpha,
        }
    }
}

/// The change of a proportion from x1 of n1 to x2 of n2 (difference = p2 − p1): the
/// two-proportion test of docs/DOMAIN.md §9.6 in the [`Change`] shape.
pub fn proportion_change(x1: i64, n1: i64, x2: i64, n2: i64, alpha: f64) -> Change {
    let t = two_proportions(x1, n1, x2, n2, alpha);
    Change {
        difference: t.absolute_lift,
        ci_low: t.ci_low,
        ci_high: t.ci_high,
        p_value: t.p_value,
        significant: t.significant,
    }
}

/// Welch's t-test of mean b − mean a, unequal variances, Welch–Satterthwaite degrees of
/// freedom; p-value 1 when either sample has fewer than 2 values (docs/DOMAIN.md §9.1).
pub fn welch(a: Moments, b: Moments, alpha: f64) -> Change {
    let difference = b.mean() - a.mean();
    if a.n < 2 || b.n < 2 {
        return Change::without_evidence(difference);
    }
    let (va, vb) = (a.variance() / a.n as f64, b.variance() / b.n as f64);
    let se2 = va + vb;
    // df = (va + vb)² / (va²/(na − 1) + vb²/(nb − 1)); NaN when both are 0, which the
    // distribution helpers answer with the normal.
    let df = se2 * se2 / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    let critical = dist::t_quantile(0.975, df).unwrap_or(Z95);
    Change::from_statistic(difference, se2.sqrt(), critical, |t| dist::t_two_sided(t, df), alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::round3;

    #[test]
    fn welch_worked_by_hand() {
        // a = 1..5: mean 3, variance 2.5; b = 2, 4, …, 10: mean 6, variance 10.
        // va = 2.5/5 = 0.5, vb = 10/5 = 2; se = sqrt(2.5) = 1.581; t = 3 / 1.581 = 1.897;
        // df = 2.5² / (0.5²/4 + 2²/4) = 6.25 / 1.0625 = 5.882;
        // t_0.975 with 5.882 df = 2.459 (between 2.571 at 5 and 2.447 at 6): half 3.888,
        // CI −0.888 to 6.888; p = 0.108 (between 0.116 at 5 df and 0.107 at 6).
        let a = Moments::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let b = Moments::of(&[2.0, 4.0, 6.0, 8.0, 10.0]);
        let change = welch(a, b, 0.05);
        assert_eq!(change.difference, 3.0);
        assert_eq!((round3(change.ci_low), round3(change.ci_high)), (-0.888, 6.888));
        assert_eq!(round3(change.p_value), 0.108);
        assert!(!change.significant);
        assert!(welch(a, b, 0.2).significant);
    }

    #[test]
    fn welch_of_small_and_constant_samples() {
        let one = Moments::of(&[4.0]);
        let many = Moments::of(&[1.0, 2.0, 3.0]);
        assert_eq!(welch(one, many, 0.05), Change::without_evidence(-2.0));
        assert_eq!(welch(Moments::default(), Moments::default(), 0.05), Change::without_evidence(0.0));
        // Two constant samples: equal means are no change, different ones certain.
        let twos = Moments::of(&[2.0, 2.0]);
        let threes = Moments::of(&[3.0, 3.0]);
        let same = welch(twos, twos, 0.05);
        assert_eq!((same.difference, same.p_value, same.significant), (0.0, 1.0, false));
        let moved = welch(twos, threes, 0.05);
        assert_eq!((moved.difference, moved.p_value, moved.significant), (1.0, 0.0, true));
        assert_eq!((moved.ci_low, moved.ci_high), (1.0, 1.0));
    }

    #[test]
    fn proportion_change_is_the_ab_test() {
        // docs/DOMAIN.md §9.6: 100/1000 to 130/1000: +0.03, CI 0.002 to 0.058, p 0.035.
        let change = proportion_change(100, 1000, 130, 1000, 0.05);
        assert_eq!(round3(change.difference), 0.03);
        assert_eq!((round3(change.ci_low), round3(change.ci_high)), (0.002, 0.058));
        assert_eq!(round3(change.p_value), 0.035);
        assert!(change.significant);
    }
}
