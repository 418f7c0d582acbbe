//! Journey maps and touchpoints between their proto and stored forms.

use cx_proto::common::v1::Channel;
use cx_proto::journey::v1 as pb;
use cx_proto::timestamp;
use cx_runtime::attributes::{Attributes, value_to_proto};
use cx_runtime::error::FieldViolation;

use crate::domain::map::{MAX_NAME_LEN, MetaJourney, Phase, Step, check_steps};
use crate::store::entity::touchpoint;
use crate::store::maps::{MapChanges, MapRecord};

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

fn parse_name(raw: String, field: &str, out: &mut Vec<FieldViolation>) -> String {
    if raw.trim().is_empty() || raw.len() > MAX_NAME_LEN {
        out.push(FieldViolation::new(field, format!("has 1 to {MAX_NAME_LEN} bytes")));
    }
    raw
}

fn parse_steps(steps: Vec<pb::Step>, out: &mut Vec<FieldViolation>) -> Vec<Step> {
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
                    out.push(FieldViolation::new(format!("{field}[{i}].phase"), "must be BEFORE, DURING or AFTER"));
                    Phase::Before
                });
                for (j, channel) in expected_channels.iter().enumerate() {
                    if !matches!(Channel::try_from(*channel), Ok(c) if c != Channel::Unspecified) {
                        out.push(FieldViolation::new(
                            format!("{field}[{i}].expected_channels[{j}]"),
                            "is not a known channel",
                        ));
                    }
                }
                Step { key, name, phase, expected_channels, importance, target_score, moment_of_truth, conversion }
            })
            .collect();
    out.extend(check_steps(&parsed, field));
    parsed
}

/// The fields of `map` that `paths` name (all of them for a creation).
pub fn map_changes(map: pb::JourneyMap, paths: &[&str]) -> Result<MapChanges, Vec<FieldViolation>> {
    let pb::JourneyMap { id: _, name, customer_type, meta_journey, steps, version: _, create_time: _, update_time: _ } =
        map;
    let mut out = Vec::new();
    let mut changes = MapChanges::default();
    for path in paths {
        match *path {
            "name" => changes.name = Some(parse_name(name.clone(), "journey_map.name", &mut out)),
            "customer_type" => {
                changes.customer_type = Some(parse_name(customer_type.clone(), "journey_map.customer_type", &mut out));
            }
            "meta_journey" => changes.meta_journey = parse_meta(meta_journey).map_err(|v| out.push(v)).ok(),
            "steps" => changes.steps = Some(parse_steps(steps.clone(), &mut out)),
            other => out.push(FieldViolation::new(
                "update_mask",
                format!("'{other}' is not an updatable field (name, customer_type, meta_journey, steps)"),
            )),
        }
    }
    if out.is_empty() { Ok(changes) } else { Err(out) }
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
                expected_channels: s.expected_channels.clone(),
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
