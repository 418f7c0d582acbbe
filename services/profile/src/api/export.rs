//! The records of a customer's data export, in a stable order: the profile,
//! then consents, activity, purchases, devices, lifecycle changes, merges.

use cx_proto::common::v1::{Channel, Initiator, InteractionKind};
use cx_proto::money;
use cx_proto::profile::v1 as pb;
use cx_proto::profile::v1::export_customer_data_response::Record;

use super::convert::{consent_to_proto, profile_to_proto, transition_to_proto};
use crate::domain::intensity::IntensityModel;
use crate::store::export::CustomerData;

fn initiator(key: &str) -> i32 {
    match key {
        "push" => Initiator::Push as i32,
        "pull" => Initiator::Pull as i32,
        _ => Initiator::Unspecified as i32,
    }
}

fn kind(key: &str) -> i32 {
    match key {
        "informative" => InteractionKind::Informative as i32,
        "transactional" => InteractionKind::Transactional as i32,
        _ => InteractionKind::Unspecified as i32,
    }
}

pub fn records(data: &CustomerData, model: &IntensityModel) -> Vec<pb::ExportCustomerDataResponse> {
    let mut records = vec![Record::Profile(profile_to_proto(&data.profile, model))];
    records.extend(data.consents.iter().map(|c| Record::Consent(consent_to_proto(c))));
    records.extend(data.activity.iter().map(|a| {
        Record::Activity(pb::ActivityDay {
            day: a.day.to_string(),
            channel: Channel::from_key(&a.channel).unwrap_or(Channel::Unspecified) as i32,
            initiator: initiator(&a.initiator),
            kind: kind(&a.kind),
            touchpoints: a.touchpoints,
        })
    }));
    records.extend(data.purchases.iter().map(|p| {
        Record::Purchase(pb::PurchaseDay {
            day: p.day.to_string(),
            purchases: p.purchases,
            amount: Some(money(&p.currency, p.amount_micros)),
        })
    }));
    records.extend(data.devices.iter().map(|d| {
        Record::Device(pb::Device {
            device_id: d.device_id.clone(),
            first_seen_day: d.first_seen.to_string(),
            last_seen_day: d.last_seen.to_string(),
        })
    }));
    records.extend(data.transitions.iter().map(|t| Record::Transition(transition_to_proto(t))));
    records.extend(data.merged_ids.iter().map(|id| Record::MergedProfileId(id.to_string())));
    records
        .into_iter()
        .map(|record| pb::ExportCustomerDataResponse { source_service: crate::NAME.to_owned(), record: Some(record) })
        .collect()
}

fn erasure_state(state: &str) -> i32 {
    match state {
        crate::store::erase::COMPLETED => pb::ErasureState::Completed as i32,
        crate::store::erase::PENDING => pb::ErasureState::Pending as i32,
        _ => pb::ErasureState::Unspecified as i32,
    }
}

/// An erasure job (the receipt once completed): counts and times only.
pub fn erasure_to_proto(job: &crate::store::erase::ErasureRecord) -> pb::Erasure {
    use cx_proto::timestamp;
    pb::Erasure {
        id: job.id.to_string(),
        state: erasure_state(&job.state),
        create_time: Some(timestamp(job.created_at)),
        complete_time: job.completed_at.map(timestamp),
        steps: job
            .steps
            .iter()
            .map(|step| pb::ErasureStep {
                service: step.service.clone(),
                state: erasure_state(&step.state),
                erased_counts: step.counts.clone().into_iter().collect(),
                complete_time: step.completed_at.map(timestamp),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_proto::common::v1::Money;

    #[test]
    fn amounts_keep_their_cents() {
        // 12.50 EUR = 12,500,000 micros = 12 units and 500,000,000 nanos.
        assert_eq!(money("EUR", 12_500_000), Money { currency_code: "EUR".into(), units: 12, nanos: 500_000_000 });
    }
}
