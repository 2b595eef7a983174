//! The payment gateway simulator: a stand-in for Stripe, which is unreachable from here. It speaks
//! a faithful subset of Stripe's PaymentIntents API (form-encoded requests, Stripe's objects and
//! error object, idempotency keys, signed webhooks), so that payments' Stripe adapter is the very
//! code that would talk to Stripe. Faults can be injected to test clients against a gateway that
//! misbehaves. Everything is kept in memory: a restart forgets every intent, refund and key.
//!
//! It does not use [`platform::http::app`]: that stack answers errors as problem+json, where a
//! Stripe client expects Stripe's error object, and times requests out, where a hang must hang.
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use platform::shutdown::Shutdown;
use platform::telemetry::{TraceContext, TRACEPARENT};
use secrecy::SecretString;
use tracing::Instrument;

pub mod config;
pub mod faults;
pub mod idempotency;
mod routes;
pub mod state;
pub mod stripe;
pub mod webhooks;

pub use config::{Config, Settings};

pub const NAME: &str = "payment-gateway-sim";
pub const DEFAULT_PORT: u16 = 8086;

/// What the `/v1` handlers share.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Mutex<state::Ledger>>,
    pub webhooks: webhooks::Webhooks,
}

impl AppState {
    /// Applies one ledger operation at the current time and hands the events it raised to the
    /// webhook dispatcher (after the lock is released; delivery happens in the background).
    pub fn apply<T>(
        &self,
        operation: impl FnOnce(&mut state::Ledger, i64) -> Result<T, stripe::ApiError>,
    ) -> Result<T, stripe::ApiError> {
        let (result, events) = {
            let mut ledger = lock(&self.ledger);
            let result = operation(&mut ledger, chrono::Utc::now().timestamp());
            (result, ledger.take_events())
        };
        for event in events {
            self.webhooks.send(event);
        }
        result
    }
}

/// Locks a mutex; a panic elsewhere while it was held leaves the data usable (every operation
/// changes it in one step), so poisoning is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The whole HTTP surface. Layers on `/v1`, outermost first: faults (5xx, hangs, lost answers),
/// the API key, idempotency keys, injected latency, then the handler.
pub fn router(
    state: AppState,
    api_key: Arc<SecretString>,
    injector: Arc<faults::Injector>,
    idempotency: idempotency::Idempotency,
    body_limit: usize,
) -> Router {
    let v1 = routes::v1()
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            injector.clone(),
            faults::latency,
        ))
        .layer(middleware::from_fn_with_state(
            idempotency,
            idempotency::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            api_key.clone(),
            routes::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            injector.clone(),
            faults::middleware,
        ));
    let admin = routes::admin()
        .with_state(injector)
        .layer(middleware::from_fn_with_state(
            api_key,
            routes::authenticate,
        ));
    Router::new()
        .merge(v1)
        .merge(admin)
        .route(
            "/health/live",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        // In memory: nothing to wait for.
        .route(
            "/health/ready",
            get(|| async { axum::Json(serde_json::json!({"status": "ready"})) }),
        )
        // Scraped like every process of the platform (a target without it reads as down).
        .route("/metrics", get(platform::http::metrics))
        .fallback(routes::unrecognized)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(access_log))
}

/// One line per request: method, route template, status, time. Never headers or bodies, which
/// hold the API key and payment details.
async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    // The caller's request id and trace (payments sends both), as every service keeps them.
    // No borrow of the request may live across an await: its body is not `Sync`.
    let (request_id, traceparent) = {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (header("x-request-id"), header(TRACEPARENT))
    };
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        request_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    platform::telemetry::otel::adopt(&span, traceparent.as_deref());
    let context =
        TraceContext::continuing(request_id.as_deref(), traceparent.as_deref()).joined(&span);
    span.record("request_id", context.request_id.as_str());
    span.record("trace_id", context.trace_id.as_str());
    span.record("span_id", context.span_id.as_str());
    let started = Instant::now();
    let response = context
        .scope(next.run(request))
        .instrument(span.clone())
        .await;
    tracing::info!(
        parent: &span,
        %method,
        route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "handled"
    );
    response
}

pub struct Application {
    listener: tokio::net::TcpListener,
    app: Router,
    port: u16,
    dispatcher: Option<webhooks::Dispatcher>,
    stop_signal: platform::shutdown::StopSignal,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let common = &config.common;
        let settings = config.settings;
        let (stop_signal, stopping) = platform::shutdown::stopping();
        let (webhooks, dispatcher) = webhooks::channel(
            settings.webhook_url.clone(),
            settings.psp_webhook_secret.clone(),
        );
        let injector = Arc::new(faults::Injector::new(
            settings.faults(),
            settings.fault_seed,
            stopping,
        ));
        let app = router(
            AppState {
                ledger: Arc::new(Mutex::new(state::Ledger::new())),
                webhooks,
            },
            Arc::new(settings.psp_api_key),
            injector,
            idempotency::Idempotency {
                store: Arc::default(),
                body_limit: common.body_limit_bytes,
            },
            common.body_limit_bytes,
        );
        let listener = platform::http::bind(SocketAddr::new(common.host, common.port)).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            app,
            port,
            dispatcher,
            stop_signal,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves requests and delivers webhooks until `shutdown`; hangs are cut short, in-flight
    /// requests finish, then pending webhook deliveries are dropped.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let (stop_dispatcher, stopped) = tokio::sync::oneshot::channel();
        let dispatcher = self
            .dispatcher
            .map(|dispatcher| tokio::spawn(dispatcher.run(stopped)));
        let shutdown = self.stop_signal.on(shutdown);
        let served = platform::http::serve(self.listener, self.app, shutdown).await;
        let _ = stop_dispatcher.send(());
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        Ok(served?)
    }
}
