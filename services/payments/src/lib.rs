//! The payments service: authorizes, captures, voids and refunds through an external payment
//! gateway (Stripe's API; the simulator by default), exactly once under retries, timeouts and
//! crashes. Publishes what happened through its outbox.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::Router;
use platform::auth::JwtVerifier;
use platform::breaker::Breaker;
use platform::db::Database;
use platform::events::Events;
use platform::http::{BearerAuth, Readiness};
use platform::shutdown::Shutdown;
use secrecy::SecretString;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub mod config;
pub mod domain;
mod error;
pub mod gateway;
mod routes;
pub mod service;
pub mod storage;
mod views;

pub use config::Config;
pub use routes::webhooks::verify as verify_webhook_signature;

pub const NAME: &str = "payments";
pub const DEFAULT_PORT: u16 = 8085;

#[derive(Clone)]
pub struct AppState {
    pub payments: Arc<service::Payments>,
    pub verifier: Arc<JwtVerifier>,
    pub webhook_secret: SecretString,
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora payments",
        description = "Authorize, capture, void and refund through the payment gateway, exactly once. Money is integer minor units; card details are never accepted."
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

pub fn router(
    state: AppState,
    db: Database,
    stopping: platform::shutdown::Stopping,
) -> (Router, utoipa::openapi::OpenApi) {
    let verifier = state.verifier.clone();
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::payments::router())
        .merge(routes::webhooks::router())
        .with_state(state)
        .merge(platform::events::routes(db, verifier, stopping, None))
        .split_for_parts()
}

pub struct Application {
    listener: tokio::net::TcpListener,
    app: Router,
    port: u16,
    payments: Arc<service::Payments>,
    reconcile_every: Duration,
    reconcile_after: Duration,
    events: Events,
    stop_signal: platform::shutdown::StopSignal,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let common = &config.common;
        let settings = &config.settings;
        let (store, db) =
            storage::connect(&common.database_url(NAME), common.database_max_connections).await?;
        let verifier = Arc::new(JwtVerifier::for_service(common));
        let gateway = gateway::stripe::StripeGateway::new(
            &settings.psp_url,
            settings.psp_api_key.clone(),
            Duration::from_millis(settings.psp_timeout_ms.max(1)),
            settings.psp_retries,
            Breaker::new(
                settings.psp_breaker_failures,
                Duration::from_millis(settings.psp_breaker_open_ms),
            ),
        );
        let payments = Arc::new(service::Payments {
            store,
            gateway: Arc::new(gateway),
        });
        // A producer only: with RabbitMQ its outbox is relayed to the broker.
        let events = Events::new(common, NAME, db.clone());
        let (stop_signal, stopping) = platform::shutdown::stopping();
        let (router, openapi) = router(
            AppState {
                payments: payments.clone(),
                verifier,
                webhook_secret: settings.psp_webhook_secret.clone(),
            },
            db.clone(),
            stopping,
        );
        let platform::http::Bound {
            listener,
            app,
            port,
        } = platform::http::bind_service(common, NAME, (router, openapi), Readiness::database(db))
            .await?;
        Ok(Self {
            listener,
            app,
            port,
            payments,
            reconcile_every: Duration::from_millis(settings.reconcile_interval_ms.max(50)),
            reconcile_after: Duration::from_millis(settings.reconcile_after_ms),
            events,
            stop_signal,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves requests and reconciles unknown outcomes until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let reconciler = tokio::spawn(reconcile_forever(
            self.payments.clone(),
            self.reconcile_every,
            self.reconcile_after,
        ));
        let events = self.events.spawn();
        let shutdown = self.stop_signal.on(shutdown);
        let served = platform::http::serve(self.listener, self.app, shutdown).await;
        events.stop().await;
        reconciler.abort();
        Ok(served?)
    }
}

/// The reconciliation worker: settles payments whose gateway call left the outcome unknown.
async fn reconcile_forever(payments: Arc<service::Payments>, every: Duration, after: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match payments.reconcile(after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "reconciliation pass"),
            Err(e) => tracing::warn!(error = %e, "reconciliation failed; trying again"),
        }
    }
}
