//! A/B tests of two proportions and the sample size they need (docs/DOMAIN.md §9.6).

use super::mean::finite;
use super::{Z95, dist, share};

/// The two-proportion z-test of arm 2 against arm 1 (control) (docs/DOMAIN.md §9.6).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoProportions {
    pub p1: f64,
    pub p2: f64,
    /// p2 − p1.
    pub absolute_lift: f64,
    /// (p2 − p1) / p1; None when p1 is 0.
    pub relative_lift: Option<f64>,
    /// With the pooled error.
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
    /// 95 % interval of p2 − p1, with the unpooled error.
    pub ci_low: f64,
    pub ci_high: f64,
    /// p-value < alpha.
    pub significant: bool,
}

/// x1 of n1 against x2 of n2, docs/DOMAIN.md §9.6 exactly; counts clamped to 0..=n, an empty arm
/// gives z 0 and p-value 1.
pub fn two_proportions(x1: i64, n1: i64, x2: i64, n2: i64, alpha: f64) -> TwoProportions {
    let (n1, n2) = (n1.max(0), n2.max(0));
    let (x1, x2) = (x1.clamp(0, n1), x2.clamp(0, n2));
    let (p1, p2) = (share(x1, n1), share(x2, n2));
    let lift = p2 - p1;
    let relative_lift = (p1 > 0.0).then(|| lift / p1);
    if n1 == 0 || n2 == 0 {
        return TwoProportions {
            p1,
            p2,
            absolute_lift: lift,
            relative_lift,
            z: 0.0,
            p_value: 1.0,
            ci_low: lift,
            ci_high: lift,
            significant: false,
        };
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let pooled = share(x1 + x2, n1 + n2);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / f1 + 1.0 / f2)).sqrt();
    // Both arms all or nothing: no spread, no evidence (0 / 0).
    let z = if se_pooled > 0.0 { lift / se_pooled } else { 0.0 };
    let p_value = dist::normal_two_sided(z);
    let half = Z95 * (p1 * (1.0 - p1) / f1 + p2 * (1.0 - p2) / f2).max(0.0).sqrt();
    TwoProportions {
        p1,
        p2,
        absolute_lift: lift,
        relative_lift,
        z: finite(z),
        p_value,
        ci_low: lift - half,
        ci_high: lift + half,
        significant: p_value < alpha,
    }
}

/// Customers per arm to detect an absolute lift `mde_absolute` over `baseline` with a two-sided
/// test at `alpha` and the given power (docs/DOMAIN.md §9.6):
/// n = ⌈(z_{1−α/2} √(2 p̄ (1 − p̄)) + z_power √(p1(1 − p1) + p2(1 − p2)))² / mde²⌉, p̄ = (p1 + p2)/2;
/// None unless 0 < p1, p2 < 1, mde ≠ 0 and 0 < alpha, power < 1.
pub fn sample_size_two_proportions(baseline: f64, mde_absolute: f64, alpha: f64, power: f64) -> Option<u64> {
    let (p1, p2) = (baseline, baseline + mde_absolute);
    let inside = |x: f64| x > 0.0 && x < 1.0;
    if !(inside(p1) && inside(p2) && inside(alpha) && inside(power)) || mde_absolute == 0.0 {
        return None;
    }
    let z_alpha = dist::normal_quantile(1.0 - alpha / 2.0)?;
    let z_power = dist::normal_quantile(power)?;
    let mean = (p1 + p2) / 2.0;
    let root = z_alpha * (2.0 * mean * (1.0 - mean)).sqrt() + z_power * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    let n = (root * root / (mde_absolute * mde_absolute)).ceil();
    // A power below 50 % can make the root negative; its square would answer a different test.
    (root > 0.0 && n.is_finite() && n < u64::MAX as f64).then_some(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::round3;

    #[test]
    fn the_domain_example() {
        // §9.6: p1 0.10, p2 0.13, pooled 0.115;
        // z = 0.03 / sqrt(0.115 × 0.885 × 0.002) = 0.03 / 0.014267 = 2.103; p = 0.035;
        // CI 0.03 ± 1.96 × sqrt(0.09/1000 + 0.1131/1000) = 0.03 ± 0.027932: 0.002 to 0.058.
        let t = two_proportions(100, 1000, 130, 1000, 0.05);
        assert_eq!((t.p1, t.p2, round3(t.absolute_lift)), (0.1, 0.13, 0.03));
        assert_eq!(t.relative_lift.map(round3), Some(0.3));
        assert_eq!((round3(t.z), round3(t.p_value)), (2.103, 0.035));
        assert_eq!((round3(t.ci_low), round3(t.ci_high)), (0.002, 0.058));
        assert!(t.significant);
        assert!(!two_proportions(100, 1000, 130, 1000, 0.01).significant);
    }

    #[test]
    fn the_textbook_example() {
        // Agresti, An Introduction to Categorical Data Analysis (2nd ed., 2007), §2.2.3,
        // Table 2.3 (Physicians' Health Study): myocardial infarction in 189 of 11,034 on
        // placebo and 104 of 11,037 on aspirin. p1 = 0.017129, p2 = 0.009423, lift −0.007706;
        // unpooled se sqrt(0.016836/11034 + 0.009334/11037) = 0.001540, CI −0.0077 ± 0.0030:
        // −0.011 to −0.005 (the book's 0.005 to 0.011 for placebo − aspirin);
        // pooled 293/22071 = 0.013275, se sqrt(0.013099 × 0.00018123) = 0.0015408,
        // z = −5.001 (z² = 25.01, the book's Pearson X² of the table, §2.4); p < 0.001.
        let t = two_proportions(189, 11034, 104, 11037, 0.05);
        assert_eq!((round3(t.p1), round3(t.p2), round3(t.absolute_lift)), (0.017, 0.009, -0.008));
        assert_eq!((round3(t.ci_low), round3(t.ci_high)), (-0.011, -0.005));
        assert_eq!(round3(t.z), -5.001);
        assert_eq!(round3(t.relative_lift.unwrap_or_default()), -0.45);
        assert!(t.p_value < 1e-6 && t.significant);
    }

    #[test]
    fn empty_and_bad_arms() {
        let t = two_proportions(0, 0, 3, 10, 0.05);
        assert_eq!((t.p1, t.p2, t.relative_lift, t.z, t.p_value, t.significant), (0.0, 0.3, None, 0.0, 1.0, false));
        // 12 of 10 counts as 10 of 10; −1 as 0: pooled 0.5, z = −1 / sqrt(0.25 × 0.2) = −4.472;
        // no spread within either arm, so the unpooled interval is −1 exactly.
        let t = two_proportions(12, 10, -1, 10, 0.05);
        assert_eq!((t.p1, t.p2, round3(t.z), t.ci_low, t.ci_high), (1.0, 0.0, -4.472, -1.0, -1.0));
        assert!(t.significant);
        // Same all-or-nothing in both arms: no lift, interval of width 0.
        let t = two_proportions(0, 10, 0, 10, 0.05);
        assert_eq!((t.relative_lift, t.ci_low, t.ci_high, t.significant), (None, 0.0, 0.0, false));
        assert!(!two_proportions(1, 10, 5, 10, f64::NAN).significant);
    }

    #[test]
    fn sample_size_matches_a_published_value() {
        // R's documentation of power.prop.test (same formula, strict = FALSE): p1 0.50,
        // p2 0.75, power 0.90 gives n = 76.7 per group. By hand: p̄ 0.625,
        // 1.959964 × sqrt(0.46875) = 1.341896; 1.281552 × sqrt(0.4375) = 0.847667;
        // 2.189563² / 0.0625 = 76.707, so 77.
        assert_eq!(sample_size_two_proportions(0.5, 0.25, 0.05, 0.9), Some(77));
        // The §9.6 example's rates at 80 % power: p̄ 0.115, 1.959964 × sqrt(0.20355) = 0.884267;
        // 0.841621 × sqrt(0.09 + 0.1131) = 0.379290; 1.263558² / 0.0009 = 1773.976, so 1774.
        assert_eq!(sample_size_two_proportions(0.1, 0.03, 0.05, 0.8), Some(1774));
    }

    #[test]
    fn sample_size_out_of_range() {
        assert_eq!(sample_size_two_proportions(0.0, 0.1, 0.05, 0.8), None);
        assert_eq!(sample_size_two_proportions(0.95, 0.1, 0.05, 0.8), None);
        assert_eq!(sample_size_two_proportions(0.1, 0.0, 0.05, 0.8), None);
        assert_eq!(sample_size_two_proportions(0.1, 0.03, 1.0, 0.8), None);
        assert_eq!(sample_size_two_proportions(0.1, 0.03, 0.05, f64::NAN), None);
        assert_eq!(sample_size_two_proportions(f64::NAN, 0.03, 0.05, 0.8), None);
        // A decrease is as detectable as the same increase from the mirrored baseline.
        assert_eq!(sample_size_two_proportions(0.75, -0.25, 0.05, 0.9), Some(77));
    }
}
