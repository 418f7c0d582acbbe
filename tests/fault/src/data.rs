//! Customers and touchpoints for the scenarios, and what the services hold
//! of them afterwards.

use std::collections::HashMap;

use cx_proto::common::v1::{Channel as TouchChannel, Initiator, InteractionKind};
use cx_proto::journey::v1 as journey;
use cx_proto::journey::v1::journey_service_client::JourneyServiceClient;
use cx_proto::profile::v1 as profile;
use cx_proto::profile::v1::export_customer_data_response::Record;
use cx_proto::profile::v1::profile_service_client::ProfileServiceClient;
use cx_testkit::authed;
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;

/// A new customer, found by a random e-mail address; her profile id.
pub async fn customer(channel: &Channel, token: &str) -> anyhow::Result<String> {
    let identity = profile::Identity {
        kind: profile::IdentityKind::Email as i32,
        value: format!("{}@example.com", uuid::Uuid::new_v4().simple()),
    };
    let request = profile::ResolveProfileRequest { identity: Some(identity), create_if_missing: true };
    let found = ProfileServiceClient::new(channel.clone()).resolve_profile(authed(request, token)).await?.into_inner();
    Ok(found.profile.map(|p| p.id).unwrap_or_default())
}

/// A web visit of `profile_id` a few minutes ago, with the id `id`.
pub fn touchpoint(id: &str, profile_id: &str) -> journey::Touchpoint {
    journey::Touchpoint {
        id: id.to_owned(),
        customer: Some(journey::touchpoint::Customer::ProfileId(profile_id.to_owned())),
        channel: TouchChannel::Web as i32,
        occur_time: Some(cx_proto::timestamp(chrono::Utc::now() - chrono::Duration::minutes(5))),
        kind: InteractionKind::Informative as i32,
        initiator: Initiator::Pull as i32,
        ..Default::default()
    }
}

/// Every touchpoint id on the customer's timeline, as often as it is stored.
pub async fn timeline(channel: &Channel, token: &str, profile_id: &str) -> anyhow::Result<Vec<String>> {
    let mut client = JourneyServiceClient::new(channel.clone());
    let (mut ids, mut page_token) = (Vec::new(), String::new());
    // Bounded: 1,000 pages of 1,000.
    for _ in 0..1_000 {
        let request = journey::ListTimelineRequest {
            profile_id: profile_id.to_owned(),
            page_size: 1_000,
            page_token: page_token.clone(),
            ..Default::default()
        };
        let page = client.list_timeline(authed(request, token)).await?.into_inner();
        ids.extend(page.touchpoints.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            return Ok(ids);
        }
        page_token = page.next_page_token;
    }
    anyhow::bail!("the timeline of {profile_id} has more than a million touchpoints")
}

/// The touchpoints the profile service counts in the customer's activity.
pub async fn activity(channel: &Channel, token: &str, profile_id: &str) -> anyhow::Result<i64> {
    let request = profile::ExportCustomerDataRequest { profile_id: profile_id.to_owned() };
    let mut stream =
        ProfileServiceClient::new(channel.clone()).export_customer_data(authed(request, token)).await?.into_inner();
    let mut total = 0;
    while let Some(record) = stream.next().await {
        if let Some(Record::Activity(day)) = record?.record {
            total += day.touchpoints;
        }
    }
    Ok(total)
}

/// Acknowledged ids that are not stored (lost) and stored ids counted more
/// than once (doubled), given what a timeline holds.
pub fn lost_and_doubled<'a>(acknowledged: impl IntoIterator<Item = &'a String>, stored: &[String]) -> (u64, u64) {
    let mut times: HashMap<&str, u64> = HashMap::new();
    for id in stored {
        *times.entry(id).or_default() += 1;
    }
    let lost = acknowledged.into_iter().filter(|id| !times.contains_key(id.as_str())).count() as u64;
    let doubled = times.values().map(|n| n - 1).sum();
    (lost, doubled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_and_doubled_count_ids() {
        let acked = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let stored = ["a".to_owned(), "a".to_owned(), "c".to_owned(), "d".to_owned()];
        // b is missing; a is there twice.
        assert_eq!(lost_and_doubled(&acked, &stored), (1, 1));
    }
}
