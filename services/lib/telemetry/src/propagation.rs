//! The W3C `traceparent` that carries a trace from one process to the next: in gRPC
//! metadata (edge → scanner) and in NATS message headers (edge → relay, edge → queued
//! scan). One header name everywhere.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and gRPC metadata key) that carries the context.
pub const TRACEPARENT: &str = "traceparent";

/// The context of `span` as a `traceparent` value; `None` when traces are not exported.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the remote span named by `traceparent` (from another
/// process). An absent or malformed value leaves `span` a root.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    let carrier = HashMap::from([(TRACEPARENT.to_string(), value.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    // Fails only when no trace layer is installed: then there is nothing to link.
    let _ = span.set_parent(context);
}
