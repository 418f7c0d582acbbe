//! Journey maps and touchpoints between their proto and stored forms.

use cx_proto::common::v1 as common;
use cx_proto::journey::v1 as pb;
use cx_proto::timestamp;
use cx_runtime::attributes::{Attributes, value_to_proto};
use cx_runtime::error::{FieldViolation, Violations};

use super::parse::PHASES;
use crate::domain::channel::Channel;
use crate::domain::map::{MAX_NAME_LEN, MetaJourney, Phase, Step, check_steps};
use crate::store::entity::touchpoint;
use crate::store::maps::{MapChanges, MapRecord};

/// The proto value of a channel (the domain's code is the proto value):
/// what the shared proto extensions know of it, such as whether it is
/// digital.
pub fn channel_to_proto(channel: Channel) -> common::Channel {
    common::Channel::try_from(i32::from(channel.code())).unwrap_or(common::Channel::Unspecified)
}

pub fn meta_to_proto(meta: MetaJourney) -> pb::MetaJourney {
    match meta {
        MetaJourney::Entertaining => pb::MetaJourney::Entertaining,
        MetaJourney::LowestPrice => pb::MetaJourney::LowestPrice,
        MetaJourney::Chore => pb::MetaJourney::Chore,
        MetaJourney::Discovery => pb::MetaJourney::Discovery,
        MetaJourney::Ritual => pb::MetaJourney::Ritual,
    }
}

fn parse_meta(raw: i32) -> Result<MetaJourney, FieldViolation> {
    let field = "journey_map.meta_journey";
    Ok(match pb::MetaJourney::try_from(raw) {
        Ok(pb::MetaJourney::Entertaining) => MetaJourney::Entertaining,
        Ok(pb::MetaJourney::LowestPrice) => MetaJourney::LowestPrice,
        Ok(pb::MetaJourney::Chore) => MetaJourney::Chore,
        Ok(pb::MetaJourney::Discovery) => MetaJourney::Discovery,
        Ok(pb::MetaJourney::Ritual) => MetaJourney::Ritual,
        _ => return Err(FieldViolation::new(field, "must be ENTERTAINING, LOWEST_PRICE, CHORE, DISCOVERY or RITUAL")),
    })
}

fn parse_name(raw: String, field: &str, out: &mut Violations) -> String {
    if raw.trim().is_empty() || raw.len() > MAX_NAME_LEN {
        out.add(field, format!("has 1 to {MAX_NAME_LEN} bytes"));
    }
    raw
}

fn parse_steps(steps: Vec<pb::Step>, out: &mut Violations) -> Vec<Step> {
    let field = "journey_map.steps";
    let parsed: Vec<Step> =
        steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let pb::Step {
                    key,
                    name,
                    phase,
                    expected_channels,
                    importance,
                    target_score,
                    moment_of_truth,
                    conversion,
                } = s;
                let phase = Phase::from_code(phase).unwrap_or_else(|| {
                    out.add(format!("{field}[{i}].phase"), PHASES);
                    Phase::Before
                });
                let expected_channels = expected_channels
                    .iter()
                    .enumerate()
                    .filter_map(|(j, raw)| {
                        let channel = Channel::from_code(*raw);
                        if channel.is_none() {
                            out.add(format!("{field}[{i}].expected_channels[{j}]"), "is not a known channel");
                        }
                        channel
                    })
                    .collect();
                Step { key, name, phase, expected_channels, importance, target_score, moment_of_truth, conversion }
            })
            .collect();
    out.check(check_steps(&parsed, field));
    parsed
}

/// The fields of `map` that `paths` name (all of them for a creation).
pub fn map_changes(map: pb::JourneyMap, paths: &[&str]) -> Result<MapChanges, Violations> {
    let pb::JourneyMap { id: _, name, customer_type, meta_journey, steps, version: _, create_time: _, update_time: _ } =
        map;
    let mut out = Violations::new();
    let mut changes = MapChanges::default();
    for path in paths {
        match *path {
            "name" => changes.name = Some(parse_name(name.clone(), "journey_map.name", &mut out)),
            "customer_type" => {
                changes.customer_type = Some(parse_name(customer_type.clone(), "journey_map.customer_type", &mut out));
            }
            "meta_journey" => changes.meta_journey = out.check(parse_meta(meta_journey)),
            "steps" => changes.steps = Some(parse_steps(steps.clone(), &mut out)),
            other => out.add(
                "update_mask",
                format!("'{other}' is not an updatable field (name, customer_type, meta_journey, steps)"),
            ),
        }
    }
    out.finish().map(|()| changes)
}

pub fn map_to_proto(map: &MapRecord) -> pb::JourneyMap {
    pb::JourneyMap {
        id: map.id.to_string(),
        name: map.name.clone(),
        customer_type: map.customer_type.clone(),
        meta_journey: meta_to_proto(map.meta_journey) as i32,
        steps: map
            .steps
            .iter()
            .map(|s| pb::Step {
                key: s.key.clone(),
                name: s.name.clone(),
                phase: i32::from(s.phase.code()),
                expected_channels: s.expected_channels.iter().map(|c| i32::from(c.code())).collect(),
                importance: s.importance,
                target_score: s.target_score,
                moment_of_truth: s.moment_of_truth,
                conversion: s.conversion,
            })
            .collect(),
        version: map.version,
        create_time: Some(timestamp(map.created_at)),
        update_time: Some(timestamp(map.updated_at)),
    }
}

pub fn touchpoint_to_proto(row: touchpoint::Model) -> pb::Touchpoint {
    let attributes: Attributes = row.attributes.and_then(|j| serde_json::from_value(j).ok()).unwrap_or_default();
    let purchase_amount = match (row.currency, row.amount_micros) {
        (Some(currency), Some(micros)) => Some(cx_proto::money(&currency, micros)),
        _ => None,
    };
    pb::Touchpoint {
        id: row.id,
        customer: Some(pb::touchpoint::Customer::ProfileId(row.customer_id.to_string())),
        channel: i32::from(row.channel),
        occur_time: Some(timestamp(row.occurred_at)),
        kind: i32::from(row.kind),
        initiator: i32::from(row.initiator),
        phase: i32::from(row.phase),
        map_id: row.map_id.map(|m| m.to_string()).unwrap_or_default(),
        step_key: row.step_key.unwrap_or_default(),
        instance_id: row.instance_id.unwrap_or_default(),
        experience_score: row.score.map(i32::from),
        purchase_amount,
        device_id: row.device_id.unwrap_or_default(),
        attributes: attributes.iter().map(|(k, v)| (k.clone(), value_to_proto(v))).collect(),
        map_version: row.map_version.unwrap_or_default(),
        resolved_profile_id: row.customer_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use super::*;
    use crate::domain::touchpoint::{Initiator, InteractionKind};

    /// The domain's codes are the proto values: value `i` of `all` has code
    /// `i + 1` and the name of the proto value `i + 1`, and every proto value
    /// but UNSPECIFIED (0) has its domain value.
    fn same<D: Debug + Copy, P: Debug>(all: &[D], code: fn(D) -> i16, proto: impl Fn(i32) -> Option<P>) {
        let codes: Vec<i16> = all.iter().map(|d| code(*d)).collect();
        assert_eq!(codes, (1..=i16::try_from(all.len()).unwrap()).collect::<Vec<_>>());
        let domain: Vec<String> = all.iter().map(|d| format!("{d:?}")).collect();
        let proto: Vec<String> = (1..).map_while(&proto).map(|p| format!("{p:?}")).collect();
        assert_eq!(domain, proto);
    }

    #[test]
    fn codes_are_the_proto_values() {
        same(&Channel::ALL, Channel::code, |c| common::Channel::try_from(c).ok());
        same(&InteractionKind::ALL, InteractionKind::code, |c| common::InteractionKind::try_from(c).ok());
        same(&Initiator::ALL, Initiator::code, |c| common::Initiator::try_from(c).ok());
        same(&Phase::ALL, Phase::code, |c| pb::Phase::try_from(c).ok());
        assert_eq!(channel_to_proto(Channel::Kiosk), common::Channel::Kiosk);
    }
}
