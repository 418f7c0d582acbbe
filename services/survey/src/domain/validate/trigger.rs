//! Triggers (docs/DOMAIN.md §7.6): every problem of a trigger, named by its
//! path under `trigger`, and the values of what was left unset.

use chrono::Duration;
use cx_proto::common::v1::{Channel, InteractionKind};
use cx_proto::profile::v1::{DigitalCategory, Lifecycle};
use cx_proto::survey::v1 as pb;
use cx_runtime::error::Violations;
use cx_runtime::input::{parse_money, parse_uuid};

use cx_runtime::validate::mask::Updatable;
use cx_runtime::validate::text::{self, MAX_NAME};

/// How long after its touchpoint an invitation may wait.
pub const DELAY: (Duration, Duration) = (Duration::zero(), Duration::days(30));
/// How long an invitation can be answered once due.
pub const EXPIRY: (Duration, Duration) = (Duration::hours(1), Duration::days(90));
/// The expiry of a trigger that sets none.
pub const DEFAULT_EXPIRY: Duration = Duration::days(7);
/// The experience scores a condition may be "below".
const SCORE_BELOW: std::ops::RangeInclusive<i32> = 1..=10;

/// The fields `UpdateTrigger` changes (the proto's list).
pub const UPDATABLE: Updatable<'static> = Updatable {
    resource: "a trigger",
    fields: &["name", "enabled", "condition", "sampling_rate", "delay", "expiry"],
    fixed: &[("survey_id", "cannot change: create a trigger for the other survey")],
};

fn seconds(d: Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.num_seconds(), nanos: 0 }
}

/// The trigger as it is stored: checked, with an unset delay made 0 and an
/// unset expiry 7 days. Its id, survey and times are not read.
pub fn check(mut t: pb::Trigger) -> Result<pb::Trigger, Violations> {
    let mut out = Violations::new();
    out.check(text::required(&t.name, "trigger.name", MAX_NAME));
    // Written so that NaN fails too.
    if !(t.sampling_rate > 0.0 && t.sampling_rate <= 1.0) {
        out.add("trigger.sampling_rate", "must be above 0 and at most 1 (1 invites on every match)");
    }
    if let Some(c) = &t.condition {
        condition(c, &mut out);
    }
    let delay = t.delay.map_or(Ok(Duration::zero()), |d| text::duration(&d, "trigger.delay", DELAY, "0 to 30 days"));
    let expiry =
        t.expiry.map_or(Ok(DEFAULT_EXPIRY), |d| text::duration(&d, "trigger.expiry", EXPIRY, "1 hour to 90 days"));
    t.delay = out.check(delay).map(seconds);
    t.expiry = out.check(expiry).map(seconds);
    out.finish().map(|()| t)
}

/// `current` with the fields `paths` name (checked by [`UPDATABLE`]) taken
/// from `given`; check the result with [`check`].
pub fn apply(current: &mut pb::Trigger, mut given: pb::Trigger, paths: &[String]) {
    for path in paths {
        match path.as_str() {
            "name" => current.name = std::mem::take(&mut given.name),
            "enabled" => current.enabled = given.enabled,
            "condition" => current.condition = given.condition.take(),
            "sampling_rate" => current.sampling_rate = given.sampling_rate,
            "delay" => current.delay = given.delay.take(),
            "expiry" => current.expiry = given.expiry.take(),
            _ => {}
        }
    }
}

fn condition(c: &pb::TouchpointCondition, out: &mut Violations) {
    let at = |name: &str| format!("trigger.condition.{name}");
    if !c.map_id.is_empty() {
        out.check(parse_uuid(&c.map_id, &at("map_id"), "a journey map id"));
    }
    if !c.step_key.is_empty() {
        if c.map_id.is_empty() {
            out.add(at("step_key"), "needs map_id: a step key names a step of one map");
        } else {
            out.check(text::key(&c.step_key, &at("step_key")));
        }
    }
    let channel = |code| Channel::try_from(code).ok().filter(|c| *c != Channel::Unspecified).map(|c| c.as_str_name());
    distinct(&c.channels, &at("channels"), (channel, 12), "is not a channel", out);
    let kind = InteractionKind::try_from(c.kind);
    if kind.is_err() {
        out.add(at("kind"), "must be INTERACTION_KIND_INFORMATIVE or INTERACTION_KIND_TRANSACTIONAL (or unset: any)");
    }
    if c.experience_score_below.is_some_and(|below| !SCORE_BELOW.contains(&below)) {
        out.add(at("experience_score_below"), "must be between 1 and 10");
    }
    if let Some(money) = &c.purchase_above {
        if !(-999_999_999..=999_999_999).contains(&money.nanos) {
            out.add(at("purchase_above.nanos"), "must be less than one unit (1,000,000,000 nanos)");
        } else {
            out.check(parse_money(money, &at("purchase_above")));
        }
        if kind == Ok(InteractionKind::Informative) {
            out.add(
                at("purchase_above"),
                "never matches an informative touchpoint: only transactions carry a purchase",
            );
        }
    }
    let lifecycle =
        |code| Lifecycle::try_from(code).ok().filter(|l| *l != Lifecycle::Unspecified).map(|l| l.as_str_name());
    distinct(&c.lifecycles, &at("lifecycles"), (lifecycle, 5), "is not a lifecycle state", out);
    let category = |code| {
        DigitalCategory::try_from(code).ok().filter(|d| *d != DigitalCategory::Unspecified).map(|d| d.as_str_name())
    };
    distinct(&c.digital_categories, &at("digital_categories"), (category, 4), "is not a digital category", out);
}

/// Each code of a list known (`name` gives its name, of `known` values) and
/// listed once. A longer list than `known` is one violation, its codes not
/// read.
fn distinct(
    codes: &[i32],
    field: &str,
    (name, known): (impl Fn(i32) -> Option<&'static str>, usize),
    unknown: &str,
    out: &mut Violations,
) {
    if codes.len() > known {
        return out.add(field, format!("has at most {known} entries, one per value (has {})", codes.len()));
    }
    for (i, &code) in codes.iter().enumerate() {
        match name(code) {
            None => out.add(format!("{field}[{i}]"), unknown),
            Some(known) if codes[..i].contains(&code) => out.add(format!("{field}[{i}]"), format!("repeats {known}")),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use cx_proto::common::v1::Money;
    use cx_runtime::error::FieldViolation;

    use super::*;

    fn good() -> pb::Trigger {
        pb::Trigger { name: "Delivered".into(), enabled: true, sampling_rate: 0.25, ..Default::default() }
    }

    #[test]
    fn unset_durations_take_their_defaults() {
        let stored = check(good()).unwrap();
        assert_eq!(stored.delay, Some(prost_types::Duration { seconds: 0, nanos: 0 }));
        // 7 days = 604,800 seconds.
        assert_eq!(stored.expiry, Some(prost_types::Duration { seconds: 604_800, nanos: 0 }));
    }

    #[test]
    fn sampling_rates_lie_in_zero_to_one() {
        for rate in [0.0, -0.1, 1.000_001, f64::NAN] {
            let t = pb::Trigger { sampling_rate: rate, ..good() };
            assert_eq!(
                Vec::from(check(t).unwrap_err()),
                [FieldViolation::new(
                    "trigger.sampling_rate",
                    "must be above 0 and at most 1 (1 invites on every match)"
                )],
                "{rate}"
            );
        }
        assert!(check(pb::Trigger { sampling_rate: 1.0, ..good() }).is_ok());
    }

    #[test]
    fn each_condition_problem_is_named() {
        let c = pb::TouchpointCondition {
            map_id: String::new(),
            step_key: "delivery".into(),
            channels: vec![Channel::Web as i32, 99, Channel::Web as i32],
            kind: InteractionKind::Informative as i32,
            experience_score_below: Some(11),
            purchase_above: Some(Money { currency_code: "EUR".into(), units: 10, nanos: 1_000_000_000 }),
            lifecycles: vec![Lifecycle::Lost as i32, 0],
            digital_categories: vec![DigitalCategory::Hybrid as i32, DigitalCategory::Hybrid as i32],
        };
        let t =
            pb::Trigger { condition: Some(c), delay: Some(prost_types::Duration { seconds: -1, nanos: 0 }), ..good() };
        let fields: Vec<String> = Vec::from(check(t).unwrap_err()).into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "trigger.condition.step_key",
                "trigger.condition.channels[1]",
                "trigger.condition.channels[2]",
                "trigger.condition.experience_score_below",
                "trigger.condition.purchase_above.nanos",
                "trigger.condition.purchase_above",
                "trigger.condition.lifecycles[1]",
                "trigger.condition.digital_categories[1]",
                "trigger.delay",
            ]
        );
    }

    #[test]
    fn an_update_takes_only_the_masked_fields() {
        let mut current = check(good()).unwrap();
        let given = pb::Trigger { name: "Other".into(), sampling_rate: 1.0, ..Default::default() };
        apply(&mut current, given, &["sampling_rate".to_owned()]);
        assert_eq!((current.name.as_str(), current.sampling_rate), ("Delivered", 1.0));
    }
}
