//! Typed profile attributes and the update-mask rules that change them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const MAX_ATTRIBUTES: usize = 100;
pub const MAX_STRING_LEN: usize = 1024;
pub const MAX_PERSONA_LEN: usize = 128;

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

/// What an update mask asks for, validated against the profile's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaskPath {
    Persona,
    /// Replace the whole attribute map.
    Attributes,
    /// Set one key (from the request's map), or remove it when absent there.
    Attribute(String),
}

impl MaskPath {
    pub fn parse(path: &str) -> Result<Vec<Self>, String> {
        match path {
            "persona" => Ok(vec![Self::Persona]),
            "attributes" => Ok(vec![Self::Attributes]),
            "*" => Ok(vec![Self::Persona, Self::Attributes]),
            other => match other.strip_prefix("attributes.") {
                Some(key) => {
                    let key = key.trim_matches('`');
                    check_key(key)?;
                    Ok(vec![Self::Attribute(key.to_owned())])
                }
                None => Err(format!("'{other}' is not an updatable field (persona, attributes, attributes.<key>)")),
            },
        }
    }
}

/// Applies `paths` to `attributes`, taking new values from `incoming`.
pub fn apply_mask(attributes: &mut Attributes, incoming: &Attributes, paths: &[MaskPath]) {
    for path in paths {
        match path {
            MaskPath::Persona => {}
            MaskPath::Attributes => attributes.clone_from(incoming),
            MaskPath::Attribute(key) => match incoming.get(key) {
                Some(value) => {
                    attributes.insert(key.clone(), value.clone());
                }
                None => {
                    attributes.remove(key);
                }
            },
        }
    }
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
    fn mask_paths_parse_or_name_the_problem() {
        assert_eq!(MaskPath::parse("persona"), Ok(vec![MaskPath::Persona]));
        assert_eq!(MaskPath::parse("attributes.tier"), Ok(vec![MaskPath::Attribute("tier".into())]));
        assert_eq!(MaskPath::parse("*"), Ok(vec![MaskPath::Persona, MaskPath::Attributes]));
        assert_eq!(
            MaskPath::parse("identities"),
            Err("'identities' is not an updatable field (persona, attributes, attributes.<key>)".into())
        );
    }

    #[test]
    fn per_key_paths_set_and_remove_whole_map_replaces() {
        let mut attrs = Attributes::from([
            ("tier".to_owned(), AttributeValue::String("gold".into())),
            ("age".to_owned(), AttributeValue::Int(41)),
        ]);
        let incoming = Attributes::from([("tier".to_owned(), AttributeValue::String("silver".into()))]);
        // tier is set from the request; age, absent from it, is removed.
        apply_mask(&mut attrs, &incoming, &[MaskPath::Attribute("tier".into()), MaskPath::Attribute("age".into())]);
        assert_eq!(attrs, incoming);
        let replacement = Attributes::from([("vip".to_owned(), AttributeValue::Bool(true))]);
        apply_mask(&mut attrs, &replacement, &[MaskPath::Attributes]);
        assert_eq!(attrs, replacement);
    }
}
