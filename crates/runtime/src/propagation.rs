//! W3C trace context over gRPC metadata.
//!
//! [`GrpcTraceLayer`] wraps a server: every call gets a span named
//! `<package>.<Service>/<Method>` with the OpenTelemetry `rpc.*` attributes,
//! whose parent is the `traceparent` the caller sent. [`ClientTraceLayer`]
//! wraps a client channel: every outgoing call gets a client span and carries
//! it in `traceparent`, so a trace crosses every hop, with the time left of
//! the call being served as its `grpc-timeout` ([`crate::deadline`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads trace headers from HTTP/2 headers (gRPC metadata).
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes trace headers into HTTP/2 headers (gRPC metadata).
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

/// The trace context carried by `headers` (empty when there is none).
pub fn extract(headers: &HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the context of `span` into `headers`.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}

/// The trace context of `span` as a map (`traceparent`, `tracestate`), for
/// carrying it where headers do not go, such as an outbox row.
pub fn to_map(span: &tracing::Span) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut map));
    map
}

/// The trace context stored by [`to_map`].
pub fn from_map(map: &HashMap<String, String>) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(map))
}

/// `/cx.profile.v1.ProfileService/GetProfile` → (`cx.profile.v1.ProfileService`, `GetProfile`).
pub(crate) fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

/// Whether calls to `service` are probes: they come every few seconds, so
/// tracing or counting them would bury real traffic.
pub(crate) fn is_probe(service: &str) -> bool {
    service == "grpc.health.v1.Health"
}

/// gRPC status codes that mark a server span as failed (OpenTelemetry
/// semantic conventions): the client's own mistakes do not.
fn is_server_error(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

pub(crate) fn grpc_status(headers: &HeaderMap) -> Option<i64> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What differs between the two ends of a call: how its span is made.
pub trait Side: Clone + Send + Sync + 'static {
    /// The span of a call to `service`/`method`, after reading or writing
    /// `headers`; `None` leaves the call untraced.
    fn open(&self, service: &str, method: &str, headers: &mut HeaderMap) -> Option<tracing::Span>;
    /// Records the gRPC status the response carries.
    fn close(&self, span: &tracing::Span, code: i64);
}

/// Server end: a span per call, child of the trace the caller sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerSide;

impl Side for ServerSide {
    fn open(&self, service: &str, method: &str, headers: &mut HeaderMap) -> Option<tracing::Span> {
        if is_probe(service) {
            return None;
        }
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            enduser.id = tracing::field::Empty,
        );
        let _ = span.set_parent(extract(headers));
        Some(span)
    }

    fn close(&self, span: &tracing::Span, code: i64) {
        span.record("rpc.grpc.status_code", code);
        if is_server_error(code) {
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// Client end: a client span per call, sent along as `traceparent`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientSide;

impl Side for ClientSide {
    fn open(&self, service: &str, method: &str, headers: &mut HeaderMap) -> Option<tracing::Span> {
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        inject(&span, headers);
        // The caller's deadline bounds the calls made for it.
        crate::deadline::Deadline::propagate(headers);
        Some(span)
    }

    fn close(&self, span: &tracing::Span, code: i64) {
        span.record("rpc.grpc.status_code", code);
    }
}

/// Tower layer tracing every call on one side.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer<D>(pub D);

/// Traces a server's calls.
pub type GrpcTraceLayer = TraceLayer<ServerSide>;
/// Traces a client channel's calls.
pub type ClientTraceLayer = TraceLayer<ClientSide>;

impl<S, D: Clone> Layer<S> for TraceLayer<D> {
    type Service = Traced<S, D>;
    fn layer(&self, inner: S) -> Self::Service {
        Traced { inner, side: self.0.clone() }
    }
}

#[derive(Clone, Debug)]
pub struct Traced<S, D> {
    inner: S,
    side: D,
}

impl<S, D, B, R> Service<Request<B>> for Traced<S, D>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    D: Side,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Take the service that was driven to readiness; leave a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path().to_owned();
        let (service, method) = split_path(&path);
        let Some(span) = self.side.open(service, method, request.headers_mut()) else {
            return Box::pin(inner.call(request));
        };
        let future = inner.call(request);
        let (side, record) = (self.side.clone(), span.clone());
        Box::pin(
            async move {
                let result = future.await;
                if let Ok(response) = &result {
                    // Errors of unary calls come as trailers-only responses, so
                    // the status is in the headers; no status there means OK.
                    side.close(&record, grpc_status(response.headers()).unwrap_or(0));
                }
                result
            }
            .instrument(span),
        )
    }
}

/// The trace id of the current span, when it is recorded (sampled): what a
/// metric's exemplar links to.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    (span_context.is_valid() && span_context.is_sampled()).then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    #[test]
    fn traceparent_round_trips_through_headers() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        let sent = Context::new().with_remote_span_context(SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let mut headers = HeaderMap::new();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&sent, &mut HeaderInjector(&mut headers)));
        assert_eq!(headers.get("traceparent").unwrap(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let received = extract(&headers);
        let span = received.span();
        let got = span.span_context();
        assert_eq!((got.trace_id(), got.span_id(), got.is_sampled()), (trace_id, span_id, true));
    }

    #[test]
    fn path_splits_into_service_and_method() {
        assert_eq!(
            split_path("/cx.profile.v1.ProfileService/GetProfile"),
            ("cx.profile.v1.ProfileService", "GetProfile")
        );
        assert_eq!(split_path("/odd"), ("odd", ""));
    }
}
