//! The inventory service's configuration.
use platform::config::CommonConfig;
use serde::Deserialize;
use serde_json::{json, Map, Value};

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

pub struct Config {
    pub common: CommonConfig,
    pub settings: Settings,
}

impl Config {
    pub fn load(overrides: Map<String, Value>) -> anyhow::Result<Self> {
        let defaults = json!({
            "port": crate::DEFAULT_PORT,
            "products_url": "http://127.0.0.1:8082",
            "expiry_interval_ms": 500,
            "low_stock_threshold": 5,
        });
        Ok(Self {
            common: platform::config::load(defaults.clone(), overrides.clone())?,
            settings: platform::config::load(defaults, overrides)?,
        })
    }
}
