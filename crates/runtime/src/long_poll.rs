//! Server streams that serve a long poll: what is new is sent as it
//! appears, and the stream ends once nothing new came for a while (the
//! client calls again), when the client leaves, or when its token expires.
//! Delivery systems following invitations and campaign systems following
//! segment membership read this way rather than hold a stream forever.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Instrument;

use crate::error::FieldViolation;

/// Where a poll sends what it found.
pub type Sink<T> = mpsc::Sender<Result<T, Status>>;

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// Sent this many new messages (0: nothing new).
    Sent(usize),
    /// The stream is done: its bound is reached, the client left, or an
    /// error was sent.
    Done,
}

/// The work of one stream: each call sends what is new since the last.
#[async_trait]
pub trait Poll: Send + 'static {
    type Item: Send + 'static;

    async fn poll(&mut self, sink: &Sink<Self::Item>) -> Polled;
}

/// How long a stream waits with nothing new: `wait_seconds` of the request,
/// 1 to `max`, 0 meaning `default`.
pub fn wait(wait_seconds: i32, field: &str, default: u64, max: i32) -> Result<Duration, FieldViolation> {
    match wait_seconds {
        0 => Ok(Duration::from_secs(default)),
        n if (1..=max).contains(&n) => Ok(Duration::from_secs(u64::from(n.unsigned_abs()))),
        _ => Err(FieldViolation::new(field, format!("must be 1 to {max} (0: {default})"))),
    }
}

/// A bound on what one stream sends: `requested`, 1 to `max`, 0 meaning
/// `default`.
pub fn bound(requested: i32, field: &str, default: usize, max: i32) -> Result<usize, FieldViolation> {
    match requested {
        0 => Ok(default),
        n if (1..=max).contains(&n) => Ok(usize::try_from(n).unwrap_or(default)),
        _ => Err(FieldViolation::new(field, format!("must be 1 to {max} (0: {default})"))),
    }
}

/// Serves `poll` now and then every `every`, until it is done, `idle`
/// passed with nothing new, the client left, or the token expired at
/// `expiry` (then UNAUTHENTICATED). Runs in the caller's span.
pub fn serve<P: Poll>(
    poll: P,
    idle: Duration,
    every: Duration,
    expiry: tokio::time::Instant,
) -> ReceiverStream<Result<P::Item, Status>> {
    serve_buffered(poll, idle, every, expiry, 64)
}

/// [`serve`], holding at most `buffer` messages the client has not taken:
/// a stream of large messages keeps few in memory.
pub fn serve_buffered<P: Poll>(
    mut poll: P,
    idle: Duration,
    every: Duration,
    expiry: tokio::time::Instant,
    buffer: usize,
) -> ReceiverStream<Result<P::Item, Status>> {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    let work = async move {
        let expired = tokio::time::sleep_until(expiry);
        tokio::pin!(expired);
        let mut last_new = tokio::time::Instant::now();
        loop {
            match poll.poll(&tx).await {
                Polled::Done => break,
                Polled::Sent(0) => {}
                Polled::Sent(_) => last_new = tokio::time::Instant::now(),
            }
            if last_new.elapsed() >= idle {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = tx.closed() => break,
                () = &mut expired => {
                    let _ = tx.send(Err(Status::unauthenticated("token expired"))).await;
                    break;
                }
            }
        }
    };
    tokio::spawn(work.instrument(tracing::Span::current()));
    ReceiverStream::new(rx)
}
