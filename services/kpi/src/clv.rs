//! CLV's inputs from profile's counts (docs/DOMAIN.md §9.4): the average
//! purchase value and its spread from the period's purchases of one
//! currency, purchases per customer-year over the customers' exposure in
//! the period, and the annual churn of the 365 days ending on its last day.

use chrono::{Days, NaiveDate};
use cx_proto::profile::v1 as profile;
use cx_runtime::stats::{ClvInputs, Moments};

/// The acquisition cost asked: its currency and micro-units.
pub type Cost = (String, i64);

/// Micro-units in a unit (docs/DOMAIN.md §1.4).
const MICROS: f64 = 1_000_000.0;
/// Days in a customer-year.
const YEAR_DAYS: u64 = 365;

/// The 365 days ending on `last`, both included: the year annual churn is
/// counted over (§9.2's counting).
pub fn year_ending(last: NaiveDate) -> (NaiveDate, NaiveDate) {
    (last.checked_sub_days(Days::new(YEAR_DAYS - 1)).unwrap_or(NaiveDate::MIN), last)
}

/// CLV's inputs for the days `first..=last`: `period` and `year` are
/// profile's lifecycle counts of those days and of [`year_ending`] `last`,
/// `sums` its purchases of the period in the currency, `cost_micros` the
/// acquisition cost in it.
pub fn inputs(
    (first, last): (NaiveDate, NaiveDate),
    period: &profile::LifecycleCounts,
    year: &profile::LifecycleCounts,
    sums: &profile::PurchaseSums,
    cost_micros: i64,
) -> ClvInputs {
    let days = (last - first).num_days() + 1;
    // Customers (a purchase, not lost) at the start and at the end: those at
    // the start not lost since, the lost who came back, the new.
    let at_start = period.customers_at_start;
    let at_end = at_start - period.lost_by_end + period.reactivated + period.new_customers;
    // Exposure: the average of the two, over the period's days.
    let customer_years = (at_start + at_end) as f64 / 2.0 * days as f64 / YEAR_DAYS as f64;
    let amount = sums.amount_micros as f64 / MICROS;
    ClvInputs {
        purchase_value: Moments { n: sums.purchases, sum: amount, sum_sq: sums.amount_squares },
        purchases: sums.purchases,
        customer_years,
        churned: year.lost_by_end,
        at_risk: year.customers_at_start,
        acquisition_cost: cost_micros as f64 / MICROS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(raw: &str) -> NaiveDate {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn inputs_are_read_from_the_counts() {
        // March 2026 (31 days): 5 customers at the start, 1 of them lost by
        // the end, 1 lost one back, 2 new: 7 at the end; exposure
        // (5 + 7) / 2 × 31 / 365 = 186 / 365 customer-years. The year to
        // 31 March 2026 starts on 1 April 2025: 2 of 4 lost.
        assert_eq!(year_ending(day("2026-03-31")), (day("2025-04-01"), day("2026-03-31")));
        let period = profile::LifecycleCounts {
            customers_at_start: 5,
            lost_by_end: 1,
            new_customers: 2,
            lost_at_start: 2,
            reactivated: 1,
            ..Default::default()
        };
        let year = profile::LifecycleCounts { customers_at_start: 4, lost_by_end: 2, ..Default::default() };
        let sums =
            profile::PurchaseSums { purchases: 5, amount_micros: 220_000_000, amount_squares: 12_400.0, period: None };
        let got = inputs((day("2026-03-01"), day("2026-03-31")), &period, &year, &sums, 40_500_000);
        let expected = ClvInputs {
            purchase_value: Moments { n: 5, sum: 220.0, sum_sq: 12_400.0 },
            purchases: 5,
            customer_years: 186.0 / 365.0,
            churned: 2,
            at_risk: 4,
            acquisition_cost: 40.5,
        };
        assert_eq!(got, expected);
    }
}
