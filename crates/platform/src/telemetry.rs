//! Logs (pretty, or JSON with `AGORA_LOG_FORMAT=json`) and Prometheus metrics.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{OnceLock, RwLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Installs the global log subscriber once; later calls (tests) are ignored.
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let json = std::env::var("AGORA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let result = if json {
        tracing_subscriber::registry()
            .with(filter)
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
