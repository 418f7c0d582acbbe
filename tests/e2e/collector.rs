//! An OTLP/gRPC trace receiver inside the test: the services export to it
//! exactly as they would to an OpenTelemetry Collector, Jaeger or Tempo.

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::sync::{Arc, Mutex};
use tonic::transport::server::TcpIncoming;

/// One exported span, with the `service.name` of the process that sent it.
#[derive(Clone, Debug)]
pub struct Exported {
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub parent_span_id: Vec<u8>,
}

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Exported>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = service_name(resource_spans.resource.as_ref());
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push(Exported {
                    service: service.clone(),
                    kind: span.kind(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                });
            }
        }
        self.spans.lock().unwrap().extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// One exported metric data point: the metric's name and unit, and the
/// point's attributes as text (read by crates/cx/tests/tls.rs).
#[allow(dead_code)]
#[derive(Clone, Debug)]
pub struct ExportedPoint {
    pub service: String,
    pub metric: String,
    pub unit: String,
    pub attributes: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct MetricsReceiver {
    points: Arc<Mutex<Vec<ExportedPoint>>>,
}

/// The `service.name` of the process that sent an export.
fn service_name(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> String {
    let name = resource.iter().flat_map(|r| &r.attributes).find(|kv| kv.key == "service.name");
    name.map(|kv| text(kv.value.as_ref())).unwrap_or_default()
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[tonic::async_trait]
impl MetricsService for MetricsReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let mut received = Vec::new();
        for resource in request.into_inner().resource_metrics {
            let service = service_name(resource.resource.as_ref());
            for metric in resource.scope_metrics.into_iter().flat_map(|s| s.metrics) {
                let points: Vec<_> = match &metric.data {
                    Some(Data::Histogram(h)) => h.data_points.iter().map(|p| p.attributes.clone()).collect(),
                    _ => Vec::new(),
                };
                for attributes in points {
                    received.push(ExportedPoint {
                        service: service.clone(),
                        metric: metric.name.clone(),
                        unit: metric.unit.clone(),
                        attributes: attributes.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect(),
                    });
                }
            }
        }
        self.points.lock().unwrap().extend(received);
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

pub struct Collector {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` points at.
    pub endpoint: String,
    receiver: Receiver,
    #[allow(dead_code)]
    metrics: MetricsReceiver,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A collector speaking TLS only, with this certificate and key (PEM),
    /// at `https://localhost:<port>` (crates/cx/tests/tls.rs).
    #[allow(dead_code)]
    pub async fn start_tls(cert: &[u8], key: &[u8]) -> Self {
        Self::start_with(Some(cx_runtime::tls::grpc_server(cert, key, None))).await
    }

    async fn start_with(tls: Option<tonic::transport::ServerTlsConfig>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let receiver = Receiver::default();
        let service = TraceServiceServer::new(receiver.clone());
        let metrics = MetricsReceiver::default();
        let metrics_service = MetricsServiceServer::new(metrics.clone());
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            cx_runtime::tls::init();
            builder = builder.tls_config(tls).unwrap();
        }
        let task = tokio::spawn(async move {
            let routes = builder.add_service(service).add_service(metrics_service);
            routes.serve_with_incoming(TcpIncoming::from(listener)).await.unwrap();
        });
        Self { endpoint, receiver, metrics, task }
    }

    /// Waits (at most 20 s) until `find` picks a span out of those received.
    pub async fn wait_for(&self, what: &str, find: impl Fn(&Exported) -> bool) -> Exported {
        // The span when found; else what was received, to say so.
        let look = || {
            let spans = self.receiver.spans.lock().unwrap();
            std::future::ready(spans.iter().find(|s| find(s)).cloned().ok_or_else(|| {
                spans.iter().map(|s| format!("{} {:?} {}", s.service, s.kind, s.name)).collect::<Vec<_>>()
            }))
        };
        cx_testkit::eventually(&format!("an exported span: {what}"), look, Result::is_ok).await.unwrap()
    }
}

impl Collector {
    /// Waits (at most 20 s) until `find` picks a metric data point out of
    /// those received.
    #[allow(dead_code)]
    pub async fn wait_for_point(&self, what: &str, find: impl Fn(&ExportedPoint) -> bool) -> ExportedPoint {
        let look =
            || {
                let points = self.metrics.points.lock().unwrap();
                std::future::ready(
                    points.iter().find(|p| find(p)).cloned().ok_or_else(|| {
                        points.iter().map(|p| format!("{} {}", p.service, p.metric)).collect::<Vec<_>>()
                    }),
                )
            };
        cx_testkit::eventually(&format!("an exported metric: {what}"), look, Result::is_ok).await.unwrap()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
