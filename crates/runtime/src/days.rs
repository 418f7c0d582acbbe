//! Day numbers: days since 1970-01-01 (before it, negative), the form in
//! which services keep and compare UTC days (roll-ups, facts, windows).
//! [`crate::store::utc_day`] is the same number computed in SQL.

use chrono::{DateTime, NaiveDate, Utc};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
