//! The payments service's configuration.
use secrecy::{ExposeSecret, SecretString};
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

/// The two secrets, read first so that a missing one is named by its variable: with a default,
/// anyone who knows it could forge the gateway's webhooks (`/webhooks/gateway` is public).
#[derive(Deserialize)]
struct Secrets {
    #[serde(default)]
    psp_api_key: Option<SecretString>,
    #[serde(default)]
    psp_webhook_secret: Option<SecretString>,
}

impl Secrets {
    fn check(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("psp_api_key", &self.psp_api_key),
            ("psp_webhook_secret", &self.psp_webhook_secret),
        ] {
            if value
                .as_ref()
                .is_none_or(|v| v.expose_secret().trim().is_empty())
            {
                anyhow::bail!(
                    "invalid configuration: `{name}` (AGORA_{}) is required and has no default; `agora up` generates one",
                    name.to_uppercase()
                );
            }
        }
        Ok(())
    }
}

/// A payments process's configuration.
pub type Config = platform::config::Config<Settings>;

impl platform::config::Settings for Settings {
    fn defaults() -> Value {
        json!({
            "port": crate::DEFAULT_PORT,
            "psp_url": "http://127.0.0.1:8086",
            "psp_timeout_ms": 5000,
            "psp_retries": 2,
            "psp_breaker_failures": 5,
            "psp_breaker_open_ms": 5000,
            "reconcile_interval_ms": 1000,
            "reconcile_after_ms": 3000,
        })
    }

    fn precheck(overrides: &Map<String, Value>) -> anyhow::Result<()> {
        platform::config::load::<Secrets>(Self::defaults(), overrides.clone())?.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    #[test]
    fn a_config_without_the_webhook_secret_is_refused_naming_the_variable() {
        let error = Config::load(overrides(&[("psp_api_key", "sk_test_x")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("AGORA_PSP_WEBHOOK_SECRET"), "{error:?}");
    }

    #[test]
    fn a_config_without_the_api_key_or_with_an_empty_one_is_refused_naming_the_variable() {
        for given in [
            overrides(&[("psp_webhook_secret", "whsec_x")]),
            overrides(&[("psp_webhook_secret", "whsec_x"), ("psp_api_key", " ")]),
        ] {
            let error = Config::load(given)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains("AGORA_PSP_API_KEY"), "{error:?}");
        }
    }

    #[test]
    fn a_config_with_both_secrets_loads() {
        let config = Config::load(overrides(&[
            ("psp_api_key", "sk_test_x"),
            ("psp_webhook_secret", "whsec_x"),
        ]))
        .unwrap();
        assert_eq!(
            config.settings.psp_webhook_secret.expose_secret(),
            "whsec_x"
        );
    }
}
