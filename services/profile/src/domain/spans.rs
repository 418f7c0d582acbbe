//! Purchase spans: what one customer's purchase days add to the tenant's
//! lifecycle roll-up (docs/DOMAIN.md §4.3, §9.2), so that counts of
//! customers per stage as of a day, or per change over a period, are sums
//! over a few rows per day instead of a grouping of every customer.
//!
//! A customer's spans:
//! - `First`: the first purchase day, with the day the customer was created
//!   (prospects are counted against it);
//! - `Kept`: each stretch of days on which the customer is not lost, the
//!   union of `[p, p + 365)` over the purchase days `p`, with the start of
//!   the next stretch (or [`OPEN`]);
//! - `Recent`: each stretch with a purchase in the last 90 days, the union
//!   of `[p, p + 90)`;
//! - `Comeback`: each purchase 365 days or more after the one before it.
//!
//! Every rule of §4.3 as of a day `D` is then a sum over spans (see
//! `store::spans`): not lost on `D` is a `Kept` stretch holding `D`; lost
//! is `D` in the gap after one; reactivated is a comeback in the 90 days up
//! to `D`. Stretches are unions, so a day is in at most one stretch of a
//! customer, and the sums count customers, not purchases.

use chrono::{Days, NaiveDate};

use super::lifecycle::{AT_RISK_AFTER_DAYS, LOST_AFTER_DAYS};

/// "No end" and "no next stretch": later than any day compared with it,
/// also as text (SQLite compares `YYYY-MM-DD` strings).
pub const OPEN: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(day) => day,
    None => panic!("9999-12-31 is a day"),
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    First = 1,
    Kept = 2,
    Recent = 3,
    Comeback = 4,
}

/// One span, as stored: its kind and three days (unused ones [`OPEN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub kind: SpanKind,
    /// First day of the stretch (`Kept`, `Recent`), the first purchase
    /// (`First`), the comeback's purchase (`Comeback`).
    pub from: NaiveDate,
    /// Day after the stretch (`Kept`, `Recent`); the day the customer was
    /// created (`First`).
    pub until: NaiveDate,
    /// First day of the next `Kept` stretch.
    pub next: NaiveDate,
}

impl Span {
    fn at(kind: SpanKind, from: NaiveDate) -> Self {
        Self { kind, from, until: OPEN, next: OPEN }
    }
}

/// The spans of one customer created on `created`, from the purchase days
/// in ascending order without repeats. No purchase: no span.
pub fn spans(days: &[NaiveDate], created: NaiveDate) -> Vec<Span> {
    let Some(&first) = days.first() else { return Vec::new() };
    let mut out = vec![Span { until: created, ..Span::at(SpanKind::First, first) }];
    let kept = stretches(days, LOST_AFTER_DAYS);
    for (i, &(from, until)) in kept.iter().enumerate() {
        let next = kept.get(i + 1).map_or(OPEN, |s| s.0);
        out.push(Span { kind: SpanKind::Kept, from, until, next });
    }
    for (from, until) in stretches(days, AT_RISK_AFTER_DAYS) {
        out.push(Span { until, ..Span::at(SpanKind::Recent, from) });
    }
    for pair in days.windows(2) {
        if (pair[1] - pair[0]).num_days() >= LOST_AFTER_DAYS {
            out.push(Span::at(SpanKind::Comeback, pair[1]));
        }
    }
    out
}

/// The union of `[p, p + length)` over the days `p`, as half-open stretches
/// in order; stretches that touch are one.
fn stretches(days: &[NaiveDate], length: i64) -> Vec<(NaiveDate, NaiveDate)> {
    let end = |day: NaiveDate| day.checked_add_days(Days::new(length.unsigned_abs())).unwrap_or(OPEN).min(OPEN);
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for &day in days {
        match out.last_mut() {
            Some(last) if day <= last.1 => last.1 = last.1.max(end(day)),
            _ => out.push((day, end(day))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::{Lifecycle, lifecycle_as_of};

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn plus(start: NaiveDate, n: u64) -> NaiveDate {
        start + Days::new(n)
    }

    #[test]
    fn one_purchase_is_one_stretch_of_each_length() {
        let p = day(2025, 3, 1);
        let created = day(2025, 1, 5);
        assert_eq!(
            spans(&[p], created),
            vec![
                Span { kind: SpanKind::First, from: p, until: created, next: OPEN },
                // 1 March 2025 + 365 days = 1 March 2026; + 90 = 30 May 2025.
                Span { kind: SpanKind::Kept, from: p, until: day(2026, 3, 1), next: OPEN },
                Span { kind: SpanKind::Recent, from: p, until: day(2025, 5, 30), next: OPEN },
            ]
        );
        assert!(spans(&[], created).is_empty());
    }

    #[test]
    fn a_comeback_after_exactly_365_days_continues_the_stretch_it_ends() {
        // Lost on the very day of the second purchase, which the day's
        // state already includes: never a lost day, but a comeback (§4.3).
        let p = day(2024, 1, 10);
        let back = plus(p, 365);
        let got = spans(&[p, back], p);
        let kept: Vec<_> = got.iter().filter(|s| s.kind == SpanKind::Kept).collect();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].from, kept[0].until, kept[0].next), (p, plus(back, 365), OPEN));
        assert!(got.contains(&Span::at(SpanKind::Comeback, back)));
        // A day later it is a gap of one day, and two stretches.
        let late = plus(p, 366);
        let got = spans(&[p, late], p);
        let kept: Vec<_> = got.iter().filter(|s| s.kind == SpanKind::Kept).map(|s| (s.from, s.until, s.next)).collect();
        assert_eq!(kept, vec![(p, plus(p, 365), late), (late, plus(late, 365), OPEN)]);
    }

    /// Stages counted from the spans as the roll-up's queries count them.
    fn stage_from_spans(spans: &[Span], d: NaiveDate) -> Lifecycle {
        let holds = |kind| spans.iter().any(|s| s.kind == kind && s.from <= d && d < s.until);
        let lost = spans.iter().any(|s| s.kind == SpanKind::Kept && s.until <= d && d < s.next);
        let back = spans.iter().any(|s| {
            s.kind == SpanKind::Comeback
                && s.from <= d
                && (d - s.from).num_days() < crate::domain::lifecycle::REACTIVATED_FOR_DAYS
        });
        match (holds(SpanKind::Kept), holds(SpanKind::Recent)) {
            (true, true) if back => Lifecycle::Reactivated,
            (true, true) => Lifecycle::Active,
            (true, false) => Lifecycle::AtRisk,
            _ if lost => Lifecycle::Lost,
            _ => Lifecycle::Prospect,
        }
    }

    #[test]
    fn spans_give_every_stage_on_every_day_as_the_rules_do() {
        // Seeded histories with gaps around every boundary (89/90, 364/365/366
        // days), each day checked against §4.3 over three years.
        let start = day(2023, 1, 1);
        let gaps = [1, 30, 89, 90, 91, 200, 364, 365, 366, 400, 800];
        let mut seed = 7_u64;
        for _ in 0..300 {
            let mut days = vec![plus(start, seed % 50)];
            for _ in 0..(seed % 5) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let gap = gaps[usize::try_from((seed >> 33) % gaps.len() as u64).unwrap()];
                days.push(plus(*days.last().unwrap(), gap));
            }
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let got = spans(&days, start);
            for n in 0..1500 {
                let d = plus(start, n);
                assert_eq!(stage_from_spans(&got, d), lifecycle_as_of(&days, d), "days {days:?} on {d}");
            }
        }
    }
}
