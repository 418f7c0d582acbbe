//! Prometheus metrics of the gRPC server, served as OpenMetrics text on
//! `CX_METRICS_LISTEN` (`GET /metrics`): calls handled per method and status
//! code, and how long they took.
//!
//! - `rpc_server_duration_milliseconds`: OpenTelemetry's `rpc.server.duration`
//!   as its Prometheus exporters name it, with `rpc_system`, `rpc_service`,
//!   `rpc_method` and `rpc_grpc_status_code`; each bucket carries the trace
//!   id of a call that fell in it (an exemplar), so a dashboard opens the
//!   trace. The same histogram goes out over OTLP ([`crate::telemetry`]).
//! - `grpc_server_handled_total` and `grpc_server_handling_seconds`, as the
//!   usual gRPC exporters name them, so existing dashboards apply.
//! - The process's outbox and cache figures ([`process`]).
//!
//! Health checks are left out, as in traces.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower::{Layer, Service};

use crate::propagation::{BoxFuture, grpc_status, is_probe, split_path};

/// Upper bounds of the duration buckets, in seconds: 1 ms to 10 s.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Handled {
    grpc_service: String,
    grpc_method: String,
    grpc_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    grpc_service: String,
    grpc_method: String,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// `rpc.server.duration`'s attributes, as Prometheus labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCall {
    rpc_system: &'static str,
    rpc_service: String,
    rpc_method: String,
    rpc_grpc_status_code: i32,
}

/// The exemplar of a bucket: the trace of one call that fell in it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceExemplar {
    trace_id: String,
}

type RpcHistogram = HistogramWithExemplars<TraceExemplar>;

fn rpc_histogram() -> RpcHistogram {
    HistogramWithExemplars::new(BUCKETS.iter().map(|seconds| seconds * 1000.0))
}

/// The server's metrics; clones share them.
#[derive(Clone)]
pub struct GrpcMetrics {
    handled: Family<Handled, Counter>,
    seconds: Family<Call, Histogram, fn() -> Histogram>,
    rpc: Family<RpcCall, RpcHistogram, fn() -> RpcHistogram>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for GrpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcMetrics").finish_non_exhaustive()
    }
}

impl Default for GrpcMetrics {
    fn default() -> Self {
        let handled = Family::<Handled, Counter>::default();
        let seconds = Family::<Call, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let rpc = Family::<RpcCall, RpcHistogram, fn() -> RpcHistogram>::new_with_constructor(rpc_histogram);
        let mut registry = Registry::default();
        registry.register_with_unit(
            "rpc_server_duration",
            "Time from a call's arrival to its response headers (OpenTelemetry rpc.server.duration)",
            prometheus_client::registry::Unit::Other("milliseconds".into()),
            rpc.clone(),
        );
        registry.register("grpc_server_handled", "gRPC calls completed, by method and status code", handled.clone());
        registry.register(
            "grpc_server_handling_seconds",
            "Time from a call's arrival to its response headers, by method",
            seconds.clone(),
        );
        Self { handled, seconds, rpc, registry: Arc::new(registry) }
    }
}

impl GrpcMetrics {
    /// Records one completed call, of trace `trace_id` when it has one.
    pub fn observe(&self, service: &str, method: &str, code: i32, took: Duration, trace_id: Option<String>) {
        let rpc = RpcCall {
            rpc_system: "grpc",
            rpc_service: service.to_owned(),
            rpc_method: method.to_owned(),
            rpc_grpc_status_code: code,
        };
        let millis = took.as_secs_f64() * 1000.0;
        self.rpc.get_or_create(&rpc).observe(millis, trace_id.map(|trace_id| TraceExemplar { trace_id }), None);
        crate::telemetry::record_rpc_duration(&rpc.rpc_service, &rpc.rpc_method, code, millis);
        let call = Call { grpc_service: service.to_owned(), grpc_method: method.to_owned() };
        let handled = Handled {
            grpc_service: call.grpc_service.clone(),
            grpc_method: call.grpc_method.clone(),
            grpc_code: code_name(code),
        };
        self.handled.get_or_create(&handled).inc();
        self.seconds.get_or_create(&call).observe(took.as_secs_f64());
    }

    /// The OpenMetrics text exposition, the process's figures included.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &process().registry);
        let _ = prometheus_client::encoding::text::encode_eof(&mut text);
        text
    }
}

/// `OK`, `InvalidArgument`, … as gRPC's own tooling spells status codes.
fn code_name(code: i32) -> String {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK".to_owned(),
        other => format!("{other:?}"),
    }
}

/// One service of the process.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    /// `cx_service`: Prometheus's own `service` target label is the
    /// Kubernetes Service scraped.
    pub cx_service: String,
}

/// One delivery attempt's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabel {
    pub cx_service: String,
    pub destination: String,
    /// `delivered`, `failed`, `dead`, `held` or `unreachable`.
    pub outcome: &'static str,
}

/// One cache lookup's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabel {
    pub cx_service: String,
    /// `hit` or `miss`.
    pub result: &'static str,
}

/// The process's outbox and cache figures, by service: what the people who
/// run it watch besides the calls (the chart's dashboard and alerts).
pub struct Process {
    /// Rows waiting to be delivered.
    pub outbox_pending: Family<ServiceLabel, Gauge>,
    /// Age of the oldest of them, in seconds (0 without any).
    pub outbox_oldest_age: Family<ServiceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Rows that used up their attempts, kept for an operator.
    pub outbox_dead: Family<ServiceLabel, Gauge>,
    /// Delivery attempts, by destination and outcome.
    pub outbox_attempts: Family<AttemptLabel, Counter>,
    /// Cache lookups, hits and misses.
    pub cache_lookups: Family<LookupLabel, Counter>,
    registry: Registry,
}

/// The process's figures (one set, whatever the servers of the process).
pub fn process() -> &'static Process {
    static PROCESS: std::sync::OnceLock<Process> = std::sync::OnceLock::new();
    PROCESS.get_or_init(|| {
        let mut registry = Registry::with_prefix("cx");
        let outbox_pending = Family::default();
        let outbox_oldest_age = Family::default();
        let outbox_dead = Family::default();
        let outbox_attempts = Family::default();
        let cache_lookups = Family::default();
        registry.register("outbox_pending", "Outbox rows waiting to be delivered", outbox_pending.clone());
        registry.register_with_unit(
            "outbox_oldest_pending_age",
            "Age of the oldest outbox row waiting to be delivered",
            prometheus_client::registry::Unit::Seconds,
            outbox_oldest_age.clone(),
        );
        registry.register("outbox_dead", "Outbox rows that used up their attempts", outbox_dead.clone());
        registry.register(
            "outbox_attempts",
            "Outbox delivery attempts, by destination and outcome",
            outbox_attempts.clone(),
        );
        registry.register("cache_lookups", "Cache lookups, by result (hit or miss)", cache_lookups.clone());
        Process { outbox_pending, outbox_oldest_age, outbox_dead, outbox_attempts, cache_lookups, registry }
    })
}

/// Tower layer recording every call of a server into [`GrpcMetrics`].
#[derive(Clone, Debug)]
pub struct MetricsLayer(pub GrpcMetrics);

impl<S> Layer<S> for MetricsLayer {
    type Service = Measured<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Measured { inner, metrics: self.0.clone() }
    }
}

#[derive(Clone, Debug)]
pub struct Measured<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, B, R> Service<Request<B>> for Measured<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (service, method) = split_path(request.uri().path());
        if is_probe(service) {
            return Box::pin(inner.call(request));
        }
        let (service, method) = (service.to_owned(), method.to_owned());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let future = inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if let Ok(response) = &result {
                let code = grpc_status(response.headers()).unwrap_or(0);
                let trace = crate::propagation::current_trace_id();
                metrics.observe(&service, &method, i32::try_from(code).unwrap_or(2), started.elapsed(), trace);
            }
            result
        })
    }
}

/// Serves `GET /metrics` over HTTP/1.1 on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, metrics: GrpcMetrics, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = async { let _ = stop.wait_for(|stop| *stop).await; } => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(error = %err, "metrics endpoint cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let respond = service_fn(move |request: Request<hyper::body::Incoming>| {
                let response = respond(&metrics, request.method(), request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), respond).await;
        });
    }
}

fn respond(metrics: &GrpcMetrics, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (method, path) {
        (&Method::GET, "/metrics") => {
            (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.encode())
        }
        _ => (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "only GET /metrics is served here\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_code_and_timed() {
        let metrics = GrpcMetrics::default();
        let ms = Duration::from_millis;
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        metrics.observe("cx.profile.v1.ProfileService", "GetProfile", 0, ms(3), None);
        metrics.observe("cx.profile.v1.ProfileService", "GetProfile", 0, ms(30), Some(trace.into()));
        metrics.observe("cx.profile.v1.ProfileService", "GetProfile", 5, ms(2), None);
        let text = metrics.encode();
        let labels = r#"grpc_service="cx.profile.v1.ProfileService",grpc_method="GetProfile""#;
        assert!(text.contains(&format!("grpc_server_handled_total{{{labels},grpc_code=\"OK\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("grpc_server_handled_total{{{labels},grpc_code=\"NotFound\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("grpc_server_handling_seconds_count{{{labels}}} 3\n")), "{text}");
        // 2 ms and 3 ms fall at or under 5 ms; 30 ms does not.
        assert!(text.contains(&format!("grpc_server_handling_seconds_bucket{{le=\"0.005\",{labels}}} 2\n")), "{text}");
        assert!(text.ends_with("# EOF\n"));
        // OpenTelemetry's rpc.server.duration, in milliseconds, by status
        // code; the 30 ms call's bucket (≤ 50 ms) names its trace.
        let rpc = r#"rpc_system="grpc",rpc_service="cx.profile.v1.ProfileService",rpc_method="GetProfile""#;
        assert!(
            text.contains(&format!("rpc_server_duration_milliseconds_count{{{rpc},rpc_grpc_status_code=\"0\"}} 2\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("rpc_server_duration_milliseconds_count{{{rpc},rpc_grpc_status_code=\"5\"}} 1\n")),
            "{text}"
        );
        let bucket = format!(
            "rpc_server_duration_milliseconds_bucket{{le=\"50.0\",{rpc},rpc_grpc_status_code=\"0\"}} 2 # {{trace_id=\"{trace}\"}} 30.0"
        );
        assert!(text.contains(&bucket), "{text}");
    }

    /// The names the chart's dashboard and alerts read (tests/deploy checks
    /// them against this list): each must be served.
    #[test]
    fn the_process_serves_the_outbox_and_cache_figures_by_service() {
        let process = process();
        let label = ServiceLabel { cx_service: "profile".into() };
        process.outbox_pending.get_or_create(&label).set(3);
        process.outbox_oldest_age.get_or_create(&label).set(12.5);
        process.outbox_dead.get_or_create(&label).set(1);
        let attempt =
            AttemptLabel { cx_service: "profile".into(), destination: "journey".into(), outcome: "delivered" };
        process.outbox_attempts.get_or_create(&attempt).inc();
        let lookup = LookupLabel { cx_service: "profile".into(), result: "hit" };
        process.cache_lookups.get_or_create(&lookup).inc_by(4);
        let text = GrpcMetrics::default().encode();
        for line in [
            "cx_outbox_pending{cx_service=\"profile\"} 3\n",
            "cx_outbox_oldest_pending_age_seconds{cx_service=\"profile\"} 12.5\n",
            "cx_outbox_dead{cx_service=\"profile\"} 1\n",
            "cx_outbox_attempts_total{cx_service=\"profile\",destination=\"journey\",outcome=\"delivered\"} 1\n",
            "cx_cache_lookups_total{cx_service=\"profile\",result=\"hit\"} 4\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert_eq!(text.matches("# EOF").count(), 1, "one exposition, one end");
    }
}
