//! The orders service: places orders through a checkout saga over products, inventory and
//! payments, persisted after every step and resumed after a crash; tracks status and history;
//! cancels, ships and delivers. Publishes what happened through its outbox.
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

pub mod clients;
pub mod config;
pub mod domain;
mod error;
pub mod events;
mod routes;
pub mod saga;
pub mod storage;

pub use config::Config;

pub const NAME: &str = "orders";
pub const DEFAULT_PORT: u16 = 8084;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn storage::Store>,
    pub saga: Arc<saga::Saga>,
    pub verifier: Arc<JwtVerifier>,
    pub request_deadline: Duration,
    pub saga_deadline: Duration,
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora orders",
        description = "Place orders (a checkout saga over inventory and payments), track them, cancel them; ship and deliver them as an admin."
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
        .merge(routes::orders::router())
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
    state: AppState,
    recovery_interval: Duration,
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
        let saga = Arc::new(saga::Saga {
            store: store.clone(),
            clients: clients::Clients::new(common, settings),
            reservation_ttl_seconds: settings.reservation_ttl_seconds.clamp(60, 3600),
            lease: Duration::from_millis(settings.lease_ms),
        });
        let state = AppState {
            store,
            saga,
            verifier,
            request_deadline: Duration::from_millis(settings.request_deadline_ms),
            saga_deadline: Duration::from_millis(settings.saga_deadline_ms),
        };
        let handler: Arc<dyn platform::events::EventHandler> = Arc::new(events::Reactions {
            store: state.store.clone(),
        });
        let mut events = Events::new(common, NAME, db.clone());
        events.follow("payments", &settings.payments_url, handler.clone());
        events.follow("inventory", &settings.inventory_url, handler.clone());
        let (stop_signal, stopping) = platform::shutdown::stopping();
        let (router, openapi) = router(state.clone(), db.clone(), stopping, handler);
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
            state,
            recovery_interval: Duration::from_millis(settings.recovery_interval_ms.max(50)),
            events,
            stop_signal,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves requests and resumes interrupted sagas until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let recovery = tokio::spawn(recover_forever(self.state.clone(), self.recovery_interval));
        let events = self.events.spawn();
        let shutdown = self.stop_signal.on(shutdown);
        let served = platform::http::serve(self.listener, self.app, shutdown).await;
        events.stop().await;
        recovery.abort();
        Ok(served?)
    }
}

/// The recovery worker: resumes every saga whose step is due (a retry after a failure, or an order
/// whose process died mid-saga).
async fn recover_forever(state: AppState, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let due = match state.store.due(chrono::Utc::now(), 20).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "looking for sagas to resume failed");
                continue;
            }
        };
        let runs = due.iter().map(|id| state.saga.advance(id));
        for (id, result) in due.iter().zip(futures::future::join_all(runs).await) {
            if let Err(e) = result {
                tracing::warn!(order = %id, error = %e, "resuming a saga failed");
            }
        }
    }
}
