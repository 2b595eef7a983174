//! Typed configuration: defaults < optional TOML file (`AGORA_CONFIG`) < `AGORA_*` environment
//! variables < `AGORA_*_FILE` files < explicit overrides (command-line flags). Invalid values fail
//! at start with a message naming the setting.
use std::net::IpAddr;
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Settings every service has. A service loads it and its own settings struct from the same
/// layers with two calls to [`load`]; not `#[serde(flatten)]`, which would lose the setting's
/// name from error messages.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonConfig {
    /// Address to bind (`AGORA_HOST`).
    #[serde(default = "default_host")]
    pub host: IpAddr,
    /// Port to bind (`AGORA_PORT`); 0 picks a free one.
    pub port: u16,
    /// Where SQLite files and generated secrets live (`AGORA_DATA_DIR`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...` (`AGORA_DATABASE_URL`); a SQLite file in `data_dir` when unset.
    #[serde(default)]
    pub database_url: Option<String>,
    #[serde(default = "default_max_connections")]
    pub database_max_connections: u32,
    /// Base URL of the users service, which issues tokens and serves the JWKS (`AGORA_USERS_URL`).
    #[serde(default = "default_users_url")]
    pub users_url: String,
    /// Expected `iss` of access tokens (`AGORA_TOKEN_ISSUER`).
    #[serde(default = "default_issuer")]
    pub token_issuer: String,
    /// Expected `aud` of access tokens (`AGORA_TOKEN_AUDIENCE`).
    #[serde(default = "default_audience")]
    pub token_audience: String,
    /// A request that takes longer is answered 503 (`AGORA_REQUEST_TIMEOUT_MS`).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Larger request bodies are answered 413 (`AGORA_BODY_LIMIT_BYTES`).
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// This service's own OAuth2 client, for calls to other services (`AGORA_CLIENT_ID`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its secret (`AGORA_CLIENT_SECRET`); never logged.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// How events travel between services (`AGORA_EVENTS`): `feed` (no broker) or `rabbitmq`.
    #[serde(default)]
    pub events: EventTransport,
    /// The broker for `rabbitmq` (`AGORA_AMQP_URL`); its password is never logged.
    #[serde(default = "default_amqp_url")]
    pub amqp_url: SecretString,
    /// The topic exchange events are published to (`AGORA_AMQP_EXCHANGE`); queues are named after
    /// it (`<exchange>.<service>`), so two platforms can share a broker.
    #[serde(default = "default_amqp_exchange")]
    pub amqp_exchange: String,
    /// How long relayed outbox entries are kept before they are pruned (`AGORA_EVENTS_RETENTION_HOURS`).
    #[serde(default = "default_retention_hours")]
    pub events_retention_hours: u64,
    /// PEM certificate chain for serving HTTPS itself (`AGORA_TLS_CERT`, usually
    /// `AGORA_TLS_CERT_FILE`); see `platform::tls`.
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// Its PEM private key (`AGORA_TLS_KEY`, usually `AGORA_TLS_KEY_FILE`); never logged.
    #[serde(default)]
    pub tls_key: Option<SecretString>,
    /// The HTTPS port when TLS is on (`AGORA_TLS_PORT`); the plain port then redirects to it.
    #[serde(default = "default_tls_port")]
    pub tls_port: u16,
}

/// The event transports (see ADR 0004).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventTransport {
    /// Each producer serves its outbox at `GET /events`; consumers long-poll it.
    #[default]
    Feed,
    /// A relay publishes each producer's outbox to a RabbitMQ topic exchange; each consumer has
    /// its own durable queue.
    Rabbitmq,
}

fn default_amqp_url() -> SecretString {
    SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f")
}
fn default_amqp_exchange() -> String {
    "agora.events".into()
}
fn default_retention_hours() -> u64 {
    168
}
fn default_tls_port() -> u16 {
    8443
}

fn default_host() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_max_connections() -> u32 {
    10
}
fn default_users_url() -> String {
    "http://127.0.0.1:8081".into()
}
fn default_issuer() -> String {
    "agora".into()
}
fn default_audience() -> String {
    "agora".into()
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_body_limit() -> usize {
    1024 * 1024
}

impl CommonConfig {
    /// The database to use: the configured URL, or `<data_dir>/<service>.db`.
    pub fn database_url(&self, service: &str) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join(format!("{service}.db")).display()
            ),
        }
    }

    pub fn jwks_url(&self) -> String {
        format!(
            "{}/.well-known/jwks.json",
            self.users_url.trim_end_matches('/')
        )
    }
}

/// A service's own settings: their defaults, and the checks their types cannot express.
pub trait Settings: DeserializeOwned {
    /// The defaults of the service's settings and of the common ones it sets (its port).
    fn defaults() -> Value;

    /// Refuses, before the settings are parsed, what parsing would report without naming the
    /// variable (a missing secret). `overrides` are the flags the service was started with.
    fn precheck(_overrides: &Map<String, Value>) -> anyhow::Result<()> {
        Ok(())
    }

    /// Refuses values that parse but make no sense (ranges), naming the variable.
    fn check(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A service's configuration: what every service has, and its own settings.
pub struct Config<S> {
    pub common: CommonConfig,
    pub settings: S,
}

impl<S: Settings> Config<S> {
    /// From the defaults, `AGORA_CONFIG`, the environment and `overrides` ([`load`]).
    pub fn load(overrides: Map<String, Value>) -> anyhow::Result<Self> {
        S::precheck(&overrides)?;
        let defaults = S::defaults();
        let settings: S = load(defaults.clone(), overrides.clone())?;
        settings.check()?;
        Ok(Self {
            common: load(defaults, overrides)?,
            settings,
        })
    }
}

/// Loads a service's config. `defaults` are the service's own defaults (its port, say);
/// `overrides` win over everything (command-line flags). Keys are the field names; the matching
/// environment variable is `AGORA_` + the key in upper case.
pub fn load<T: DeserializeOwned>(
    defaults: Value,
    overrides: Map<String, Value>,
) -> anyhow::Result<T> {
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Ok(path) = std::env::var("AGORA_CONFIG") {
        if !std::path::Path::new(&path).is_file() {
            anyhow::bail!("invalid configuration: AGORA_CONFIG names {path}, which is not a file");
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment
        .merge(
            Env::prefixed("AGORA_")
                .ignore(&["CONFIG", "LOG_FORMAT"])
                .filter(|key| !key.as_str().ends_with(SECRET_FILE_SUFFIX)),
        )
        .merge(Serialized::defaults(Value::Object(secret_files(
            std::env::vars(),
        )?)))
        .merge(Serialized::defaults(Value::Object(overrides)));
    figment
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {}", describe(e)))
}

const SECRET_FILE_SUFFIX: &str = "_file";

/// `AGORA_<SETTING>_FILE=/run/secrets/x` sets `<setting>` to the file's content (one trailing newline
/// dropped): how Compose and Kubernetes mount secrets, so that no secret sits in the environment,
/// where `ps e` and crash dumps show it.
fn secret_files(
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<Map<String, Value>> {
    let mut values = Map::new();
    for (name, path) in vars {
        let Some(key) = name
            .strip_prefix("AGORA_")
            .and_then(|rest| rest.strip_suffix("_FILE"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!("invalid configuration: {name} names {path}, which cannot be read: {e}")
        })?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        values.insert(key.to_lowercase(), Value::String(text.to_owned()));
    }
    Ok(values)
}

fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(figment::Source::Custom(s)) => s.clone(),
                    _ => m.name.to_string(),
                })
                .unwrap_or_default();
            let env_name = if key.is_empty() {
                String::new()
            } else {
                format!(" (AGORA_{})", key.to_uppercase())
            };
            format!("setting `{key}`{env_name} from {source}: {}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Sample {
        greeting: String,
    }

    #[test]
    fn overrides_beat_defaults_and_database_defaults_to_a_sqlite_file() {
        let mut overrides = Map::new();
        overrides.insert("port".into(), json!(9999));
        let defaults = json!({"port": 8081, "greeting": "hi"});
        let common: CommonConfig = load(defaults.clone(), overrides.clone()).expect("valid config");
        let own: Sample = load(defaults, overrides).expect("valid config");
        assert_eq!(common.port, 9999);
        assert_eq!(own.greeting, "hi");
        assert!(common.database_url("users").ends_with("data/users.db"));
    }

    #[test]
    fn a_setting_can_come_from_a_secret_file_and_an_unreadable_one_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").expect("write");
        let vars = vec![
            (
                "AGORA_PSP_API_KEY_FILE".to_owned(),
                path.display().to_string(),
            ),
            ("AGORA_PORT".to_owned(), "1".to_owned()),
            ("HOME_FILE".to_owned(), "/nowhere".to_owned()),
        ];
        let values = secret_files(vars.into_iter()).expect("readable");
        assert_eq!(values.get("psp_api_key"), Some(&json!("s3cret")));
        assert_eq!(values.len(), 1);

        let missing = vec![("AGORA_AMQP_URL_FILE".to_owned(), "/nowhere/x".to_owned())];
        let message = secret_files(missing.into_iter())
            .expect_err("must fail")
            .to_string();
        assert!(message.contains("AGORA_AMQP_URL_FILE"), "{message}");
    }

    #[test]
    fn an_invalid_value_names_the_setting() {
        let mut overrides = Map::new();
        overrides.insert("port".into(), json!("not-a-port"));
        let error = load::<CommonConfig>(json!({"port": 8081}), overrides).expect_err("must fail");
        let message = error.to_string();
        assert!(message.contains("port"), "{message}");
        assert!(message.contains("AGORA_PORT"), "{message}");
    }
}
