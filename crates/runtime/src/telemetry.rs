//! Logs and traces, set up once per process.
//!
//! Spans always go through an OpenTelemetry tracer provider so trace ids exist
//! and propagate even when nothing is exported; OTLP/gRPC export is switched on
//! by the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`).
//! Logs are JSON lines carrying the `trace_id` and `span_id` of the span they
//! were written in, so a log line leads straight to its trace.

use std::fmt;
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryArgs};

/// Keeps the tracer provider alive; [`Telemetry::shutdown`] flushes it.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

/// Whether the environment asks for OTLP export of traces.
pub fn otlp_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Builds the tracer provider of `service_name` (overridden by
/// `OTEL_SERVICE_NAME`), with OTLP export when configured. Must run inside the
/// tokio runtime: the exporter's channel lives on it.
pub fn tracer_provider(service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service_name.to_owned());
    }
    resource = resource.with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
    if otlp_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

impl Telemetry {
    /// Installs the global subscriber and propagator. A second call in the
    /// same process (tests) keeps the first subscriber.
    pub fn init(service_name: &str, args: &TelemetryArgs) -> anyhow::Result<Self> {
        let provider = tracer_provider(service_name)?;
        Self::install(provider, args)
    }

    /// Installs the global subscriber over a given provider (tests use an
    /// in-memory exporter this way).
    pub fn install(provider: SdkTracerProvider, args: &TelemetryArgs) -> anyhow::Result<Self> {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        let filter = EnvFilter::try_new(&args.log).map_err(|e| anyhow::anyhow!("CX_LOG: {e}"))?;
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("cx"));
        let logs = match args.log_format {
            LogFormat::Json => tracing_subscriber::fmt::layer().event_format(JsonWithTrace).boxed(),
            LogFormat::Text => tracing_subscriber::fmt::layer().with_target(true).boxed(),
        };
        // Ignored when a subscriber is already set (several servers in one test).
        // Spans below INFO (h2, hyper, tower internals) never become
        // OpenTelemetry spans: building them costs more than serving a call.
        let otel = otel.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        let _ = tracing_subscriber::registry().with(otel).with(logs.with_filter(filter)).try_init();
        Ok(Self { provider })
    }

    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Flushes and stops the exporter. Blocking work, so it runs on a blocking
    /// thread while the runtime (which carries the exporter's channel) lives.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_secs(5))).await;
        if let Ok(Err(err)) = flushed {
            eprintln!("telemetry shutdown: {err}");
        }
    }
}

/// One JSON object per log line: time, level, target, message, the event's
/// fields, the current span's name, and its OpenTelemetry trace and span ids.
struct JsonWithTrace;

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
            let otel = tracing::dispatcher::get_default(|dispatch| {
                tracing_opentelemetry::get_otel_context(&span.id(), dispatch)
            });
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
