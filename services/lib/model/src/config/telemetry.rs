//! `[telemetry]`: traces, metrics and logs. The standard OTEL_* environment variables
//! (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER…) override
//! what is set here, as operators expect from any OpenTelemetry program.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON lines, except on a terminal where people read them.
    #[default]
    Auto,
    Json,
    Human,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector for traces, e.g. "http://otel-collector:4317". Default
    /// none: no traces are exported unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces kept (0.0 to 1.0); a trace started elsewhere follows its
    /// parent's decision. Default 1.0.
    pub sample_ratio: f64,
    /// Also keep the spans of mail rejected, tempfailed or failed at delivery when
    /// the ratio would drop them. Default true.
    pub always_sample_failures: bool,
    /// HTTP listener for /metrics (Prometheus), /healthz and /readyz. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
    /// "auto" (default), "json" or "human". The level comes from RUST_LOG (default info).
    pub log_format: LogFormat,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { otlp_endpoint: None, sample_ratio: 1.0, always_sample_failures: true, listen: None, log_format: LogFormat::Auto }
    }
}
