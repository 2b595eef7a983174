//! Logs (pretty, or JSON with `AGORA_LOG_FORMAT=json`), Prometheus metrics, OpenTelemetry traces
//! (exported when `AGORA_OTLP_ENDPOINT` is set, [`otel`]), and the request and trace context that
//! follows a request across services and events.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{OnceLock, RwLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

pub mod otel;

/// Installs the global log subscriber once; later calls (tests) are ignored.
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let json = std::env::var("AGORA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let result = if json {
        tracing_subscriber::registry()
            .with(filter)
            .with(otel::layer(service))
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(filter)
            .with(otel::layer(service))
            .with(fmt::layer().compact())
            .try_init()
    };
    if result.is_ok() {
        tracing::debug!(service, "telemetry initialised");
    }
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // Histograms keep every sample until upkeep folds them in; without it they grow
            // without bound between scrapes (forever, when nothing scrapes `/metrics`).
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                });
            Some(handle)
        })
        .as_ref()
}

/// Metric handles kept per label set. `metrics::counter!(name, labels)` builds its key (one
/// allocation per label) and looks it up in the registry on every call; on a path taken for every
/// request, looking the handle up here once per label set instead is measurably cheaper
/// (docs/performance.md). Label sets must be bounded (routes, status codes), as for any metric.
pub struct HandleCache<K, V>(RwLock<HashMap<K, V>>);

impl<K: Eq + Hash, V: Clone> Default for HandleCache<K, V> {
    fn default() -> Self {
        Self(RwLock::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> HandleCache<K, V> {
    /// The handles under `key`, made (and kept) by `make` the first time.
    pub fn get<Q>(&self, key: &Q, make: impl FnOnce() -> (K, V)) -> V
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if let Some(found) = self.0.read().ok().and_then(|map| map.get(key).cloned()) {
            return found;
        }
        let (key, value) = make();
        match self.0.write() {
            Ok(mut map) => map.entry(key).or_insert(value).clone(),
            Err(_) => value,
        }
    }
}

/// W3C trace context header (`00-<trace id>-<parent span id>-<flags>`).
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    static CONTEXT: TraceContext;
}

/// Who a piece of work is done for: the request id and the W3C trace it belongs to, with this
/// hop's own span id. The HTTP layer sets it for every request, the event consumer for every
/// event it handles; [`crate::client::ServiceClient`] and [`crate::events::Event::new`] pass it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub request_id: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// This hop's span: 16 lowercase hex digits.
    pub span_id: String,
    /// 2 hex digits (`01`: sampled).
    pub flags: String,
}

impl TraceContext {
    /// A hop of the trace in `traceparent` (a new trace when it is absent or malformed), for
    /// `request_id` (a new one when absent).
    pub fn continuing(request_id: Option<&str>, traceparent: Option<&str>) -> Self {
        let request_id = request_id
            .filter(|id| !id.is_empty())
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let (trace_id, flags) = traceparent
            .and_then(parse_traceparent)
            .unwrap_or_else(|| (random_hex(16), "01".to_owned()));
        Self {
            request_id,
            trace_id,
            span_id: random_hex(8),
            flags,
        }
    }

    /// The `traceparent` this hop sends on: its trace, with itself as the parent.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }

    /// This hop as exported, when spans are: the trace and span ids of `span` (entered or built
    /// already, with its remote parent set by [`otel::adopt`]), so that the ids in logs, in the
    /// `traceparent` sent on and in the collector are the same. Unchanged otherwise.
    pub fn joined(mut self, span: &tracing::Span) -> Self {
        if let Some((trace_id, span_id, flags)) = otel::ids(span) {
            self.trace_id = trace_id;
            self.span_id = span_id;
            self.flags = flags;
        }
        self
    }

    /// Makes `span` (new, not yet entered) a child of this hop when spans are exported: the span of
    /// work done for it (a call, an event published, a saga), which may run on another task, out
    /// of this hop's span.
    pub fn parent(&self, span: &tracing::Span) {
        otel::adopt(span, Some(&self.traceparent()));
    }

    /// The `traceparent` to send from inside `span` (a call's or an event's own span): that
    /// span's when spans are exported, so the receiver's span becomes its child; this hop's
    /// otherwise.
    pub fn traceparent_in(&self, span: &tracing::Span) -> String {
        match otel::ids(span) {
            Some((trace_id, span_id, flags)) => format!("00-{trace_id}-{span_id}-{flags}"),
            None => self.traceparent(),
        }
    }

    /// The context of the work now running, if any.
    pub fn current() -> Option<Self> {
        CONTEXT.try_with(Clone::clone).ok()
    }

    /// Runs `work` in this context.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CONTEXT.scope(self, work).await
    }
}

/// `work` in the current context, if any: for work spawned onto another task, which does not
/// inherit the spawner's task-locals.
pub fn in_current<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let context = TraceContext::current();
    async move {
        match context {
            Some(context) => context.scope(work).await,
            None => work.await,
        }
    }
}

/// The trace id and flags of a version-00 `traceparent`; `None` when it is not one (W3C: a
/// receiver that cannot parse it starts a new trace). All-zero ids are invalid.
pub fn parse_traceparent(value: &str) -> Option<(String, String)> {
    parse_traceparent_parts(value).map(|(trace_id, _, flags)| (trace_id, flags))
}

/// The trace id, parent span id and flags of a version-00 `traceparent`.
fn parse_traceparent_parts(value: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace_id, parent_id, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = *version == "00"
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    valid.then(|| {
        (
            (*trace_id).to_owned(),
            (*parent_id).to_owned(),
            (*flags).to_owned(),
        )
    })
}

/// `bytes` random bytes as lowercase hex (never all zero).
fn random_hex(bytes: usize) -> String {
    loop {
        let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
        if random.iter().any(|b| *b != 0) {
            return hex_of(&random);
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hop_keeps_the_trace_and_gets_its_own_span() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let hop = TraceContext::continuing(Some("req-1"), Some(incoming));
        assert_eq!(hop.request_id, "req-1");
        assert_eq!(hop.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(hop.span_id, "00f067aa0ba902b7");
        assert_eq!(hop.span_id.len(), 16);
        assert_eq!(
            hop.traceparent(),
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", hop.span_id)
        );
    }

    #[test]
    fn a_missing_or_malformed_traceparent_starts_a_new_trace() {
        for bad in [
            None,
            Some(""),
            Some("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"),
        ] {
            let hop = TraceContext::continuing(None, bad);
            assert!(parse_traceparent(&hop.traceparent()).is_some(), "{bad:?}");
            assert_ne!(hop.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert!(!hop.request_id.is_empty());
        }
    }

    #[tokio::test]
    async fn spawned_work_keeps_the_context_it_was_given() {
        let context = TraceContext::continuing(Some("req-2"), None);
        let seen = context
            .clone()
            .scope(async { tokio::spawn(in_current(async { TraceContext::current() })).await })
            .await
            .unwrap();
        assert_eq!(seen, Some(context));
        assert_eq!(TraceContext::current(), None);
    }
}
