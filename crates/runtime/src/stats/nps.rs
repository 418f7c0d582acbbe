//! The Net Promoter Score, its margin and its change between periods (docs/DOMAIN.md §7.1).

use super::change::Change;
use super::{Z95, dist, share};

/// Promoters and detractors among n answers (docs/DOMAIN.md §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NpsCounts {
    pub promoters: i64,
    pub detractors: i64,
    pub n: i64,
}

impl NpsCounts {
    /// The shares (p, d), counts clamped so that 0 ≤ p, d and p + d ≤ 1 (docs/DOMAIN.md §7.1).
    fn shares(&self) -> (f64, f64) {
        if self.n <= 0 {
            return (0.0, 0.0);
        }
        let promoters = self.promoters.clamp(0, self.n);
        let detractors = self.detractors.clamp(0, self.n - promoters);
        (share(promoters, self.n), share(detractors, self.n))
    }

    /// The variance of one answer's score (+1, 0, −1): p + d − (p − d)², never negative
    /// (docs/DOMAIN.md §7.1).
    fn unit_variance(&self) -> f64 {
        let (p, d) = self.shares();
        (p + d - (p - d).powi(2)).max(0.0)
    }
}

/// NPS = 100 × (p − d), in points; 0 when n is 0 (docs/DOMAIN.md §7.1).
pub fn nps(promoters: i64, detractors: i64, n: i64) -> f64 {
    let (p, d) = NpsCounts { promoters, detractors, n }.shares();
    100.0 * (p - d)
}

/// The 95 % margin 196 × sqrt((p + d − (p − d)²) / n), in points; 0 when n is 0 (docs/DOMAIN.md §7.1).
pub fn nps_margin(promoters: i64, detractors: i64, n: i64) -> f64 {
    if n <= 0 {
        return 0.0;
    }
    100.0 * Z95 * (NpsCounts { promoters, detractors, n }.unit_variance() / n as f64).sqrt()
}

/// The change of NPS from period a to period b, in points: a z-test on the difference with
/// var = 100² × (p + d − (p − d)²) / n per period (docs/DOMAIN.md §7.1, §9.1); p-value 1 when
/// either period has no answer.
pub fn nps_change(a: NpsCounts, b: NpsCounts, alpha: f64) -> Change {
    let difference = nps(b.promoters, b.detractors, b.n) - nps(a.promoters, a.detractors, a.n);
    if a.n <= 0 || b.n <= 0 {
        return Change::without_evidence(difference);
    }
    let se = 100.0 * (a.unit_variance() / a.n as f64 + b.unit_variance() / b.n as f64).sqrt();
    Change::from_statistic(difference, se, Z95, dist::normal_two_sided, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::round3;

    #[test]
    fn the_domain_example() {
        // §7.1: 100 answers, 50 promoters, 20 detractors: NPS 30;
        // margin 196 × sqrt((0.5 + 0.2 − 0.09) / 100) = 196 × 0.078102 = 15.308 points.
        assert_eq!(round3(nps(50, 20, 100)), 30.0);
        assert_eq!(round3(nps_margin(50, 20, 100)), 15.308);
    }

    #[test]
    fn bad_counts_are_clamped() {
        assert_eq!((nps(0, 0, 0), nps_margin(5, 5, 0), nps_margin(1, 1, -4)), (0.0, 0.0, 0.0));
        // 150 promoters of 100 count as 100: NPS 100, every answer the same, margin 0.
        assert_eq!((nps(150, 0, 100), nps_margin(150, 0, 100)), (100.0, 0.0));
        // Promoters first, then detractors up to what is left: 80 and 20 of 100, NPS 60.
        assert_eq!(round3(nps(80, 90, 100)), 60.0);
        assert_eq!(nps(-5, -5, 10), 0.0);
    }

    #[test]
    fn change_between_two_periods() {
        // a: 50 and 20 of 100, NPS 30, var (0.7 − 0.09) / 100 = 0.0061;
        // b: 120 and 20 of 200, NPS 50, var (0.7 − 0.25) / 200 = 0.00225;
        // se = 100 × sqrt(0.00835) = 9.138 points; z = 20 / 9.138 = 2.189;
        // p = 2 × (1 − Φ(2.189)) = 0.029; CI 20 ± 1.96 × 9.138 = 2.090 to 37.910.
        let a = NpsCounts { promoters: 50, detractors: 20, n: 100 };
        let b = NpsCounts { promoters: 120, detractors: 20, n: 200 };
        let change = nps_change(a, b, 0.05);
        assert_eq!(round3(change.difference), 20.0);
        assert_eq!((round3(change.ci_low), round3(change.ci_high)), (2.09, 37.91));
        assert_eq!(round3(change.p_value), 0.029);
        assert!(change.significant);
        assert!(!nps_change(a, b, 0.01).significant);
    }

    #[test]
    fn change_without_answers() {
        let b = NpsCounts { promoters: 1, detractors: 0, n: 2 };
        let change = nps_change(NpsCounts::default(), b, 0.05);
        assert_eq!((change.difference, change.p_value, change.significant), (50.0, 1.0, false));
        assert_eq!((change.ci_low, change.ci_high), (50.0, 50.0));
    }
}
