//! OpenTelemetry traces, exported over OTLP/HTTP (JSON) when `AGORA_OTLP_ENDPOINT` is set: the
//! `tracing` spans of requests, calls, events published and events handled become OTel spans, in
//! the W3C trace their [`TraceContext`](super::TraceContext) carries. Without the variable no
//! exporter and no OTel layer exist, and every helper here does nothing.
use std::sync::OnceLock;

use opentelemetry::trace::{
    SamplingDecision, SamplingResult, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags,
    TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, ShouldSample};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The environment variable naming the OTLP/HTTP collector, e.g. `http://127.0.0.1:4318`.
pub const ENDPOINT: &str = "AGORA_OTLP_ENDPOINT";

/// Whether spans are exported (the layer is installed).
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// The OTel layer for `service`, exporting to `AGORA_OTLP_ENDPOINT`; `None` when the variable is
/// unset (or the exporter cannot be built, which is said on stderr: logging is not up yet).
pub fn layer<S>(service: &str) -> Option<impl tracing_subscriber::Layer<S>>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let endpoint = std::env::var(ENDPOINT)
        .ok()
        .filter(|e| !e.trim().is_empty())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!(
            "{}/v1/traces",
            endpoint.trim().trim_end_matches('/')
        ))
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("{ENDPOINT}={endpoint}: cannot export traces there: {e}");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(SkipHousekeeping)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer(service.to_owned());
    PROVIDER.set(provider).ok()?;
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Sends what is still buffered: before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
        let _ = provider.shutdown();
    }
}

/// Every span, as its parent decides (all of a trace that started sampled), except the roots of
/// housekeeping: health checks, scrapes and event-feed polls, which would otherwise each be a
/// trace of their own every few seconds.
#[derive(Debug, Clone)]
struct SkipHousekeeping;

impl ShouldSample for SkipHousekeeping {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> SamplingResult {
        let has_parent = parent_context.is_some_and(|cx| cx.has_active_span());
        let housekeeping = name.starts_with("GET /health")
            || name.starts_with("GET /metrics")
            || name.starts_with("GET /events");
        if housekeeping && !has_parent {
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn)).should_sample(
            parent_context,
            trace_id,
            name,
            span_kind,
            attributes,
            links,
        )
    }
}

/// Makes `span` (not yet entered) a child of the remote span `traceparent` names.
pub fn adopt(span: &tracing::Span, traceparent: Option<&str>) {
    if !exporting() {
        return;
    }
    let Some(parent) = traceparent.and_then(remote) else {
        return;
    };
    let _ = span.set_parent(Context::new().with_remote_span_context(parent));
}

fn remote(traceparent: &str) -> Option<SpanContext> {
    let (trace_id, parent_id, flags) = super::parse_traceparent_parts(traceparent)?;
    let flags = u8::from_str_radix(&flags, 16).ok()?;
    Some(SpanContext::new(
        TraceId::from_hex(&trace_id).ok()?,
        SpanId::from_hex(&parent_id).ok()?,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    ))
}

/// The trace id, span id and flags (hex) of `span` as exported; `None` when nothing is.
pub fn ids(span: &tracing::Span) -> Option<(String, String, String)> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let span_ref = context.span();
    let ids = span_ref.span_context();
    ids.is_valid().then(|| {
        (
            ids.trace_id().to_string(),
            ids.span_id().to_string(),
            format!("{:02x}", ids.trace_flags().to_u8()),
        )
    })
}
