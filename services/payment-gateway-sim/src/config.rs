//! The payment gateway simulator's configuration.
use platform::config::CommonConfig;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::faults::Faults;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The API key clients must present (`AGORA_PSP_API_KEY`); never logged. The default is a
    /// fixed development key; `agora up` generates a new one at every start and gives it to
    /// payments and to the simulator.
    pub psp_api_key: SecretString,
    /// The secret that signs webhooks (`AGORA_PSP_WEBHOOK_SECRET`); never logged.
    pub psp_webhook_secret: SecretString,
    /// Where events are POSTed (`AGORA_PSP_WEBHOOK_URL`, or `AGORA_WEBHOOK_URL`); none: events
    /// are not delivered.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Fault injection at start; `PUT /admin/faults` changes it at run time.
    pub fault_latency_ms: u64,
    pub fault_error_rate: f64,
    pub fault_hang_rate: f64,
    pub fault_hang_ms: u64,
    pub fault_lost_answer_rate: f64,
    /// Seeds the fault dice, for a reproducible run; from entropy when unset.
    #[serde(default)]
    pub fault_seed: Option<u64>,
}

impl Settings {
    pub fn faults(&self) -> Faults {
        Faults {
            latency_ms: self.fault_latency_ms,
            error_rate: self.fault_error_rate,
            hang_rate: self.fault_hang_rate,
            hang_ms: self.fault_hang_ms,
            lost_answer_rate: self.fault_lost_answer_rate,
        }
    }
}

pub struct Config {
    pub common: CommonConfig,
    pub settings: Settings,
}

impl Config {
    pub fn load(mut overrides: Map<String, Value>) -> anyhow::Result<Self> {
        let defaults = json!({
            "port": crate::DEFAULT_PORT,
            "psp_api_key": "sk_test_agora_local",
            "psp_webhook_secret": "whsec_agora_local",
            "fault_latency_ms": 0,
            "fault_error_rate": 0.0,
            "fault_hang_rate": 0.0,
            "fault_hang_ms": 30_000,
            "fault_lost_answer_rate": 0.0,
        });
        // The setting is `webhook_url` (so `AGORA_WEBHOOK_URL`), but the PSP settings are named
        // `AGORA_PSP_*` everywhere else: that name is honoured too, below explicit overrides.
        if !overrides.contains_key("webhook_url") {
            if let Some(url) = std::env::var("AGORA_PSP_WEBHOOK_URL")
                .ok()
                .filter(|u| !u.is_empty())
            {
                overrides.insert("webhook_url".into(), Value::String(url));
            }
        }
        let common: CommonConfig = platform::config::load(defaults.clone(), overrides.clone())?;
        let mut settings: Settings = platform::config::load(defaults, overrides)?;
        settings.webhook_url = settings.webhook_url.filter(|u| !u.trim().is_empty());
        if let Err((knob, message)) = settings.faults().check() {
            anyhow::bail!(
                "invalid configuration: setting `fault_{knob}` (AGORA_FAULT_{}): {message}",
                knob.to_uppercase()
            );
        }
        Ok(Self { common, settings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_are_a_quiet_gateway_on_8086() {
        let config = Config::load(Map::new()).unwrap();
        assert_eq!(config.common.port, 8086);
        assert_eq!(config.settings.faults(), Faults::default());
        assert!(config
            .settings
            .psp_api_key
            .expose_secret()
            .starts_with("sk_test_"));
    }

    #[test]
    fn a_rate_above_one_is_refused_with_the_setting_named() {
        let mut overrides = Map::new();
        overrides.insert("fault_error_rate".into(), json!(2.0));
        let message = Config::load(overrides).err().unwrap().to_string();
        assert!(message.contains("fault_error_rate"), "{message}");
    }

    #[test]
    fn an_empty_webhook_url_means_none() {
        let mut overrides = Map::new();
        overrides.insert("webhook_url".into(), json!(""));
        assert!(Config::load(overrides)
            .unwrap()
            .settings
            .webhook_url
            .is_none());
    }
}
