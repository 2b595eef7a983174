//! The users service's configuration.
use platform::config::CommonConfig;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A service's own OAuth2 client, given by the launcher through the config file.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceClient {
    pub id: String,
    pub secret: SecretString,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Encrypts the token-signing key at rest: base64 of 32 bytes (`AGORA_KEY_ENCRYPTION_KEY`).
    #[serde(default)]
    pub key_encryption_key: Option<SecretString>,
    /// The first admin, created at start when both are set and the user does not exist yet.
    #[serde(default)]
    pub admin_email: Option<String>,
    #[serde(default)]
    pub admin_password: Option<SecretString>,
    pub admin_username: String,
    #[serde(default)]
    pub service_clients: Vec<ServiceClient>,
    pub access_token_seconds: i64,
    pub refresh_token_days: i64,
    /// Failed logins within `login_window_seconds` before further tries are refused with 429.
    pub login_failures_per_account: usize,
    pub login_failures_per_address: usize,
    pub login_window_seconds: u64,
}

pub struct Config {
    pub common: CommonConfig,
    pub settings: Settings,
}

impl Config {
    pub fn load(overrides: Map<String, Value>) -> anyhow::Result<Self> {
        let defaults = json!({
            "port": crate::DEFAULT_PORT,
            "admin_username": "admin",
            "access_token_seconds": 900,
            "refresh_token_days": 30,
            "login_failures_per_account": 5,
            "login_failures_per_address": 20,
            "login_window_seconds": 900,
        });
        Ok(Self {
            common: platform::config::load(defaults.clone(), overrides.clone())?,
            settings: platform::config::load(defaults, overrides)?,
        })
    }
}
