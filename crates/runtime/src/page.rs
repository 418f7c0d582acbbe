//! `page_size` / `page_token` pagination (AIP-158).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::FieldViolation;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// 0 → the default; larger than the maximum → the maximum (AIP-158 coerces);
/// negative → an error.
pub fn page_size(requested: i32, field: &str) -> Result<u64, FieldViolation> {
    match requested {
        n if n < 0 => Err(FieldViolation::new(field, "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

/// The instant of a token's `micros` (Unix microseconds, as tokens write
/// them): `None` outside a protobuf timestamp's years 1 to 9999, so a
/// forged token never reaches the database (PostgreSQL stops at 4713 BC).
pub fn token_instant(micros: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let micros: i64 = micros.parse().ok()?;
    let seconds = micros.div_euclid(1_000_000);
    let nanos = i32::try_from(micros.rem_euclid(1_000_000) * 1_000).ok()?;
    cx_proto::from_timestamp(&prost_types::Timestamp { seconds, nanos })
}

/// An opaque token for the position after `last` (a sort key).
pub fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last.as_bytes())
}

/// The position a token names; `None` for the first page.
pub fn decode_token(token: &str, field: &str) -> Result<Option<String>, FieldViolation> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| FieldViolation::new(field, "is not a token this server issued"))
}

/// A token whose position is a UUID (rows listed in id order).
pub fn decode_uuid_token(token: &str, field: &str) -> Result<Option<uuid::Uuid>, FieldViolation> {
    decode_token(token, field)?
        .map(|raw| {
            uuid::Uuid::parse_str(&raw).map_err(|_| FieldViolation::new(field, "is not a token this server issued"))
        })
        .transpose()
}

/// Trims rows fetched with `limit + 1` back to `limit`; true when there was
/// more, i.e. another page follows.
pub fn trim_page<T>(rows: &mut Vec<T>, limit: u64) -> bool {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    more
}

/// The token of the page after `last` when there is one, else "" (AIP-158).
pub fn next_page_token(more: bool, last: Option<impl ToString>) -> String {
    match (more, last) {
        (true, Some(last)) => encode_token(&last.to_string()),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_clamp_and_refuse_negative() {
        assert_eq!(page_size(0, "page_size"), Ok(50));
        assert_eq!(page_size(7, "page_size"), Ok(7));
        assert_eq!(page_size(5000, "page_size"), Ok(1000));
        assert_eq!(page_size(-1, "page_size"), Err(FieldViolation::new("page_size", "must not be negative")));
    }

    #[test]
    fn a_page_is_trimmed_and_says_whether_more_follow() {
        let mut rows = vec![1, 2, 3];
        assert!(trim_page(&mut rows, 2));
        assert_eq!(rows, [1, 2]);
        assert!(!trim_page(&mut rows, 2));
        assert_eq!(next_page_token(true, Some("b")), encode_token("b"));
        assert_eq!(next_page_token(false, Some("b")), "");
        assert_eq!(next_page_token(true, None::<&str>), "");
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let token = encode_token("0190c1d2-0000-7000-8000-000000000000");
        assert_eq!(decode_token(&token, "t").unwrap().as_deref(), Some("0190c1d2-0000-7000-8000-000000000000"));
        assert_eq!(decode_token("", "t"), Ok(None));
        assert!(decode_token("!!!", "t").is_err());
    }
}
