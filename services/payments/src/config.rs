//! The payments service's configuration.
use platform::config::CommonConfig;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Base URL of the payment gateway's API (`AGORA_PSP_URL`): the simulator by default,
    /// `https://api.stripe.com` with a real key.
    pub psp_url: String,
    /// The gateway's secret API key (`AGORA_PSP_API_KEY`); never logged.
    pub psp_api_key: SecretString,
    /// The secret that signs the gateway's webhooks (`AGORA_PSP_WEBHOOK_SECRET`); never logged.
    pub psp_webhook_secret: SecretString,
    /// How long one gateway call may take before its outcome counts as unknown.
    pub psp_timeout_ms: u64,
    /// Further attempts of a gateway call whose outcome is unknown (same idempotency key).
    pub psp_retries: u32,
    /// Consecutive gateway failures that open the circuit breaker, and how long it stays open.
    pub psp_breaker_failures: u32,
    pub psp_breaker_open_ms: u64,
    /// How often the reconciliation worker looks for payments whose outcome is unknown, and how
    /// old such a payment must be before it does (so it does not race a request still in flight).
    pub reconcile_interval_ms: u64,
    pub reconcile_after_ms: u64,
}

pub struct Config {
    pub common: CommonConfig,
    pub settings: Settings,
}

impl Config {
    pub fn load(overrides: Map<String, Value>) -> anyhow::Result<Self> {
        let defaults = json!({
            "port": crate::DEFAULT_PORT,
            "psp_url": "http://127.0.0.1:8086",
            "psp_api_key": "sk_test_agora_local",
            "psp_webhook_secret": "whsec_agora_local",
            "psp_timeout_ms": 5000,
            "psp_retries": 2,
            "psp_breaker_failures": 5,
            "psp_breaker_open_ms": 5000,
            "reconcile_interval_ms": 1000,
            "reconcile_after_ms": 3000,
        });
        Ok(Self {
            common: platform::config::load(defaults.clone(), overrides.clone())?,
            settings: platform::config::load(defaults, overrides)?,
        })
    }
}
