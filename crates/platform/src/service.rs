//! One service anatomy (docs/conventions.md, "A service's anatomy"): a service declares what is its
//! own — name, database and migrations, event handler and the producers it follows, background
//! workers, routes and OpenAPI — and this module does the rest, the same way for every service:
//! connect and migrate, bind, serve, start and stop the event transport and the workers.
//!
//! ```ignore
//! pub struct Inventory;
//! pub type Application = platform::service::Application<Inventory>;
//!
//! impl platform::service::Service for Inventory {
//!     type Config = Config;
//!     async fn declare(config: Config) -> anyhow::Result<Declared> {
//!         let mut service = Declaration::connect(NAME, &config.common, &storage::MIGRATIONS).await?;
//!         let store = storage::open(service.database()?);
//!         service.consume(handler).follow("products", &config.settings.products_url);
//!         service.every(interval, move || work());
//!         Ok(service.serve(routes))
//!     }
//! }
//! ```
//!
//! Plain types and one trait, no macro: compiler errors and rust-analyzer stay in the service's code.
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use sqlx::migrate::Migrator;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::JwtVerifier;
use crate::config::CommonConfig;
use crate::db::Database;
use crate::events::{EventHandler, Events};
use crate::http::Readiness;
use crate::shutdown::{Shutdown, StopSignal};

/// A service's schema, one migration directory per dialect, and whether it keeps the platform's
/// event tables (outbox, inbox, cursors, dead letters).
pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
    pub events: bool,
}

/// Connects to the service's database (`common.database_url(name)`), runs its migrations and,
/// when it has events, the platform's event tables.
pub async fn connect(
    common: &CommonConfig,
    name: &str,
    migrations: &Migrations,
) -> anyhow::Result<Database> {
    connect_url(
        &common.database_url(name),
        common.database_max_connections,
        migrations,
    )
    .await
}

/// [`connect`] to an explicit URL (tests open a service's store on a test database this way).
pub async fn connect_url(
    url: &str,
    max_connections: u32,
    migrations: &Migrations,
) -> anyhow::Result<Database> {
    let db = Database::connect(
        url,
        max_connections,
        &migrations.sqlite,
        &migrations.postgres,
    )
    .await?;
    if migrations.events {
        crate::events::store::migrate(&db).await?;
    }
    Ok(db)
}

/// What a service is: how it is declared from its config. `Application<S>` then builds and runs
/// it; a service's `lib.rs` says `pub type Application = platform::service::Application<Me>;`.
pub trait Service: Sized + 'static {
    type Config: Send + 'static;

    /// Everything the service is made of, from its config.
    fn declare(config: Self::Config) -> impl Future<Output = anyhow::Result<Declared>>;
}

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service being declared: collect its parts, then [`Declaration::serve`] its routes.
pub struct Declaration {
    name: &'static str,
    common: CommonConfig,
    db: Option<Database>,
    verifier: Option<Arc<JwtVerifier>>,
    outbox: bool,
    handler: Option<Arc<dyn EventHandler>>,
    follows: Vec<(String, String)>,
    workers: Vec<Work>,
    /// Micro frontends served beside the API (`/ui/<name>/`).
    ui: Vec<axum::Router>,
}

impl Declaration {
    /// A service without a database (ready whenever it runs).
    pub fn new(name: &'static str, common: &CommonConfig) -> Self {
        Self {
            name,
            common: common.clone(),
            db: None,
            verifier: None,
            outbox: false,
            handler: None,
            follows: Vec::new(),
            workers: Vec::new(),
            ui: Vec::new(),
        }
    }

    /// A service with its own database, connected and migrated ([`connect`]): `/health/ready`
    /// asks it, and its events live in it.
    pub async fn connect(
        name: &'static str,
        common: &CommonConfig,
        migrations: &Migrations,
    ) -> anyhow::Result<Self> {
        let db = connect(common, name, migrations).await?;
        let mut service = Self::new(name, common);
        // The pool's usage as gauges (docs/operations.md), for as long as the service runs.
        let sampled = db.clone();
        service.every(crate::db::POOL_SAMPLE_INTERVAL, move || {
            sampled.record_pool_usage();
            std::future::ready(())
        });
        service.db = Some(db);
        Ok(service)
    }

    /// The service's database, to open its store on (an error when declared with
    /// [`Declaration::new`]).
    pub fn database(&self) -> anyhow::Result<Database> {
        self.db
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{}: declared without a database", self.name))
    }

    /// The verifier of the users service's tokens, made once: what routes and the event
    /// endpoints check bearer tokens with.
    pub fn verifier(&mut self) -> Arc<JwtVerifier> {
        let common = &self.common;
        self.verifier
            .get_or_insert_with(|| Arc::new(JwtVerifier::for_service(common)))
            .clone()
    }

    /// Makes the service a producer: its outbox is served as a feed (`GET /events`) and, with
    /// RabbitMQ, relayed to the broker; old entries are pruned. Needs [`Declaration::database`].
    pub fn outbox(&mut self) -> &mut Self {
        self.outbox = true;
        self
    }

    /// Makes the service a consumer of events, applied by `handler` (which also replays its dead
    /// letters, `GET /admin/dead-letters`). A consumer is a producer too. Then [`Declaration::follow`]
    /// each producer.
    pub fn consume(&mut self, handler: Arc<dyn EventHandler>) -> &mut Self {
        self.handler = Some(handler);
        self.outbox = true;
        self
    }

    /// Follows `producer`'s events (its feed at `url`, or its messages on the broker) with the
    /// handler given to [`Declaration::consume`].
    pub fn follow(&mut self, producer: &str, url: &str) -> &mut Self {
        self.follows.push((producer.to_owned(), url.to_owned()));
        self
    }

    /// A background worker: `work` runs every `interval` (first after one interval) while the
    /// service runs, and is stopped with it.
    pub fn every<F, W>(&mut self, interval: Duration, mut work: F) -> &mut Self
    where
        F: FnMut() -> W + Send + 'static,
        W: Future<Output = ()> + Send + 'static,
    {
        self.workers.push(Box::pin(async move {
            loop {
                tokio::time::sleep(interval).await;
                work().await;
            }
        }));
        self
    }

    /// Serves the micro frontend `name` from the embedded files `E` (the service's `web/` folder) at
    /// `/ui/<name>/` (docs/frontend.md).
    pub fn ui<E: rust_embed::RustEmbed + Send + Sync + 'static>(
        &mut self,
        name: &str,
    ) -> &mut Self {
        self.ui.push(crate::web::assets::<E>(name));
        self
    }

    /// The service's own routes with their OpenAPI (`OpenApiRouter::with_openapi(ApiDoc::openapi())`
    /// merged with its resources' routers, state given); the event endpoints are added here.
    pub fn serve(self, routes: OpenApiRouter) -> Declared {
        Declared {
            declaration: self,
            routes,
        }
    }
}

/// A declared service, ready to bind.
pub struct Declared {
    declaration: Declaration,
    routes: OpenApiRouter,
}

impl Declared {
    async fn bind<S>(self) -> anyhow::Result<Application<S>> {
        let Declared {
            mut declaration,
            mut routes,
        } = self;
        let (stop_signal, stopping) = crate::shutdown::stopping();
        let mut events = None;
        if declaration.outbox {
            let Some(db) = declaration.db.clone() else {
                anyhow::bail!(
                    "{}: a service with events needs a database",
                    declaration.name
                );
            };
            let verifier = declaration.verifier();
            let handler = declaration.handler.clone();
            routes = routes.merge(crate::events::routes(
                db.clone(),
                verifier,
                stopping,
                handler.clone().map(|h| (declaration.name, h)),
            ));
            let mut feed = Events::new(&declaration.common, declaration.name, db);
            if let Some(handler) = handler {
                for (producer, url) in &declaration.follows {
                    feed.follow(producer, url, handler.clone());
                }
            } else if !declaration.follows.is_empty() {
                anyhow::bail!(
                    "{}: follows producers without an event handler (`consume`)",
                    declaration.name
                );
            }
            events = Some(feed);
        }
        let readiness = match &declaration.db {
            Some(db) => Readiness::database(db.clone()),
            None => Readiness::always(),
        };
        let crate::http::Bound {
            listener,
            app,
            port,
        } = crate::http::bind_service(
            &declaration.common,
            declaration.name,
            with_ui(routes.split_for_parts(), declaration.ui),
            readiness,
        )
        .await?;
        Ok(Application {
            listener,
            app,
            port,
            events,
            workers: declaration.workers,
            stop_signal,
            service: PhantomData,
        })
    }
}

/// The API's router with the micro frontends' files beside it (they are not in the OpenAPI).
fn with_ui(
    (router, api): (axum::Router, utoipa::openapi::OpenApi),
    ui: Vec<axum::Router>,
) -> (axum::Router, utoipa::openapi::OpenApi) {
    (ui.into_iter().fold(router, axum::Router::merge), api)
}

/// A service bound to its port, ready to run.
pub struct Application<S> {
    listener: tokio::net::TcpListener,
    app: Router,
    port: u16,
    events: Option<Events>,
    workers: Vec<Work>,
    stop_signal: StopSignal,
    service: PhantomData<fn() -> S>,
}

impl<S: Service> Application<S> {
    /// Declares the service from `config`, connects what it declared and binds its port.
    pub async fn build(config: S::Config) -> anyhow::Result<Self> {
        S::declare(config).await?.bind().await
    }
}

impl<S> Application<S> {
    /// The port it listens on (the one chosen by the system when configured as 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves requests, runs the workers and the event transport until `shutdown`; then lets
    /// in-flight requests finish and stops the rest.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let workers: Vec<_> = self.workers.into_iter().map(tokio::spawn).collect();
        let events = self.events.map(Events::spawn);
        let shutdown = self.stop_signal.on(shutdown);
        let served = crate::http::serve(self.listener, self.app, shutdown).await;
        if let Some(events) = events {
            events.stop().await;
        }
        for worker in workers {
            worker.abort();
        }
        Ok(served?)
    }
}
