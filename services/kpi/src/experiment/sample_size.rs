//! The customers per variant an experiment needs, its inputs checked
//! (`cx_runtime::stats::sample_size_two_proportions`, docs/DOMAIN.md §9.6).

use cx_runtime::error::Violations;
use cx_runtime::stats::sample_size_two_proportions;

/// Significance level when none is given (docs/DOMAIN.md §9.6).
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Power when none is given: the usual 80 %.
pub const DEFAULT_POWER: f64 = 0.8;
/// Most exposures an experiment plans per variant.
pub const MAX_PER_VARIANT: i64 = 100_000_000;

const INSIDE: &str = "must be strictly between 0 and 1";

/// `given`, or `default` when 0; a violation at `field` unless strictly
/// between 0 and 1.
pub fn level(out: &mut Violations, given: f64, default: f64, field: &str) -> Option<f64> {
    let value = if given == 0.0 { default } else { given };
    if value > 0.0 && value < 1.0 {
        Some(value)
    } else {
        out.add(field, INSIDE);
        None
    }
}

/// The request of a sample size: its fields as given, power and alpha
/// already defaulted by the caller.
pub struct Inputs {
    pub baseline: f64,
    pub effect: f64,
    pub alpha: Option<f64>,
    pub power: f64,
}

/// Exposures per variant for `inputs`, each bad field a violation named
/// `prefix` + its proto name.
pub fn per_variant(out: &mut Violations, inputs: Inputs, prefix: &str) -> Option<i64> {
    let Inputs { baseline, effect, alpha, power } = inputs;
    let field = |name: &str| format!("{prefix}{name}");
    let baseline_ok = baseline > 0.0 && baseline < 1.0;
    if !baseline_ok {
        out.add(field("baseline_rate"), INSIDE);
    }
    let target = baseline + effect;
    let effect_ok = effect.is_finite() && effect != 0.0 && (!baseline_ok || (target > 0.0 && target < 1.0));
    if !effect_ok {
        out.add(
            field("minimum_detectable_effect"),
            "must not be 0, and baseline_rate plus it must be strictly between 0 and 1",
        );
    }
    // Below 50 % the test would more often miss the lift than find it.
    let power = level(out, power, DEFAULT_POWER, &field("power")).filter(|p| {
        let enough = *p >= 0.5;
        if !enough {
            out.add(field("power"), "must be at least 0.5");
        }
        enough
    });
    let (alpha, power) = (alpha?, power?);
    if !(baseline_ok && effect_ok) {
        return None;
    }
    let n = sample_size_two_proportions(baseline, effect, alpha, power).and_then(|n| i64::try_from(n).ok());
    match n {
        Some(n) if n <= MAX_PER_VARIANT => Some(n),
        _ => {
            out.add(
                field("minimum_detectable_effect"),
                "needs more than 100000000 customers per variant: detect a larger lift",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use cx_runtime::error::FieldViolation;

    use super::*;

    fn run(baseline: f64, effect: f64, alpha: f64, power: f64) -> Result<Option<i64>, Vec<FieldViolation>> {
        let mut out = Violations::new();
        let alpha = level(&mut out, alpha, DEFAULT_ALPHA, "alpha");
        let n = per_variant(&mut out, Inputs { baseline, effect, alpha, power }, "");
        out.finish().map(|()| n).map_err(Vec::from)
    }

    #[test]
    fn defaults_and_a_hand_worked_size() {
        // The §9.6 rates, alpha 0.05 and power 0.8 by default: 1,774
        // (worked in cx_runtime::stats::ab).
        assert_eq!(run(0.1, 0.03, 0.0, 0.0), Ok(Some(1774)));
    }

    #[test]
    fn every_bad_field_is_named() {
        let fields = |r: Result<Option<i64>, Vec<FieldViolation>>| {
            r.unwrap_err().into_iter().map(|v| v.field).collect::<Vec<_>>()
        };
        assert_eq!(fields(run(1.0, 0.0, 1.5, 0.3)), ["alpha", "baseline_rate", "minimum_detectable_effect", "power"]);
        assert_eq!(fields(run(0.9, 0.2, 0.05, f64::NAN)), ["minimum_detectable_effect", "power"]);
        // 0.5 to 0.5000001 would need about 8 × 10¹⁴ customers.
        assert_eq!(fields(run(0.5, 1e-7, 0.05, 0.8)), ["minimum_detectable_effect"]);
    }
}
