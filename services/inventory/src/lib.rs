//! The inventory service: stock per SKU, a ledger of every change, and reservations that never
//! oversell. It publishes stock changes through its outbox and follows the catalog's product events.
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

pub const NAME: &str = "inventory";
pub const DEFAULT_PORT: u16 = 8083;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn storage::Store>,
    pub verifier: Arc<JwtVerifier>,
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora inventory",
        description = "Stock levels, the stock ledger, and reservations that never oversell."
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
        .merge(routes::stock::router())
        .merge(routes::reservations::router())
        .with_state(state)
        .merge(platform::events::routes(
            db,
            verifier,
            stopping,
            Some((NAME, handler)),
        ))
        .split_for_parts()
}

pub struct Application {
    listener: tokio::net::TcpListener,
    app: Router,
    port: u16,
    store: Arc<dyn storage::Store>,
    expiry_interval: Duration,
    events: Events,
    stop_signal: platform::shutdown::StopSignal,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let common = &config.common;
        let (store, db) =
            storage::connect(&common.database_url(NAME), common.database_max_connections).await?;
        let verifier = Arc::new(JwtVerifier::for_service(common));
        let handler: Arc<dyn platform::events::EventHandler> = Arc::new(events::ProductEvents {
            store: store.clone(),
        });
        let mut events = Events::new(common, NAME, db.clone());
        events.follow("products", &config.settings.products_url, handler.clone());
        let (stop_signal, stopping) = platform::shutdown::stopping();
        let (router, openapi) = router(
            AppState {
                store: store.clone(),
                verifier,
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
            store,
            expiry_interval: Duration::from_millis(config.settings.expiry_interval_ms.max(50)),
            events,
            stop_signal,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves requests, releases expired reservations and follows product events until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let expiry = tokio::spawn(expire_forever(self.store.clone(), self.expiry_interval));
        let events = self.events.spawn();
        let shutdown = self.stop_signal.on(shutdown);
        let served = platform::http::serve(self.listener, self.app, shutdown).await;
        expiry.abort();
        events.stop().await;
        Ok(served?)
    }
}

/// Releases reservations whose TTL ran out, each in its own transaction.
async fn expire_forever(store: Arc<dyn storage::Store>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
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
}
