//! What the profile service tells the others through its outbox (docs/ARCHITECTURE.md §2.3):
//! merges and erasures, written in the transaction of the change itself.

use cx_proto::profile::v1 as pb;
use cx_runtime::TenantId;
use prost::{Message, Name};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

/// Services that hold customer data and so must learn of merges and
/// erasures. Each later service adds its name.
pub const CUSTOMER_DATA_HOLDERS: &[&str] = &["journey"];

/// The outbox kind of a message: its full protobuf name.
pub fn kind<M: Name>() -> String {
    M::full_name()
}

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
    let payload = event.encode_to_vec();
    for service in services {
        cx_runtime::outbox::enqueue(conn, t, service, &kind::<pb::ProfileMerged>(), payload.clone()).await?;
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
    cx_runtime::outbox::enqueue(conn, t, service, &kind::<pb::ErasureRequested>(), event.encode_to_vec()).await
}
