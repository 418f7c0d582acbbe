//! Checks of the texts, keys and durations of definitions.

use crate::error::FieldViolation;
use chrono::Duration;

/// Longest name of a survey or a trigger, in characters.
pub const MAX_NAME: usize = 200;
/// Longest text shown to a customer (a title, a question, a choice).
pub const MAX_TEXT: usize = 1_000;
/// Longest key (a question or choice id, a step key).
pub const MAX_KEY: usize = 64;

/// A text of 1 to `max` characters, not blank.
pub fn required(raw: &str, field: &str, max: usize) -> Result<(), FieldViolation> {
    if raw.trim().is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    optional(raw, field, max)
}

/// A text of at most `max` characters.
pub fn optional(raw: &str, field: &str, max: usize) -> Result<(), FieldViolation> {
    // Counting stops past the bound: a megabyte is not walked to the end.
    if raw.chars().nth(max).is_some() {
        return Err(FieldViolation::new(field, format!("has more than {max} characters")));
    }
    Ok(())
}

/// A key: 1 to 64 of `a-z`, `0-9`, `_` and `-`.
pub fn key(raw: &str, field: &str) -> Result<(), FieldViolation> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_KEY
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok { Ok(()) } else { Err(FieldViolation::new(field, "must be 1 to 64 of a-z, 0-9, '_' and '-'")) }
}

/// A client's string as it may be echoed in an error (a map key in a
/// path): at most 64 characters, cut with "…", quoted and escaped.
pub fn shown(raw: &str) -> String {
    match raw.char_indices().nth(MAX_KEY) {
        Some((cut, _)) => format!("{:?}", format!("{}…", &raw[..cut])),
        None => format!("{raw:?}"),
    }
}

/// A duration of whole seconds within `[min, max]`; `range` says the bounds
/// in words ("1 hour to 90 days").
pub fn duration(
    raw: &prost_types::Duration,
    field: &str,
    (min, max): (Duration, Duration),
    range: &str,
) -> Result<Duration, FieldViolation> {
    if raw.nanos != 0 {
        return Err(FieldViolation::new(field, "must be whole seconds"));
    }
    match Duration::try_seconds(raw.seconds) {
        Some(d) if d >= min && d <= max => Ok(d),
        _ => Err(FieldViolation::new(field, format!("must be {range}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_bounded_in_characters() {
        assert_eq!(required("Après-vente", "n", 11), Ok(()), "11 characters, 12 bytes");
        assert_eq!(required(" \t", "n", 5), Err(FieldViolation::new("n", "is required")));
        assert_eq!(optional("abcdef", "t", 5), Err(FieldViolation::new("t", "has more than 5 characters")));
        assert_eq!(optional("", "t", 5), Ok(()));
    }

    #[test]
    fn keys_and_echoes() {
        assert_eq!(key("q_1-b", "id"), Ok(()));
        for bad in ["", "Q1", "q 1", "q/1", &"a".repeat(65)] {
            assert!(key(bad, "id").is_err(), "{bad:?}");
        }
        assert_eq!(shown("q1"), "\"q1\"");
        assert_eq!(shown(&"x".repeat(500)), format!("\"{}…\"", "x".repeat(64)));
        assert_eq!(shown("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn durations_are_whole_seconds_within_their_range() {
        let day = (Duration::hours(1), Duration::days(1));
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(duration(&d(3_600, 0), "w", day, "1 hour to 1 day"), Ok(Duration::hours(1)));
        assert_eq!(duration(&d(86_400, 0), "w", day, "1 hour to 1 day"), Ok(Duration::days(1)));
        let out = FieldViolation::new("w", "must be 1 hour to 1 day");
        assert_eq!(duration(&d(3_599, 0), "w", day, "1 hour to 1 day"), Err(out.clone()));
        assert_eq!(duration(&d(86_401, 0), "w", day, "1 hour to 1 day"), Err(out.clone()));
        assert_eq!(duration(&d(i64::MAX, 0), "w", day, "1 hour to 1 day"), Err(out));
        assert_eq!(
            duration(&d(3_600, 5), "w", day, "1 hour to 1 day"),
            Err(FieldViolation::new("w", "must be whole seconds"))
        );
    }
}
