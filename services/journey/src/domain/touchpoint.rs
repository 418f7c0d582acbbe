//! A touchpoint once validated: one interaction, on one channel, at one
//! time, for one customer (docs/DOMAIN.md §5.2).

use chrono::{DateTime, Utc};
use cx_runtime::attributes::Attributes;
use cx_runtime::coded_enum;
use uuid::Uuid;

use super::channel::Channel;
use super::map::Phase;

/// Largest number of touchpoints in one IngestTouchpoints call.
pub const MAX_BATCH: usize = 100_000;
/// Largest chunk of a StreamTouchpoints call.
pub const MAX_CHUNK: usize = 10_000;
pub const MAX_ID_LEN: usize = 128;

coded_enum! {
    /// Whether an interaction informs or transacts (an order, a payment, a
    /// return): `cx.common.v1.InteractionKind`.
    pub enum InteractionKind {
        Informative = 1,
        Transactional = 2,
    }
}

coded_enum! {
    /// Who started an interaction: the company (push) or the customer
    /// (pull): `cx.common.v1.Initiator`.
    pub enum Initiator {
        Push = 1,
        Pull = 2,
    }
}

/// Who the touchpoint is for, before resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Customer {
    Profile(Uuid),
    /// Identity kind (proto value) and value as sent: identities are the
    /// profile service's, which validates and normalises both, so the kind
    /// passes through untyped.
    Identity(i32, String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Touchpoint {
    pub id: String,
    pub customer: Customer,
    pub channel: Channel,
    pub digital: bool,
    pub occurred_at: DateTime<Utc>,
    pub kind: InteractionKind,
    pub initiator: Initiator,
    /// `None` when neither given nor known from a step.
    pub phase: Option<Phase>,
    pub map: Option<(Uuid, i32)>,
    pub step_key: Option<String>,
    pub instance_id: Option<String>,
    pub score: Option<i16>,
    /// ISO currency and amount in micro-units.
    pub purchase: Option<(String, i64)>,
    pub device_id: Option<String>,
    pub attributes: Attributes,
}
