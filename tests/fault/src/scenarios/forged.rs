//! Forged internal messages: every kind a service receives, sent by a
//! tenant's writer, its admin, and a service that does not own the kind.
//! None may be applied; `leaked` counts those that were.

use cx_proto::profile::v1 as profile;
use cx_runtime::auth::Role;
use prost::{Message, Name};

use crate::grpc::call;
use crate::server::{Server, Victim};
use crate::{Outcomes, Row};

const DELIVER: &str = "/cx.outbox.v1.InboxService/Deliver";

/// (destination, kind, payload, owner) of every message a service takes.
fn messages(victim: &Victim) -> Vec<(&'static str, String, Vec<u8>, &'static str)> {
    let job = uuid::Uuid::now_v7().to_string();
    let stranger = uuid::Uuid::now_v7().to_string();
    vec![
        (
            "journey",
            profile::ErasureRequested::full_name(),
            profile::ErasureRequested {
                erasure_id: job.clone(),
                profile_id: victim.profile_id.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
            "profile",
        ),
        (
            "journey",
            profile::ProfileMerged::full_name(),
            profile::ProfileMerged {
                survivor_profile_id: stranger,
                merged_profile_id: victim.profile_id.clone(),
                merge_time: None,
            }
            .encode_to_vec(),
            "profile",
        ),
        (
            "profile",
            profile::ErasureConfirmed::full_name(),
            profile::ErasureConfirmed { erasure_id: job, service: "journey".into(), ..Default::default() }
                .encode_to_vec(),
            "journey",
        ),
        (
            "profile",
            profile::RecordActivityRequest::full_name(),
            profile::RecordActivityRequest { batch_id: uuid::Uuid::now_v7().to_string(), records: Vec::new() }
                .encode_to_vec(),
            "journey",
        ),
    ]
}

pub async fn run(server: &Server) -> anyhow::Result<Vec<Row>> {
    let channel = server.channel().await?;
    let victim = Victim::plant(server).await?;
    let t = victim.tenant.as_str();
    let senders = [
        ("a writer's token", format!("Bearer {}", cx_testkit::token(t, Role::Writer)), "UNAUTHENTICATED"),
        ("an admin's token", format!("Bearer {}", cx_testkit::token(t, Role::Admin)), "UNAUTHENTICATED"),
    ];
    let mut rows = Vec::new();
    for (who, header, expected) in senders {
        let mut row = Row::new(format!("forged internal message, {who}"), server.backend.name());
        let mut outcomes = Outcomes::default();
        for (destination, kind, payload, _) in messages(&victim) {
            let answer = call(&channel, DELIVER, deliver(destination, &kind, payload), Some(&header), false).await;
            row.leaked += u64::from(answer.outcome() == "OK");
            row.unexpected += u64::from(answer.outcome() != expected);
            outcomes.add(&answer.outcome());
        }
        row.attempts = outcomes.total();
        row.outcomes = outcomes;
        row.note = format!("all {expected}, none applied");
        rows.push(row);
    }
    // A service identity, but of a service that does not own the kind.
    let mut row = Row::new("forged internal message, another service's identity", server.backend.name());
    let mut outcomes = Outcomes::default();
    for (destination, kind, payload, owner) in messages(&victim) {
        let impostor = if owner == "profile" { "journey" } else { "survey" };
        let header = format!("Bearer {}", cx_testkit::service_token(impostor, t));
        let answer = call(&channel, DELIVER, deliver(destination, &kind, payload), Some(&header), false).await;
        row.leaked += u64::from(answer.outcome() == "OK");
        row.unexpected += u64::from(answer.outcome() != "PERMISSION_DENIED");
        outcomes.add(&answer.outcome());
    }
    row.attempts = outcomes.total();
    row.outcomes = outcomes;
    row.note = "all PERMISSION_DENIED, none applied".into();
    rows.push(row);
    Ok(rows)
}

fn deliver(destination: &str, kind: &str, payload: Vec<u8>) -> Vec<u8> {
    cx_testkit::raw::forged_delivery(destination, kind, payload).encode_to_vec()
}
