//! RFM (DOMAIN §8.1–§8.3), pure: a customer's values over the trailing
//! window, their 1–5 scores among the tenant's scored customers, and the
//! segment. `store::rfm` computes the same set-wise in SQL.

mod score;
mod segment;

use chrono::{Days, NaiveDate};
use uuid::Uuid;

pub use score::{score, scores};
pub use segment::{Segment, TABLE};

/// The window is this many UTC days, `as_of` included (§8.1).
pub const WINDOW_DAYS: u64 = 365;

/// The first and last day of the window ending on `as_of`: purchases 0 to
/// 364 days old (§1.2), so `[as_of − 364, as_of]`. Later days are not read.
pub fn window(as_of: NaiveDate) -> (NaiveDate, NaiveDate) {
    (as_of.checked_sub_days(Days::new(WINDOW_DAYS - 1)).unwrap_or(NaiveDate::MIN), as_of)
}

/// One row of a customer's purchases: a UTC day in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurchaseDay {
    pub day: NaiveDate,
    pub currency: String,
    pub purchases: i64,
    pub amount_micros: i64,
}

/// A customer's RFM values (§8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Values {
    /// Days from the last purchase to `as_of` (0–364).
    pub recency_days: i64,
    /// Purchases in every currency.
    pub frequency: i64,
    /// Micro-units of the RFM currency only (0 without any).
    pub monetary_micros: i64,
}

impl Values {
    /// The values of one customer's `days` as of `as_of`, amounts in
    /// `currency`; `None` without a purchase in the window (no RFM).
    pub fn of<'a>(as_of: NaiveDate, currency: &str, days: impl IntoIterator<Item = &'a PurchaseDay>) -> Option<Self> {
        let (first, last) = window(as_of);
        let mut latest: Option<NaiveDate> = None;
        let (mut frequency, mut monetary_micros) = (0i64, 0i64);
        for d in days.into_iter().filter(|d| d.day >= first && d.day <= last && d.purchases > 0) {
            latest = latest.max(Some(d.day));
            frequency += d.purchases;
            if d.currency == currency {
                monetary_micros += d.amount_micros;
            }
        }
        latest.map(|day| Values { recency_days: (as_of - day).num_days(), frequency, monetary_micros })
    }
}

/// The R, F and M scores (1–5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scores {
    pub r: u8,
    pub f: u8,
    pub m: u8,
}

/// One scored customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRfm {
    pub customer_id: Uuid,
    pub values: Values,
    pub scores: Scores,
    pub segment: Segment,
}

/// Scores every customer of `population` among all of them (§8.2): fewer
/// recency days, more purchases and more money score higher.
pub fn score_population(population: &[(Uuid, Values)]) -> Vec<CustomerRfm> {
    let column = |pick: fn(&Values) -> i64| population.iter().map(|(_, v)| pick(v)).collect::<Vec<_>>();
    let r = scores(&column(|v| v.recency_days), false);
    let f = scores(&column(|v| v.frequency), true);
    let m = scores(&column(|v| v.monetary_micros), true);
    population
        .iter()
        .enumerate()
        .map(|(i, (customer_id, values))| {
            let scores = Scores { r: r[i], f: f[i], m: m[i] };
            // Scores are 1–5 by construction, so the table always answers.
            let segment = Segment::of(scores.r, scores.f).unwrap_or(Segment::Lost);
            CustomerRfm { customer_id: *customer_id, values: *values, scores, segment }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn bought(d: &str, currency: &str, purchases: i64, amount_micros: i64) -> PurchaseDay {
        PurchaseDay { day: day(d), currency: currency.into(), purchases, amount_micros }
    }

    /// 365 days ending on 2026-05-30: 2025-05-31 is 364 days old and in,
    /// 2025-05-30 is 365 days old and out (§1.2).
    #[test]
    fn the_window_is_the_last_365_days() {
        assert_eq!(window(day("2026-05-30")), (day("2025-05-31"), day("2026-05-30")));
        let days =
            [bought("2025-05-30", "EUR", 1, 5), bought("2025-05-31", "USD", 2, 7), bought("2026-05-31", "EUR", 1, 9)];
        let v = Values::of(day("2026-05-30"), "EUR", &days).unwrap();
        assert_eq!(v, Values { recency_days: 364, frequency: 2, monetary_micros: 0 });
        assert_eq!(Values::of(day("2026-05-31"), "EUR", &days[..1]), None);
    }
}
