//! The rules that turn counted touchpoints into a journey's analysis
//! (docs/DOMAIN.md §5.4–§5.8): experience bands, gap and priority, improvement plan,
//! funnel and conversion, continuity, peak-end averages.

use std::collections::BTreeMap;

use crate::domain::map::Step;

/// Counts of one step (from the database).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepInput {
    pub touchpoints: i64,
    pub instances: i64,
    pub scored: i64,
    pub score_sum: i64,
    pub disappointing: i64,
    pub neutral: i64,
    pub delight: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepAnalysis {
    pub step: Step,
    pub counts: StepInput,
    pub mean: f64,
    pub shares: [f64; 3],
    pub gap: f64,
    pub priority: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FunnelRow {
    pub key: String,
    pub instances: i64,
    pub rate_from_previous: f64,
    pub drop_off: i64,
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// One step: mean, band shares, gap = max(0, target − mean) (0 when
/// nothing is scored), priority = importance × gap × (2 for a moment of truth).
pub fn step_analysis(step: &Step, counts: StepInput) -> StepAnalysis {
    let mean = ratio(counts.score_sum, counts.scored);
    let gap = if counts.scored == 0 { 0.0 } else { (step.target_score - mean).max(0.0) };
    let priority = f64::from(step.importance) * gap * if step.moment_of_truth { 2.0 } else { 1.0 };
    let shares = [
        ratio(counts.disappointing, counts.scored),
        ratio(counts.neutral, counts.scored),
        ratio(counts.delight, counts.scored),
    ];
    StepAnalysis { step: step.clone(), counts, mean, shares, gap, priority }
}

/// Step keys by priority, highest first; ties keep the map's order.
pub fn improvement_plan(steps: &[StepAnalysis]) -> Vec<String> {
    let mut order: Vec<&StepAnalysis> = steps.iter().collect();
    order.sort_by(|a, b| b.priority.total_cmp(&a.priority));
    order.into_iter().map(|s| s.step.key.clone()).collect()
}

/// The funnel over the map's steps in order, from the instances counted
/// by the set of steps they reached (`sets`: sorted step keys → instances).
/// At each step, the instances that reached it or a later step: one that
/// skips a step passes it, so the funnel never grows (rates ≤ 1, drop-offs
/// ≥ 0). The first step is compared with every instance started.
pub fn funnel(steps: &[StepAnalysis], started: i64, sets: &BTreeMap<Vec<String>, i64>) -> Vec<FunnelRow> {
    let mut passed = vec![0_i64; steps.len()];
    for (set, n) in sets {
        // Keys the map no longer has are skipped.
        if let Some(furthest) = steps.iter().rposition(|s| set.binary_search(&s.step.key).is_ok()) {
            for count in &mut passed[..=furthest] {
                *count += n;
            }
        }
    }
    let mut previous = started;
    steps
        .iter()
        .zip(passed)
        .map(|(s, reached)| {
            let row = FunnelRow {
                key: s.step.key.clone(),
                instances: reached,
                rate_from_previous: ratio(reached, previous),
                drop_off: previous - reached,
            };
            previous = reached;
            row
        })
        .collect()
}

/// Instances reaching the conversion step, and their share of those started.
pub fn conversion(steps: &[StepAnalysis], started: i64) -> (i64, f64) {
    let converted = steps.iter().find(|s| s.step.conversion).map_or(0, |s| s.counts.instances);
    (converted, ratio(converted, started))
}

pub fn share(part: i64, whole: i64) -> f64 {
    ratio(part, whole)
}

/// The remembered score of a sequence of scores in time order (peak-end
/// rule): peak = the score farthest from 5, the later one on a tie; end =
/// the last. `None` when nothing is scored.
pub fn peak_end(scores: &[i64]) -> Option<(i64, i64, f64)> {
    let end = *scores.last()?;
    let mut peak = scores[0];
    for &s in scores {
        // `>=`: a later score as far from 5 takes the peak.
        if (s - 5).abs() >= (peak - 5).abs() {
            peak = s;
        }
    }
    Some((peak, end, (peak + end) as f64 / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::map::Phase;

    fn step(key: &str, importance: i32, target: f64, mot: bool) -> Step {
        Step {
            key: key.into(),
            name: key.into(),
            phase: Phase::Before,
            expected_channels: vec![],
            importance,
            target_score: target,
            moment_of_truth: mot,
            conversion: false,
        }
    }

    #[test]
    fn gap_and_priority_follow_the_design_formula() {
        // Mean 5.5 (4 scores summing to 22) against a target of 8: gap 2.5;
        // importance 4, moment of truth: 4 × 2.5 × 2 = 20.
        let counts = StepInput {
            touchpoints: 5,
            instances: 4,
            scored: 4,
            score_sum: 22,
            disappointing: 1,
            neutral: 2,
            delight: 1,
        };
        let a = step_analysis(&step("delivery", 4, 8.0, true), counts);
        assert_eq!((a.mean, a.gap, a.priority), (5.5, 2.5, 20.0));
        assert_eq!(a.shares, [0.25, 0.5, 0.25]);
        // Above target: no gap, no priority.
        let good = StepInput { scored: 2, score_sum: 18, ..Default::default() };
        assert_eq!(step_analysis(&step("order", 5, 8.0, true), good).priority, 0.0);
        // Nothing scored: no gap either.
        assert_eq!(step_analysis(&step("x", 5, 8.0, false), StepInput::default()).gap, 0.0);
    }

    #[test]
    fn the_peak_is_farthest_from_five_and_the_later_on_a_tie() {
        // 9 and 1 are both 4 from 5: the later (1) is the peak; end 6 → (1 + 6) / 2.
        assert_eq!(peak_end(&[9, 5, 1, 6]), Some((1, 6, 3.5)));
        assert_eq!(peak_end(&[7]), Some((7, 7, 7.0)));
        assert_eq!(peak_end(&[]), None);
    }

    #[test]
    fn funnel_rates_come_from_the_previous_step_and_a_skipped_step_is_passed() {
        let steps = ["a", "b", "c"].map(|key| step_analysis(&step(key, 1, 8.0, false), StepInput::default()));
        let set = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        // 20 started: 10 reach a and b, 2 reach b alone, 4 reach a alone, 1
        // reaches a and c (skipping b), 1 only a step the map dropped, 2 none.
        let sets = BTreeMap::from([
            (set(&["a", "b"]), 10),
            (set(&["b"]), 2),
            (set(&["a"]), 4),
            (set(&["a", "c"]), 1),
            (set(&["z"]), 1),
        ]);
        let rows = funnel(&steps, 20, &sets);
        let got: Vec<_> = rows.iter().map(|r| (r.instances, r.rate_from_previous, r.drop_off)).collect();
        // a: 10 + 2 + 4 + 1 = 17 of 20; b: 10 + 2 + 1 = 13 of 17; c: 1 of 13.
        assert_eq!(got, [(17, 17.0 / 20.0, 3), (13, 13.0 / 17.0, 4), (1, 1.0 / 13.0, 12)]);
        assert_eq!(funnel(&steps, 0, &BTreeMap::new())[0].rate_from_previous, 0.0);
    }
}
