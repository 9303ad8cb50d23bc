//! What operators see of a running gateway: one OpenTelemetry trace per message across
//! processes (exported over OTLP/gRPC), Prometheus metrics, and structured logs.
//!
//! `init` is called once per process by the `rempart` binary; the libraries only
//! create `tracing` spans, carry the trace context across the wire with
//! [`propagation`], and count into [`metrics()`].

mod http;
mod keep;
pub mod metrics;
pub mod propagation;

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use rempart_model::config::{LogFormat, TelemetryConfig};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use http::{Readiness, serve_http};
pub use keep::KEEP_ATTRIBUTE;
pub use metrics::metrics;

/// Target of the SMTP edge's per-command and per-reply events: in traces always, in
/// logs only when RUST_LOG names it (`RUST_LOG=info,smtp=info`).
pub const COMMAND_EVENTS: &str = "smtp";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    #[error("logging was already set up")]
    AlreadyInitialized,
    #[error("metrics listener {addr}: {message}")]
    Listen { addr: std::net::SocketAddr, message: String },
}

/// Keeps the trace pipeline alive; `shutdown` flushes the spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (an OTLP endpoint is configured).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered; call on the way out, off the async threads.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "traces not flushed at exit");
        }
    }
}

/// Sets up logs and, when an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`
/// or `[telemetry] otlp_endpoint`), trace export. `role` names the service
/// ("rempart-edge"…) unless OTEL_SERVICE_NAME says otherwise. Call inside the runtime.
pub fn init(role: &str, config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let provider = match otlp_endpoint(config) {
        Some(endpoint) => Some(tracer_provider(role, config, endpoint)?),
        None => None,
    };
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let logs = if json {
        json_logs(std::io::stderr).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).boxed()
    };
    // Traces take our own spans and events at INFO, whatever the log level.
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer().with_tracer(p.tracer("rempart")).with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            *meta.level() <= tracing::Level::INFO && (meta.target().starts_with("rempart") || meta.target() == COMMAND_EVENTS)
        }))
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(log_filter()))
        .with(traces)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInitialized)?;
    Ok(Telemetry { provider })
}

/// The JSON log lines of every role: one object per event, its fields and its span's
/// flattened. The in-process tests write the same lines to a buffer.
pub fn json_logs<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer().json().flatten_event(true).with_span_list(false).with_writer(writer)
}

/// What is logged: as RUST_LOG says, else INFO without the per-command events.
pub fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("info,{COMMAND_EVENTS}=warn")))
}

/// The standard variables first, as every OpenTelemetry SDK does; then the file.
fn otlp_endpoint(config: &TelemetryConfig) -> Option<String> {
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .or_else(|| config.otlp_endpoint.clone())
}

fn tracer_provider(role: &str, config: &TelemetryConfig, endpoint: String) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    // The batch processor exports from its own thread: the SMTP path only enqueues
    // (and drops spans when the queue is full rather than wait).
    let batch = BatchSpanProcessor::builder(exporter).build();
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(role.to_string());
    }
    let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
    builder = if config.always_sample_failures {
        builder.with_span_processor(keep::KeepFailures::new(batch))
    } else {
        builder.with_span_processor(batch)
    };
    // OTEL_TRACES_SAMPLER, when set, is read by the SDK itself.
    if std::env::var_os("OTEL_TRACES_SAMPLER").is_none() {
        let ratio = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
        builder = if config.always_sample_failures && config.sample_ratio < 1.0 {
            builder.with_sampler(keep::RecordUnsampled(ratio))
        } else {
            builder.with_sampler(ratio)
        };
    }
    Ok(builder.build())
}

/// The trace id of a span, for log lines ("" when traces are not exported).
pub fn trace_id(span: &tracing::Span) -> String {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() { span_context.trace_id().to_string() } else { String::new() }
}

/// Marks the span's trace as one to keep even when the sampling ratio would drop it
/// (rejected, tempfailed, or failed at delivery). See `always_sample_failures`.
pub fn keep_trace(span: &tracing::Span) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.set_attribute(KEEP_ATTRIBUTE, true);
}
