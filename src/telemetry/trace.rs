//! OpenTelemetry traces, exported over OTLP/gRPC when the standard
//! environment asks for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SERVICE_NAME`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*` as the SDK reads them). Unset, no
//! layer is installed: the check span stays a disabled `debug` span and a
//! check costs what it did without tracing.
//!
//! A check continues the trace of the call that asked for it: the
//! `traceparent` (W3C) or `uber-trace-id` (Jaeger, as Dispatch's services
//! used) that Envoy puts on its ext_authz call, else the one on the checked
//! request.

use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapPropagator},
    trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
    },
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{Layer, filter::filter_fn, registry::LookupSpan};

/// The trace-context headers read, in this order of preference.
pub const W3C: &str = "traceparent";
pub const JAEGER: &str = "uber-trace-id";

static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether spans are being exported (the layer is installed): front ends
/// read trace context only then.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the environment asks for traces (`OTEL_SDK_DISABLED=true`
/// overrides).
pub fn configured() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Flushes the spans not exported yet when dropped (at exit).
pub struct TraceGuard(SdkTracerProvider);

impl Drop for TraceGuard {
    fn drop(&mut self) {
        let _ = self.0.shutdown();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry: {0}")]
pub struct TraceError(String);

/// The layer sending our spans (only spans, only this crate's: events stay
/// in the logs) to the OTLP exporter. Must run inside a Tokio runtime.
pub fn layer<S>() -> Result<(impl Layer<S>, TraceGuard), TraceError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| TraceError(e.to_string()))?;
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("dispatch-authz");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("dispatch-authz");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("dispatch_authz")
        }));
    EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok((layer, TraceGuard(provider)))
}

/// Makes `span` a child of the remote span `value` names (`name`: [`W3C`]
/// or [`JAEGER`]); an unreadable value leaves it a root.
pub fn continue_trace(span: &Span, name: &str, value: &str) {
    let parent = match name {
        W3C => {
            let carrier = One(W3C, value);
            TraceContextPropagator::new().extract(&carrier)
        }
        JAEGER => match jaeger(value) {
            Some(context) => Context::new().with_remote_span_context(context),
            None => return,
        },
        _ => return,
    };
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// A one-header carrier.
struct One<'a>(&'static str, &'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == self.0).then_some(self.1)
    }

    fn keys(&self) -> Vec<&str> {
        vec![self.0]
    }
}

/// `{trace-id}:{span-id}:{parent-span-id}:{flags}` in hex (ids may come
/// without their leading zeros; `:` may come percent-encoded).
fn jaeger(value: &str) -> Option<SpanContext> {
    let value = value.replace("%3A", ":").replace("%3a", ":");
    let mut parts = value.split(':');
    let (trace, span, _parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || trace.len() > 32 || span.len() > 16 {
        return None;
    }
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(trace) || !hex(span) {
        return None;
    }
    let trace_id = TraceId::from_hex(&format!("{trace:0>32}")).ok()?;
    let span_id = SpanId::from_hex(&format!("{span:0>16}")).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let sampled = if flags & 1 == 1 {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let context = SpanContext::new(trace_id, span_id, sampled, true, TraceState::default());
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaeger_headers_are_read_with_short_ids_and_encoded_colons() {
        let c = jaeger("3a2b1c:5e6f:0:1").unwrap();
        assert_eq!(c.trace_id().to_string(), format!("{:0>32}", "3a2b1c"));
        assert_eq!(c.span_id().to_string(), format!("{:0>16}", "5e6f"));
        assert!(c.is_sampled() && c.is_remote());
        let c = jaeger("4bf92f3577b34da6a3ce929d0e0e4736%3A00f067aa0ba902b7%3A0%3A0").unwrap();
        assert_eq!(c.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(!c.is_sampled());
    }

    #[test]
    fn unreadable_jaeger_headers_are_ignored() {
        for bad in [
            "",
            "abc",
            "0:1:0:1",
            "x:1:0:1",
            "1:1:0",
            "1:1:0:1:9",
            "1:1:0:zz",
            "123456789012345678901234567890123:1:0:1",
        ] {
            assert!(jaeger(bad).is_none(), "{bad:?}");
        }
    }
}
