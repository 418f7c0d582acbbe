//! Segments as clients define them: the checks of their texts and rule, the
//! fields an update may change, and the templates shipped with the suite.

pub mod templates;

use cx_proto::segmentation::v1 as pb;
use cx_runtime::error::{FieldViolation, Violations};
use cx_runtime::validate::mask::Updatable;
use cx_runtime::validate::text;

use crate::rules::{Checked, RuleError};

/// Longest name of a segment, in characters.
pub const MAX_NAME: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 2_000;

/// How often a segment's members may be recomputed.
pub const REFRESH: (chrono::Duration, chrono::Duration) = (chrono::Duration::minutes(5), chrono::Duration::days(7));
/// The refresh interval of a segment that sets none.
pub const DEFAULT_REFRESH: chrono::Duration = chrono::Duration::hours(1);

/// The fields `UpdateSegment` changes (the proto's list).
pub const UPDATABLE: Updatable<'static> = Updatable {
    resource: "a segment",
    fields: &["name", "description", "rule", "refresh_interval"],
    fixed: &[("template_id", "cannot change: it says where the segment came from")],
};

/// The violations of a rule's errors, on `field`: one per error, as
/// `line:column: message`.
pub fn rule_violations(field: &str, errors: &[RuleError]) -> Vec<FieldViolation> {
    errors.iter().map(|e| FieldViolation::new(field, e.to_string())).collect()
}

/// The refresh interval of a checked segment.
pub fn refresh_interval(s: &pb::Segment) -> chrono::Duration {
    s.refresh_interval.map_or(DEFAULT_REFRESH, |d| chrono::Duration::seconds(d.seconds))
}

/// The segment as stored: its texts checked, its rule (already checked as
/// `rule`) in canonical form with the fields it reads, an unset refresh
/// interval made 1 hour. Its id, times and counts are not read.
pub fn check(mut s: pb::Segment, rule: Result<Checked, Vec<RuleError>>) -> Result<pb::Segment, Violations> {
    let mut out = Violations::new();
    out.check(text::required(&s.name, "segment.name", MAX_NAME));
    out.check(text::optional(&s.description, "segment.description", MAX_DESCRIPTION));
    let interval = s.refresh_interval.map_or(Ok(DEFAULT_REFRESH), |d| {
        text::duration(&d, "segment.refresh_interval", REFRESH, "5 minutes to 7 days")
    });
    s.refresh_interval = out.check(interval).map(|d| prost_types::Duration { seconds: d.num_seconds(), nanos: 0 });
    if !s.template_id.is_empty() && templates::find(&s.template_id).is_none() {
        out.add("segment.template_id", format!("{} is not a template", text::shown(&s.template_id)));
    }
    match rule {
        Ok(checked) => {
            s.rule = checked.to_string();
            s.fields = checked.fields().iter().map(ToString::to_string).collect();
        }
        Err(errors) => {
            for v in rule_violations("segment.rule", &errors) {
                out.add(v.field, v.description);
            }
        }
    }
    out.finish().map(|()| s)
}

/// `current` with the fields `paths` name (checked by [`UPDATABLE`]) taken
/// from `given`; check the result with [`check`].
pub fn apply(current: &mut pb::Segment, mut given: pb::Segment, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "name" => current.name = std::mem::take(&mut given.name),
            "description" => current.description = std::mem::take(&mut given.description),
            "rule" => current.rule = std::mem::take(&mut given.rule),
            "refresh_interval" => current.refresh_interval = given.refresh_interval.take(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Catalog, validate};

    fn segment(name: &str, rule: &str) -> pb::Segment {
        pb::Segment { name: name.into(), rule: rule.into(), ..Default::default() }
    }

    #[test]
    fn a_segment_is_stored_with_its_canonical_rule_and_fields() {
        let given = segment("Lost big spenders", "profile.lifecycle = \"lost\" and rfm.monetary >= 0500");
        let rule = validate(&given.rule, &Catalog::default());
        let stored = check(given, rule).unwrap();
        assert_eq!(stored.rule, "profile.lifecycle = \"lost\" AND rfm.monetary >= 500");
        assert_eq!(stored.fields, ["profile.lifecycle", "rfm.monetary"]);
    }

    #[test]
    fn every_problem_is_a_violation_and_each_rule_error_its_own() {
        let given = pb::Segment { template_id: "nope".into(), ..segment(" ", "rfm.r >= AND rfm.monetry = 1") };
        let rule = validate(&given.rule, &Catalog::default());
        let violations = Vec::from(check(given, rule).unwrap_err());
        let shown: Vec<String> = violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect();
        assert_eq!(
            shown,
            [
                "segment.name: is required",
                "segment.template_id: \"nope\" is not a template",
                "segment.rule: 1:10: expected a value after \">=\", found AND",
                "segment.rule: 1:14: unknown field rfm.monetry — did you mean rfm.monetary?",
            ]
        );
    }
}
