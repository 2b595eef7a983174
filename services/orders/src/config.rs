//! The orders service's configuration.
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Base URLs of the services the checkout calls (`AGORA_PRODUCTS_URL`, ...).
    pub products_url: String,
    pub inventory_url: String,
    pub payments_url: String,
    /// Base URL of carts, whose carts an order can be placed from (`AGORA_CARTS_URL`).
    pub carts_url: String,
    /// Longest wait for one call to another service.
    pub call_timeout_ms: u64,
    /// How long `POST /orders` waits for the saga before answering 202.
    pub request_deadline_ms: u64,
    /// How long the saga keeps retrying an unreachable service before it compensates.
    pub saga_deadline_ms: u64,
    /// How long stock stays held for an order that is not confirmed yet.
    pub reservation_ttl_seconds: i64,
    /// How often the recovery worker looks for sagas to resume.
    pub recovery_interval_ms: u64,
    /// How long a running step keeps the recovery worker away (a crash ends it after that).
    pub lease_ms: u64,
}

/// An orders process's configuration.
pub type Config = platform::config::Config<Settings>;

impl platform::config::Settings for Settings {
    fn defaults() -> Value {
        json!({
            "port": crate::DEFAULT_PORT,
            "products_url": "http://127.0.0.1:8082",
            "inventory_url": "http://127.0.0.1:8083",
            "payments_url": "http://127.0.0.1:8085",
            "carts_url": "http://127.0.0.1:8087",
            "call_timeout_ms": 5000,
            "request_deadline_ms": 2000,
            "saga_deadline_ms": 30000,
            "reservation_ttl_seconds": 900,
            "recovery_interval_ms": 500,
            "lease_ms": 10000,
        })
    }
}
