//! What the profile service tells the others through its outbox
//! (docs/ARCHITECTURE.md §2.3), written in the transaction of the change
//! itself: merges and erasures to every service the registry says holds
//! customer data, consent decisions to every service enforcing consent,
//! rows naming customers whose facts changed to the takers of profile facts
//! (expanded when delivered, [`super::facts_feed`]).

use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

/// Enqueues "`merged` now belongs to `survivor`" for every fan-out service.
pub async fn profile_merged<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    services: &[&'static str],
    survivor: Uuid,
    merged: Uuid,
) -> Result<(), DbErr> {
    let event = pb::ProfileMerged {
        survivor_profile_id: survivor.to_string(),
        merged_profile_id: merged.to_string(),
        merge_time: Some(cx_proto::timestamp(chrono::Utc::now())),
    };
    for service in services {
        cx_runtime::outbox::send(conn, t, service, &event).await?;
    }
    Ok(())
}

/// Enqueues the erasure request for one service; returns the message id.
pub async fn erasure_requested<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    service: &str,
    job: Uuid,
    profile: Uuid,
    merged: &[Uuid],
) -> Result<Uuid, DbErr> {
    let event = pb::ErasureRequested {
        erasure_id: job.to_string(),
        profile_id: profile.to_string(),
        merged_profile_ids: merged.iter().map(Uuid::to_string).collect(),
    };
    cx_runtime::outbox::send(conn, t, service, &event).await
}

/// Enqueues a consent decision just recorded for `customer`, for every
/// service enforcing consent. It carries both instants, so a receiver
/// applies the rule of the decision in force (docs/DOMAIN.md §3.2) whatever
/// order decisions arrive in.
pub async fn consent_changed<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    services: &[&'static str],
    customer: Uuid,
    decision: &super::ConsentRecord,
) -> Result<(), DbErr> {
    let event = consent_message(customer, decision);
    for service in services {
        cx_runtime::outbox::send(conn, t, service, &event).await?;
    }
    Ok(())
}

/// A decision of `customer` as the consent feed (and the facts export)
/// sends it.
pub fn consent_message(customer: Uuid, decision: &super::ConsentRecord) -> pb::ConsentChanged {
    pb::ConsentChanged {
        profile_id: customer.to_string(),
        purpose: Some(crate::api::convert::purpose_to_proto(&decision.purpose)),
        granted: decision.granted,
        occur_time: Some(cx_proto::timestamp(decision.occurred_at)),
        record_time: Some(cx_proto::timestamp(decision.recorded_at)),
    }
}

/// The kind of the rows naming a customer whose profile facts changed: each
/// is made into a `ProfileFactsChanged` of the facts current at delivery.
pub const PROFILE_FACTS: cx_runtime::outbox::Kind = cx_runtime::outbox::Kind::rows("cx.profile.v1.ProfileFacts");

/// Enqueues, for every taker of profile facts, one tiny row per customer of
/// `customers` (its payload the customer's id as 16 bytes) that has none
/// waiting already: delivery reads the facts then current, so one waiting
/// row carries every change before it, and a customer active a thousand
/// times before delivery costs one delivery, not a thousand.
pub async fn facts_changed<C: ConnectionTrait>(
    conn: &C,
    t: &TenantId,
    services: &[&'static str],
    customers: &[Uuid],
) -> Result<(), DbErr> {
    let payloads: Vec<Vec<u8>> = customers.iter().map(|c| c.as_bytes().to_vec()).collect();
    for service in services {
        cx_runtime::outbox::Pending::new(t, service, &PROFILE_FACTS).enqueue_coalesced(conn, &payloads).await?;
    }
    Ok(())
}
