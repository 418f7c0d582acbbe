//! A distribution-free 95 % interval of a median from order statistics
//! (docs/DOMAIN.md §9.10): with n values sorted, `[x(r), x(n − r + 1)]` holds
//! the true median with probability 1 − 2 P(B ≤ r − 1), B ~ binomial(n, ½),
//! whatever the values' distribution. Only the ranks are needed, so a store
//! reads two rows, never all values.

use statrs::distribution::{Binomial, DiscreteCDF};

/// The 1-based ranks of the interval's ends among n sorted values, and the
/// exact probability that they hold the median.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MedianRanks {
    pub lower: u64,
    pub upper: u64,
    pub coverage: f64,
}

/// The narrowest symmetric pair of ranks covering the median with at least
/// 95 %: the largest r with 2 P(B ≤ r − 1) ≤ 0.05. Below 6 values no pair
/// reaches 95 % (n = 5 gives at most 1 − 2/32 = 93.75 %): the minimum and the
/// maximum, with their lower coverage. `None` for no values.
pub fn median_ranks(n: u64) -> Option<MedianRanks> {
    if n == 0 {
        return None;
    }
    let binomial = Binomial::new(0.5, n).ok()?;
    let coverage = |r: u64| 1.0 - 2.0 * binomial.cdf(r - 1);
    // coverage falls as r rises: search the last r in 1..=ceil(n/2) reaching 95 %.
    let (mut good, mut bad) = (0, n.div_ceil(2) + 1);
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        if coverage(mid) >= 0.95 { good = mid } else { bad = mid }
    }
    let r = good.max(1);
    Some(MedianRanks { lower: r, upper: n - r + 1, coverage: coverage(r) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::round3;

    fn ranks(n: u64) -> (u64, u64, f64) {
        let r = median_ranks(n).unwrap();
        (r.lower, r.upper, round3(r.coverage))
    }

    #[test]
    fn ranks_match_the_published_table() {
        // Campbell & Gardner, "Calculating confidence intervals for some
        // non-parametric analyses", BMJ 296 (1988) 1454–6, table 1 (also
        // Altman et al., "Statistics with confidence", table 18.4): ranks
        // and exact coverage of the 95 % interval of a median.
        // n = 10: P(B ≤ 1) = 11/1024, coverage 1 − 22/1024 = 0.979; r = 3
        // would give 1 − 2 × 56/1024 = 0.891.
        assert_eq!(ranks(10), (2, 9, 0.979));
        assert_eq!(ranks(6), (1, 6, 0.969));
        assert_eq!(ranks(9), (2, 8, 0.961));
        assert_eq!(ranks(12), (3, 10, 0.961));
        assert_eq!(ranks(17), (5, 13, 0.951));
        assert_eq!(ranks(20), (6, 15, 0.959));
        assert_eq!(ranks(50), (18, 33, 0.967));
        assert_eq!(ranks(100), (40, 61, 0.965));
    }

    #[test]
    fn few_values_give_the_extremes() {
        // n = 5: 1 − 2/32 = 0.9375 even for the extremes.
        assert_eq!(ranks(5), (1, 5, 0.938));
        // n = 1: the one value, coverage 1 − 2 × ½ = 0.
        assert_eq!(ranks(1), (1, 1, 0.0));
        assert_eq!(median_ranks(0), None);
    }

    #[test]
    fn large_counts_follow_the_normal_approximation() {
        // n = 10 000: r ≈ n/2 − 1.96 √n / 2 = 5000 − 98 = 4902, upper 5099.
        let r = median_ranks(10_000).unwrap();
        assert!((4_901..=4_903).contains(&r.lower) && r.upper == 10_001 - r.lower, "{r:?}");
        assert!(r.coverage >= 0.95 && r.coverage < 0.952, "{r:?}");
    }
}
