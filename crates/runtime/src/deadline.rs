//! The caller's deadline (`grpc-timeout`), made available to handlers and
//! passed on to the services they call.
//!
//! [`DeadlineLayer`] reads the header of each call and runs the handler in a
//! task-local scope holding the deadline (also in the request extensions).
//! Store code asks [`Deadline::check`] before it commits: work whose caller
//! has given up is rolled back rather than committed behind its back. Client
//! calls made in that scope carry the time left as their own `grpc-timeout`
//! (see `propagation::ClientSide`).

use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request};
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::error::ServiceError;
use crate::propagation::BoxFuture;

/// Time kept, before a deadline, for a commit and its answer to reach the
/// caller: a commit started later could land after the caller saw
/// DEADLINE_EXCEEDED.
pub const COMMIT_RESERVE: Duration = Duration::from_millis(10);

/// When the caller stops waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(pub Instant);

tokio::task_local! {
    static CURRENT: Option<Deadline>;
}

impl Deadline {
    /// The deadline of the call being served, if its caller set one.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|d| *d).ok().flatten()
    }

    /// Runs `future` (a spawned task, say) under `deadline`.
    pub fn scope<F: Future>(deadline: Option<Self>, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(deadline, future)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// `DEADLINE_EXCEEDED` when too little time is left to commit and answer.
    pub fn check(&self) -> Result<(), ServiceError> {
        if self.remaining() < COMMIT_RESERVE {
            return Err(ServiceError::DeadlineExceeded(
                "the caller's deadline passed before the work was committed".into(),
            ));
        }
        Ok(())
    }

    /// [`Deadline::check`] of the current call; always fine without a deadline.
    pub fn check_current() -> Result<(), ServiceError> {
        Self::current().map_or(Ok(()), |d| d.check())
    }

    /// Sets `grpc-timeout` to the time left, unless the request has its own.
    pub fn propagate(headers: &mut HeaderMap) {
        if headers.contains_key("grpc-timeout") {
            return;
        }
        if let Some(deadline) = Self::current()
            && let Ok(value) = HeaderValue::from_str(&encode(deadline.remaining()))
        {
            headers.insert("grpc-timeout", value);
        }
    }
}

/// `grpc-timeout` → duration (gRPC over HTTP/2: at most 8 digits and a unit).
pub fn parse(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Duration → `grpc-timeout`, in the finest unit that fits 8 digits.
pub fn encode(d: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let micros = d.as_micros();
    if micros <= MAX {
        return format!("{micros}u");
    }
    let millis = d.as_millis();
    if millis <= MAX {
        return format!("{millis}m");
    }
    format!("{}S", u128::from(d.as_secs()).min(MAX))
}

/// Reads each call's deadline and serves the call within it.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = WithDeadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WithDeadline { inner }
    }
}

#[derive(Clone, Debug)]
pub struct WithDeadline<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for WithDeadline<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let timeout = request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse);
        let deadline = timeout.map(|t| Deadline(Instant::now() + t));
        if let Some(deadline) = deadline {
            request.extensions_mut().insert(deadline);
        }
        Box::pin(CURRENT.scope(deadline, self.inner.call(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_parses_every_unit_and_refuses_the_rest() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse("15m"), Some(Duration::from_millis(15)));
        assert_eq!(parse("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "m", "123456789m", "1x", "-1m", "1.5S"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_encode_in_the_finest_unit_that_fits() {
        assert_eq!(encode(Duration::from_micros(1500)), "1500u");
        // 100 s is 100,000,000 µs: one digit too many for microseconds.
        assert_eq!(encode(Duration::from_secs(100)), "100000m");
        assert_eq!(encode(Duration::from_secs(200_000)), "200000S");
        assert_eq!(parse(&encode(Duration::from_millis(7))), Some(Duration::from_millis(7)));
    }

    #[tokio::test]
    async fn the_deadline_is_current_inside_its_scope_and_propagated() {
        assert_eq!(Deadline::current(), None);
        let deadline = Deadline(Instant::now() + Duration::from_secs(2));
        Deadline::scope(Some(deadline), async {
            assert_eq!(Deadline::current(), Some(deadline));
            let mut headers = HeaderMap::new();
            Deadline::propagate(&mut headers);
            let sent = parse(headers["grpc-timeout"].to_str().unwrap()).unwrap();
            assert!(sent <= Duration::from_secs(2) && sent > Duration::from_millis(1900), "{sent:?}");
            assert!(Deadline::check_current().is_ok());
        })
        .await;
        let passed = Deadline(Instant::now() + Duration::from_millis(1));
        assert_eq!(passed.check().unwrap_err().code(), tonic::Code::DeadlineExceeded);
    }
}
