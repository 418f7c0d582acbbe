//! The segments shipped with the suite as starting points: each a rule in
//! canonical form, checked by the tests below.

use cx_proto::segmentation::v1 as pb;

/// A template: id, name, description, rule.
type Template = (&'static str, &'static str, &'static str, &'static str);

const TEMPLATES: [Template; 4] = [
    (
        "reactivation",
        "Lost customers to win back",
        "Lost customers (no purchase for a year or more) who spent at least 500 in the RFM currency \
         over the last 365 days and agreed to email: a reactivation campaign.",
        "profile.lifecycle = \"lost\" AND rfm.monetary >= 500 AND consent.email",
    ),
    (
        "at_risk_champions",
        "At-risk champions",
        "Customers who bought often and much but not lately (RFM segment at_risk with the best \
         frequency and monetary scores): call them before they leave.",
        "rfm.segment = \"at_risk\" AND rfm.f >= 4 AND rfm.m >= 4",
    ),
    (
        "detractors_to_call_back",
        "Detractors not yet called back",
        "Customers whose last NPS answer was a detractor's and who still have a follow-up case \
         open (docs/DOMAIN.md §7.10): the closed loop's call list.",
        "survey.nps_category = \"detractor\" AND survey.open_cases > 0",
    ),
    (
        "digital_migration",
        "Traditional customers who tried the web",
        "Customers of the traditional digital category who used the web in the last 180 days: \
         the ones to help move online.",
        "digital.category = \"traditional\" AND journey.channels CONTAINS \"web\"",
    ),
];

fn message((id, name, description, rule): &Template) -> pb::Template {
    pb::Template { id: (*id).into(), name: (*name).into(), description: (*description).into(), rule: (*rule).into() }
}

/// Every template, in a fixed order.
pub fn all() -> Vec<pb::Template> {
    TEMPLATES.iter().map(message).collect()
}

/// The template `id`.
pub fn find(id: &str) -> Option<pb::Template> {
    TEMPLATES.iter().find(|t| t.0 == id).map(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Catalog, validate};

    #[test]
    fn every_template_is_a_valid_rule_in_canonical_form() {
        for t in all() {
            let checked = validate(&t.rule, &Catalog::default()).unwrap_or_else(|e| panic!("{}: {e:?}", t.id));
            assert_eq!(checked.to_string(), t.rule, "{}", t.id);
        }
        assert_eq!(find("reactivation").map(|t| t.name), Some("Lost customers to win back".to_owned()));
        assert_eq!(find("Reactivation"), None);
    }
}
