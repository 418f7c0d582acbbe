//! Transactional outbox (DESIGN §2): a side effect that must reach another
//! service is written as a row in the writer's own database, in the same
//! transaction as the write, then delivered by a [`dispatcher::Dispatcher`]
//! with retries. A service that is down delays effects; it never loses them.
//!
//! Delivery is at least once; receivers mount the generic
//! [`inbox::Inbox`], which applies each message id once. Each row keeps the
//! W3C trace context of the request that wrote it, so the delivery joins
//! that request's trace.

pub mod dispatcher;
pub mod entity;
pub mod inbox;
pub mod migration;

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use uuid::Uuid;

use crate::TenantId;

/// Where a message stands.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
/// Out of attempts: kept, visible, never dropped silently.
pub const DEAD: &str = "dead";

/// Writes a message for `destination` on `conn`, which should be the
/// transaction of the write that causes it.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    destination: &str,
    kind: &str,
    payload: Vec<u8>,
) -> Result<Uuid, DbErr> {
    let id = Uuid::now_v7();
    let mut trace = crate::propagation::to_map(&tracing::Span::current());
    let now = crate::store::now();
    let row = entity::message::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        id: Set(id),
        destination: Set(destination.to_owned()),
        kind: Set(kind.to_owned()),
        payload: Set(payload),
        traceparent: Set(trace.remove("traceparent").unwrap_or_default()),
        tracestate: Set(trace.remove("tracestate").unwrap_or_default()),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_until: Set(None),
        last_error: Set(String::new()),
        created_at: Set(now),
        delivered_at: Set(None),
    };
    entity::message::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(id)
}
