//! The users service: accounts, logins, tokens and OAuth2 clients. It is Agora's only token
//! issuer; every other service verifies its tokens against the keys it publishes.
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use chrono::Utc;
use platform::auth::{JwtVerifier, KeySource};
use platform::service::{Declaration, Declared, Service};
use secrecy::ExposeSecret;
use utoipa_axum::router::OpenApiRouter;

pub mod config;
mod crypto;
pub mod domain;
mod error;
mod routes;
pub mod storage;
mod throttle;
mod tokens;

pub use config::Config;

use config::Settings;
use crypto::{Hasher, Keys, StoredKey};
use storage::{ClientRow, KeyRow, Store};
use throttle::Throttle;

pub const NAME: &str = "users";
pub const DEFAULT_PORT: u16 = 8081;

/// Shared state of the service; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub verifier: Arc<JwtVerifier>,
    hasher: Hasher,
    keys: Arc<Keys>,
    issuer: String,
    audience: String,
    public_url: String,
    settings: Settings,
    account_throttle: Throttle,
    address_throttle: Throttle,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The service's routes and their OpenAPI document.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::with_openapi(platform::openapi::document(
        "Agora users",
        "Accounts, authentication, tokens and OAuth2 clients.",
    ))
    .merge(routes::users::router())
    .merge(routes::auth::router())
    .merge(routes::oauth::router())
    .merge(routes::clients::router())
    .merge(routes::well_known::router())
    .with_state(state)
}

/// Loads the signing keys, generating the first one on first start. With a key-encryption key,
/// keys stored in plaintext (before one was configured) are encrypted in place first.
async fn signing_keys(store: &dyn Store, settings: &Settings) -> anyhow::Result<Keys> {
    let kek = settings.key_encryption_key()?;
    let mut stored = store.keys().await?;
    if let Some(kek) = &kek {
        let mut encrypted = 0;
        for key in stored.iter().filter(|k| !k.encrypted) {
            let sealed = crypto::encrypt_stored(kek, &key.private_key)?;
            if store.encrypt_key(&key.kid, &sealed).await? {
                encrypted += 1;
            }
        }
        if encrypted > 0 {
            tracing::info!(count = encrypted, "encrypted stored token-signing keys");
            stored = store.keys().await?;
        }
    } else {
        tracing::warn!("no key-encryption key (AGORA_KEY_ENCRYPTION_KEY or AGORA_KEY_ENCRYPTION_KEY_FILE): the token-signing key is stored unencrypted");
    }
    if stored.is_empty() {
        let key = Keys::generate(kek.as_ref())?;
        store
            .insert_key(&KeyRow {
                kid: key.kid,
                private_key: key.private_key,
                encrypted: key.encrypted,
                public_key: key.public_key,
                created_at: Utc::now(),
            })
            .await?;
        stored = store.keys().await?;
        tracing::info!(encrypted = kek.is_some(), "generated a token-signing key");
    }
    let stored: Vec<StoredKey> = stored
        .into_iter()
        .map(|k| StoredKey {
            kid: k.kid,
            private_key: k.private_key,
            encrypted: k.encrypted,
            public_key: k.public_key,
        })
        .collect();
    Keys::load(&stored, kek.as_ref())
}

impl AppState {
    /// The services' own clients from config: stored (hashed) so they can get tokens.
    async fn register_service_clients(&self) -> anyhow::Result<()> {
        for client in &self.settings.service_clients {
            let scopes = domain::parse_scopes(&client.scopes).map_err(|e| {
                anyhow::anyhow!("invalid configuration: service client `{}`: {e}", client.id)
            })?;
            self.store
                .upsert_client(&ClientRow {
                    id: client.id.clone(),
                    name: format!("{} service", client.id),
                    secret_hash: crypto::sha256(client.secret.expose_secret()),
                    scopes: scopes.join(" "),
                    created_at: Utc::now(),
                    deleted_at: None,
                })
                .await?;
        }
        Ok(())
    }

    /// Creates the first admin from config when it does not exist yet.
    async fn bootstrap_admin(&self) -> anyhow::Result<()> {
        let (Some(email), Some(password)) =
            (&self.settings.admin_email, &self.settings.admin_password)
        else {
            return Ok(());
        };
        let username = self.settings.admin_username.to_lowercase();
        if self.store.user_by_login(&username).await?.is_some() {
            return Ok(());
        }
        let roles = vec![
            domain::ROLE_ADMIN.to_owned(),
            domain::ROLE_CUSTOMER.to_owned(),
        ];
        match self
            .create_user(&username, email, password.expose_secret(), roles)
            .await
        {
            Ok(_) => {
                tracing::info!(username, "created the first admin");
                Ok(())
            }
            Err(error::ApiError::Problem(problem)) => anyhow::bail!(
                "invalid configuration: the admin account cannot be created: {}",
                problem
                    .errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Err(e) => anyhow::bail!("creating the first admin failed: {e}"),
        }
    }
}

/// The users service, as `platform::service` runs it.
pub struct Users;

pub type Application = platform::service::Application<Users>;

/// The micro frontend "account" (log in, register, account page, header menu): docs/frontend.md.
#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Ui;

impl Service for Users {
    type Config = Config;

    /// No events; at start it loads (or makes) its signing keys, registers the services' clients
    /// and creates the first admin.
    async fn declare(config: Config) -> anyhow::Result<Declared> {
        let common = config.common;
        let settings = config.settings;
        let mut service = Declaration::connect(NAME, &common, &storage::MIGRATIONS).await?;
        service.ui::<Ui>("account");
        let store = storage::open(service.database()?);
        let keys = Arc::new(signing_keys(store.as_ref(), &settings).await?);
        let jwks = keys.clone();
        let verifier = Arc::new(JwtVerifier::new(
            KeySource::Local(Arc::new(move || jwks.jwks())),
            &common.token_issuer,
            &common.token_audience,
        ));
        let window = Duration::from_secs(settings.login_window_seconds);
        let state = AppState(Arc::new(Inner {
            store: store.clone(),
            verifier,
            hasher: Hasher::new()?,
            keys,
            issuer: common.token_issuer.clone(),
            audience: common.token_audience.clone(),
            public_url: common.users_url.clone(),
            account_throttle: Throttle::new(
                store.clone(),
                "account",
                settings.login_failures_per_account,
                window,
            ),
            address_throttle: Throttle::new(
                store.clone(),
                "address",
                settings.login_failures_per_address,
                window,
            ),
            settings,
        }));
        state.register_service_clients().await?;
        state.bootstrap_admin().await?;
        Ok(service.serve(router(state)))
    }
}
