//! Gateway settings: the upstream replicas of each service, the route table, and the knobs of
//! balancing, resilience and rate limiting.
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

/// How a replica is chosen among the healthy ones.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    RoundRobin,
    /// Power of two choices: the less busy of two replicas picked at random.
    P2c,
}

/// Whether a route needs a signed-in caller at the edge. A token sent to any route is verified.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Public,
    Authenticated,
}

/// One line of the route table: requests under `prefix` go to `service`, with `strip` removed
/// from the front of the path.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteConfig {
    pub prefix: String,
    pub service: String,
    #[serde(default)]
    pub strip: String,
    /// Put in front of the path after `strip` (e.g. `/api/admin/orders/x` → `/admin/x`).
    #[serde(default)]
    pub to: String,
    #[serde(default = "default_access")]
    pub access: Access,
    /// Per-route upstream timeout; the gateway answers 504 past it.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

fn default_access() -> Access {
    Access::Public
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Base URLs of each service's replicas (`AGORA_UPSTREAMS` is rarely used: `agora up` writes
    /// them into the gateway's config file).
    pub upstreams: BTreeMap<String, Vec<String>>,
    pub routes: Vec<RouteConfig>,
    pub balance: Balance,
    pub upstream_timeout_ms: u64,
    pub health_interval_ms: u64,
    /// Consecutive failures that open a service's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker answers 503 before letting a probe through.
    pub breaker_open_ms: u64,
    pub rate_limit_ip_per_second: u32,
    pub rate_limit_ip_burst: u32,
    pub rate_limit_user_per_second: u32,
    pub rate_limit_user_burst: u32,
    /// How often clients idle long enough to be indistinguishable from new ones are forgotten by
    /// the rate limiters.
    pub rate_limit_sweep_ms: u64,
    /// How long the merged OpenAPI document is served before the services' specs are fetched again.
    pub openapi_cache_ms: u64,
    /// Origins allowed by CORS; empty allows none.
    pub cors_origins: Vec<String>,
    pub max_connections_per_replica: usize,
}

/// A gateway process's configuration.
pub type Config = platform::config::Config<Settings>;

impl platform::config::Settings for Settings {
    fn defaults() -> Value {
        defaults()
    }
}

/// The route table of docs/conventions.md (API conventions): public resources under `/api`, the JWKS and the payment
/// gateway's webhook at their own paths. Anything else, including every service's internal paths
/// (`/events`, `/metrics`, `/health/*`, service-scoped resources), is not routed: 404 at the edge.
fn defaults() -> Value {
    let api = |prefix: &str, service: &str, access: &str| json!({"prefix": format!("/api{prefix}"), "service": service, "strip": "/api", "access": access});
    json!({
        "port": crate::DEFAULT_PORT,
        "upstreams": {
            "users": ["http://127.0.0.1:8081"],
            "products": ["http://127.0.0.1:8082"],
            "inventory": ["http://127.0.0.1:8083"],
            "orders": ["http://127.0.0.1:8084"],
            "payments": ["http://127.0.0.1:8085"],
            "carts": ["http://127.0.0.1:8087"],
        },
        "routes": [
            api("/users/me", "users", "authenticated"),
            api("/users", "users", "public"),
            api("/auth", "users", "public"),
            api("/oauth", "users", "public"),
            api("/clients", "users", "authenticated"),
            api("/products", "products", "public"),
            api("/categories", "products", "public"),
            api("/stock", "inventory", "public"),
            api("/orders", "orders", "authenticated"),
            api("/payments", "payments", "authenticated"),
            // Guests use carts without a token (their cart's secret is the credential).
            api("/carts", "carts", "public"),
            // Dead letters of each consuming service, for the admin (admins only: the services check the role).
            {"prefix": "/api/admin/products", "service": "products", "strip": "/api/admin/products", "to": "/admin", "access": "authenticated"},
            {"prefix": "/api/admin/inventory", "service": "inventory", "strip": "/api/admin/inventory", "to": "/admin", "access": "authenticated"},
            {"prefix": "/api/admin/orders", "service": "orders", "strip": "/api/admin/orders", "to": "/admin", "access": "authenticated"},
            {"prefix": "/api/admin/carts", "service": "carts", "strip": "/api/admin/carts", "to": "/admin", "access": "authenticated"},
            // Micro frontends served by the service owning their data (docs/frontend.md).
            {"prefix": "/ui/catalog", "service": "products"},
            {"prefix": "/ui/cart", "service": "carts"},
            {"prefix": "/ui/account", "service": "users"},
            {"prefix": "/ui/orders", "service": "orders"},
            {"prefix": "/.well-known", "service": "users"},
            {"prefix": "/webhooks/gateway", "service": "payments"},
        ],
        "balance": "p2c",
        "upstream_timeout_ms": 5000,
        "health_interval_ms": 1000,
        "breaker_failures": 5,
        "breaker_open_ms": 5000,
        "rate_limit_ip_per_second": 1000,
        "rate_limit_ip_burst": 2000,
        "rate_limit_user_per_second": 100,
        "rate_limit_user_burst": 200,
        "rate_limit_sweep_ms": 10000,
        "openapi_cache_ms": 60000,
        "cors_origins": [],
        "max_connections_per_replica": 64,
    })
}
