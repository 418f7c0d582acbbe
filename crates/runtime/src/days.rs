//! Day numbers: days since 1970-01-01 (before it, negative), the form in
//! which services keep and compare UTC days (roll-ups, facts, windows).
//! [`crate::store::utc_day`] is the same number computed in SQL. Reports
//! take ranges of whole UTC days, `start_day` to `end_day`, both included,
//! written `YYYY-MM-DD`, at most [`MAX_DAYS`] ([`range`]).

use chrono::{DateTime, NaiveDate, Utc};

use cx_proto::common::v1::DayRange;

use crate::error::{FieldViolation, Violations, all2};

/// The number of the UTC day of `at`.
pub fn day_number(at: DateTime<Utc>) -> i32 {
    i32::try_from(at.timestamp().div_euclid(86_400)).unwrap_or(i32::MAX)
}

/// The number of a calendar day.
pub fn date_number(date: NaiveDate) -> i32 {
    i32::try_from((date - NaiveDate::default()).num_days()).unwrap_or(i32::MAX)
}

/// The calendar day of a day number.
pub fn date_of(day: i32) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(i64::from(day))
}

/// Longest range, in days counting both ends (ten years).
pub const MAX_DAYS: i64 = 3_660;

/// A UTC day written `YYYY-MM-DD` in `field`.
pub fn day(raw: &str, field: &str) -> Result<NaiveDate, FieldViolation> {
    if raw.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    // chrono alone takes `2026-3-1`; the length keeps the written form.
    (raw.len() == 10)
        .then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| FieldViolation::new(field, "must be a day written YYYY-MM-DD"))
}

/// The day in `field`, written `YYYY-MM-DD`; empty: today (UTC).
pub fn day_or_today(raw: &str, field: &str) -> Result<NaiveDate, FieldViolation> {
    if raw.is_empty() { Ok(Utc::now().date_naive()) } else { day(raw, field) }
}

/// `[start_day, end_day]`: both days, in order, at most [`MAX_DAYS`].
pub fn range(start: &str, end: &str) -> Result<(NaiveDate, NaiveDate), Violations> {
    let (first, last) = all2(day(start, "start_day"), day(end, "end_day"))?;
    if last < first {
        return Err(FieldViolation::new("end_day", "must not be before start_day").into());
    }
    if (last - first).num_days() >= MAX_DAYS {
        return Err(FieldViolation::new("end_day", format!("covers more than {MAX_DAYS} days")).into());
    }
    Ok((first, last))
}

/// Most periods one request counts (a trend's points, each its own period).
pub const MAX_PERIODS: usize = 400;

/// A day as [`range`] reads it: `YYYY-MM-DD`.
pub fn written(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// `first..=last` as the protos send a range of days.
pub fn day_range((first, last): (NaiveDate, NaiveDate)) -> DayRange {
    DayRange { start_day: written(first), end_day: written(last) }
}

/// `periods`, each checked as [`range`], in order: 1 to [`MAX_PERIODS`],
/// every violation named `periods[i].…`.
pub fn periods(periods: &[DayRange]) -> Result<Vec<(NaiveDate, NaiveDate)>, Violations> {
    let n = periods.len();
    if n == 0 || n > MAX_PERIODS {
        return Err(FieldViolation::new("periods", format!("has 1 to {MAX_PERIODS} periods (has {n})")).into());
    }
    crate::error::each(periods, |i, p| named(p, &format!("periods[{i}]")))
}

/// `period` checked as [`range`], every violation named `{field}.…`; its
/// absence is `field` required.
pub fn period(period: Option<&DayRange>, field: &str) -> Result<(NaiveDate, NaiveDate), Violations> {
    let period = period.ok_or_else(|| FieldViolation::new(field, "is required"))?;
    named(period, field)
}

fn named(period: &DayRange, field: &str) -> Result<(NaiveDate, NaiveDate), Violations> {
    range(&period.start_day, &period.end_day).map_err(|found| {
        let mut named = Violations::new();
        for v in Vec::from(found) {
            named.add(format!("{field}.{}", v.field), v.description);
        }
        named
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violations(start: &str, end: &str) -> Vec<FieldViolation> {
        range(start, end).err().map(Vec::from).unwrap_or_default()
    }

    #[test]
    fn both_days_are_read_and_every_bad_one_named() {
        let day = |raw: &str| NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap();
        assert_eq!(range("2026-03-01", "2026-03-31").unwrap(), (day("2026-03-01"), day("2026-03-31")));
        assert_eq!(range("2026-03-01", "2026-03-01").unwrap(), (day("2026-03-01"), day("2026-03-01")));
        assert_eq!(
            violations("", "2026-3-1"),
            [
                FieldViolation::new("start_day", "is required"),
                FieldViolation::new("end_day", "must be a day written YYYY-MM-DD")
            ]
        );
        // A real date but not the written form, and no such day.
        assert_eq!(
            violations("2026-03-01T00:00:00Z", "2026-02-30"),
            [
                FieldViolation::new("start_day", "must be a day written YYYY-MM-DD"),
                FieldViolation::new("end_day", "must be a day written YYYY-MM-DD")
            ]
        );
    }

    #[test]
    fn ranges_are_ordered_and_bounded() {
        assert_eq!(
            violations("2026-03-02", "2026-03-01"),
            [FieldViolation::new("end_day", "must not be before start_day")]
        );
        // 2020 to 2029 are 3,653 days (2020, 2024 and 2028 leap), so
        // 2030-01-01 is 2020-01-01 + 3,653 and 2030-01-07 is + 3,659: 3,660
        // days with both ends, allowed; one more is not.
        assert_eq!(violations("2020-01-01", "2030-01-07"), []);
        assert_eq!(
            violations("2020-01-01", "2030-01-08"),
            [FieldViolation::new("end_day", "covers more than 3660 days")]
        );
    }

    #[test]
    fn days_are_utc_calendar_days() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
        // 2026-03-01 is 20,513 days after 1970-01-01.
        assert_eq!(day_number(at("2026-03-01T00:00:00Z")), 20_513);
        assert_eq!(day_number(at("2026-03-01T23:59:59.999Z")), 20_513);
        assert_eq!(day_number(at("2026-03-01T23:30:00-01:00")), 20_514);
        assert_eq!(day_number(at("1969-12-31T23:00:00Z")), -1);
        let first = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
        assert_eq!(date_number(first), 20_513);
        assert_eq!(date_of(20_513), first);
    }

    #[test]
    fn periods_are_each_a_range_and_bounded_in_number() {
        let day = |raw: &str| NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap();
        let march = day_range((day("2026-03-01"), day("2026-03-31")));
        assert_eq!((march.start_day.as_str(), march.end_day.as_str()), ("2026-03-01", "2026-03-31"));
        let backwards = DayRange { start_day: "2026-03-31".into(), end_day: "2026-03-01".into() };
        let got = periods(&[march.clone(), backwards]);
        assert_eq!(
            Vec::from(got.unwrap_err()),
            [FieldViolation::new("periods[1].end_day", "must not be before start_day")]
        );
        assert_eq!(periods(&[march]).unwrap(), [(day("2026-03-01"), day("2026-03-31"))]);
        let none = periods(&[]);
        assert_eq!(Vec::from(none.unwrap_err()), [FieldViolation::new("periods", "has 1 to 400 periods (has 0)")]);
    }
}
