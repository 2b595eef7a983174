//! The API gateway: one front door for every Agora service. It routes `/api/<resource>` to the
//! owning service, balances across replicas with active and passive health checks, wraps each
//! service in a timeout and a circuit breaker, and enforces edge security (token verification, rate
//! limits, body size, CORS, security headers).
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::{any, get};
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use platform::auth::JwtVerifier;
use platform::http::{Readiness, Service};
use platform::shutdown::Shutdown;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod balancer;
pub mod config;
mod edge;
mod health;
mod openapi;
mod proxy;
pub mod routes;
pub mod session;
mod status;
mod web;

pub use config::Config;

use balancer::Upstream;
use config::Settings;
use platform::breaker::Breaker;
use routes::RouteTable;

pub const NAME: &str = "gateway";
pub const DEFAULT_PORT: u16 = 8080;

/// Shared state of the gateway; cheap to clone.
#[derive(Clone)]
pub struct Gateway(Arc<Inner>);

pub struct Inner {
    pub table: RouteTable,
    pub upstreams: HashMap<String, Arc<Upstream>>,
    pub client: Client<HttpConnector, Body>,
    pub verifier: Arc<JwtVerifier>,
    pub ip_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub user_limiter: DefaultKeyedRateLimiter<String>,
    pub settings: Settings,
    pub body_limit: usize,
    pub(crate) spec: openapi::SpecCache,
}

impl Deref for Gateway {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Gateway {
    pub fn new(config: &Config) -> Self {
        let settings = config.settings.clone();
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(settings.max_connections_per_replica)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let upstreams = settings
            .upstreams
            .iter()
            .filter(|(_, urls)| !urls.is_empty())
            .map(|(service, urls)| {
                let breaker = Breaker::new(
                    settings.breaker_failures,
                    Duration::from_millis(settings.breaker_open_ms),
                );
                (
                    service.clone(),
                    Arc::new(Upstream::new(service, urls, settings.balance, breaker)),
                )
            })
            .collect();
        let quota = |per_second: u32, burst: u32| {
            let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
            Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate))
        };
        Self(Arc::new(Inner {
            table: RouteTable::new(&settings.routes),
            upstreams,
            client,
            verifier: Arc::new(JwtVerifier::remote(
                &config.common.jwks_url(),
                &config.common.token_issuer,
                &config.common.token_audience,
            )),
            ip_limiter: RateLimiter::keyed(quota(
                settings.rate_limit_ip_per_second,
                settings.rate_limit_ip_burst,
            )),
            user_limiter: RateLimiter::keyed(quota(
                settings.rate_limit_user_per_second,
                settings.rate_limit_user_burst,
            )),
            body_limit: config.common.body_limit_bytes,
            spec: openapi::SpecCache::default(),
            settings,
        }))
    }
}

/// The gateway's own routes: the merged spec, the proxy for everything it routes, the session
/// and status routes; and the OpenAPI document of the gateway's own paths (`/session*`,
/// `/status`; the proxied ones are in each service's, merged at `/api/openapi.json`).
pub fn router(gateway: Gateway) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(platform::openapi::document(
        "Agora gateway",
        "The gateway's own paths: the browser session (tokens and the guest cart's secret in \
         HttpOnly cookies, CSRF) and the admin status page. Every public route of the services is \
         in the merged document at /api/openapi.json.",
    ))
    .route("/api/openapi.json", get(openapi::merged))
    .route("/api/{*path}", any(proxy::forward))
    .route("/.well-known/{*path}", any(proxy::forward))
    .route("/webhooks/gateway", any(proxy::forward))
    .route("/ui/{*path}", any(proxy::forward))
    .routes(routes!(status::status))
    .merge(session::routes())
    .with_state(gateway.clone())
    .split_for_parts();
    // The shell page and the gateway's own micro frontends (the others are proxied above).
    let router = router.merge(web::router());
    // Everything over every route as one layer: each `Router::layer` boxes every route once more,
    // and each box is cloned and its future allocated again on every request.
    let layers = ServiceBuilder::new()
        .option_layer(cors(&gateway.settings.cors_origins))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("referrer-policy", "no-referrer"))
        .layer(header("cross-origin-resource-policy", "same-site"))
        // A browser's unsafe request must prove it comes from our page (the shell's routes are
        // GET only, which it lets through).
        .layer(axum::middleware::from_fn(session::csrf));
    (router.layer(layers), openapi)
}

/// A security header every answer gets, unless its handler set it.
fn header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

/// CORS for the configured origins; none when no origin is.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::header::IF_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-cart-secret"),
            ])
            .expose_headers([
                axum::http::header::ETAG,
                axum::http::header::LOCATION,
                axum::http::header::RETRY_AFTER,
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

pub struct Application {
    listener: tokio::net::TcpListener,
    app: Router,
    gateway: Gateway,
    port: u16,
    /// TLS settings (`platform::tls`): the gateway is what clients reach.
    common: platform::config::CommonConfig,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let gateway = Gateway::new(&config);
        let (router, openapi) = router(gateway.clone());
        let app = platform::http::app_with_docs(
            Service {
                name: NAME,
                router,
                openapi,
                readiness: Readiness::always(),
                request_timeout: Duration::from_millis(config.common.request_timeout_ms),
                body_limit: config.common.body_limit_bytes,
            },
            "/api/openapi.json",
        );
        let listener =
            platform::http::bind(SocketAddr::new(config.common.host, config.common.port)).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            app,
            gateway,
            port,
            common: config.common,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state, so tests can look at the breakers and rate limiters.
    pub fn gateway(&self) -> Gateway {
        self.gateway.clone()
    }

    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let checks = tokio::spawn(health::check_forever(self.gateway.clone()));
        let sweeps = tokio::spawn(edge::sweep_forever(self.gateway.clone()));
        let served =
            platform::http::serve_with_tls(&self.common, self.listener, self.app, shutdown).await;
        checks.abort();
        sweeps.abort();
        served
    }
}
