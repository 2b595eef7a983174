//! The orders service: places orders through a checkout saga over products, inventory and
//! payments, persisted after every step and resumed after a crash; tracks status and history;
//! cancels, ships and delivers. Publishes what happened through its outbox.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use platform::auth::JwtVerifier;
use platform::service::{Declaration, Declared, Service};
use utoipa_axum::router::OpenApiRouter;

pub mod clients;
pub mod config;
pub mod domain;
mod error;
pub mod events;
mod routes;
pub mod storage;
pub mod workflow;

pub use config::Config;

pub const NAME: &str = "orders";
pub const DEFAULT_PORT: u16 = 8084;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub store: Arc<dyn storage::Store>,
    pub saga: Arc<workflow::Saga>,
    pub verifier: Arc<JwtVerifier>,
    #[from_ref(skip)]
    pub request_deadline: Duration,
    #[from_ref(skip)]
    pub saga_deadline: Duration,
}

/// The service's routes and their OpenAPI document.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::with_openapi(platform::openapi::document(
        "Agora orders",
        "Place orders (a checkout saga over inventory and payments), track them, cancel them; ship and deliver them as an admin.",
    ))
        .merge(routes::orders::router())
        .with_state(state)
}

/// The orders service, as `platform::service` runs it.
pub struct Orders;

pub type Application = platform::service::Application<Orders>;

/// The micro frontend "orders" (order history and detail): docs/frontend.md.
#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Ui;

impl Service for Orders {
    type Config = Config;

    /// Follows payments and inventory; resumes interrupted sagas in the background.
    async fn declare(config: Config) -> anyhow::Result<Declared> {
        let (common, settings) = (&config.common, &config.settings);
        let mut service = Declaration::connect(NAME, common, &storage::MIGRATIONS).await?;
        service.ui::<Ui>("orders");
        let store = storage::open(service.database()?);
        service
            .consume(Arc::new(events::Reactions {
                store: store.clone(),
            }))
            .follow("payments", &settings.payments_url)
            .follow("inventory", &settings.inventory_url);
        let state = AppState {
            store: store.clone(),
            saga: Arc::new(workflow::Saga {
                store,
                clients: clients::Clients::new(common, settings),
                reservation_ttl_seconds: settings.reservation_ttl_seconds.clamp(60, 3600),
                lease: Duration::from_millis(settings.lease_ms),
            }),
            verifier: service.verifier(),
            request_deadline: Duration::from_millis(settings.request_deadline_ms),
            saga_deadline: Duration::from_millis(settings.saga_deadline_ms),
        };
        let recovering = state.clone();
        service.every(
            Duration::from_millis(settings.recovery_interval_ms.max(50)),
            move || recover(recovering.clone()),
        );
        Ok(service.serve(router(state)))
    }
}

/// The recovery worker's pass: resumes every saga whose step is due (a retry after a failure, or
/// an order whose process died mid-saga).
async fn recover(state: AppState) {
    let due = match state.store.due(chrono::Utc::now(), 20).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "looking for sagas to resume failed");
            return;
        }
    };
    let runs = due.iter().map(|id| state.saga.advance(id));
    for (id, result) in due.iter().zip(futures::future::join_all(runs).await) {
        if let Err(e) = result {
            tracing::warn!(order = %id, error = %e, "resuming a saga failed");
        }
    }
}
