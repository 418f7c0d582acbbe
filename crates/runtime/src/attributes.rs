//! Typed attributes (of profiles, touchpoints, …): values whose type
//! survives storage and every API, their limits, and their proto form.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cx_proto::common::v1::{AttributeValue as PbValue, attribute_value::Kind as PbKind};
use cx_proto::{from_timestamp, timestamp};
use serde::{Deserialize, Serialize};

use crate::error::Violations;

pub const MAX_ATTRIBUTES: usize = 100;
pub const MAX_STRING_LEN: usize = 1024;

/// One attribute value; the type survives storage and every API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeValue {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Timestamp(DateTime<Utc>),
}

pub type Attributes = BTreeMap<String, AttributeValue>;

/// Keys: a letter, then up to 63 letters, digits, `_`, `-` or `.`.
pub fn check_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !first_ok || !rest_ok || key.len() > 64 {
        return Err("a key is a letter then up to 63 letters, digits, '_', '-' or '.'".into());
    }
    Ok(())
}

pub fn check_value(value: &AttributeValue) -> Result<(), String> {
    match value {
        AttributeValue::String(s) if s.len() > MAX_STRING_LEN => {
            Err(format!("a text value has at most {MAX_STRING_LEN} bytes"))
        }
        AttributeValue::Double(d) if !d.is_finite() => Err("a number must be finite".into()),
        _ => Ok(()),
    }
}

fn value_of(value: PbValue) -> Option<AttributeValue> {
    Some(match value.kind? {
        PbKind::StringValue(s) => AttributeValue::String(s),
        PbKind::IntValue(i) => AttributeValue::Int(i),
        PbKind::DoubleValue(d) => AttributeValue::Double(d),
        PbKind::BoolValue(b) => AttributeValue::Bool(b),
        PbKind::TimestampValue(ts) => AttributeValue::Timestamp(from_timestamp(&ts)?),
    })
}

pub fn value_to_proto(value: &AttributeValue) -> PbValue {
    let kind = match value {
        AttributeValue::String(s) => PbKind::StringValue(s.clone()),
        AttributeValue::Int(i) => PbKind::IntValue(*i),
        AttributeValue::Double(d) => PbKind::DoubleValue(*d),
        AttributeValue::Bool(b) => PbKind::BoolValue(*b),
        AttributeValue::Timestamp(t) => PbKind::TimestampValue(timestamp(*t)),
    };
    PbValue { kind: Some(kind) }
}

/// Attributes of a request, every bad entry reported.
pub fn parse_attributes(
    map: std::collections::HashMap<String, PbValue>,
    field: &str,
    out: &mut Violations,
) -> Attributes {
    if map.len() > MAX_ATTRIBUTES {
        out.add(field, format!("has {} entries; at most {MAX_ATTRIBUTES} are allowed", map.len()));
        return Attributes::new();
    }
    let mut attributes = Attributes::new();
    for (key, value) in map {
        let entry = format!("{field}[\"{key}\"]");
        if let Err(why) = check_key(&key) {
            out.add(entry, why);
            continue;
        }
        match value_of(value) {
            None => out.add(entry, "needs a value (string, int, double, bool or timestamp)"),
            Some(value) => match check_value(&value) {
                Ok(()) => {
                    attributes.insert(key, value);
                }
                Err(why) => out.add(entry, why),
            },
        }
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_checked() {
        assert!(check_key("loyalty.tier").is_ok());
        assert!(check_key("1st").is_err());
        assert!(check_key("a b").is_err());
        assert!(check_key(&format!("a{}", "b".repeat(64))).is_err());
        assert!(check_value(&AttributeValue::Double(f64::NAN)).is_err());
        assert!(check_value(&AttributeValue::String("x".repeat(1025))).is_err());
        assert!(check_value(&AttributeValue::String("x".repeat(1024))).is_ok());
    }

    #[test]
    fn attribute_maps_report_each_bad_entry() {
        let map = std::collections::HashMap::from([
            ("ok".to_owned(), PbValue { kind: Some(PbKind::IntValue(3)) }),
            ("9bad".to_owned(), PbValue { kind: Some(PbKind::IntValue(3)) }),
            ("empty".to_owned(), PbValue { kind: None }),
        ]);
        let mut violations = Violations::new();
        let attrs = parse_attributes(map, "profile.attributes", &mut violations);
        assert_eq!(attrs, Attributes::from([("ok".to_owned(), AttributeValue::Int(3))]));
        let mut fields: Vec<String> = violations.into_iter().map(|v| v.field).collect();
        fields.sort();
        assert_eq!(fields, vec!["profile.attributes[\"9bad\"]", "profile.attributes[\"empty\"]"]);
    }
}
