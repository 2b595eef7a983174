//! The payments service: authorizes, captures, voids and refunds through an external payment
//! gateway (Stripe's API; the simulator by default), exactly once under retries, timeouts and
//! crashes. Publishes what happened through its outbox.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use platform::auth::JwtVerifier;
use platform::breaker::Breaker;
use platform::service::{Declaration, Declared, Service};
use secrecy::SecretString;
use utoipa_axum::router::OpenApiRouter;

pub mod clients;
pub mod config;
pub mod domain;
mod error;
mod routes;
pub mod storage;
pub mod workflow;

pub use config::Config;
pub use routes::webhooks::verify as verify_webhook_signature;

pub const NAME: &str = "payments";
pub const DEFAULT_PORT: u16 = 8085;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub payments: Arc<workflow::Payments>,
    pub verifier: Arc<JwtVerifier>,
    pub webhook_secret: SecretString,
}

/// The service's routes and their OpenAPI document.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::with_openapi(platform::openapi::document(
        "Agora payments",
        "Authorize, capture, void and refund through the payment gateway, exactly once. Money is integer minor units; card details are never accepted.",
    ))
        .merge(routes::payments::router())
        .merge(routes::webhooks::router())
        .with_state(state)
}

/// The payments service, as `platform::service` runs it.
pub struct PaymentsService;

pub type Application = platform::service::Application<PaymentsService>;

impl Service for PaymentsService {
    type Config = Config;

    /// A producer only (its outbox, relayed to RabbitMQ when configured); reconciles unknown
    /// gateway outcomes in the background.
    async fn declare(config: Config) -> anyhow::Result<Declared> {
        let (common, settings) = (&config.common, &config.settings);
        let mut service = Declaration::connect(NAME, common, &storage::MIGRATIONS).await?;
        let gateway = clients::stripe::StripeGateway::new(
            &settings.psp_url,
            settings.psp_api_key.clone(),
            Duration::from_millis(settings.psp_timeout_ms.max(1)),
            settings.psp_retries,
            Breaker::new(
                settings.psp_breaker_failures,
                Duration::from_millis(settings.psp_breaker_open_ms),
            ),
        );
        let payments = Arc::new(workflow::Payments {
            store: storage::open(service.database()?),
            gateway: Arc::new(gateway),
        });
        service.outbox();
        let reconciling = payments.clone();
        let after = Duration::from_millis(settings.reconcile_after_ms);
        service.every(
            Duration::from_millis(settings.reconcile_interval_ms.max(50)),
            move || reconcile(reconciling.clone(), after),
        );
        let state = AppState {
            payments,
            verifier: service.verifier(),
            webhook_secret: settings.psp_webhook_secret.clone(),
        };
        Ok(service.serve(router(state)))
    }
}

/// The reconciliation worker's pass: settles payments whose gateway call left the outcome unknown.
async fn reconcile(payments: Arc<workflow::Payments>, after: Duration) {
    match payments.reconcile(after).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "reconciliation pass"),
        Err(e) => tracing::warn!(error = %e, "reconciliation failed; trying again"),
    }
}
