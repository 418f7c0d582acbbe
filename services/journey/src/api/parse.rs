//! Touchpoints of a request into validated domain values, every problem of
//! each one named by its field.

use std::collections::HashMap;

use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::touchpoint::Customer as PbCustomer;
use cx_runtime::error::{FieldViolation, Violations};
use cx_runtime::input::{not_future, parse_money, parse_uuid};
use uuid::Uuid;

use super::convert::channel_to_proto;
use crate::domain::channel::Channel;
use crate::domain::map::{Phase, Step};
use crate::domain::touchpoint::{Customer, Initiator, InteractionKind, MAX_ID_LEN, Touchpoint};

fn optional_text(raw: String, field: &str, max: usize, out: &mut Violations) -> Option<String> {
    if raw.len() > max {
        out.add(field, format!("has at most {max} bytes"));
    }
    Some(raw).filter(|s| !s.trim().is_empty())
}

/// The string fields of a touchpoint holding a NUL character, which
/// PostgreSQL cannot store. The codec leaves them to this per-item check so
/// that one such touchpoint is refused alone, not its whole batch.
fn nul_fields(tp: &pb::Touchpoint) -> Violations {
    let customer = match &tp.customer {
        Some(PbCustomer::ProfileId(id)) => ("profile_id", id.as_str()),
        Some(PbCustomer::Identity(identity)) => ("identity.value", identity.value.as_str()),
        None => ("", ""),
    };
    let currency = tp.purchase_amount.as_ref().map_or("", |m| m.currency_code.as_str());
    let fixed = [
        ("id", tp.id.as_str()),
        customer,
        ("map_id", &tp.map_id),
        ("step_key", &tp.step_key),
        ("instance_id", &tp.instance_id),
        ("purchase_amount.currency_code", currency),
        ("device_id", &tp.device_id),
    ];
    let mut out = Violations::new();
    for (field, _) in fixed.into_iter().filter(|(_, text)| text.contains('\0')) {
        out.add(field, NUL);
    }
    for (key, value) in &tp.attributes {
        let text = match &value.kind {
            Some(cx_proto::common::v1::attribute_value::Kind::StringValue(text)) => text.as_str(),
            _ => "",
        };
        if key.contains('\0') || text.contains('\0') {
            let key = cx_runtime::error::clip(key);
            out.add(format!("attributes[{key:?}]"), NUL);
        }
    }
    out
}

const NUL: &str = "must not contain NUL characters";

/// A phase a request may leave unspecified (0): `None` then.
pub fn optional_phase(raw: i32) -> Result<Option<Phase>, FieldViolation> {
    match raw {
        0 => Ok(None),
        raw => Phase::from_code(raw).map(Some).ok_or_else(|| FieldViolation::new("phase", PHASES)),
    }
}

/// What a phase must be.
pub const PHASES: &str = "must be BEFORE, DURING or AFTER";

/// One touchpoint, checked on its own (map steps are checked after, with
/// [`check_step`], once the batch's maps are loaded).
pub fn touchpoint(tp: pb::Touchpoint) -> Result<Touchpoint, Violations> {
    nul_fields(&tp).finish()?;
    let pb::Touchpoint {
        id,
        customer,
        channel,
        occur_time,
        kind,
        initiator,
        phase,
        map_id,
        step_key,
        instance_id,
        experience_score,
        purchase_amount,
        device_id,
        attributes,
        map_version: _,
        resolved_profile_id: _,
    } = tp;
    let mut out = Violations::new();
    if id.is_empty() || id.len() > MAX_ID_LEN {
        out.add("id", format!("has 1 to {MAX_ID_LEN} characters"));
    }
    let customer = match customer {
        None => {
            out.add("customer", "needs a profile_id or an identity");
            None
        }
        Some(PbCustomer::ProfileId(raw)) => {
            out.check(parse_uuid(&raw, "profile_id", "a profile id")).map(Customer::Profile)
        }
        Some(PbCustomer::Identity(identity)) if identity.kind == 0 || identity.value.trim().is_empty() => {
            out.add("identity", "needs a kind and a value");
            None
        }
        Some(PbCustomer::Identity(identity)) => Some(Customer::Identity(identity.kind, identity.value)),
    };
    let channel = match Channel::from_code(channel) {
        Some(channel) => Some(channel),
        None if channel == 0 => {
            out.add("channel", "is required");
            None
        }
        None => {
            out.add("channel", format!("{channel} is not a known channel"));
            None
        }
    };
    let occurred_at = match occur_time {
        None => {
            out.add("occur_time", "is required");
            None
        }
        Some(ts) => out.check(not_future(&ts, "occur_time")),
    };
    let kind = InteractionKind::from_code(kind);
    if kind.is_none() {
        out.add("kind", "must be INFORMATIVE or TRANSACTIONAL");
    }
    let initiator = Initiator::from_code(initiator);
    if initiator.is_none() {
        out.add("initiator", "must be PUSH or PULL");
    }
    let phase = out.check(optional_phase(phase)).flatten();
    let map = match map_id.as_str() {
        "" => None,
        raw => out.check(parse_uuid(raw, "map_id", "a journey map id")),
    };
    let step_key = optional_text(step_key, "step_key", 64, &mut out);
    if step_key.is_some() && map_id.is_empty() {
        out.add("step_key", "needs a map_id");
    }
    let instance_id = optional_text(instance_id, "instance_id", MAX_ID_LEN, &mut out);
    let score = match experience_score {
        None => None,
        Some(s @ 0..=10) => i16::try_from(s).ok(),
        Some(s) => {
            out.add("experience_score", format!("{s} is not between 0 and 10"));
            None
        }
    };
    let purchase = purchase_amount.and_then(|m| out.check(parse_money(&m, "purchase_amount")));
    if purchase.is_some() && kind == Some(InteractionKind::Informative) {
        out.add("purchase_amount", "only a TRANSACTIONAL touchpoint carries a purchase");
    }
    let device_id = optional_text(device_id, "device_id", MAX_ID_LEN, &mut out);
    let attributes = cx_runtime::attributes::parse_attributes(attributes, "attributes", &mut out);
    match (customer, channel, occurred_at, kind, initiator) {
        (Some(customer), Some(channel), Some(occurred_at), Some(kind), Some(initiator)) if out.is_empty() => {
            Ok(Touchpoint {
                id,
                customer,
                channel,
                digital: channel_to_proto(channel).is_digital(),
                occurred_at,
                kind,
                initiator,
                phase,
                // The version is known once the map is loaded.
                map: map.map(|m| (m, 0)),
                step_key,
                instance_id,
                score,
                purchase,
                device_id,
                attributes,
            })
        }
        _ => Err(out),
    }
}

/// Ties a touchpoint to the current version of its map: the map exists,
/// the step is one of it, and an unspecified phase is the step's.
pub fn check_step(tp: &mut Touchpoint, maps: &HashMap<Uuid, (i32, Vec<Step>)>) -> Result<(), FieldViolation> {
    let Some((map_id, _)) = tp.map else { return Ok(()) };
    let (version, steps) = maps.get(&map_id).ok_or_else(|| FieldViolation::new("map_id", "no such journey map"))?;
    tp.map = Some((map_id, *version));
    if let Some(key) = &tp.step_key {
        let step = steps
            .iter()
            .find(|s| &s.key == key)
            .ok_or_else(|| FieldViolation::new("step_key", format!("'{key}' is not a step of map {map_id}")))?;
        if tp.phase.is_none() {
            tp.phase = Some(step.phase);
        }
    }
    Ok(())
}
