//! A KPI's interval against its target (docs/DOMAIN.md §9.1).

/// Where a KPI stands against its target (docs/DOMAIN.md §9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetStatus {
    /// The whole interval is on the good side of the target (touching it counts).
    Met,
    /// The interval straddles the target: not yet known.
    AtRisk,
    /// The whole interval is on the bad side.
    Missed,
}

/// Met when the whole interval [low, high] is on the good side of the target, missed when it
/// is wholly on the bad side, at risk when it straddles it or any input is NaN (docs/DOMAIN.md §9.1).
pub fn target_status(low: f64, high: f64, target: f64, higher_is_better: bool) -> TargetStatus {
    if low.is_nan() || high.is_nan() || target.is_nan() {
        return TargetStatus::AtRisk;
    }
    let (low, high) = if low <= high { (low, high) } else { (high, low) };
    let (good_edge, bad_edge) = if higher_is_better { (low, high) } else { (-high, -low) };
    let target = if higher_is_better { target } else { -target };
    if good_edge >= target {
        TargetStatus::Met
    } else if bad_edge < target {
        TargetStatus::Missed
    } else {
        TargetStatus::AtRisk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_is_better() {
        // CSAT 0.711 to 0.867 (§7.2) against 0.70: met; 0.80: at risk; 0.90: missed.
        assert_eq!(target_status(0.711, 0.867, 0.70, true), TargetStatus::Met);
        assert_eq!(target_status(0.711, 0.867, 0.80, true), TargetStatus::AtRisk);
        assert_eq!(target_status(0.711, 0.867, 0.90, true), TargetStatus::Missed);
        assert_eq!(target_status(0.711, 0.867, 0.711, true), TargetStatus::Met);
    }

    #[test]
    fn lower_is_better() {
        // Churn 0.10 to 0.20 against 0.25: met; 0.15: at risk; 0.05: missed.
        assert_eq!(target_status(0.10, 0.20, 0.25, false), TargetStatus::Met);
        assert_eq!(target_status(0.10, 0.20, 0.15, false), TargetStatus::AtRisk);
        assert_eq!(target_status(0.10, 0.20, 0.05, false), TargetStatus::Missed);
        assert_eq!(target_status(0.10, 0.20, 0.20, false), TargetStatus::Met);
    }

    #[test]
    fn reversed_and_nan_inputs() {
        assert_eq!(target_status(0.867, 0.711, 0.70, true), TargetStatus::Met);
        assert_eq!(target_status(f64::NAN, 0.8, 0.5, true), TargetStatus::AtRisk);
        assert_eq!(target_status(0.1, 0.2, f64::NAN, false), TargetStatus::AtRisk);
    }
}
