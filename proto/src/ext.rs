//! Conversions every service needs on the shared messages.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::common::v1::{Channel, Money};

/// A chrono instant as a protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range of a
/// `google.protobuf.Timestamp`.
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// A protobuf timestamp as a chrono instant; `None` outside the range the
/// well-known type allows (years 1 to 9999, nanos below a second): chrono
/// would accept year -250000 and leap-second nanos, which PostgreSQL refuses.
pub fn from_timestamp(ts: &Timestamp) -> Option<DateTime<Utc>> {
    if !TIMESTAMP_SECONDS.contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

/// An amount kept in micro-units (millionths) as a `Money`.
pub fn money(currency: &str, micros: i64) -> Money {
    Money {
        currency_code: currency.to_owned(),
        units: micros / 1_000_000,
        nanos: i32::try_from(micros % 1_000_000 * 1_000).unwrap_or_default(),
    }
}

impl Money {
    /// The amount in micro-units; `None` when it does not fit.
    pub fn micros(&self) -> Option<i64> {
        self.units.checked_mul(1_000_000)?.checked_add(i64::from(self.nanos / 1_000))
    }
}

impl Channel {
    /// Stable lower-case name, as stored and as used in the rule language:
    /// `web`, `mobile_app`, … (`None` for UNSPECIFIED).
    pub fn key(self) -> Option<&'static str> {
        Some(match self {
            Self::Unspecified => return None,
            Self::Web => "web",
            Self::MobileApp => "mobile_app",
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Chat => "chat",
            Self::Chatbot => "chatbot",
            Self::Social => "social",
            Self::Kiosk => "kiosk",
            Self::Store => "store",
            Self::Phone => "phone",
            Self::Mail => "mail",
            Self::FieldAgent => "field_agent",
        })
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::from_str_name(&format!("CHANNEL_{}", key.to_ascii_uppercase())).filter(|c| *c != Self::Unspecified)
    }

    /// Digital channels (docs/DOMAIN.md §4.1); the others are physical or human.
    pub fn is_digital(self) -> bool {
        matches!(
            self,
            Self::Web
                | Self::MobileApp
                | Self::Email
                | Self::Sms
                | Self::Chat
                | Self::Chatbot
                | Self::Social
                | Self::Kiosk
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_keys_round_trip_and_classify() {
        for value in 1..=12 {
            let channel = Channel::try_from(value).unwrap();
            assert_eq!(Channel::from_key(channel.key().unwrap()), Some(channel));
        }
        assert_eq!(Channel::from_key("mobile_app"), Some(Channel::MobileApp));
        assert_eq!(Channel::from_key("unspecified"), None);
        let digital = (1..=12).filter(|v| Channel::try_from(*v).unwrap().is_digital()).count();
        assert_eq!(digital, 8);
    }

    #[test]
    fn timestamps_round_trip() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap();
        assert_eq!(from_timestamp(&timestamp(at)), Some(at));
        assert_eq!(from_timestamp(&Timestamp { seconds: 0, nanos: -1 }), None);
        assert_eq!(from_timestamp(&Timestamp { seconds: 0, nanos: 1_000_000_000 }), None, "a leap second");
        let first = DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap().to_utc();
        let last = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999999Z").unwrap().to_utc();
        assert_eq!(from_timestamp(&timestamp(first)), Some(first));
        assert_eq!(from_timestamp(&timestamp(last)), Some(last));
        for seconds in [first.timestamp() - 1, last.timestamp() + 1, i64::MIN, i64::MAX] {
            assert_eq!(from_timestamp(&Timestamp { seconds, nanos: 0 }), None, "{seconds}");
        }
    }
}
