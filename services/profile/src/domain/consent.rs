//! Consent purposes and the state that follows from their history.
//!
//! The history is append-only; the current consent for a purpose is the
//! decision the customer made last (by when they made it, then by when it
//! was recorded), so a decision recorded late does not override a newer one.
//! No decision means no consent: it must be given explicitly (GDPR).

use chrono::{DateTime, Utc};

pub use cx_runtime::consent::StandardPurpose;

/// A standard purpose, or one the tenant defined.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    Standard(StandardPurpose),
    Custom(String),
}

const CUSTOM_PREFIX: &str = "custom:";

impl Purpose {
    /// Stored key: `email`, …, or `custom:<name>` (never ambiguous).
    pub fn key(&self) -> String {
        match self {
            Self::Standard(p) => p.as_str().to_owned(),
            Self::Custom(name) => format!("{CUSTOM_PREFIX}{name}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        match key.strip_prefix(CUSTOM_PREFIX) {
            Some(name) => Some(Self::Custom(name.to_owned())),
            None => StandardPurpose::ALL.into_iter().find(|p| p.as_str() == key).map(Self::Standard),
        }
    }
}

/// Names of tenant-defined purposes: lower snake case, 1–63 characters, not
/// a standard purpose's name (that would confuse people, not the code).
pub fn check_custom_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if !ok {
        return Err("a purpose name is lower snake case: a letter, then letters, digits or '_', at most 63".into());
    }
    if StandardPurpose::ALL.iter().any(|p| p.as_str() == name) {
        return Err(format!("'{name}' is a standard purpose"));
    }
    Ok(())
}

/// The fields of a decision that decide which one is current.
pub trait Decision {
    fn occurred_at(&self) -> DateTime<Utc>;
    fn recorded_at(&self) -> DateTime<Utc>;
    fn granted(&self) -> bool;
}

/// The decision in force among one purpose's history, if any.
pub fn current<D: Decision>(history: &[D]) -> Option<&D> {
    history.iter().max_by_key(|d| (d.occurred_at(), d.recorded_at()))
}

/// Whether consent is given, from one purpose's history.
pub fn is_granted<D: Decision>(history: &[D]) -> bool {
    current(history).is_some_and(Decision::granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct D(i64, i64, bool);
    impl Decision for D {
        fn occurred_at(&self) -> DateTime<Utc> {
            DateTime::from_timestamp(self.0, 0).unwrap()
        }
        fn recorded_at(&self) -> DateTime<Utc> {
            DateTime::from_timestamp(self.1, 0).unwrap()
        }
        fn granted(&self) -> bool {
            self.2
        }
    }

    #[test]
    fn no_history_means_no_consent() {
        assert!(!is_granted::<D>(&[]));
        assert!(current::<D>(&[]).is_none());
    }

    #[test]
    fn the_latest_decision_wins_even_when_recorded_out_of_order() {
        // Granted at t=100 (recorded 100), withdrawn at t=200 (recorded 300),
        // then a paper form granting at t=150 is keyed in at t=400: the
        // withdrawal at t=200 is still the customer's last word.
        let history = [D(100, 100, true), D(200, 300, false), D(150, 400, true)];
        assert_eq!(current(&history).map(|d| d.0), Some(200));
        assert!(!is_granted(&history));
    }

    #[test]
    fn equal_decision_times_fall_back_to_the_later_record() {
        let history = [D(100, 101, false), D(100, 102, true)];
        assert!(is_granted(&history));
    }

    #[test]
    fn purpose_keys_round_trip_and_custom_names_are_checked() {
        for p in StandardPurpose::ALL {
            assert_eq!(Purpose::from_key(&Purpose::Standard(p).key()), Some(Purpose::Standard(p)));
        }
        let custom = Purpose::Custom("loyalty_programme".into());
        assert_eq!(custom.key(), "custom:loyalty_programme");
        assert_eq!(Purpose::from_key("custom:loyalty_programme"), Some(custom));
        assert_eq!(Purpose::from_key("fax"), None);
        assert!(check_custom_name("loyalty_programme").is_ok());
        assert_eq!(check_custom_name("email"), Err("'email' is a standard purpose".into()));
        assert!(check_custom_name("Loyalty").is_err());
        assert!(check_custom_name("").is_err());
    }
}
