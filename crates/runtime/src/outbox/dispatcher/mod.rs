//! Delivers outbox rows over gRPC: claim due rows, send them, record the
//! outcome. Retries back off exponentially with jitter; after the last
//! attempt a row is dead-lettered (kept and logged, never dropped).
//!
//! Claims are leases: a claimed row carries `claimed_until`, and no other
//! dispatcher takes it before then. On PostgreSQL the claim skips rows
//! another dispatcher is claiming at that moment (`FOR UPDATE SKIP LOCKED`),
//! so several replicas share the work without delivering one message twice
//! at once. SQLite (embedded mode) runs one dispatcher.
//!
//! Three rooms: `rows` is the outbox table as the dispatcher keeps it
//! (claims, outcomes, stranded destinations, pruning, queries), `delivery`
//! sends what is claimed (expanders, spans, the round and the loop), and
//! `erasure` takes an erased customer out of the outbox.

mod delivery;
mod erasure;
mod rows;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cx_proto::outbox::v1::inbox_service_client::InboxServiceClient;
use sea_orm::DatabaseConnection;
use tonic::transport::Channel;

pub use self::delivery::{Content, Expand};
pub use self::erasure::forget_mentions;
pub use self::rows::{Claimed, messages};
use crate::identity::ServiceKey;
use crate::propagation::{ClientSide, ClientTraceLayer, Traced};

/// Exponential backoff with jitter, and when to give up.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: i32,
    /// Delay after the first failure (before jitter).
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 12, base: Duration::from_millis(500), cap: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt `attempt` (1-based): half of
    /// `min(cap, base·2^(attempt-1))` fixed, the other half random, so
    /// retries of many messages spread out instead of arriving together.
    pub fn delay(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(30);
        let full = self.base.saturating_mul(1 << exponent).min(self.cap);
        full / 2 + full.mul_f64(rand::random::<f64>() / 2.0)
    }
}

#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// This service's name, sent as the message source.
    pub source: &'static str,
    /// Rows claimed per round.
    pub batch: u64,
    /// Deliveries of a round in flight at once: fewer than a receiver's
    /// database pool (16 by default), so that a round waits in this outbox
    /// rather than flooding the receiver, whose inbox holds a connection
    /// per delivery (BENCHMARKS, Survey service).
    pub in_flight: usize,
    /// How long a claim lasts: longer than any delivery takes.
    pub lease: Duration,
    /// Pause when nothing is due.
    pub poll: Duration,
    pub retry: RetryPolicy,
    /// Delivered rows are kept this long, then pruned.
    pub keep_delivered: Duration,
    /// How long a destination that cannot be reached is left alone, doubling
    /// while it stays down (its messages keep their attempts meanwhile).
    pub outage: RetryPolicy,
    /// How soon a message its receiver held (`inbox::hold`) is sent again;
    /// a hold spends no attempt.
    pub hold: Duration,
}

impl DispatcherConfig {
    pub fn new(source: &'static str) -> Self {
        Self {
            source,
            batch: 100,
            in_flight: 8,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            retry: RetryPolicy::default(),
            keep_delivered: Duration::from_secs(24 * 3600),
            outage: RetryPolicy {
                max_attempts: i32::MAX,
                base: Duration::from_millis(500),
                cap: Duration::from_secs(30),
            },
            hold: Duration::from_secs(10),
        }
    }
}

type InboxClient = InboxServiceClient<Traced<Channel, ClientSide>>;

#[derive(Clone, Debug)]
pub struct Dispatcher {
    db: DatabaseConnection,
    config: DispatcherConfig,
    destinations: HashMap<String, InboxClient>,
    /// By the kind of the rows they expand.
    expanders: HashMap<String, Arc<dyn Expand>>,
    /// Signs each delivery as this service (never a user's token).
    key: ServiceKey,
    outages: Arc<Mutex<Outages>>,
}

/// Destinations that could not be reached: until when they are left alone,
/// and how many rounds in a row they were down.
type Outages = HashMap<String, (DateTime<Utc>, i32)>;

impl Dispatcher {
    /// `destinations` maps a service name to the channel of its server.
    pub fn new(
        db: DatabaseConnection,
        config: DispatcherConfig,
        destinations: HashMap<String, Channel>,
        key: ServiceKey,
    ) -> Self {
        let destinations = destinations
            .into_iter()
            .map(|(name, channel)| {
                let traced = tower::Layer::layer(&ClientTraceLayer::default(), channel);
                (name, InboxServiceClient::new(traced))
            })
            .collect();
        Self { db, config, destinations, expanders: HashMap::new(), key, outages: Arc::default() }
    }

    /// Rows of `kind` are expanded by `expander` when delivered.
    pub fn expand(mut self, kind: &super::Kind, expander: Arc<dyn Expand>) -> Self {
        self.expanders.insert(kind.as_str().to_owned(), expander);
        self
    }

    /// The kinds of rows this dispatcher expands.
    pub fn expanded_kinds(&self) -> Vec<String> {
        self.expanders.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let policy = RetryPolicy { max_attempts: 5, base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        for _ in 0..100 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = policy.delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = policy.delay(20);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1), "{late:?}");
        }
    }
}
