//! The carts service: guest carts (reached with the cart's secret) and each user's current cart,
//! priced on every read from a local projection of the catalog fed by products' and inventory's
//! events; merged at login; checked out through orders (`order_confirmed` closes the cart).
//! Publishes `cart_checked_out` and `cart_abandoned` through its outbox.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::Router;
use platform::auth::JwtVerifier;
use platform::db::Database;
use platform::events::Events;
use platform::http::{BearerAuth, Readiness};
use platform::shutdown::Shutdown;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub mod config;
pub mod domain;
mod error;
pub mod events;
mod routes;
pub mod storage;

pub use config::Config;
pub use routes::carts::SECRET_HEADER;

pub const NAME: &str = "carts";
pub const DEFAULT_PORT: u16 = 8087;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn storage::Store>,
    pub verifier: Arc<JwtVerifier>,
    /// How long a guest cart lives without use.
    pub guest_ttl: chrono::Duration,
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora carts",
        description = "Guest and user carts priced from the catalog as it is now, merged at login, flagged when the catalog changes under them."
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

pub fn router(
    state: AppState,
    db: Database,
    stopping: platform::shutdown::Stopping,
    handler: Arc<dyn platform::events::EventHandler>,
) -> (Router, utoipa::openapi::OpenApi) {
    let verifier = state.verifier.clone();
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::carts::router())
        .with_state(state)
        .merge(platform::events::routes(
            db,
            verifier,
            stopping,
            Some((NAME, handler)),
        ))
        .split_for_parts()
}

/// What the housekeeping worker needs.
#[derive(Clone)]
struct Housekeeping {
    store: Arc<dyn storage::Store>,
    every: Duration,
    abandon_after: chrono::Duration,
    guest_ttl: chrono::Duration,
}

pub struct Application {
    listener: tokio::net::TcpListener,
    app: Router,
    port: u16,
    housekeeping: Housekeeping,
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
        let guest_ttl = chrono::Duration::seconds(settings.guest_cart_ttl_seconds.max(1));
        let handler: Arc<dyn platform::events::EventHandler> = Arc::new(events::Reactions {
            store: store.clone(),
        });
        let mut events = Events::new(common, NAME, db.clone());
        events.follow("products", &settings.products_url, handler.clone());
        events.follow("inventory", &settings.inventory_url, handler.clone());
        events.follow("orders", &settings.orders_url, handler.clone());
        let (stop_signal, stopping) = platform::shutdown::stopping();
        let (router, openapi) = router(
            AppState {
                store: store.clone(),
                verifier,
                guest_ttl,
            },
            db.clone(),
            stopping,
            handler,
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
            housekeeping: Housekeeping {
                store,
                every: Duration::from_millis(settings.housekeeping_interval_ms.max(50)),
                abandon_after: chrono::Duration::seconds(settings.abandon_after_seconds.max(1)),
                guest_ttl,
            },
            events,
            stop_signal,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves requests, follows the catalog, stock and order events, and announces abandoned and
    /// deletes expired carts until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let housekeeping = tokio::spawn(housekeep_forever(self.housekeeping));
        let events = self.events.spawn();
        let shutdown = self.stop_signal.on(shutdown);
        let served = platform::http::serve(self.listener, self.app, shutdown).await;
        housekeeping.abort();
        events.stop().await;
        Ok(served?)
    }
}

/// Publishes `cart_abandoned` for idle carts and deletes unused guest carts. Each cart is handled
/// by a conditional update, so replicas running this side by side announce a cart once.
async fn housekeep_forever(h: Housekeeping) {
    loop {
        tokio::time::sleep(h.every).await;
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
}
