//! Parsing of request fields every service has: ids and client instants.

use chrono::{DateTime, Duration, Utc};
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

/// A client-given instant: valid, and not ahead of now by more than clock skew.
pub fn not_future(ts: &prost_types::Timestamp, field: &str) -> Result<DateTime<Utc>, FieldViolation> {
    match from_timestamp(ts) {
        Some(at) if at > Utc::now() + FUTURE_TOLERANCE => Err(FieldViolation::new(field, "is in the future")),
        Some(at) => Ok(at),
        None => Err(FieldViolation::new(field, "is not a valid timestamp")),
    }
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
}
