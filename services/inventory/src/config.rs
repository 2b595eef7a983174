//! The inventory service's configuration.
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Base URL of the products service, whose product events create and discontinue SKUs
    /// (`AGORA_PRODUCTS_URL`). Followed only when this service has client credentials.
    pub products_url: String,
    /// How often expired reservations are looked for.
    pub expiry_interval_ms: u64,
    /// Availability at or under which a SKU without a threshold of its own counts as low
    /// (`inventory_stock_low_skus`; docs/operations.md).
    pub low_stock_threshold: i64,
}

/// An inventory process's configuration.
pub type Config = platform::config::Config<Settings>;

impl platform::config::Settings for Settings {
    fn defaults() -> Value {
        json!({
            "port": crate::DEFAULT_PORT,
            "products_url": "http://127.0.0.1:8082",
            "expiry_interval_ms": 500,
            "low_stock_threshold": 5,
        })
    }
}
