//! The normal and Student t distributions, from `statrs`, made total: invalid parameters fall
//! back to a safe value instead of an error (docs/DOMAIN.md §1.3: never NaN).

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Two-sided p-value of a z statistic: 2 × (1 − Φ(|z|)) (docs/DOMAIN.md §9.6); 1 when z is not finite.
pub(crate) fn normal_two_sided(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    // sf rather than 1 − cdf keeps precision in the far tail.
    (2.0 * Normal::standard().sf(z.abs())).clamp(0.0, 1.0)
}

/// The standard normal quantile; None outside (0, 1).
pub(crate) fn normal_quantile(p: f64) -> Option<f64> {
    (p > 0.0 && p < 1.0).then(|| Normal::standard().inverse_cdf(p)).filter(|q| q.is_finite())
}

/// The Student t quantile for `df` degrees of freedom; the normal one when df is not a
/// positive finite number, None when p is outside (0, 1).
pub(crate) fn t_quantile(p: f64, df: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) if df.is_finite() => Some(t.inverse_cdf(p)).filter(|q| q.is_finite()),
        _ => normal_quantile(p),
    }
}

/// Two-sided p-value of a t statistic with `df` degrees of freedom; 1 when t is NaN.
pub(crate) fn t_two_sided(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return 1.0;
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) if df.is_finite() => (2.0 * dist.sf(t.abs())).clamp(0.0, 1.0),
        _ => normal_two_sided(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::round3;

    #[test]
    fn quantiles_and_tails_match_the_tables() {
        // Normal table: z_0.975 = 1.960, z_0.9 = 1.282; 2 × (1 − Φ(1.96)) = 0.050.
        assert_eq!(normal_quantile(0.975).map(round3), Some(1.96));
        assert_eq!(normal_quantile(0.9).map(round3), Some(1.282));
        assert_eq!(round3(normal_two_sided(-1.96)), 0.05);
        // t table: t_0.975 with 7 df = 2.365; with 1 df = 12.706.
        assert_eq!(t_quantile(0.975, 7.0).map(round3), Some(2.365));
        assert_eq!(t_quantile(0.975, 1.0).map(round3), Some(12.706));
        assert_eq!(round3(t_two_sided(2.365, 7.0)), 0.05);
    }

    #[test]
    fn bad_parameters_never_give_nan() {
        assert_eq!(normal_quantile(0.0), None);
        assert_eq!(normal_quantile(f64::NAN), None);
        assert_eq!(t_quantile(1.0, 5.0), None);
        // No degrees of freedom: the normal quantile stands in.
        assert_eq!(t_quantile(0.975, 0.0).map(round3), Some(1.96));
        assert_eq!(t_quantile(0.975, f64::INFINITY).map(round3), Some(1.96));
        assert_eq!(normal_two_sided(f64::NAN), 1.0);
        assert_eq!(t_two_sided(f64::INFINITY, 3.0), 0.0);
        assert_eq!(t_two_sided(1.0, f64::NAN), normal_two_sided(1.0));
    }
}
