//! "Always sample failed mail": head sampling decides when a message arrives, but
//! whether it is rejected or bounced is known only later. So spans the ratio would
//! drop are recorded anyway (not exported) and held per trace in this process; when a
//! span of that trace ends marked with [`KEEP_ATTRIBUTE`], the trace's held spans are
//! exported with it, and so are its spans that end later (a parent ending after its
//! marked child). When the trace's local root ends unmarked, they are forgotten.
//! Each process decides for its own spans: a relay that bounces a message keeps its
//! `deliver` spans even though the edge, which saw nothing wrong, dropped its own.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::trace::{Link, SpanContext, SpanKind, TraceFlags, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample, SpanData, SpanProcessor};

/// Span attribute (boolean) that keeps the span's whole trace.
pub const KEEP_ATTRIBUTE: &str = "rempart.keep";
/// Traces held at once; beyond, the oldest is forgotten (bounded memory under load).
const MAX_TRACES: usize = 4096;
/// Spans held per trace.
const MAX_SPANS: usize = 64;

/// Turns the wrapped sampler's "drop" into "record only".
#[derive(Debug, Clone)]
pub struct RecordUnsampled<S>(pub S);

impl<S: ShouldSample + Clone + 'static> ShouldSample for RecordUnsampled<S> {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let mut result = self.0.should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        if result.decision == SamplingDecision::Drop {
            result.decision = SamplingDecision::RecordOnly;
        }
        result
    }
}

#[derive(Debug)]
pub struct KeepFailures<P> {
    inner: P,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    spans: HashMap<TraceId, Vec<SpanData>>,
    order: VecDeque<TraceId>,
    /// Traces marked to keep, oldest first (bounded like `spans`).
    kept: VecDeque<TraceId>,
}

impl<P> KeepFailures<P> {
    pub fn new(inner: P) -> Self {
        KeepFailures { inner, held: Mutex::default() }
    }
}

fn marked(span: &SpanData) -> bool {
    span.attributes.iter().any(|kv| kv.key.as_str() == KEEP_ATTRIBUTE && kv.value == opentelemetry::Value::Bool(true))
}

fn sampled(mut span: SpanData) -> SpanData {
    let sc = &span.span_context;
    span.span_context = SpanContext::new(sc.trace_id(), sc.span_id(), TraceFlags::SAMPLED, sc.is_remote(), sc.trace_state().clone());
    span
}

impl<P: SpanProcessor> SpanProcessor for KeepFailures<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            return self.inner.on_end(span);
        }
        let trace = span.span_context.trace_id();
        let local_root = span.parent_span_is_remote || span.parent_span_id == opentelemetry::trace::SpanId::INVALID;
        let Ok(mut held) = self.held.lock() else { return };
        if marked(&span) || held.kept.contains(&trace) {
            if !held.kept.contains(&trace) {
                if held.kept.len() >= MAX_TRACES {
                    held.kept.pop_front();
                }
                held.kept.push_back(trace);
            }
            let earlier = held.spans.remove(&trace).unwrap_or_default();
            drop(held);
            for s in earlier.into_iter().chain(std::iter::once(span)) {
                self.inner.on_end(sampled(s));
            }
            return;
        }
        if local_root {
            held.spans.remove(&trace);
            return;
        }
        if !held.spans.contains_key(&trace) {
            if held.order.len() >= MAX_TRACES
                && let Some(oldest) = held.order.pop_front()
            {
                held.spans.remove(&oldest);
            }
            held.order.push_back(trace);
        }
        let spans = held.spans.entry(trace).or_default();
        if spans.len() < MAX_SPANS {
            spans.push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};

    use super::*;

    fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
        let exporter = InMemorySpanExporter::default();
        let processor = KeepFailures::new(SimpleSpanProcessor::new(exporter.clone()));
        let sampler = RecordUnsampled(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.0))));
        (SdkTracerProvider::builder().with_span_processor(processor).with_sampler(sampler).build(), exporter)
    }

    fn names(exporter: &InMemorySpanExporter) -> Vec<String> {
        exporter.get_finished_spans().unwrap_or_default().iter().map(|s| s.name.to_string()).collect()
    }

    #[test]
    fn unmarked_traces_are_dropped_and_marked_ones_kept_whole() {
        let (provider, exporter) = provider();
        let tracer = provider.tracer("test");
        // Accepted mail: nothing exported at ratio 0.
        let root = tracer.start("session");
        let cx = opentelemetry::Context::current_with_span(root);
        tracer.start_with_context("scan", &cx).end();
        cx.span().end();
        assert!(names(&exporter).is_empty());
        // Refused: the child ended before the mark, the parent after it; all exported.
        let root = tracer.start("session");
        let cx = opentelemetry::Context::current_with_span(root);
        tracer.start_with_context("stage", &cx).end();
        let mut scan = tracer.start_with_context("scan", &cx);
        scan.set_attribute(KeyValue::new(KEEP_ATTRIBUTE, true));
        scan.end();
        cx.span().end();
        assert_eq!(names(&exporter), ["stage", "scan", "session"]);
        let spans = exporter.get_finished_spans().unwrap_or_default();
        assert!(spans.iter().all(|s| s.span_context.is_sampled()), "exported as sampled");
        assert!(spans.iter().all(|s| s.span_context.trace_id() == spans[0].span_context.trace_id()), "one trace");
    }
}
