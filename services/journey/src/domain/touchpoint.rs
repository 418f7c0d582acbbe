//! A touchpoint once validated: one interaction, on one channel, at one
//! time, for one customer (docs/DOMAIN.md §5.2).

use chrono::{DateTime, Utc};
use cx_runtime::attributes::Attributes;
use uuid::Uuid;

/// Largest number of touchpoints in one IngestTouchpoints call.
pub const MAX_BATCH: usize = 100_000;
/// Largest chunk of a StreamTouchpoints call.
pub const MAX_CHUNK: usize = 10_000;
pub const MAX_ID_LEN: usize = 128;

/// Who the touchpoint is for, before resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Customer {
    Profile(Uuid),
    /// Identity kind (proto value) and value as sent; the profile service
    /// normalises and validates it.
    Identity(i32, String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Touchpoint {
    pub id: String,
    pub customer: Customer,
    /// Channel proto value.
    pub channel: i16,
    pub digital: bool,
    pub occurred_at: DateTime<Utc>,
    /// InteractionKind proto value.
    pub kind: i16,
    /// Initiator proto value.
    pub initiator: i16,
    /// Phase code, 0 when neither given nor known from a step.
    pub phase: i16,
    pub map: Option<(Uuid, i32)>,
    pub step_key: Option<String>,
    pub instance_id: Option<String>,
    pub score: Option<i16>,
    /// ISO currency and amount in micro-units.
    pub purchase: Option<(String, i64)>,
    pub device_id: Option<String>,
    pub attributes: Attributes,
}
