//! The users service's configuration.
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

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
    /// Or a file holding it (`AGORA_KEY_ENCRYPTION_KEY_FILE`), as `agora up` passes it: the key
    /// itself then appears in no environment and no config file.
    #[serde(default)]
    pub key_encryption_key_file: Option<PathBuf>,
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

impl Settings {
    /// The key-encryption key, from the setting or its file; `None` when neither is set.
    pub fn key_encryption_key(&self) -> anyhow::Result<Option<[u8; 32]>> {
        match (&self.key_encryption_key, &self.key_encryption_key_file) {
            (Some(_), Some(_)) => anyhow::bail!(
                "invalid configuration: set `key_encryption_key` (AGORA_KEY_ENCRYPTION_KEY) or `key_encryption_key_file` (AGORA_KEY_ENCRYPTION_KEY_FILE), not both"
            ),
            (Some(key), None) => Ok(Some(crate::crypto::parse_kek(key.expose_secret())?)),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!(
                        "invalid configuration: `key_encryption_key_file` (AGORA_KEY_ENCRYPTION_KEY_FILE): cannot read {}: {e}",
                        path.display()
                    )
                })?;
                Ok(Some(crate::crypto::parse_kek(&text)?))
            }
            (None, None) => Ok(None),
        }
    }
}

/// A users process's configuration.
pub type Config = platform::config::Config<Settings>;

impl platform::config::Settings for Settings {
    fn defaults() -> Value {
        json!({
            "port": crate::DEFAULT_PORT,
            "admin_username": "admin",
            "access_token_seconds": 900,
            "refresh_token_days": 30,
            "login_failures_per_account": 5,
            "login_failures_per_address": 20,
            "login_window_seconds": 900,
        })
    }

    fn check(&self) -> anyhow::Result<()> {
        // Token lifetimes are added to the clock: bounded so that the sum cannot overflow.
        if !(1..=86_400).contains(&self.access_token_seconds) {
            anyhow::bail!("invalid configuration: `access_token_seconds` (AGORA_ACCESS_TOKEN_SECONDS) must be 1 to 86400");
        }
        if !(1..=3_650).contains(&self.refresh_token_days) {
            anyhow::bail!("invalid configuration: `refresh_token_days` (AGORA_REFRESH_TOKEN_DAYS) must be 1 to 3650");
        }
        Ok(())
    }
}
