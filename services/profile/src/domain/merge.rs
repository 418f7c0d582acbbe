//! Merging two profiles of one customer: the survivor keeps its id; the
//! merged profile's identities, consents, devices and activity join it.
//! Attributes keep the survivor's value on conflict unless the merged
//! profile's is preferred; every conflict is reported either way.

use super::attributes::{AttributeValue, Attributes};

/// Which side wins an attribute both profiles hold with different values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefer {
    Survivor,
    Merged,
}

/// An attribute the two profiles disagreed on, and what was kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub key: String,
    pub survivor: AttributeValue,
    pub merged: AttributeValue,
    pub kept: Prefer,
}

/// The survivor's attributes after the merge, and the conflicts met.
pub fn merge_attributes(survivor: &Attributes, merged: &Attributes, prefer: Prefer) -> (Attributes, Vec<Conflict>) {
    let mut result = survivor.clone();
    let mut conflicts = Vec::new();
    for (key, theirs) in merged {
        match survivor.get(key) {
            None => {
                result.insert(key.clone(), theirs.clone());
            }
            Some(ours) if ours == theirs => {}
            Some(ours) => {
                if prefer == Prefer::Merged {
                    result.insert(key.clone(), theirs.clone());
                }
                conflicts.push(Conflict {
                    key: key.clone(),
                    survivor: ours.clone(),
                    merged: theirs.clone(),
                    kept: prefer,
                });
            }
        }
    }
    (result, conflicts)
}

/// The persona after the merge: the preferred side's, unless it has none.
pub fn merge_persona(survivor: &str, merged: &str, prefer: Prefer) -> String {
    match (prefer, survivor.is_empty(), merged.is_empty()) {
        (Prefer::Merged, _, false) | (Prefer::Survivor, true, false) => merged.to_owned(),
        _ => survivor.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, AttributeValue)]) -> Attributes {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn the_survivor_wins_conflicts_by_default_and_every_conflict_is_reported() {
        use AttributeValue::{Int, String as S};
        let survivor = attrs(&[("tier", S("gold".into())), ("kids", Int(2))]);
        let merged = attrs(&[("tier", S("silver".into())), ("kids", Int(2)), ("city", S("Lyon".into()))]);
        let (result, conflicts) = merge_attributes(&survivor, &merged, Prefer::Survivor);
        // tier conflicts (gold kept), kids agrees, city is new.
        assert_eq!(result, attrs(&[("tier", S("gold".into())), ("kids", Int(2)), ("city", S("Lyon".into()))]));
        assert_eq!(
            conflicts,
            vec![Conflict {
                key: "tier".into(),
                survivor: S("gold".into()),
                merged: S("silver".into()),
                kept: Prefer::Survivor
            }]
        );
        let (result, conflicts) = merge_attributes(&survivor, &merged, Prefer::Merged);
        assert_eq!(result.get("tier"), Some(&S("silver".into())));
        assert_eq!(conflicts[0].kept, Prefer::Merged);
    }

    #[test]
    fn a_persona_is_never_lost_to_an_empty_one() {
        assert_eq!(merge_persona("ritual shopper", "", Prefer::Merged), "ritual shopper");
        assert_eq!(merge_persona("", "bargain hunter", Prefer::Survivor), "bargain hunter");
        assert_eq!(merge_persona("ritual shopper", "bargain hunter", Prefer::Survivor), "ritual shopper");
        assert_eq!(merge_persona("ritual shopper", "bargain hunter", Prefer::Merged), "bargain hunter");
    }
}
