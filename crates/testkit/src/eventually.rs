//! Waiting for something to happen without sleeping a guessed time: poll an
//! observation until it holds, within a bounded time, and say what was last
//! seen when it never does.
//!
//! A sleep of a guessed length is either too short (a flaky test) or too
//! long (a slow one), and a check after it cannot tell "not yet" from
//! "never": prefer [`eventually`] on the thing awaited. A test that must
//! show something does *not* happen waits for evidence of the attempt (a
//! delivery tried and refused, say), not for time to pass.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long [`eventually`] waits before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// First pause between two observations; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Observes with `observe` until `holds` accepts the observation, and
/// returns it. Panics, naming `what` and the last observation, when that
/// has not happened within [`PATIENCE`] (an observation still running then
/// is cut short).
///
/// `observe` makes a new future each time (`|| timeline(&suite, id)`): a
/// future that borrows nothing of the closure, so that a wait inside a
/// spawned task is `Send`. A client it needs is cloned into the future.
pub async fn eventually<T, F>(what: &str, observe: impl FnMut() -> F, holds: impl FnMut(&T) -> bool) -> T
where
    T: Debug,
    F: Future<Output = T>,
{
    eventually_within(PATIENCE, what, observe, holds).await
}

/// [`eventually`] with its own bound, for a wait that has a known cost
/// (a retry delay, a timeout under test).
pub async fn eventually_within<T, F>(
    within: Duration,
    what: &str,
    mut observe: impl FnMut() -> F,
    mut holds: impl FnMut(&T) -> bool,
) -> T
where
    T: Debug,
    F: Future<Output = T>,
{
    let started = Instant::now();
    let deadline = started + within;
    let mut pause = FIRST_PAUSE;
    let mut observations = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(seen) = tokio::time::timeout(left, observe()).await else {
            panic!("{what}: not within {within:?}; observation {} was still running at the deadline", observations + 1);
        };
        observations += 1;
        if holds(&seen) {
            return seen;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!("{what}: not within {within:?} ({observations} observations); last seen: {seen:#?}");
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_the_first_observation_that_holds() {
        let count = AtomicU32::new(0);
        let next = || std::future::ready(count.fetch_add(1, Ordering::SeqCst) + 1);
        let seen = eventually("the third count", next, |n| *n == 3).await;
        assert_eq!((seen, count.load(Ordering::SeqCst)), (3, 3), "observed until it held, not once more");
    }

    #[tokio::test]
    #[should_panic(expected = "the count reaches 100: not within 50ms")]
    async fn gives_up_at_the_deadline_naming_what_and_the_last_observation() {
        let count = AtomicU32::new(0);
        eventually_within(
            Duration::from_millis(50),
            "the count reaches 100",
            || std::future::ready(count.fetch_add(1, Ordering::SeqCst)),
            |n| *n == 100,
        )
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "observation 1 was still running at the deadline")]
    async fn an_observation_that_hangs_is_cut_short_at_the_deadline() {
        eventually_within(Duration::from_millis(50), "an answer", std::future::pending::<()>, |()| true).await;
    }
}
