//! Logs and traces, set up once per process.
//!
//! Spans always go through an OpenTelemetry tracer provider so trace ids exist
//! and propagate even when nothing is exported; OTLP/gRPC export is switched on
//! by the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`).
//! Logs are JSON lines carrying the `trace_id` and `span_id` of the span they
//! were written in, so a log line leads straight to its trace.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryArgs};

/// Keeps the tracer and meter providers alive; [`Telemetry::shutdown`]
/// flushes them.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    meters: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
}

/// Records one call's `rpc.server.duration` (ms) for OTLP export; nothing
/// happens until [`Telemetry::init`] set a meter provider up.
pub fn record_rpc_duration(service: &str, method: &str, code: i32, millis: f64) {
    let Some(histogram) = RPC_DURATION.get() else { return };
    histogram.record(
        millis,
        &[
            opentelemetry::KeyValue::new("rpc.system", "grpc"),
            opentelemetry::KeyValue::new("rpc.service", service.to_owned()),
            opentelemetry::KeyValue::new("rpc.method", method.to_owned()),
            opentelemetry::KeyValue::new("rpc.grpc.status_code", i64::from(code)),
        ],
    );
}

static RPC_DURATION: OnceLock<opentelemetry::metrics::Histogram<f64>> = OnceLock::new();

/// Whether the environment asks for OTLP export of one signal (`TRACES`,
/// `METRICS`): an endpoint, its own or the common one, and no
/// `OTEL_<SIGNAL>_EXPORTER=none`.
fn otlp_signal(signal: &str) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var(format!("OTEL_{signal}_EXPORTER")).is_ok_and(|v| v.trim() == "none");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")))
}

/// The meter provider exporting over OTLP, with `resource`, when configured.
fn meter_provider(resource: Resource) -> anyhow::Result<Option<opentelemetry_sdk::metrics::SdkMeterProvider>> {
    if !otlp_signal("METRICS") {
        return Ok(None);
    }
    let mut exporter = opentelemetry_otlp::MetricExporter::builder().with_tonic();
    if let Some(tls) = otlp_tls("METRICS")? {
        exporter = opentelemetry_otlp::WithTonicConfig::with_tls_config(exporter, tls);
    }
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter.build()?).build();
    Ok(Some(
        opentelemetry_sdk::metrics::SdkMeterProvider::builder().with_reader(reader).with_resource(resource).build(),
    ))
}

/// Whether the environment asks for OTLP export of traces.
pub fn otlp_configured() -> bool {
    otlp_signal("TRACES")
}

/// The process's OpenTelemetry resource: `service_name` (unless
/// `OTEL_SERVICE_NAME` says otherwise) and the version.
fn resource(service_name: &str) -> Resource {
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service_name.to_owned());
    }
    resource.with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build()
}

/// Builds the tracer provider of `service_name` (overridden by
/// `OTEL_SERVICE_NAME`), with OTLP export when configured. Must run inside the
/// tokio runtime: the exporter's channel lives on it.
pub fn tracer_provider(service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let mut builder = SdkTracerProvider::builder().with_resource(resource(service_name));
    if otlp_configured() {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        if let Some(tls) = otlp_tls("TRACES")? {
            exporter = opentelemetry_otlp::WithTonicConfig::with_tls_config(exporter, tls);
        }
        builder = builder.with_batch_exporter(exporter.build()?);
    }
    Ok(builder.build())
}

/// The TLS settings of one signal's (`TRACES`, `METRICS`) OTLP endpoint, its
/// own or the common one, when it is `https://`: from the variables the
/// OpenTelemetry specification names, `OTEL_EXPORTER_OTLP_CERTIFICATE` (the
/// collector's CA; else the system's roots) and
/// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` / `…_CLIENT_KEY` (mutual TLS).
fn otlp_tls(signal: &str) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
    otlp_tls_from(signal, |name| std::env::var(name).ok())
}

/// [`otlp_tls`] with the settings `lookup` gives.
fn otlp_tls_from(
    signal: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
    let setting = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let endpoint = [format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"), "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned()]
        .into_iter()
        .find_map(|name| setting(&name).map(|v| (name, v)));
    let Some((name, endpoint)) = endpoint.filter(|(_, e)| e.trim().starts_with("https://")) else { return Ok(None) };
    let uri: http::Uri = endpoint.trim().parse().map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let file = |name: &str| setting(name).map(std::path::PathBuf::from);
    let files = crate::tls::TlsFiles {
        ca: file("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        cert: file("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        key: file("OTEL_EXPORTER_OTLP_CLIENT_KEY"),
    };
    let pem = files.read([
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    ])?;
    crate::tls::init();
    Ok(Some(crate::tls::grpc_client(&pem, uri.host().unwrap_or_default())))
}

impl Telemetry {
    /// Installs the global subscriber and propagator. A second call in the
    /// same process (tests) keeps the first subscriber.
    pub fn init(service_name: &str, args: &TelemetryArgs) -> anyhow::Result<Self> {
        let provider = tracer_provider(service_name)?;
        let meters = meter_provider(resource(service_name))?;
        if let Some(meters) = &meters {
            opentelemetry::global::set_meter_provider(meters.clone());
            let histogram = opentelemetry::global::meter("cx")
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description("Time from a call's arrival to its response headers")
                .build();
            let _ = RPC_DURATION.set(histogram);
        }
        let mut telemetry = Self::install(provider, args)?;
        telemetry.meters = meters;
        Ok(telemetry)
    }

    /// Installs the global subscriber over a given provider (tests use an
    /// in-memory exporter this way).
    pub fn install(provider: SdkTracerProvider, args: &TelemetryArgs) -> anyhow::Result<Self> {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        let filter = EnvFilter::try_new(&args.log).map_err(|e| anyhow::anyhow!("CX_LOG: {e}"))?;
        // Busy/idle time per span would be measured on every poll of every
        // future: costly on hot paths and not needed for traces.
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("cx"))
            .with_tracked_inactivity(false)
            .with_threads(false);
        let dispatch = DispatchSlot::default();
        let logs = match args.log_format {
            LogFormat::Json => {
                tracing_subscriber::fmt::layer().event_format(JsonWithTrace { dispatch: dispatch.clone() }).boxed()
            }
            LogFormat::Text => tracing_subscriber::fmt::layer().with_target(true).boxed(),
        };
        // Ignored when a subscriber is already set (several servers in one test).
        // Spans below INFO (h2, hyper, tower internals) never become
        // OpenTelemetry spans: building them costs more than serving a call.
        let otel = otel.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        let _ = tracing_subscriber::registry()
            // It only keeps the dispatch: filtered off, so that it does not
            // make the registry build every span of every level (h2's,
            // hyper's) that no other layer wants.
            .with(CaptureDispatch(dispatch).with_filter(tracing_subscriber::filter::LevelFilter::OFF))
            .with(otel)
            .with(logs.with_filter(filter))
            .try_init();
        Ok(Self { provider, meters: None })
    }

    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Flushes and stops the exporter. Blocking work, so it runs on a blocking
    /// thread while the runtime (which carries the exporter's channel) lives.
    pub async fn shutdown(self) {
        if let Some(meters) = self.meters {
            let flushed =
                tokio::task::spawn_blocking(move || meters.shutdown_with_timeout(Duration::from_secs(5))).await;
            if let Ok(Err(err)) = flushed {
                eprintln!("metrics shutdown: {err}");
            }
        }
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_secs(5))).await;
        if let Ok(Err(err)) = flushed {
            eprintln!("telemetry shutdown: {err}");
        }
    }
}

/// The subscriber's own dispatch, kept when it registers: while an event is
/// being formatted, `tracing::dispatcher::get_default` answers the no-op
/// dispatcher (a guard against re-entrance), so the formatter cannot find
/// the OpenTelemetry layer through it.
#[derive(Clone, Debug, Default)]
struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

struct CaptureDispatch(DispatchSlot);

impl<S: Subscriber> Layer<S> for CaptureDispatch {
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.0.0.set(dispatch.downgrade());
    }
}

/// One JSON object per log line: time, level, target, message, the event's
/// fields, the current span's name, and its OpenTelemetry trace and span ids.
struct JsonWithTrace {
    dispatch: DispatchSlot,
}

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut object = Map::new();
        object.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        object.insert("level".into(), Value::String(meta.level().to_string().to_lowercase()));
        object.insert("target".into(), Value::String(meta.target().to_owned()));
        let mut fields = FieldsToJson(Map::new());
        event.record(&mut fields);
        if let Some(message) = fields.0.remove("message") {
            object.insert("message".into(), message);
        }
        if !fields.0.is_empty() {
            object.insert("fields".into(), Value::Object(fields.0));
        }
        if let Some(span) = ctx.lookup_current() {
            object.insert("span".into(), Value::String(span.name().to_owned()));
            let dispatch = self.dispatch.0.get().and_then(WeakDispatch::upgrade);
            let otel = dispatch.and_then(|dispatch| tracing_opentelemetry::get_otel_context(&span.id(), &dispatch));
            if let Some(cx) = otel {
                let span_context = cx.span().span_context().clone();
                if span_context.is_valid() {
                    object.insert("trace_id".into(), Value::String(span_context.trace_id().to_string()));
                    object.insert("span_id".into(), Value::String(span_context.span_id().to_string()));
                }
            }
        }
        let line = serde_json::to_string(&Value::Object(object)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

struct FieldsToJson(Map<String, Value>);

impl Visit for FieldsToJson {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn each_signal_takes_tls_from_its_own_endpoint_or_the_common_one() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let metrics_only = env(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://collector:4317")]);
        assert!(otlp_tls_from("METRICS", metrics_only).unwrap().is_some());
        assert!(otlp_tls_from("TRACES", metrics_only).unwrap().is_none());
        // A signal's own endpoint wins over the common one.
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://plain:4317"),
        ]);
        assert!(otlp_tls_from("TRACES", both).unwrap().is_none());
        assert!(otlp_tls_from("METRICS", both).unwrap().is_some());
        let missing_ca = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ]);
        let err = otlp_tls_from("METRICS", missing_ca).unwrap_err().to_string();
        assert!(err.starts_with("OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read /nonexistent/ca.pem"), "{err}");
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_is_json_with_the_trace_and_span_of_its_span() {
        let provider = SdkTracerProvider::builder().build();
        let captured = Captured::default();
        let writer = captured.clone();
        let dispatch = DispatchSlot::default();
        let subscriber = tracing_subscriber::registry()
            .with(CaptureDispatch(dispatch.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonWithTrace { dispatch })
                    .with_writer(move || writer.clone()),
            );
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("checkout");
            let _entered = span.enter();
            tracing::info!(order = 42, "order placed");
            let cx = tracing_opentelemetry::OpenTelemetrySpanExt::context(&span);
            let context = cx.span().span_context().clone();
            (context.trace_id().to_string(), context.span_id().to_string())
        });
        let line = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let json: Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(json["message"], "order placed");
        assert_eq!(json["level"], "info");
        assert_eq!(json["span"], "checkout");
        assert_eq!(json["fields"]["order"], 42);
        assert_eq!(json["trace_id"], Value::String(trace_id.clone()));
        assert_eq!(json["span_id"], Value::String(span_id));
        assert_eq!(trace_id.len(), 32, "a W3C trace id: 16 bytes in hex");
    }
}
