//! Trends: the days of a range grouped by day, ISO week or calendar month,
//! each group's counts added from the owner's daily counts (docs/DOMAIN.md
//! §9.7).

use chrono::{Datelike, Days, Months, NaiveDate};
use cx_proto::kpi::v1 as pb;
use cx_runtime::error::FieldViolation;

use crate::metric::Metric;
use crate::tally::Tally;

/// How a trend groups days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Day,
    /// Monday to Sunday.
    Week,
    Month,
}

impl Granularity {
    pub fn parse(code: i32, field: &str) -> Result<Self, FieldViolation> {
        match pb::Granularity::try_from(code) {
            Ok(pb::Granularity::Day) => Ok(Self::Day),
            Ok(pb::Granularity::Week) => Ok(Self::Week),
            Ok(pb::Granularity::Month) => Ok(Self::Month),
            Ok(pb::Granularity::Unspecified) | Err(_) => Err(FieldViolation::new(field, "must be DAY, WEEK or MONTH")),
        }
    }

    pub fn proto(self) -> pb::Granularity {
        match self {
            Self::Day => pb::Granularity::Day,
            Self::Week => pb::Granularity::Week,
            Self::Month => pb::Granularity::Month,
        }
    }

    /// The days a dashboard's trend covers up to `end`: the 30 days, or the
    /// 12 ISO weeks or calendar months whose last holds `end` (cut at it).
    pub fn twelve_up_to(self, end: NaiveDate) -> (NaiveDate, NaiveDate) {
        let first = match self {
            Self::Day => end.checked_sub_days(Days::new(29)),
            Self::Week => self.group(end).0.checked_sub_days(Days::new(7 * 11)),
            Self::Month => self.group(end).0.checked_sub_months(Months::new(11)),
        };
        (first.unwrap_or(end), end)
    }

    /// The first and last day of the group holding `day`.
    fn group(self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Self::Day => (day, day),
            Self::Week => {
                let monday = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
                (monday, monday + Days::new(6))
            }
            Self::Month => {
                let first = day.with_day(1).unwrap_or(day);
                let last = first.checked_add_months(Months::new(1)).and_then(|d| d.pred_opt()).unwrap_or(day);
                (first, last)
            }
        }
    }
}

/// One point of a trend: its days (cut to the range) and their counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub tally: Tally,
}

/// Every group of `first..=last` by `granularity` as its first and last
/// day, in order, the first and last cut to the range.
pub fn groups(granularity: Granularity, (first, last): (NaiveDate, NaiveDate)) -> Vec<(NaiveDate, NaiveDate)> {
    let mut groups = Vec::new();
    let mut start = first;
    while start <= last {
        let end = granularity.group(start).1.min(last);
        groups.push((start, end));
        let Some(next) = end.succ_opt() else { break };
        start = next;
    }
    groups
}

/// Every group of `first..=last` by `granularity`, in order, each with the
/// sum of `daily` (day-ordered counts of days in the range) over its days.
pub fn points(
    metric: Metric,
    granularity: Granularity,
    range: (NaiveDate, NaiveDate),
    daily: &[(NaiveDate, Tally)],
) -> Vec<Point> {
    let mut daily = daily.iter().peekable();
    groups(granularity, range)
        .into_iter()
        .map(|(first, last)| {
            let mut tally = Tally::empty(metric);
            while let Some((_, counts)) = daily.next_if(|(day, _)| *day <= last) {
                tally = tally.merge(*counts);
            }
            Point { first, last, tally }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use cx_runtime::stats::NpsCounts;

    use super::*;

    fn day(raw: &str) -> NaiveDate {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
    }

    fn csat(satisfied: i64, n: i64) -> Tally {
        Tally::Csat { satisfied, n }
    }

    fn spans(points: &[Point]) -> Vec<(String, String, i64)> {
        points.iter().map(|p| (p.first.to_string(), p.last.to_string(), p.tally.n())).collect()
    }

    #[test]
    fn a_dashboard_trend_covers_thirty_days_or_twelve_weeks_or_months() {
        // Wednesday 18 March 2026: its ISO week began Monday 16 March; 11
        // weeks before, Monday 29 December 2025.
        let end = day("2026-03-18");
        assert_eq!(Granularity::Day.twelve_up_to(end), (day("2026-02-17"), end));
        assert_eq!(Granularity::Week.twelve_up_to(end), (day("2025-12-29"), end));
        assert_eq!(Granularity::Month.twelve_up_to(end), (day("2025-04-01"), end));
    }

    #[test]
    fn weeks_run_monday_to_sunday_and_the_ends_are_cut_to_the_range() {
        // Thursday 26 February to Tuesday 10 March 2026: the week of 23 Feb
        // from the 26th, the week of 2 March whole, the week of 9 March to the 10th.
        let daily = [(day("2026-02-27"), csat(1, 2)), (day("2026-03-01"), csat(1, 1)), (day("2026-03-04"), csat(3, 4))];
        let weeks = points(Metric::Csat, Granularity::Week, (day("2026-02-26"), day("2026-03-10")), &daily);
        assert_eq!(
            spans(&weeks),
            [
                ("2026-02-26".into(), "2026-03-01".into(), 3),
                ("2026-03-02".into(), "2026-03-08".into(), 4),
                ("2026-03-09".into(), "2026-03-10".into(), 0)
            ]
        );
        assert_eq!(weeks[0].tally, csat(2, 3));
        assert_eq!(weeks[2].tally, Tally::empty(Metric::Csat));
    }

    #[test]
    fn months_are_calendar_months_and_days_are_days() {
        // 30 January to 1 March 2028 (a leap year): three months, February whole.
        let months = points(Metric::Nps, Granularity::Month, (day("2028-01-30"), day("2028-03-01")), &[]);
        assert_eq!(
            spans(&months),
            [
                ("2028-01-30".into(), "2028-01-31".into(), 0),
                ("2028-02-01".into(), "2028-02-29".into(), 0),
                ("2028-03-01".into(), "2028-03-01".into(), 0)
            ]
        );
        let nps = Tally::Nps(NpsCounts { promoters: 1, detractors: 0, n: 1 });
        let days =
            points(Metric::Nps, Granularity::Day, (day("2026-03-01"), day("2026-03-03")), &[(day("2026-03-02"), nps)]);
        assert_eq!(days.iter().map(|p| p.tally.n()).collect::<Vec<_>>(), [0, 1, 0]);
        assert_eq!(
            Granularity::parse(0, "granularity"),
            Err(FieldViolation::new("granularity", "must be DAY, WEEK or MONTH"))
        );
    }
}
