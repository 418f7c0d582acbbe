//! Calls to peers that failed for want of a replica are sent again
//! (docs/DECISIONS.md, Calls between services), with backoff and never past
//! the caller's deadline (`grpc-timeout`, which the trace layer set from it).
//!
//! Any call is sent again when it provably was not served: no address was
//! known, the connection was refused, HTTP/2 refused the stream (a server
//! closing its connection), or a CX server answered that it is starting or
//! stopping (`cx-not-served`). A call that reads, or whose effect is the same
//! when made twice (resolving an identity), is also sent again on any
//! UNAVAILABLE or broken connection. Client streams are passed through.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use tonic::body::Body;
use tower::{Service, ServiceExt};

/// Header a CX server puts on a refusal that served nothing.
pub const NOT_SERVED: &str = "cx-not-served";

/// Attempts of one call, the first included.
const ATTEMPTS: u32 = 5;
/// Backoff before the second attempt; doubled before each next one.
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// How long new attempts may start when the call carries no deadline.
const NO_DEADLINE_BUDGET: Duration = Duration::from_secs(2);
/// Largest request body kept to send again: requests between services are
/// far smaller (the codec allows 4 MiB).
const MAX_KEPT: usize = 16 << 20;

/// Methods whose effect does not depend on how often they are called.
fn idempotent(method: &str) -> bool {
    const READS: &[&str] =
        &["Get", "List", "Aggregate", "Check", "Export", "Count", "Search", "Analyze", "Summarize", "Validate"];
    READS.iter().any(|prefix| method.starts_with(prefix)) || matches!(method, "ResolveProfile" | "BatchResolveProfiles")
}

/// Retries calls of the inner service.
#[derive(Clone, Debug)]
pub struct Retrying<S> {
    inner: S,
}

impl<S> Retrying<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> Service<http::Request<Body>> for Retrying<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Error: Into<tonic::codegen::StdError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = tonic::codegen::StdError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let method = crate::propagation::split_path(request.uri().path()).1.to_owned();
        if method.starts_with("Stream") {
            return Box::pin(async move { inner.oneshot(request).await.map_err(Into::into) });
        }
        Box::pin(retried(inner, request, method))
    }
}

async fn retried<S>(
    inner: S,
    request: http::Request<Body>,
    method: String,
) -> Result<http::Response<Body>, tonic::codegen::StdError>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Error: Into<tonic::codegen::StdError>,
    S::Future: Send + 'static,
{
    // The caller's deadline bounds the attempts and each attempt's own
    // deadline; without one, attempts stop starting after a budget but each
    // takes as long as it takes (a call without a deadline gets none here).
    let given = request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(crate::deadline::parse);
    let deadline = tokio::time::Instant::now() + given.unwrap_or(NO_DEADLINE_BUDGET);
    let (parts, body) = request.into_parts();
    let body: Bytes = http_body_util::Limited::new(body, MAX_KEPT).collect().await?.to_bytes();
    let again = idempotent(&method);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let mut parts = parts.clone();
        // Each attempt may take what is left of the caller's time.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if given.is_some()
            && let Ok(value) = http::HeaderValue::from_str(&crate::deadline::encode(left))
        {
            parts.headers.insert("grpc-timeout", value);
        }
        let request = http::Request::from_parts(parts, Body::new(http_body_util::Full::new(body.clone())));
        let outcome = inner.clone().oneshot(request).await.map_err(Into::into);
        let retry = match &outcome {
            Ok(response) => not_served(response) || (again && unavailable(response)),
            Err(err) => not_sent(err.as_ref()) || again,
        };
        // Half the backoff fixed, half random, so callers spread out.
        let pause = backoff / 2 + backoff.mul_f64(rand::random::<f64>() / 2.0);
        if !retry || attempt == ATTEMPTS || tokio::time::Instant::now() + pause >= deadline {
            return outcome;
        }
        tracing::debug!(method, attempt, "peer call not served; sending it again");
        tokio::time::sleep(pause).await;
        backoff *= 2;
    }
    unreachable!("the last attempt returns")
}

/// A trailers-only UNAVAILABLE answer.
fn unavailable(response: &http::Response<Body>) -> bool {
    crate::propagation::grpc_status(response.headers()) == Some(tonic::Code::Unavailable as i64)
}

/// A CX server's refusal of a call it did not serve.
fn not_served(response: &http::Response<Body>) -> bool {
    unavailable(response) && response.headers().contains_key(NOT_SERVED)
}

/// Whether an error proves the request never reached a handler.
fn not_sent(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<crate::balance::NoAddress>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if let Some(h2) = err.downcast_ref::<h2::Error>()
            && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
        {
            return true;
        }
        cause = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_identity_resolution_are_idempotent_writes_are_not() {
        for method in ["GetProfile", "ListMembers", "AggregateScores", "CheckConsents", "ExportProfileFacts"] {
            assert!(idempotent(method), "{method}");
        }
        for method in ["ResolveProfile", "BatchResolveProfiles"] {
            assert!(idempotent(method), "{method}");
        }
        for method in ["RecordActivity", "Deliver", "EraseCustomer", "MergeProfiles", "ResolveCase", "SetConsent"] {
            assert!(!idempotent(method), "{method}");
        }
    }

    /// The `grpc-timeout` each attempt of a call carried, the first
    /// `refusals` answered as a stopping server does.
    async fn deadlines_sent(timeout: Option<&str>, refusals: usize) -> Vec<Option<String>> {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let inner = {
            let seen = seen.clone();
            tower::service_fn(move |request: http::Request<Body>| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    seen.push(request.headers().get("grpc-timeout").map(|v| v.to_str().unwrap().to_owned()));
                    let mut response = http::Response::new(Body::empty());
                    if seen.len() <= refusals {
                        response.headers_mut().insert("grpc-status", http::HeaderValue::from_static("14"));
                        response.headers_mut().insert(NOT_SERVED, http::HeaderValue::from_static("1"));
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let mut request = http::Request::builder().uri("http://peer/cx.profile.v1.ProfileService/CheckProfiles");
        if let Some(timeout) = timeout {
            request = request.header("grpc-timeout", timeout);
        }
        let request = request.body(Body::empty()).unwrap();
        Retrying::new(inner).oneshot(request).await.unwrap();
        seen.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_call_without_a_deadline_is_given_none_and_one_with_a_deadline_keeps_what_is_left() {
        // No deadline: none is made up, on the first attempt or the next.
        assert_eq!(deadlines_sent(None, 1).await, [None, None]);
        // 5 s: each attempt carries at most what is left of it.
        let sent = deadlines_sent(Some("5S"), 2).await;
        assert_eq!(sent.len(), 3, "two refusals, then served");
        let left: Vec<Duration> = sent.iter().map(|v| crate::deadline::parse(v.as_deref().unwrap()).unwrap()).collect();
        assert!(left.iter().all(|d| *d <= Duration::from_secs(5)), "{left:?}");
        assert!(left.windows(2).all(|w| w[1] < w[0]), "shrinking: {left:?}");
    }

    #[test]
    fn a_refused_connection_was_not_sent_a_reset_one_may_have_been() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(not_sent(&refused));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!not_sent(&reset));
        assert!(not_sent(&crate::balance::NoAddress("profile".into())));
    }
}
