//! The products service: the catalog (categories and products), its search, and the product
//! events other services follow. Reads are public; writes need an admin token.
use std::sync::Arc;

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
/// How long a listing or search page is kept (`routes/pages.rs`).
pub use routes::pages::PAGE_TTL;

/// The `catalog` micro frontend (docs/frontend.md), served at `/ui/catalog/`.
#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Ui;

pub const NAME: &str = "products";
pub const DEFAULT_PORT: u16 = 8082;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub store: Arc<dyn storage::Store>,
    /// Listing and search pages, kept for a moment (`routes/pages.rs`).
    pub pages: Arc<routes::pages::Pages>,
    pub verifier: Arc<JwtVerifier>,
}

/// The service's routes and their OpenAPI document.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::with_openapi(platform::openapi::document(
        "Agora products",
        "The catalog: categories, products and search.",
    ))
    .merge(routes::categories::router())
    .merge(routes::products::router())
    .with_state(state)
}

/// The products service, as `platform::service` runs it.
pub struct Products;

pub type Application = platform::service::Application<Products>;

impl Service for Products {
    type Config = Config;

    /// Follows inventory's stock events into each product's availability.
    async fn declare(config: Config) -> anyhow::Result<Declared> {
        let mut service = Declaration::connect(NAME, &config.common, &storage::MIGRATIONS).await?;
        let store = storage::open(service.database()?);
        service.ui::<Ui>("catalog");
        service
            .consume(Arc::new(events::InventoryEvents {
                store: store.clone(),
            }))
            .follow("inventory", &config.settings.inventory_url);
        let verifier = service.verifier();
        Ok(service.serve(router(AppState {
            store,
            pages: Arc::default(),
            verifier,
        })))
    }
}
