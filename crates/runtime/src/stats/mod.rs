//! Statistics of the KPIs: shares, means and NPS with their 95 % intervals, target status,
//! period-over-period changes, A/B tests, sample sizes and CLV (docs/DOMAIN.md §1.3, §7, §9).
//!
//! Every function is pure and total: a zero denominator gives 0 (§1.3), out-of-range counts
//! are clamped, and no output is NaN. Intervals are always 95 % (§9.1); an `alpha` only
//! decides significance. Distributions come from `statrs` ([`dist`]).

pub mod ab;
pub mod change;
pub mod clv;
mod dist;
pub mod mean;
pub mod median;
pub mod nps;
pub mod proportion;
pub mod target;

pub use ab::{TwoProportions, sample_size_two_proportions, two_proportions};
pub use change::{Change, proportion_change, welch};
pub use clv::{Clv, ClvInputs, clv, clv_change};
pub use mean::Moments;
pub use median::{MedianRanks, median_ranks};
pub use nps::{NpsCounts, nps, nps_change, nps_margin};
pub use proportion::{Z95, share, wilson};
pub use target::{TargetStatus, target_status};

#[cfg(test)]
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
