//! Validation of RecordActivity batches: every bad record is reported with
//! its index, and nothing is applied unless all are valid.

use cx_proto::common::v1::{Initiator, InteractionKind};
use cx_proto::profile::v1 as pb;
use cx_runtime::error::{FieldViolation, Violations};
use cx_runtime::input::parse_money;

use super::convert::{parse_channel, parse_id};
use crate::domain::intensity::Category;
use crate::store::activity::Activity;
use crate::store::intensity::CategoryCount;

/// Largest batch; the journey service sends up to this many per call.
pub const MAX_RECORDS: usize = 10_000;

fn record(i: usize, r: pb::ActivityRecord, out: &mut Violations) -> Option<Activity> {
    let pb::ActivityRecord {
        profile_id,
        occur_time,
        channel,
        initiator,
        kind,
        touchpoints,
        purchases,
        purchase_amount,
        device_id,
    } = r;
    let field = |name: &str| format!("records[{i}].{name}");
    let customer = out.check(parse_id(&profile_id, &field("profile_id")));
    let at = out.check(match occur_time {
        None => Err(FieldViolation::new(field("occur_time"), "is required")),
        Some(ts) => super::not_future(&ts, &field("occur_time")),
    });
    let channel = out.check(parse_channel(channel, &field("channel")).and_then(|key| {
        if key.is_empty() { Err(FieldViolation::new(field("channel"), "is required")) } else { Ok(key) }
    }));
    let initiator = out.check(match Initiator::try_from(initiator) {
        Ok(Initiator::Push) => Ok("push"),
        Ok(Initiator::Pull) => Ok("pull"),
        _ => Err(FieldViolation::new(field("initiator"), "must be PUSH or PULL")),
    });
    let kind = out.check(match InteractionKind::try_from(kind) {
        Ok(InteractionKind::Informative) => Ok("informative"),
        Ok(InteractionKind::Transactional) => Ok("transactional"),
        _ => Err(FieldViolation::new(field("kind"), "must be INFORMATIVE or TRANSACTIONAL")),
    });
    let counts = out.check(if touchpoints < 1 {
        Err(FieldViolation::new(field("touchpoints"), "must be at least 1"))
    } else if purchases < 0 || purchases > touchpoints {
        Err(FieldViolation::new(field("purchases"), "must be between 0 and touchpoints"))
    } else if purchases > 0 && kind == Some("informative") {
        Err(FieldViolation::new(field("purchases"), "only transactional records carry purchases"))
    } else {
        Ok((touchpoints, purchases))
    });
    let amount =
        out.check(purchase_amount.map_or(Ok((String::new(), 0)), |m| parse_money(&m, &field("purchase_amount"))));
    if device_id.len() > 128 {
        out.add(field("device_id"), "has at most 128 characters");
        return None;
    }
    let (customer, at, channel, initiator, kind, (touchpoints, purchases), (currency, amount_micros)) =
        (customer?, at?, channel?, initiator?, kind?, counts?, amount?);
    Some(Activity {
        customer,
        at,
        digital: cx_proto::common::v1::Channel::from_key(&channel).is_some_and(|c| c.is_digital()),
        channel,
        initiator,
        kind,
        touchpoints,
        purchases,
        currency,
        amount_micros,
        device: Some(device_id).filter(|d| !d.trim().is_empty()),
    })
}

/// The batch's records, or every violation found in it.
pub fn parse_batch(batch_id: &str, records: Vec<pb::ActivityRecord>) -> Result<Vec<Activity>, Violations> {
    let mut out = Violations::new();
    if batch_id.is_empty() || batch_id.len() > 128 {
        out.add("batch_id", "has 1 to 128 characters");
    }
    if records.is_empty() {
        out.add("records", "must hold at least one record");
    }
    if records.len() > MAX_RECORDS {
        out.add("records", format!("has {} records; at most {MAX_RECORDS} per call", records.len()));
        return Err(out);
    }
    let parsed: Vec<Activity> = records.into_iter().enumerate().filter_map(|(i, r)| record(i, r, &mut out)).collect();
    out.finish().map(|()| parsed)
}

/// Every category (empty ones included) with the overall mean.
pub fn distribution_to_proto(counts: &[CategoryCount]) -> pb::GetDigitalIntensityDistributionResponse {
    let of = |category: Option<Category>| counts.iter().find(|c| c.category == category);
    let categories = Category::ALL
        .into_iter()
        .map(|category| {
            let count = of(Some(category));
            pb::CategoryCount {
                category: super::convert::category_to_proto(category) as i32,
                profiles: count.map_or(0, |c| c.profiles),
                mean_index: count.and_then(|c| c.mean_index).unwrap_or(0.0),
            }
        })
        .collect::<Vec<_>>();
    let indexed: i64 = categories.iter().map(|c| c.profiles).sum();
    let weighted: f64 = categories.iter().map(|c| c.mean_index * c.profiles as f64).sum();
    pb::GetDigitalIntensityDistributionResponse {
        categories,
        without_index: of(None).map_or(0, |c| c.profiles),
        mean_index: if indexed == 0 { 0.0 } else { weighted / indexed as f64 },
    }
}
