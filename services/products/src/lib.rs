//! The products service: the catalog (categories and products), its search, and the product
//! events other services follow. Reads are public; writes need an admin token.
use std::sync::Arc;

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

pub const NAME: &str = "products";
pub const DEFAULT_PORT: u16 = 8082;

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
    info(title = "Agora products", description = "The catalog: categories, products and search."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The service's routes and their OpenAPI document.
pub fn router(
    state: AppState,
    db: Database,
    stopping: platform::shutdown::Stopping,
    handler: Arc<dyn platform::events::EventHandler>,
) -> (Router, utoipa::openapi::OpenApi) {
    let verifier = state.verifier.clone();
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::categories::router())
        .merge(routes::products::router())
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
    events: Events,
    stop_signal: platform::shutdown::StopSignal,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let common = &config.common;
        let (store, db) =
            storage::connect(&common.database_url(NAME), common.database_max_connections).await?;
        let verifier = Arc::new(JwtVerifier::for_service(common));
        let handler: Arc<dyn platform::events::EventHandler> = Arc::new(events::InventoryEvents {
            store: store.clone(),
        });
        let mut events = Events::new(common, NAME, db.clone());
        events.follow("inventory", &config.settings.inventory_url, handler.clone());
        let (stop_signal, stopping) = platform::shutdown::stopping();
        let (router, openapi) = router(AppState { store, verifier }, db.clone(), stopping, handler);
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
            events,
            stop_signal,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let events = self.events.spawn();
        let shutdown = self.stop_signal.on(shutdown);
        let served = platform::http::serve(self.listener, self.app, shutdown).await;
        events.stop().await;
        Ok(served?)
    }
}
