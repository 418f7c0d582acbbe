//! Update masks (AIP-134): the paths an update names, each a field the
//! resource lets change.

use crate::error::{FieldViolation, Violations};

use super::text::shown;

/// Most paths a mask names: each unknown one would be a violation.
const MAX_PATHS: usize = 100;

/// What an update may name: its updatable fields, and the fields that exist
/// but cannot change, each with the reason.
#[derive(Clone, Copy, Debug)]
pub struct Updatable<'a> {
    /// "a survey": how the errors name the resource.
    pub resource: &'a str,
    pub fields: &'a [&'a str],
    pub fixed: &'a [(&'a str, &'a str)],
}

impl Updatable<'_> {
    /// The distinct paths of `mask`, in its order. An empty mask, and each
    /// path that is not an updatable field, is a violation of `update_mask`.
    pub fn paths(&self, mask: Option<prost_types::FieldMask>) -> Result<Vec<String>, Violations> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            let why = format!("must name the fields to change ({})", self.fields.join(", "));
            return Err(FieldViolation::new("update_mask", why).into());
        }
        if paths.len() > MAX_PATHS {
            return Err(FieldViolation::new(
                "update_mask",
                format!("names at most {MAX_PATHS} paths (has {})", paths.len()),
            )
            .into());
        }
        let mut out = Violations::new();
        let mut named: Vec<String> = Vec::new();
        for path in paths {
            if self.fields.contains(&path.as_str()) {
                if !named.contains(&path) {
                    named.push(path);
                }
            } else if let Some((_, why)) = self.fixed.iter().find(|(field, _)| *field == path) {
                out.add("update_mask", format!("{} {why}", shown(&path)));
            } else {
                out.add("update_mask", format!("{} is not an updatable field of {}", shown(&path), self.resource));
            }
        }
        out.finish().map(|()| named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THING: Updatable = Updatable {
        resource: "a thing",
        fields: &["name", "size"],
        fixed: &[("kind", "cannot change after creation")],
    };

    fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
        Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
    }

    #[test]
    fn named_fields_pass_once_each() {
        assert_eq!(THING.paths(mask(&["size", "name", "size"])), Ok(vec!["size".to_owned(), "name".to_owned()]));
    }

    #[test]
    fn empty_unknown_and_fixed_paths_are_violations_of_the_mask() {
        let empty = THING.paths(None).unwrap_err();
        assert_eq!(
            Vec::from(empty),
            [FieldViolation::new("update_mask", "must name the fields to change (name, size)")]
        );
        let long = "p".repeat(5_000);
        let bad = THING.paths(mask(&["kind", "colour", &long])).unwrap_err();
        assert_eq!(
            Vec::from(bad),
            [
                FieldViolation::new("update_mask", "\"kind\" cannot change after creation"),
                FieldViolation::new("update_mask", "\"colour\" is not an updatable field of a thing"),
                FieldViolation::new(
                    "update_mask",
                    format!("\"{}…\" is not an updatable field of a thing", "p".repeat(64))
                ),
            ]
        );
    }
}
