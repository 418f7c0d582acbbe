//! The distributions (docs/DOMAIN.md §9.10): profile's counts of customers
//! by lifecycle stage and by digital intensity, each as a share of those
//! counted with its Wilson interval.

use cx_proto::kpi::v1 as pb;
use cx_proto::profile::v1::AggregateDistributionsResponse;
use cx_runtime::stats::{share, wilson};

/// Names of the index bands, 0–9 … 90–100 (100 in the last).
const BANDS: [&str; 10] = ["0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90-100"];

fn shares<'a>(counts: impl IntoIterator<Item = (&'a str, i64)>, n: i64) -> Vec<pb::CustomerShare> {
    counts
        .into_iter()
        .map(|(name, customers)| {
            let (low, high) = wilson(customers, n);
            pb::CustomerShare { name: name.to_owned(), customers, share: share(customers, n), low, high }
        })
        .collect()
}

/// Profile's counts as shares.
pub fn distributions(c: &AggregateDistributionsResponse) -> pb::Distributions {
    let stages = [
        ("prospect", c.prospect),
        ("active", c.active),
        ("at_risk", c.at_risk),
        ("lost", c.lost),
        ("reactivated", c.reactivated),
    ];
    let lifecycle_n = stages.iter().map(|(_, k)| k).sum();
    let categories = [
        ("traditional", c.traditional),
        ("hybrid", c.hybrid),
        ("connected", c.connected),
        ("digital_native", c.digital_native),
    ];
    let with_index = categories.iter().map(|(_, k)| k).sum();
    let bands = BANDS.iter().enumerate().map(|(i, name)| (*name, c.index_bands.get(i).copied().unwrap_or(0)));
    pb::Distributions {
        as_of_day: c.as_of_day.clone(),
        lifecycle: shares(stages, lifecycle_n),
        lifecycle_n,
        categories: shares(categories, with_index),
        index_bands: shares(bands, with_index),
        with_index,
        without_index: c.without_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_count_is_a_share_of_its_kind_with_wilson() {
        let counts = AggregateDistributionsResponse {
            as_of_day: "2026-03-31".into(),
            active: 3,
            lost: 1,
            connected: 1,
            traditional: 1,
            index_bands: vec![1, 0, 0, 0, 0, 0, 1, 0, 0, 0],
            without_index: 2,
            ..Default::default()
        };
        let d = distributions(&counts);
        assert_eq!((d.lifecycle_n, d.with_index, d.without_index), (4, 2, 2));
        // Active 3 of 4: 0.75, Wilson (z 1.96) 0.300636 to 0.954414.
        let active = &d.lifecycle[1];
        let r = |x: f64| (x * 1e6).round() / 1e6;
        assert_eq!((active.name.as_str(), active.customers, active.share), ("active", 3, 0.75));
        assert_eq!((r(active.low), r(active.high)), (0.300636, 0.954414));
        assert_eq!(d.categories.iter().map(|c| c.customers).collect::<Vec<_>>(), [1, 0, 1, 0]);
        assert_eq!((d.index_bands[6].name.as_str(), d.index_bands[6].share), ("60-69", 0.5));
    }
}
