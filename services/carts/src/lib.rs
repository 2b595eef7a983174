//! The carts service: guest carts (reached with the cart's secret) and each user's current cart,
//! priced on every read from a local projection of the catalog fed by products' and inventory's
//! events; merged at login; checked out through orders (`order_confirmed` closes the cart).
//! Publishes `cart_checked_out` and `cart_abandoned` through its outbox.
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
pub use routes::carts::SECRET_HEADER;

/// The `cart` micro frontend (docs/frontend.md), served at `/ui/cart/`.
#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Ui;

pub const NAME: &str = "carts";
pub const DEFAULT_PORT: u16 = 8087;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub store: Arc<dyn storage::Store>,
    pub verifier: Arc<JwtVerifier>,
    /// How long a guest cart lives without use.
    pub guest_ttl: chrono::Duration,
}

/// The service's routes and their OpenAPI document.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::with_openapi(platform::openapi::document(
        "Agora carts",
        "Guest and user carts priced from the catalog as it is now, merged at login, flagged when the catalog changes under them.",
    ))
        .merge(routes::carts::router())
        .with_state(state)
}

/// The carts service, as `platform::service` runs it.
pub struct Carts;

pub type Application = platform::service::Application<Carts>;

impl Service for Carts {
    type Config = Config;

    /// Follows the catalog, stock and order events; announces abandoned and deletes expired carts
    /// in the background.
    async fn declare(config: Config) -> anyhow::Result<Declared> {
        let settings = &config.settings;
        let mut service = Declaration::connect(NAME, &config.common, &storage::MIGRATIONS).await?;
        let store = storage::open(service.database()?);
        service.ui::<Ui>("cart");
        service
            .consume(Arc::new(events::Reactions {
                store: store.clone(),
            }))
            .follow("products", &settings.products_url)
            .follow("inventory", &settings.inventory_url)
            .follow("orders", &settings.orders_url);
        let guest_ttl = chrono::Duration::seconds(settings.guest_cart_ttl_seconds.max(1));
        let housekeeping = Housekeeping {
            store: store.clone(),
            abandon_after: chrono::Duration::seconds(settings.abandon_after_seconds.max(1)),
            guest_ttl,
        };
        service.every(
            Duration::from_millis(settings.housekeeping_interval_ms.max(50)),
            move || housekeep(housekeeping.clone()),
        );
        let verifier = service.verifier();
        Ok(service.serve(router(AppState {
            store,
            verifier,
            guest_ttl,
        })))
    }
}

/// What the housekeeping worker needs.
#[derive(Clone)]
struct Housekeeping {
    store: Arc<dyn storage::Store>,
    abandon_after: chrono::Duration,
    guest_ttl: chrono::Duration,
}

/// Publishes `cart_abandoned` for idle carts and deletes unused guest carts. Each cart is handled
/// by a conditional update, so replicas running this side by side announce a cart once.
async fn housekeep(h: Housekeeping) {
    let now = chrono::Utc::now();
    if let Err(e) = h.store.abandon_idle(now - h.abandon_after).await {
        tracing::warn!(error = %e, "announcing abandoned carts failed");
    }
    match h.store.expire_guests(now - h.guest_ttl).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(expired = n, "unused guest carts deleted"),
        Err(e) => tracing::warn!(error = %e, "deleting unused guest carts failed"),
    }
}
