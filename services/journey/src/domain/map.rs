//! Journey maps: the designed sequence of steps for a customer type, with
//! moments of truth, targets and one conversion step (docs/DOMAIN.md §5.1).

use cx_runtime::coded_enum;
use cx_runtime::error::Violations;
use serde::{Deserialize, Serialize};

use super::channel::Channel;

pub const MAX_STEPS: usize = 50;
pub const MAX_NAME_LEN: usize = 200;

/// The customer's overall intent for a journey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaJourney {
    Entertaining,
    LowestPrice,
    Chore,
    Discovery,
    Ritual,
}

impl MetaJourney {
    pub const ALL: [Self; 5] = [Self::Entertaining, Self::LowestPrice, Self::Chore, Self::Discovery, Self::Ritual];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entertaining => "entertaining",
            Self::LowestPrice => "lowest_price",
            Self::Chore => "chore",
            Self::Discovery => "discovery",
            Self::Ritual => "ritual",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }
}

coded_enum! {
    /// Before, during or after the purchase: `cx.journey.v1.Phase`. A step
    /// stores it by name, a touchpoint by code.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Phase {
        Before = 1,
        During = 2,
        After = 3,
    }
}

/// One designed step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub key: String,
    pub name: String,
    pub phase: Phase,
    /// Stored as their codes.
    pub expected_channels: Vec<Channel>,
    pub importance: i32,
    pub target_score: f64,
    pub moment_of_truth: bool,
    pub conversion: bool,
}

/// Keys: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if ok { Ok(()) } else { Err("has 1 to 64 of a-z, 0-9, '_' and '-'") }
}

/// Every problem of a map's steps, named by path under `field`.
pub fn check_steps(steps: &[Step], field: &str) -> Result<(), Violations> {
    let mut out = Violations::new();
    if steps.is_empty() || steps.len() > MAX_STEPS {
        out.add(field, format!("has 1 to {MAX_STEPS} steps"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, step) in steps.iter().enumerate() {
        let at = |name: &str| format!("{field}[{i}].{name}");
        if let Err(why) = check_key(&step.key) {
            out.add(at("key"), why);
        } else if !seen.insert(step.key.as_str()) {
            out.add(at("key"), format!("'{}' is used by an earlier step", step.key));
        }
        if step.name.trim().is_empty() || step.name.len() > MAX_NAME_LEN {
            out.add(at("name"), format!("has 1 to {MAX_NAME_LEN} bytes"));
        }
        if !(1..=5).contains(&step.importance) {
            out.add(at("importance"), "must be between 1 and 5");
        }
        if !(0.0..=10.0).contains(&step.target_score) {
            out.add(at("target_score"), "must be between 0 and 10");
        }
    }
    let conversions = steps.iter().filter(|s| s.conversion).count();
    if !steps.is_empty() && conversions != 1 {
        out.add(field, format!("must mark exactly one conversion step ({conversions} marked)"));
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(key: &str, conversion: bool) -> Step {
        Step {
            key: key.into(),
            name: key.to_uppercase(),
            phase: Phase::Before,
            expected_channels: vec![Channel::Web],
            importance: 3,
            target_score: 8.0,
            moment_of_truth: false,
            conversion,
        }
    }

    #[test]
    fn a_good_map_passes() {
        assert_eq!(check_steps(&[step("discover", false), step("buy", true)], "steps"), Ok(()));
    }

    #[test]
    fn each_problem_is_named() {
        let mut bad = step("Buy Now", false);
        bad.importance = 6;
        bad.target_score = 10.5;
        let fields: Vec<String> = check_steps(&[step("a", false), step("a", false), bad], "m.steps")
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            ["m.steps[1].key", "m.steps[2].key", "m.steps[2].importance", "m.steps[2].target_score", "m.steps"]
        );
    }
}
