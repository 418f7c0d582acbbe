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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cx_proto::outbox::v1::inbox_service_client::InboxServiceClient;

pub use self::delivery::{Content, Expand};
pub use self::erasure::forget_mentions;
pub use self::rows::{Claimed, all_messages, messages};
use crate::balance::Balanced;
use crate::config::ClaimShape;
use crate::identity::ServiceKey;
use crate::propagation::{ClientSide, ClientTraceLayer, Traced};
use crate::store::Db;

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
    /// Rows claimed at once, at most.
    pub batch: u64,
    /// How long the rows of one claim should take to send: a claim takes as
    /// many rows as its free places send in that time at the mean delivery
    /// time seen lately, so rows of heavy deliveries (a thousand touchpoints
    /// each, under load) are claimed one per free place and a row written
    /// meanwhile waits for a place, not behind a claimed backlog.
    pub round: Duration,
    /// Deliveries in flight at once (the places): fewer than a receiver's
    /// database pool (16 by default), so that the rest wait in this outbox
    /// rather than flooding the receiver, whose inbox holds a connection
    /// per delivery (BENCHMARKS, Survey service).
    pub in_flight: usize,
    /// Places one tenant's deliveries take at most (6 of 8 by default): the
    /// others stay free for the rows of other tenants, which otherwise wait
    /// for one of a busy tenant's multi-second deliveries to end
    /// (docs/DECISIONS.md, "A pipeline, not rounds").
    pub tenant_places: usize,
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
    /// One claim statement across tenants, or one per tenant (PostgreSQL).
    pub claim: ClaimShape,
}

impl DispatcherConfig {
    pub fn new(source: &'static str) -> Self {
        Self {
            source,
            batch: 100,
            round: Duration::from_millis(500),
            in_flight: 8,
            tenant_places: 6,
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
            claim: ClaimShape::Global,
        }
    }
}

type InboxClient = InboxServiceClient<Traced<Balanced, ClientSide>>;

#[derive(Clone, Debug)]
pub struct Dispatcher {
    db: Db,
    config: DispatcherConfig,
    destinations: HashMap<String, InboxClient>,
    /// By the kind of the rows they expand.
    expanders: HashMap<String, Arc<dyn Expand>>,
    /// Signs each delivery as this service (never a user's token).
    key: ServiceKey,
    outages: Arc<Mutex<Outages>>,
    /// The mean time of a delivery lately, in microseconds (0: none yet).
    delivery_micros: Arc<AtomicU64>,
}

/// Destinations that could not be reached: until when they are left alone,
/// and how many rounds in a row they were down.
type Outages = HashMap<String, (DateTime<Utc>, i32)>;

impl Dispatcher {
    /// `destinations` maps a service name to the channel of its server.
    pub fn new(
        db: Db,
        config: DispatcherConfig,
        destinations: HashMap<String, impl Into<Balanced>>,
        key: ServiceKey,
    ) -> Self {
        let destinations = destinations
            .into_iter()
            .map(|(name, channel)| {
                let traced = tower::Layer::layer(&ClientTraceLayer::default(), channel.into());
                (name, InboxServiceClient::new(traced))
            })
            .collect();
        Self {
            db,
            config,
            destinations,
            expanders: HashMap::new(),
            key,
            outages: Arc::default(),
            delivery_micros: Arc::default(),
        }
    }

    /// Rows of `kind` are expanded by `expander` when delivered.
    pub fn expand(mut self, kind: &super::Kind, expander: Arc<dyn Expand>) -> Self {
        self.expanders.insert(kind.as_str().to_owned(), expander);
        self
    }

    /// Takes one delivery's time into the mean (weight 1/8, so a change of
    /// load shows within a few deliveries).
    fn timed(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let mean = self.delivery_micros.load(Ordering::Relaxed);
        let next = if mean == 0 { took } else { mean - mean / 8 + took / 8 };
        self.delivery_micros.store(next.max(1), Ordering::Relaxed);
    }

    /// Rows to claim for `free` places: what they send in `round` at the
    /// mean delivery time, at least one a place, at most `batch`.
    fn claim_limit(&self, free: usize) -> u64 {
        let free = free.max(1) as u64;
        let mean = self.delivery_micros.load(Ordering::Relaxed);
        // No delivery timed yet: the batch.
        let round = u64::try_from(self.config.round.as_micros()).unwrap_or(u64::MAX);
        let per_place = round.checked_div(mean).unwrap_or(self.config.batch);
        free.saturating_mul(per_place.max(1)).clamp(free.min(self.config.batch.max(1)), self.config.batch.max(1))
    }

    /// The kinds of rows this dispatcher expands.
    pub fn expanded_kinds(&self) -> Vec<String> {
        self.expanders.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn heavy_deliveries_are_claimed_a_row_a_free_place_and_light_ones_by_the_batch() {
        let mut config = DispatcherConfig::new("test");
        (config.batch, config.in_flight, config.round) = (100, 8, Duration::from_millis(500));
        let dispatcher =
            Dispatcher::new(Db::default(), config, HashMap::<String, Balanced>::new(), ServiceKey::new(&[7u8; 32]));
        // Nothing timed yet: the batch.
        assert_eq!(dispatcher.claim_limit(8), 100);
        // 3 s a delivery: one row a place.
        dispatcher.timed(Duration::from_secs(3));
        assert_eq!((dispatcher.claim_limit(1), dispatcher.claim_limit(8)), (1, 8));
        // 100 ms: 5 a place (500 / 100), 2 places 10, 8 places 40.
        dispatcher.delivery_micros.store(100_000, Ordering::Relaxed);
        assert_eq!((dispatcher.claim_limit(2), dispatcher.claim_limit(8)), (10, 40));
        // 5 ms: 100 a place, held to the batch.
        dispatcher.delivery_micros.store(5_000, Ordering::Relaxed);
        assert_eq!(dispatcher.claim_limit(1), 100);
        // The mean moves an eighth of the way: 5 ms then 805 ms gives
        // 5,000 − 625 + 100,625 = 105,000 µs.
        dispatcher.timed(Duration::from_millis(805));
        assert_eq!(dispatcher.delivery_micros.load(Ordering::Relaxed), 105_000);
    }

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
