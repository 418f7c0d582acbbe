//! An experiment as created: every field checked at once, alpha defaulted
//! and the planned sample size worked out when a plan is given.

use std::collections::HashSet;

use cx_proto::kpi::v1 as pb;
use cx_runtime::error::Violations;

use super::sample_size::{DEFAULT_ALPHA, DEFAULT_POWER, Inputs, MAX_PER_VARIANT, level, per_variant};

pub const MAX_NAME: usize = 200;
pub const MAX_KEY: usize = 64;
pub const MIN_VARIANTS: usize = 2;
pub const MAX_VARIANTS: usize = 10;
pub const MAX_WEIGHT: i32 = 1_000;

fn key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn conversion_ok(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_KEY
        && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
}

fn variants(out: &mut Violations, given: &[pb::Variant]) {
    if !(MIN_VARIANTS..=MAX_VARIANTS).contains(&given.len()) {
        out.add("experiment.variants", "must be 2 to 10 variants");
    }
    let mut seen = HashSet::new();
    // At most one violation more than the variants allowed: never one per
    // element of an unbounded list.
    for (i, v) in given.iter().enumerate().take(MAX_VARIANTS + 1) {
        if !key_ok(&v.key) {
            out.add(format!("experiment.variants[{i}].key"), "must be 1 to 64 letters, digits, _ or -");
        } else if !seen.insert(v.key.as_str()) {
            out.add(format!("experiment.variants[{i}].key"), "is the key of an earlier variant");
        }
        if !(1..=MAX_WEIGHT).contains(&v.weight) {
            out.add(format!("experiment.variants[{i}].weight"), "must be 1 to 1000");
        }
    }
}

/// The experiment to store: its name, conversion, variants and plan as
/// given, alpha and the planned sample size resolved; output fields cleared.
pub fn check(given: pb::Experiment) -> Result<pb::Experiment, Violations> {
    let mut out = Violations::new();
    let name = given.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        out.add("experiment.name", "must be 1 to 200 characters");
    }
    if !conversion_ok(&given.conversion) {
        out.add("experiment.conversion", "must be 1 to 64 lowercase letters, digits, _, - or .");
    }
    variants(&mut out, &given.variants);
    let alpha = level(&mut out, given.alpha, DEFAULT_ALPHA, "experiment.alpha");
    let planned = match (given.planned_sample_size, &given.plan) {
        (0, None) => {
            out.add("experiment.planned_sample_size", "is required, or a plan to work it from");
            None
        }
        (0, Some(plan)) => {
            let inputs = Inputs {
                baseline: plan.baseline_rate,
                effect: plan.minimum_detectable_effect,
                alpha,
                power: plan.power,
            };
            per_variant(&mut out, inputs, "experiment.plan.")
        }
        (_, Some(_)) => {
            out.add("experiment.plan", "must be left out when planned_sample_size is given");
            None
        }
        (n, None) if (1..=MAX_PER_VARIANT).contains(&n) => Some(n),
        (_, None) => {
            out.add("experiment.planned_sample_size", "must be 1 to 100000000");
            None
        }
    };
    out.finish()?;
    let (Some(alpha), Some(planned)) = (alpha, planned) else { return Err(Violations::new()) };
    let plan =
        given.plan.map(|p| pb::SampleSizePlan { power: if p.power == 0.0 { DEFAULT_POWER } else { p.power }, ..p });
    Ok(pb::Experiment {
        name,
        conversion: given.conversion,
        variants: given.variants,
        alpha,
        planned_sample_size: planned,
        plan,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(key: &str, weight: i32) -> pb::Variant {
        pb::Variant { key: key.into(), weight }
    }

    fn valid() -> pb::Experiment {
        pb::Experiment {
            name: " Checkout button ".into(),
            conversion: "checkout_completed".into(),
            variants: vec![variant("control", 1), variant("green", 1)],
            plan: Some(pb::SampleSizePlan { baseline_rate: 0.1, minimum_detectable_effect: 0.03, power: 0.0 }),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_resolved() {
        // alpha 0.05, power 0.8: 1,774 per variant (§9.6 rates).
        let got = check(valid()).unwrap();
        assert_eq!((got.name.as_str(), got.alpha, got.planned_sample_size), ("Checkout button", 0.05, 1774));
        assert_eq!(got.plan.map(|p| p.power), Some(0.8));
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let bad = pb::Experiment {
            name: "x".repeat(201),
            conversion: "Checkout!".into(),
            variants: vec![variant("a", 0), variant("a", 1001), variant("", 1)],
            alpha: 1.0,
            planned_sample_size: 10,
            ..valid()
        };
        let fields: Vec<String> = check(bad).unwrap_err().into_iter().map(|v| v.field).collect();
        let expected = [
            "experiment.name",
            "experiment.conversion",
            "experiment.variants[0].weight",
            "experiment.variants[1].key",
            "experiment.variants[1].weight",
            "experiment.variants[2].key",
            "experiment.alpha",
            "experiment.plan",
        ];
        assert_eq!(fields, expected);
        let lone = pb::Experiment { variants: vec![variant("a", 1)], plan: None, ..valid() };
        let fields: Vec<String> = check(lone).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["experiment.variants", "experiment.planned_sample_size"]);
    }
}
