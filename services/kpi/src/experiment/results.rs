//! An experiment's results from its counts: each variant's rate with its
//! Wilson interval, each other variant tested against the control
//! (`cx_runtime::stats::two_proportions`), and the peeking warning.

use std::collections::HashMap;

use cx_proto::kpi::v1 as pb;
use cx_runtime::stats::{share, two_proportions, wilson};

/// Every variant of `e` in order, from `counts` (exposures, conversions by
/// key; a variant nobody saw yet has none).
pub fn variants(e: &pb::Experiment, counts: &HashMap<String, (i64, i64)>) -> Vec<pb::VariantResult> {
    e.variants
        .iter()
        .map(|v| {
            let (n, x) = counts.get(&v.key).copied().unwrap_or_default();
            let (low, high) = wilson(x, n);
            pb::VariantResult { key: v.key.clone(), exposures: n, conversions: x, rate: share(x, n), low, high }
        })
        .collect()
}

/// Each variant after the first against the first (the control), at the
/// experiment's alpha.
pub fn comparisons(alpha: f64, variants: &[pb::VariantResult]) -> Vec<pb::VariantComparison> {
    let Some((control, others)) = variants.split_first() else { return Vec::new() };
    others
        .iter()
        .map(|v| {
            let t = two_proportions(control.conversions, control.exposures, v.conversions, v.exposures, alpha);
            pb::VariantComparison {
                key: v.key.clone(),
                absolute_lift: t.absolute_lift,
                relative_lift: t.relative_lift,
                low: t.ci_low,
                high: t.ci_high,
                z: t.z,
                p_value: t.p_value,
                significant: t.significant,
            }
        })
        .collect()
}

/// Read before every arm reached its planned exposures.
pub fn peeking(planned: i64, variants: &[pb::VariantResult]) -> bool {
    variants.iter().any(|v| v.exposures < planned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(key: &str, n: i64, x: i64) -> pb::VariantResult {
        let (low, high) = wilson(x, n);
        pb::VariantResult { key: key.into(), exposures: n, conversions: x, rate: share(x, n), low, high }
    }

    #[test]
    fn a_variant_nobody_saw_counts_zero_and_peeks() {
        let e = pb::Experiment {
            variants: vec![pb::Variant { key: "a".into(), weight: 1 }, pb::Variant { key: "b".into(), weight: 1 }],
            ..Default::default()
        };
        let counts = HashMap::from([("a".to_owned(), (4, 1))]);
        // a: 1 of 4 = 0.25; b: none, rate 0 and the interval (0, 0).
        let got = variants(&e, &counts);
        assert_eq!(got, [arm("a", 4, 1), pb::VariantResult { key: "b".into(), ..Default::default() }]);
        assert!(peeking(1, &got));
        assert!(!peeking(0, &got));
        // b has no exposure: p-value 1, nothing significant; lift 0 − 0.25.
        let c = &comparisons(0.05, &got)[0];
        assert_eq!((c.absolute_lift, c.relative_lift, c.p_value, c.significant), (-0.25, Some(-1.0), 1.0, false));
    }
}
