//! Reads shared between concurrent callers without ever answering one of
//! them with what was read before it asked.
//!
//! A caller may take the result of a read that *started after it arrived*:
//! whatever was written before it arrived is in it. So per key at most one
//! read runs, and callers arriving meanwhile wait for the next, which starts
//! when the running one ends and serves all of them. Under load a key is
//! read about twice per read's duration instead of once per caller; alone, a
//! caller waits for its own read as before. The kpi service reads the owners'
//! data generations this way on every dashboard call (docs/DECISIONS.md,
//! "Dashboard").
//!
//! Each read runs in a task of its own, in the span of the caller that
//! started it (its trace context goes with the calls the read makes), so a
//! caller that gives up never strands the others. It runs outside that
//! caller's deadline, which is not the others' (the calls it makes keep
//! their channel's own timeout); each caller stops waiting at its own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tracing::Instrument;

/// The last read that ended: its number and result (`None`: its task
/// panicked).
type Finished<V, E> = Option<(u64, Option<Result<V, E>>)>;

struct Slot<V, E> {
    state: Mutex<State>,
    finished: watch::Sender<Finished<V, E>>,
}

#[derive(Default)]
struct State {
    /// Reads started so far; the running one, if any, is this number.
    started: u64,
    running: bool,
    /// The next read has a task waiting for the running one to end.
    queued: bool,
}

/// Shared reads per key.
pub struct FreshReads<K, V, E> {
    slots: Mutex<HashMap<K, Arc<Slot<V, E>>>>,
}

impl<K, V, E> Default for FreshReads<K, V, E> {
    fn default() -> Self {
        Self { slots: Mutex::new(HashMap::new()) }
    }
}

impl<K, V, E> std::fmt::Debug for FreshReads<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshReads").finish_non_exhaustive()
    }
}

/// What the caller waits for.
enum Role {
    /// Start read `n` now.
    Start(u64),
    /// Start read `n` when read `n - 1` ends.
    Queue(u64),
    /// Wait for read `n`, which another caller queued.
    Join(u64),
}

impl<K, V, E> FreshReads<K, V, E>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// The result of a `read` of `key` started after this call: this one's
    /// own, or one it shares with callers that arrived with it. `gone` is
    /// the error of a read whose task ended without a result (it panicked).
    pub async fn get<F, Fut>(&self, key: &K, read: F, gone: impl FnOnce() -> E) -> Result<V, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let slot = self.slot(key);
        let mut finished = slot.finished.subscribe();
        let role = {
            let mut state = lock(&slot.state);
            if !state.running {
                state.running = true;
                state.started += 1;
                Role::Start(state.started)
            } else if !state.queued {
                state.queued = true;
                Role::Queue(state.started + 1)
            } else {
                Role::Join(state.started + 1)
            }
        };
        let wanted = match role {
            Role::Start(n) => {
                spawn(&slot, n, None, read);
                n
            }
            Role::Queue(n) => {
                spawn(&slot, n, Some(slot.finished.subscribe()), read);
                n
            }
            Role::Join(n) => n,
        };
        // Any read numbered `wanted` or later started after this call did.
        let seen = finished.wait_for(|done| done.as_ref().is_some_and(|(n, _)| *n >= wanted)).await;
        match seen.as_deref() {
            Ok(Some((_, Some(result)))) => result.clone(),
            _ => Err(gone()),
        }
    }

    fn slot(&self, key: &K) -> Arc<Slot<V, E>> {
        let mut slots = lock(&self.slots);
        slots
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Slot { state: Mutex::new(State::default()), finished: watch::channel(None).0 }))
            .clone()
    }
}

/// Runs read `n` in a task of its own, after read `n - 1` when `after`
/// watches it, and publishes its result, or that it has none.
fn spawn<V, E, F, Fut>(slot: &Arc<Slot<V, E>>, n: u64, after: Option<watch::Receiver<Finished<V, E>>>, read: F)
where
    V: Send + Sync + 'static,
    E: Send + Sync + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<V, E>> + Send + 'static,
{
    let slot = slot.clone();
    let task = async move {
        if let Some(mut previous) = after {
            // The previous read's task always publishes (below).
            let _ = previous.wait_for(|done| done.as_ref().is_some_and(|(m, _)| *m + 1 >= n)).await;
        }
        // A read that panics ends its own task only.
        let result = tokio::spawn(read().in_current_span()).await.ok();
        if result.is_none() {
            tracing::error!("a shared read panicked");
        }
        let mut state = lock(&slot.state);
        slot.finished.send_replace(Some((n, result)));
        if state.queued {
            state.queued = false;
            state.started += 1;
        } else {
            state.running = false;
        }
    };
    tokio::spawn(task.in_current_span());
}

/// A lock whose holder never panics while holding it; a poisoned one is
/// taken as it is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    /// A clock of events: arrivals and the starts of reads take turns on it.
    #[derive(Clone, Default)]
    struct Clock(Arc<AtomicU64>, Arc<AtomicU64>);

    impl Clock {
        fn tick(&self) -> u64 {
            self.0.fetch_add(1, Ordering::SeqCst)
        }
        /// A read lasting `ms` that answers the tick it started at.
        fn read(&self, ms: u64) -> impl FnOnce() -> futures::future::BoxFuture<'static, Result<u64, String>> + use<> {
            let clock = self.clone();
            move || {
                Box::pin(async move {
                    clock.1.fetch_add(1, Ordering::SeqCst);
                    let started = clock.tick();
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(started)
                })
            }
        }
        fn reads(&self) -> u64 {
            self.1.load(Ordering::SeqCst)
        }
    }

    fn gone() -> String {
        "gone".to_owned()
    }

    #[tokio::test]
    async fn callers_arriving_together_share_two_reads_and_none_gets_an_older_one() {
        let reads: Arc<FreshReads<&str, u64, String>> = Arc::default();
        let clock = Clock::default();
        let mut callers = Vec::new();
        for _ in 0..16 {
            let (reads, clock) = (reads.clone(), clock.clone());
            callers.push(tokio::spawn(async move {
                let arrived = clock.tick();
                let started = reads.get(&"acme", clock.read(50), gone).await.unwrap();
                (arrived, started)
            }));
        }
        for caller in callers {
            let (arrived, started) = caller.await.unwrap();
            assert!(started > arrived, "read started at {started}, caller arrived at {arrived}");
        }
        // The first caller's read, then one for everyone who came during it.
        assert!(clock.reads() <= 2, "{} reads", clock.reads());
    }

    #[tokio::test]
    async fn a_caller_arriving_during_a_read_waits_for_the_next() {
        let reads: Arc<FreshReads<&str, u64, String>> = Arc::default();
        let clock = Clock::default();
        let first = tokio::spawn({
            let (reads, clock) = (reads.clone(), clock.clone());
            async move { reads.get(&"acme", clock.read(100), gone).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let arrived = clock.tick();
        let second = reads.get(&"acme", clock.read(10), gone).await.unwrap();
        // Ticks: the first read started at 0, the arrival is 1, the second
        // read started at 2, after the first ended.
        assert_eq!((first.await.unwrap().unwrap(), arrived, second), (0, 1, 2));
        assert_eq!(clock.reads(), 2);
        // Other keys are read apart.
        assert_eq!(reads.get(&"globex", clock.read(1), gone).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_or_a_read_that_panics_strands_no_one() {
        let reads: Arc<FreshReads<&str, u64, String>> = Arc::default();
        let clock = Clock::default();
        // The caller that started the read gives up; one waiting goes on.
        let impatient = tokio::time::timeout(Duration::from_millis(5), reads.get(&"acme", clock.read(50), gone));
        let patient = {
            let (reads, clock) = (reads.clone(), clock.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                reads.get(&"acme", clock.read(10), gone).await
            }
        };
        let (gave_up, waited) = tokio::join!(impatient, patient);
        assert!(gave_up.is_err());
        assert_eq!(waited.unwrap(), 1, "the read after the abandoned one");
        let panics = || -> futures::future::BoxFuture<'static, Result<u64, String>> {
            Box::pin(async { panic!("a read that panics") })
        };
        assert_eq!(reads.get(&"acme", panics, gone).await, Err("gone".to_owned()));
        assert_eq!(reads.get(&"acme", clock.read(1), gone).await.unwrap(), 2);
    }
}
