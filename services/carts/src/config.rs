//! The carts service's configuration.
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Base URLs of the services whose events carts follows (`AGORA_PRODUCTS_URL`, ...): the
    /// catalog (names, prices, deletions), stock levels, and confirmed orders. Followed only when
    /// this service has client credentials.
    pub products_url: String,
    pub inventory_url: String,
    pub orders_url: String,
    /// How often the housekeeping worker looks for abandoned and expired carts.
    pub housekeeping_interval_ms: u64,
    /// Idle time after which an open cart with lines is announced as `cart_abandoned`.
    pub abandon_after_seconds: i64,
    /// Unused time after which a guest cart is deleted (a user's cart is kept).
    pub guest_cart_ttl_seconds: i64,
}

/// A carts process's configuration.
pub type Config = platform::config::Config<Settings>;

impl platform::config::Settings for Settings {
    fn defaults() -> Value {
        json!({
            "port": crate::DEFAULT_PORT,
            "products_url": "http://127.0.0.1:8082",
            "inventory_url": "http://127.0.0.1:8083",
            "orders_url": "http://127.0.0.1:8084",
            "housekeeping_interval_ms": 60000,
            "abandon_after_seconds": 24 * 3600,
            "guest_cart_ttl_seconds": 30 * 24 * 3600,
        })
    }
}
