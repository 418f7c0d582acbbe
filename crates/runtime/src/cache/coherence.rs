//! One process's view of its service's cache epoch (see [`super::epoch`]):
//! checked against the database and Redis's identity every
//! [`CHECK_PERIOD`], trusted for [`TRUST`] after a check began, moved on
//! (bumped) when an invalidation cannot reach Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::Db;
use sea_orm::DbErr;
use tokio::sync::Notify;

use super::{CacheBackend, epoch};

/// How often each process reads the epoch and Redis's identity.
pub const CHECK_PERIOD: Duration = Duration::from_millis(250);
/// How long an epoch read stays trusted, from the start of the read: two
/// periods, so one slow check does not turn the cache off. A process that
/// cannot read the epoch for longer serves nothing from the cache.
pub const TRUST: Duration = Duration::from_millis(500);
/// How long an erasure acknowledged after a bump waits: longer than
/// [`TRUST`], so no replica still trusts the epoch the erased data was
/// cached under.
pub const ERASURE_WAIT: Duration = Duration::from_millis(750);
/// Least time between two checks, however often readers ask for one.
const MIN_GAP: Duration = Duration::from_millis(50);

#[derive(Clone, Debug)]
struct Known {
    epoch: i64,
    /// The Redis server the epoch was checked against.
    run_id: Option<Arc<str>>,
    checked: Instant,
}

pub(crate) struct Coherence {
    db: Db,
    backend: Arc<dyn CacheBackend>,
    known: Mutex<Option<Known>>,
    /// A bump failed: until one succeeds this process trusts nothing.
    owed: AtomicBool,
    /// Bumps asked for, and (behind the gate) the last one a done bump covers.
    asked: AtomicU64,
    covered: tokio::sync::Mutex<u64>,
    wake: Notify,
    /// Whether the last check failed (to log transitions only).
    failing: AtomicBool,
}

impl std::fmt::Debug for Coherence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coherence").field("known", &self.known()).finish()
    }
}

impl Coherence {
    pub(crate) fn new(db: Db, backend: Arc<dyn CacheBackend>) -> Self {
        Self {
            db,
            backend,
            known: Mutex::new(None),
            owed: AtomicBool::new(false),
            asked: AtomicU64::new(0),
            covered: tokio::sync::Mutex::new(0),
            wake: Notify::new(),
            failing: AtomicBool::new(false),
        }
    }

    fn known(&self) -> Option<Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The epoch values may be written and trusted under now, if any.
    pub(crate) fn epoch(&self) -> Option<i64> {
        if self.owed.load(Ordering::SeqCst) {
            return None;
        }
        self.known().filter(|k| k.checked.elapsed() < TRUST).map(|k| k.epoch)
    }

    /// The epoch a value read from Redis server `run_id` must carry to be
    /// trusted. A read from a server not checked yet asks for a check.
    pub(crate) fn epoch_for(&self, run_id: Option<&str>) -> Option<i64> {
        let epoch = self.epoch()?;
        let known = self.known()?;
        if run_id.is_none() || known.run_id.as_deref() != run_id {
            self.wake.notify_one();
            return None;
        }
        Some(epoch)
    }

    fn learn(&self, epoch: i64, run_id: Option<Option<Arc<str>>>, checked: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match known.as_mut() {
            // Epochs only grow: a smaller one was read before a bump.
            Some(k) if k.epoch > epoch => {}
            Some(k) => {
                k.epoch = epoch;
                k.checked = k.checked.max(checked);
                if let Some(run_id) = run_id {
                    k.run_id = run_id;
                }
            }
            None => *known = Some(Known { epoch, run_id: run_id.flatten(), checked }),
        }
    }

    /// Moves the epoch on. Concurrent callers share one bump, as long as it
    /// began after they asked.
    pub(crate) async fn bump(&self) -> Result<(), DbErr> {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.covered.lock().await;
        if *covered >= ticket {
            return Ok(());
        }
        let covering = self.asked.load(Ordering::SeqCst);
        let started = Instant::now();
        match epoch::bump(&self.db).await {
            Ok(epoch) => {
                *covered = covering;
                self.owed.store(false, Ordering::SeqCst);
                self.learn(epoch, None, started);
                tracing::info!(epoch, "cache epoch moved: an invalidation could not reach redis");
                Ok(())
            }
            Err(err) => {
                self.owed.store(true, Ordering::SeqCst);
                tracing::error!(error = %err, "cache invalidation owed: neither redis nor the database answered");
                Err(err)
            }
        }
    }

    /// One check: the epoch, adopted for the Redis server answering now.
    async fn check(&self) {
        if self.owed.load(Ordering::SeqCst) && self.bump().await.is_err() {
            return;
        }
        let started = Instant::now();
        let run_id = self.backend.incarnation().await;
        let read = match run_id.as_deref() {
            Some(run_id) => epoch::adopt(&self.db, run_id).await,
            None => epoch::read(&self.db).await,
        };
        match read {
            Ok(epoch) => {
                if self.failing.swap(false, Ordering::SeqCst) {
                    tracing::info!(epoch, "cache epoch read again");
                }
                self.learn(epoch, Some(run_id), started);
            }
            Err(err) => {
                if !self.failing.swap(true, Ordering::SeqCst) {
                    tracing::warn!(error = %err, "cannot read the cache epoch: the cache is not used until it is read");
                }
            }
        }
    }

    /// Checks every [`CHECK_PERIOD`] (sooner when a read met a Redis server
    /// not checked yet) until `stop`.
    pub(crate) async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            self.check().await;
            tokio::time::sleep(MIN_GAP).await;
            tokio::select! {
                () = tokio::time::sleep(CHECK_PERIOD - MIN_GAP) => {}
                () = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }
}
