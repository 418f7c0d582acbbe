//! Prometheus metrics of the gRPC server, served as OpenMetrics text on
//! `CX_METRICS_LISTEN` (`GET /metrics`): calls handled per method and status
//! code, and how long they took. Names follow the usual gRPC exporters
//! (`grpc_server_handled_total`, `grpc_server_handling_seconds`), so existing
//! dashboards and alerts apply. Health checks are left out, as in traces.

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
use prometheus_client::metrics::family::Family;
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

/// The server's metrics; clones share them.
#[derive(Clone)]
pub struct GrpcMetrics {
    handled: Family<Handled, Counter>,
    seconds: Family<Call, Histogram, fn() -> Histogram>,
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
        let mut registry = Registry::default();
        registry.register("grpc_server_handled", "gRPC calls completed, by method and status code", handled.clone());
        registry.register(
            "grpc_server_handling_seconds",
            "Time from a call's arrival to its response headers, by method",
            seconds.clone(),
        );
        Self { handled, seconds, registry: Arc::new(registry) }
    }
}

impl GrpcMetrics {
    /// Records one completed call.
    pub fn observe(&self, service: &str, method: &str, code: i32, took: Duration) {
        let call = Call { grpc_service: service.to_owned(), grpc_method: method.to_owned() };
        let handled = Handled {
            grpc_service: call.grpc_service.clone(),
            grpc_method: call.grpc_method.clone(),
            grpc_code: code_name(code),
        };
        self.handled.get_or_create(&handled).inc();
        self.seconds.get_or_create(&call).observe(took.as_secs_f64());
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
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
                metrics.observe(&service, &method, i32::try_from(code).unwrap_or(2), started.elapsed());
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
        metrics.observe("cx.profile.v1.ProfileService", "GetProfile", 0, ms(3));
        metrics.observe("cx.profile.v1.ProfileService", "GetProfile", 0, ms(30));
        metrics.observe("cx.profile.v1.ProfileService", "GetProfile", 5, ms(2));
        let text = metrics.encode();
        let labels = r#"grpc_service="cx.profile.v1.ProfileService",grpc_method="GetProfile""#;
        assert!(text.contains(&format!("grpc_server_handled_total{{{labels},grpc_code=\"OK\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("grpc_server_handled_total{{{labels},grpc_code=\"NotFound\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("grpc_server_handling_seconds_count{{{labels}}} 3\n")), "{text}");
        // 2 ms and 3 ms fall at or under 5 ms; 30 ms does not.
        assert!(text.contains(&format!("grpc_server_handling_seconds_bucket{{le=\"0.005\",{labels}}} 2\n")), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
