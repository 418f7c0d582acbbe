//! Parsing of request fields every service has: ids and client instants.

use chrono::{DateTime, Duration, Utc};
use cx_proto::common::v1::{Money, TimeRange};
use cx_proto::from_timestamp;
use uuid::Uuid;

use crate::error::FieldViolation;

/// How far ahead of the server's clock a client's instant may be (skew).
pub const FUTURE_TOLERANCE: Duration = Duration::minutes(5);

/// A required UUID; `what` names it in the error ("a profile id").
pub fn parse_uuid(raw: &str, field: &str, what: &str) -> Result<Uuid, FieldViolation> {
    if raw.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Uuid::parse_str(raw).map_err(|_| FieldViolation::new(field, format!("must be {what} (a UUID)")))
}

/// An optional UUID: None when empty.
pub fn optional_uuid(raw: &str, field: &str, what: &str) -> Result<Option<Uuid>, FieldViolation> {
    (!raw.is_empty()).then(|| parse_uuid(raw, field, what)).transpose()
}

/// A client-given instant: valid, and not ahead of now by more than clock skew.
pub fn not_future(ts: &prost_types::Timestamp, field: &str) -> Result<DateTime<Utc>, FieldViolation> {
    match from_timestamp(ts) {
        Some(at) if at > Utc::now() + FUTURE_TOLERANCE => Err(FieldViolation::new(field, "is in the future")),
        Some(at) => Ok(at),
        None => Err(FieldViolation::new(field, "is not a valid timestamp")),
    }
}

/// An optional instant (a time range's bound): valid when given.
pub fn optional_instant(
    ts: Option<prost_types::Timestamp>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, FieldViolation> {
    ts.map(|ts| from_timestamp(&ts).ok_or_else(|| FieldViolation::new(field, "is not a valid timestamp"))).transpose()
}

/// A request's time range `[start_time, end_time)` (in field `field`),
/// either end open when unset: each end a valid instant, and the start
/// before the end when both are set (docs/DOMAIN.md §1.2).
pub fn time_range(range: Option<TimeRange>, field: &str) -> Result<Bounds, Vec<FieldViolation>> {
    let TimeRange { start_time, end_time } = range.unwrap_or_default();
    let (start, end) = crate::error::all2(
        optional_instant(start_time, &format!("{field}.start_time")),
        optional_instant(end_time, &format!("{field}.end_time")),
    )?;
    if let (Some(start), Some(end)) = (start, end)
        && start >= end
    {
        return Err(vec![FieldViolation::new(field, "start_time must be before end_time")]);
    }
    Ok((start, end))
}

/// The start and end of a time range, `None` where it is open.
pub type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// An amount that is not negative, in an ISO 4217 currency: its currency
/// and micro-units.
pub fn parse_money(money: &Money, field: &str) -> Result<(String, i64), FieldViolation> {
    if money.units < 0 || money.nanos < 0 {
        return Err(FieldViolation::new(field, "must not be negative"));
    }
    let currency = parse_currency(&money.currency_code, &format!("{field}.currency_code"))?;
    money.micros().map(|m| (currency, m)).ok_or_else(|| FieldViolation::new(field, "is too large"))
}

/// An ISO 4217 code: three capital letters (docs/DOMAIN.md §1.4).
pub fn parse_currency(code: &str, field: &str) -> Result<String, FieldViolation> {
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(FieldViolation::new(field, "must be an ISO 4217 code such as EUR"));
    }
    Ok(code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_beyond_the_skew_are_refused() {
        let soon = cx_proto::timestamp(Utc::now() + Duration::minutes(4));
        assert!(not_future(&soon, "t").is_ok());
        let late = cx_proto::timestamp(Utc::now() + Duration::minutes(6));
        assert_eq!(not_future(&late, "t").unwrap_err(), FieldViolation::new("t", "is in the future"));
        assert_eq!(
            parse_uuid("x", "id", "a map id").unwrap_err(),
            FieldViolation::new("id", "must be a map id (a UUID)")
        );
    }

    #[test]
    fn money_is_checked_and_kept_in_micro_units() {
        let eur = |units, nanos| Money { currency_code: "EUR".into(), units, nanos };
        // 12.50 EUR = 12 units and 500,000,000 nanos = 12,500,000 micros.
        assert_eq!(parse_money(&eur(12, 500_000_000), "amount"), Ok(("EUR".to_owned(), 12_500_000)));
        assert_eq!(parse_money(&eur(-1, 0), "amount"), Err(FieldViolation::new("amount", "must not be negative")));
        let lower = Money { currency_code: "eur".into(), units: 1, nanos: 0 };
        assert_eq!(
            parse_money(&lower, "amount"),
            Err(FieldViolation::new("amount.currency_code", "must be an ISO 4217 code such as EUR"))
        );
        assert_eq!(parse_money(&eur(i64::MAX, 0), "amount"), Err(FieldViolation::new("amount", "is too large")));
    }
}
