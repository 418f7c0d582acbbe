//! Means from sums pushed down to the database, with their t-interval (docs/DOMAIN.md §1.3, §7.3, §9.1).

use super::dist;

/// Count, sum and sum of squares of a sample: what a `GROUP BY` returns, merged without the
/// values (docs/DOMAIN.md §1.3).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    pub n: i64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Moments {
    /// The moments of the given values (docs/DOMAIN.md §1.3).
    pub fn of(values: &[f64]) -> Self {
        values.iter().fold(Self::default(), |m, &x| m.merge(Self { n: 1, sum: x, sum_sq: x * x }))
    }

    /// The moments of two samples together, as `a + b` (docs/DOMAIN.md §1.3).
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        Self { n: self.n.saturating_add(other.n), sum: self.sum + other.sum, sum_sq: self.sum_sq + other.sum_sq }
    }

    /// The mean; 0 when n is 0 or the sums are not finite (docs/DOMAIN.md §1.3).
    pub fn mean(&self) -> f64 {
        if self.n <= 0 {
            return 0.0;
        }
        finite(self.sum / self.n as f64)
    }

    /// The sample variance (n − 1 denominator); 0 when n < 2 (docs/DOMAIN.md §1.3).
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        // sum_sq − sum²/n cancels catastrophically when the spread is tiny against the mean:
        // rounding can leave −ε, which is no variance at all.
        finite(((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0))
    }

    /// The 95 % interval of the mean with Student's t for n − 1 degrees of freedom; the mean
    /// itself when n < 2 (docs/DOMAIN.md §9.1).
    pub fn t_interval95(&self) -> (f64, f64) {
        let mean = self.mean();
        if self.n < 2 {
            return (mean, mean);
        }
        let n = self.n as f64;
        let half = dist::t_quantile(0.975, n - 1.0).unwrap_or(super::Z95) * (self.variance() / n).sqrt();
        (mean - finite(half), mean + finite(half))
    }
}

impl std::ops::Add for Moments {
    type Output = Self;

    /// [`Moments::merge`] (docs/DOMAIN.md §1.3).
    fn add(self, other: Self) -> Self {
        self.merge(other)
    }
}

impl std::ops::AddAssign for Moments {
    fn add_assign(&mut self, other: Self) {
        *self = self.merge(other);
    }
}

/// x, or 0 when it is NaN or infinite (docs/DOMAIN.md §1.3: never NaN).
pub(crate) fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::round3;

    #[test]
    fn mean_variance_and_interval_of_a_sample() {
        // 2, 4, 4, 4, 5, 5, 7, 9: n 8, sum 40, sum of squares 232; mean 5;
        // variance (232 − 40²/8) / 7 = 32/7 = 4.571; se = sqrt(4.571/8) = 0.756;
        // t_0.975 with 7 df = 2.365; half 1.787: 3.213 to 6.787.
        let m = Moments::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, Moments { n: 8, sum: 40.0, sum_sq: 232.0 });
        assert_eq!((m.mean(), round3(m.variance())), (5.0, 4.571));
        let (low, high) = m.t_interval95();
        assert_eq!((round3(low), round3(high)), (3.213, 6.787));
    }

    #[test]
    fn merging_equals_the_whole() {
        // {1, 2} + {3}: n 3, sum 6, sum of squares 14, as of {1, 2, 3}.
        let merged = Moments::of(&[1.0, 2.0]) + Moments::of(&[3.0]);
        assert_eq!(merged, Moments::of(&[1.0, 2.0, 3.0]));
        assert_eq!(merged, Moments { n: 3, sum: 6.0, sum_sq: 14.0 });
        let mut total = Moments::default();
        total += Moments::of(&[3.0]);
        assert_eq!(total.merge(Moments::of(&[1.0, 2.0])), merged);
    }

    #[test]
    fn small_and_degenerate_samples() {
        assert_eq!((Moments::default().mean(), Moments::default().variance()), (0.0, 0.0));
        assert_eq!(Moments::default().t_interval95(), (0.0, 0.0));
        let one = Moments::of(&[7.0]);
        assert_eq!((one.mean(), one.variance(), one.t_interval95()), (7.0, 0.0, (7.0, 7.0)));
        let negative = Moments { n: -3, sum: 5.0, sum_sq: 1.0 };
        assert_eq!((negative.mean(), negative.variance()), (0.0, 0.0));
        // Sums that say the squares are smaller than the mean allows: no negative variance.
        let impossible = Moments { n: 2, sum: 10.0, sum_sq: 1.0 };
        assert_eq!((impossible.variance(), impossible.t_interval95()), (0.0, (5.0, 5.0)));
        let infinite = Moments { n: 2, sum: f64::INFINITY, sum_sq: f64::INFINITY };
        assert_eq!((infinite.mean(), infinite.variance()), (0.0, 0.0));
    }

    #[test]
    fn variance_survives_a_large_mean() {
        // 1e9 + 1, 1e9 + 2, 1e9 + 3 (as a database's float sums give them): variance 1 exactly,
        // but sum² / n loses the last digits; the result is close to 1 and never negative.
        let m = Moments::of(&[1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0]);
        assert!(m.variance() >= 0.0);
        let constant = Moments::of(&[0.1; 1000]);
        assert!(constant.variance() >= 0.0 && constant.variance() < 1e-12);
        let (low, high) = constant.t_interval95();
        assert!(low <= 0.1 + 1e-9 && high >= 0.1 - 1e-9 && low <= high);
    }
}
