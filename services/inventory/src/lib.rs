//! The inventory service: stock per SKU, a ledger of every change, and reservations that never
//! oversell. It publishes stock changes through its outbox and follows the catalog's product events.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use platform::auth::JwtVerifier;
use platform::service::{Declaration, Declared, Service};
use utoipa_axum::router::OpenApiRouter;

pub mod config;
pub mod domain;
mod error;
pub mod events;
mod routes;
pub mod storage;

pub use config::Config;

pub const NAME: &str = "inventory";
pub const DEFAULT_PORT: u16 = 8083;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub store: Arc<dyn storage::Store>,
    pub verifier: Arc<JwtVerifier>,
}

/// The service's routes and their OpenAPI document.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::with_openapi(platform::openapi::document(
        "Agora inventory",
        "Stock levels, the stock ledger, and reservations that never oversell.",
    ))
    .merge(routes::stock::router())
    .merge(routes::reservations::router())
    .with_state(state)
}

/// The inventory service, as `platform::service` runs it.
pub struct Inventory;

pub type Application = platform::service::Application<Inventory>;

impl Service for Inventory {
    type Config = Config;

    /// Follows product events; releases expired reservations in the background.
    async fn declare(config: Config) -> anyhow::Result<Declared> {
        let mut service = Declaration::connect(NAME, &config.common, &storage::MIGRATIONS).await?;
        let store = storage::open(service.database()?);
        service
            .consume(Arc::new(events::ProductEvents {
                store: store.clone(),
            }))
            .follow("products", &config.settings.products_url);
        let expiry = Duration::from_millis(config.settings.expiry_interval_ms.max(50));
        let expiring = store.clone();
        service.every(expiry, move || expire(expiring.clone()));
        let measured = store.clone();
        let threshold = config.settings.low_stock_threshold;
        service.every(LEVELS_INTERVAL, move || {
            record_levels(measured.clone(), threshold)
        });
        let verifier = service.verifier();
        Ok(service.serve(router(AppState { store, verifier })))
    }
}

/// How often the reservation and stock gauges are brought up to date.
const LEVELS_INTERVAL: Duration = Duration::from_secs(5);

/// Sets the gauges `inventory_reservations_held`, `inventory_stock_low_skus` and
/// `inventory_stock_out_skus` (docs/operations.md) from one query: counted from the database
/// rather than kept up to date by each write, so every replica reports the same true figures.
async fn record_levels(store: Arc<dyn storage::Store>, low_stock_threshold: i64) {
    match store.levels(low_stock_threshold).await {
        Ok(levels) => {
            metrics::gauge!("inventory_reservations_held").set(levels.held as f64);
            metrics::gauge!("inventory_stock_low_skus").set(levels.low as f64);
            metrics::gauge!("inventory_stock_out_skus").set(levels.out as f64);
            // Shown at 0 before the first expiry, so that its rate is defined from the start.
            metrics::counter!("inventory_reservations_expired_total").increment(0);
        }
        Err(e) => tracing::warn!(error = %e, "reading reservation and stock levels failed"),
    }
}

/// Releases reservations whose TTL ran out, each in its own transaction.
async fn expire(store: Arc<dyn storage::Store>) {
    match store.due(chrono::Utc::now()).await {
        Ok(ids) => {
            for id in ids {
                if let Err(e) = store.release(&id, true).await {
                    tracing::warn!(reservation = %id, error = %e, "expiring a reservation failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "looking for expired reservations failed"),
    }
}
