//! The catalog's configuration: the shared settings, and where inventory's events come from.
use platform::config::CommonConfig;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Base URL of the inventory service, whose `stock_changed` events feed availability
    /// (`AGORA_INVENTORY_URL`). Followed only when this service has client credentials.
    pub inventory_url: String,
}

pub struct Config {
    pub common: CommonConfig,
    pub settings: Settings,
}

impl Config {
    pub fn load(overrides: Map<String, Value>) -> anyhow::Result<Self> {
        let defaults =
            json!({"port": crate::DEFAULT_PORT, "inventory_url": "http://127.0.0.1:8083"});
        Ok(Self {
            common: platform::config::load(defaults.clone(), overrides.clone())?,
            settings: platform::config::load(defaults, overrides)?,
        })
    }
}
