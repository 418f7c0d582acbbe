//! The channels an interaction takes place on (docs/DOMAIN.md §4.1).

use crate::coded_enum;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

coded_enum! {
    /// A channel (`cx.common.v1.Channel`).
    pub enum Channel {
        Web = 1,
        MobileApp = 2,
        Email = 3,
        Sms = 4,
        Chat = 5,
        Chatbot = 6,
        Social = 7,
        Kiosk = 8,
        Store = 9,
        Phone = 10,
        Mail = 11,
        FieldAgent = 12,
    }
}

/// As its code: how a map's steps store their expected channels.
impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i16(self.code())
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = i32::deserialize(deserializer)?;
        Self::from_code(code).ok_or_else(|| serde::de::Error::custom(format!("{code} is not a channel")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_stored_as_their_codes() {
        for channel in Channel::ALL {
            assert_eq!(Channel::from_code(i32::from(channel.code())), Some(channel));
        }
        assert_eq!((Channel::from_code(0), Channel::from_code(13)), (None, None));
        let json = serde_json::to_string(&[Channel::Web, Channel::Store]).unwrap();
        assert_eq!(json, "[1,9]");
        assert_eq!(serde_json::from_str::<Vec<Channel>>(&json).unwrap(), [Channel::Web, Channel::Store]);
        assert!(serde_json::from_str::<Vec<Channel>>("[0]").is_err());
    }
}
