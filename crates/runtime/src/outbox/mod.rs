//! Transactional outbox (docs/ARCHITECTURE.md §2.2): a side effect that must reach another
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

use std::borrow::Cow;

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, Value};
use uuid::Uuid;

use crate::TenantId;

/// Where a message stands.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
/// Out of attempts: kept, visible, never dropped silently.
pub const DEAD: &str = "dead";

/// What a message is: the full protobuf name of the message it carries
/// (`cx.profile.v1.ProfileMerged`), or, for a row that a dispatcher's
/// expander turns into a message when it is delivered, the name of that row
/// format. Senders, receivers and expanders all take it from here, so a
/// kind has one spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kind(Cow<'static, str>);

impl Kind {
    /// The kind of protobuf message `M`.
    pub fn of<M: prost::Name>() -> Self {
        Self(Cow::Owned(M::full_name()))
    }

    /// The kind of rows an expander reads (see [`dispatcher::Expand`]).
    pub const fn rows(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every message written now carries besides its id and payload: the
/// tenant, where it goes, its kind, the current span's trace context and
/// the time.
#[derive(Clone, Debug)]
pub struct Pending {
    pub tenant: TenantId,
    pub destination: String,
    pub kind: String,
    pub traceparent: String,
    pub tracestate: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Pending {
    /// A message of the current span's trace.
    pub fn new(tenant: &TenantId, destination: &str, kind: &Kind) -> Self {
        let mut trace = crate::propagation::to_map(&tracing::Span::current());
        Self {
            tenant: tenant.clone(),
            destination: destination.to_owned(),
            kind: kind.as_str().to_owned(),
            traceparent: trace.remove("traceparent").unwrap_or_default(),
            tracestate: trace.remove("tracestate").unwrap_or_default(),
            created_at: crate::store::now(),
        }
    }

    fn row(self, id: Uuid, payload: Vec<u8>) -> entity::message::ActiveModel {
        entity::message::ActiveModel {
            tenant_id: Set(self.tenant.to_string()),
            id: Set(id),
            destination: Set(self.destination),
            kind: Set(self.kind),
            payload: Set(payload),
            traceparent: Set(self.traceparent),
            tracestate: Set(self.tracestate),
            status: Set(PENDING.to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(self.created_at),
            claimed_until: Set(None),
            last_error: Set(String::new()),
            created_at: Set(self.created_at),
            delivered_at: Set(None),
        }
    }

    /// Writes one message per payload of `payloads`, except those for which
    /// a message of this tenant, destination and kind with the same payload
    /// is still waiting, never yet taken by a dispatcher: for messages made
    /// at delivery from current state (`Kind::rows` with an expander), one
    /// waiting message carries every change before it. The waiting ones are
    /// locked until `conn`'s transaction ends, so no dispatcher takes one and
    /// reads the state before this change commits. One statement to look,
    /// one to write, whatever the number of payloads. Returns how many were
    /// written.
    pub async fn enqueue_coalesced<C: ConnectionTrait>(self, conn: &C, payloads: &[Vec<u8>]) -> Result<usize, DbErr> {
        use entity::message::Column as M;
        use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
        let mut waiting = std::collections::HashSet::new();
        // Bytes per statement stay well under SQLite's parameter limit.
        for chunk in payloads.chunks(5_000) {
            let found: Vec<Vec<u8>> = crate::store::scoped::<entity::message::Entity>(&self.tenant)
                .filter(M::Destination.eq(self.destination.as_str()))
                .filter(M::Kind.eq(self.kind.as_str()))
                .filter(M::Status.eq(PENDING))
                .filter(M::Attempts.eq(0))
                .filter(M::Payload.is_in(chunk.iter().cloned()))
                .select_only()
                .column(M::Payload)
                // One order for every writer's locks: no deadlock between them.
                .order_by_asc(M::Id)
                .lock_exclusive()
                .into_tuple()
                .all(conn)
                .await?;
            waiting.extend(found);
        }
        let mut fresh: Vec<&Vec<u8>> = payloads.iter().filter(|p| !waiting.contains(*p)).collect();
        fresh.sort();
        fresh.dedup();
        let written = fresh.len();
        for chunk in fresh.chunks(1_000) {
            let rows = chunk.iter().map(|p| self.clone().row(Uuid::now_v7(), (*p).clone()));
            entity::message::Entity::insert_many(rows).exec_without_returning(conn).await?;
        }
        Ok(written)
    }

    /// Writes this message with `payload` on `conn`.
    pub async fn enqueue<C: ConnectionTrait>(self, conn: &C, payload: Vec<u8>) -> Result<Uuid, DbErr> {
        self.enqueue_after(conn, payload, std::time::Duration::ZERO).await
    }

    /// Writes this message, to be sent once `delay` has passed.
    pub async fn enqueue_after<C: ConnectionTrait>(
        self,
        conn: &C,
        payload: Vec<u8>,
        delay: std::time::Duration,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        let due = self.created_at + chrono::Duration::from_std(delay).unwrap_or_default();
        let mut row = self.row(id, payload);
        row.next_attempt_at = Set(due);
        entity::message::Entity::insert(row).exec_without_returning(conn).await?;
        Ok(id)
    }

    /// The parameters of [`Pending::insert_sql`], in its order.
    pub fn values(self) -> Vec<Value> {
        vec![
            self.tenant.to_string().into(),
            self.destination.into(),
            self.kind.into(),
            self.traceparent.into(),
            self.tracestate.into(),
            self.created_at.into(),
        ]
    }

    /// For a PostgreSQL statement that writes records and their messages at
    /// once (a data-modifying `WITH`): `INSERT INTO outbox …` of one message
    /// per row of `source`, whose columns `id` (uuid) and `payload` (bytea)
    /// the statement makes; the rest are parameters `$first`…`$first+5`,
    /// bound from [`Pending::values`].
    pub fn insert_sql(source: &str, first: usize) -> String {
        let p = |i: usize| format!("${}", first + i);
        format!(
            "INSERT INTO outbox (tenant_id, id, destination, kind, payload, traceparent, tracestate, status, \
             attempts, next_attempt_at, claimed_until, last_error, created_at, delivered_at) \
             SELECT {tenant}, s.id, {destination}, {kind}, s.payload, {traceparent}, {tracestate}, '{PENDING}', \
             0, {now}, NULL, '', {now}, NULL FROM {source} AS s",
            tenant = p(0),
            destination = p(1),
            kind = p(2),
            traceparent = p(3),
            tracestate = p(4),
            now = format!("{}::timestamptz", p(5)),
        )
    }
}

/// Writes `message` for `destination` on `conn`, which should be the
/// transaction of the write that causes it.
pub async fn send<C: ConnectionTrait, M: prost::Message + prost::Name>(
    conn: &C,
    tenant: &TenantId,
    destination: &str,
    message: &M,
) -> Result<Uuid, DbErr> {
    send_after(conn, tenant, destination, message, std::time::Duration::ZERO).await
}

/// Writes `message` for `destination`, to be sent once `delay` has passed.
pub async fn send_after<C: ConnectionTrait, M: prost::Message + prost::Name>(
    conn: &C,
    tenant: &TenantId,
    destination: &str,
    message: &M,
    delay: std::time::Duration,
) -> Result<Uuid, DbErr> {
    Pending::new(tenant, destination, &Kind::of::<M>()).enqueue_after(conn, message.encode_to_vec(), delay).await
}
