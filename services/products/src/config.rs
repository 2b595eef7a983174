//! The catalog's configuration: the shared settings, and where inventory's events come from.
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Base URL of the inventory service, whose `stock_changed` events feed availability
    /// (`AGORA_INVENTORY_URL`). Followed only when this service has client credentials.
    pub inventory_url: String,
}

/// A products process's configuration.
pub type Config = platform::config::Config<Settings>;

impl platform::config::Settings for Settings {
    fn defaults() -> Value {
        json!({"port": crate::DEFAULT_PORT, "inventory_url": "http://127.0.0.1:8083"})
    }
}
