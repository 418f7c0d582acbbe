//! Profile attributes: the typed values of the runtime, and the update-mask
//! rules that change them.

pub use cx_runtime::attributes::{AttributeValue, Attributes, MAX_ATTRIBUTES, MAX_STRING_LEN, check_key, check_value};

pub const MAX_PERSONA_LEN: usize = 128;

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
