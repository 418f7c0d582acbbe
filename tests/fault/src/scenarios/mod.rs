//! The scenarios. Each returns its rows; the fast ones also run in CI
//! (crates/cx `fault` test), all of them in `scripts/fault.sh`.

pub mod auth;
pub mod bad_input;
pub mod crash;
pub mod flood;
pub mod forged;
pub mod memory;
pub mod postgres;
pub mod replicas;
pub mod sigterm;

use std::time::Duration;

use prost::Message as _;
use prost_reflect::{DynamicMessage, Kind, Value};
use rand::rngs::StdRng;

use crate::reflect::Method;

/// How much of each scenario to run.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub input: bad_input::Sizes,
    /// Touchpoints streamed through the kill -9 scenario.
    pub touchpoints: usize,
    /// How long PostgreSQL stays down.
    pub outage: Duration,
    /// Silent connections of the flood.
    pub connections: usize,
    /// Request sizes of the memory rows, in MB.
    pub request_mb: &'static [usize],
}

impl Scale {
    pub const FAST: Self = Self {
        input: bad_input::Sizes::FAST,
        touchpoints: 1_000,
        outage: Duration::from_secs(1),
        connections: 300,
        request_mb: &[1],
    };
    pub const FULL: Self = Self {
        input: bad_input::Sizes::FULL,
        touchpoints: 20_000,
        outage: Duration::from_secs(3),
        connections: 600,
        request_mb: &[1, 8, 32, 64],
    };
}

/// Outcomes that a client's mistake must never get: the server's own
/// failure, "retry later" for what can never succeed, or no answer at all.
pub const NEVER_FOR_BAD_INPUT: &[&str] = &["INTERNAL", "UNKNOWN", "UNAVAILABLE", "DATA_LOSS", "transport"];

/// A plausible request for `method`: random but well formed, with every
/// top-level id field naming `id`.
pub fn aimed_at(method: &Method, id: &str, rng: &mut StdRng) -> Vec<u8> {
    let mut message: DynamicMessage = crate::messages::random_message(&method.input, rng, 0);
    for field in method.input.fields() {
        let named_id = field.name() == "id" || field.name().ends_with("_id");
        if named_id && field.kind() == Kind::String && !field.is_list() && !field.is_map() {
            message.set_field(&field, Value::String(id.to_owned()));
        }
    }
    message.encode_to_vec()
}
