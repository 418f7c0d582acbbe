//! Ranges of whole UTC days as the reports take them: `start_day` to
//! `end_day`, both included, written `YYYY-MM-DD`, at most [`MAX_DAYS`]
//! (docs/DOMAIN.md §7.8 aggregates, §7.10 the case report).

use chrono::NaiveDate;
use cx_runtime::error::{FieldViolation, Violations, all2};

/// Longest range, in days counting both ends (ten years).
pub const MAX_DAYS: i64 = 3_660;

/// A UTC day written `YYYY-MM-DD` in `field`.
fn day(raw: &str, field: &str) -> Result<NaiveDate, FieldViolation> {
    if raw.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    // chrono alone takes `2026-3-1`; the length keeps the written form.
    (raw.len() == 10)
        .then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| FieldViolation::new(field, "must be a day written YYYY-MM-DD"))
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
}
