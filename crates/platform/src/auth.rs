//! Verification of the EdDSA access tokens the users service issues, and the axum extractors that
//! put it in front of handlers. Every service verifies tokens itself (zero trust).
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::error::Problem;

pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_CUSTOMER: &str = "customer";

/// The claims of an Agora access token (docs/conventions.md, Security).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// A user id, or a client id for client-credentials tokens.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Space-separated scopes, as OAuth2 writes them.
    #[serde(default)]
    pub scope: String,
}

impl Claims {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split_whitespace().any(|s| s == scope)
    }

    /// The user id, when the token was issued to a user rather than a client.
    pub fn user_id(&self) -> Option<Uuid> {
        if self.roles.is_empty() {
            return None;
        }
        Uuid::parse_str(&self.sub).ok()
    }
}

/// Where verification keys come from.
pub enum KeySource {
    /// A JWKS document fetched over HTTP (every service but users).
    Remote { url: String, http: reqwest::Client },
    /// The issuer's own keys, read in-process (the users service).
    Local(Arc<dyn Fn() -> JwkSet + Send + Sync>),
}

/// Why a token was refused; all of them answer 401 without saying which, to give nothing away.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("token rejected: {0}")]
    Invalid(String),
}

/// How far `exp` and `nbf` may be off the verifier's clock (clocks of different hosts drift).
const LEEWAY_SECONDS: i64 = 30;

/// At most this many verified tokens are remembered (a few hundred bytes each).
const MAX_VERIFIED: usize = 4096;

/// Verifies access tokens against the issuer's public keys, cached by `kid`, refreshed when a
/// token names a key not seen yet (the issuer rotated) but at most once per `min_refresh`.
pub struct JwtVerifier {
    source: KeySource,
    issuer: String,
    audience: String,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_refresh: Mutex<Option<Instant>>,
    min_refresh: Duration,
    /// Tokens that verified, by the SHA-256 of their whole text, with their claims. A caller
    /// sends the same token for many requests (orders' service token on every reservation, a
    /// shopper's for a whole session), and checking an Ed25519 signature costs far more than
    /// hashing the token (docs/performance.md). Only what passed every check is kept, and only
    /// while it would still pass: `exp` is checked again on every use, `nbf` cannot un-pass, and
    /// the whole map goes when the keys are fetched again (a key the issuer dropped stops
    /// verifying at once). The digest, not the token, is kept: nothing here can be replayed.
    verified: std::sync::Mutex<HashMap<[u8; 32], Claims>>,
    /// How many times the keys were fetched: a token whose check began under an earlier set is
    /// not remembered (a refresh during its check may have dropped its key).
    key_sets: AtomicU64,
}

impl JwtVerifier {
    pub fn new(source: KeySource, issuer: &str, audience: &str) -> Self {
        Self {
            source,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: RwLock::new(HashMap::new()),
            last_refresh: Mutex::new(None),
            min_refresh: Duration::from_secs(5),
            verified: std::sync::Mutex::new(HashMap::new()),
            key_sets: AtomicU64::new(0),
        }
    }

    /// Verifier for a service that fetches the JWKS from `url`.
    pub fn remote(url: &str, issuer: &str, audience: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self::new(
            KeySource::Remote {
                url: url.to_owned(),
                http,
            },
            issuer,
            audience,
        )
    }

    /// The verifier every service uses: the users service's JWKS, the configured issuer and
    /// audience.
    pub fn for_service(common: &crate::config::CommonConfig) -> Self {
        Self::remote(
            &common.jwks_url(),
            &common.token_issuer,
            &common.token_audience,
        )
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = unix_now();
        if let Some(claims) = self.verified().get(&digest) {
            if !expired(claims, now) {
                return Ok(claims.clone());
            }
        }
        let key_set = self.key_sets.load(Ordering::Acquire);
        let claims = self.verify_signed(token).await?;
        let mut verified = self.verified();
        // A refresh counts its new set before it clears the map under this lock: either the
        // count has moved here, or the clear comes after this insert.
        if self.key_sets.load(Ordering::Acquire) != key_set {
            return Ok(claims);
        }
        if verified.len() >= MAX_VERIFIED {
            verified.retain(|_, claims| !expired(claims, now));
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
        }
        verified.insert(digest, claims.clone());
        Ok(claims)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Claims>> {
        // Every change is one insert, retain or clear: nothing a panicking holder leaves half-done.
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every check of a token not verified before: algorithm, key, signature, claims.
    async fn verify_signed(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Invalid(format!("malformed header: {e}")))?;
        // The allow-list: only EdDSA, whatever the token claims, so `none` or HS256 with the
        // public key as secret cannot pass.
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} not allowed",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("no kid".into()))?;
        let key = match self.key(&kid).await {
            Some(key) => key,
            None => {
                self.refresh().await;
                self.key(&kid)
                    .await
                    .ok_or_else(|| TokenError::Invalid("unknown kid".into()))?
            }
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS.unsigned_abs();
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().await.get(kid).cloned()
    }

    async fn refresh(&self) {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return;
        }
        *last = Some(Instant::now());
        let set = match &self.source {
            KeySource::Local(keys) => Some(keys()),
            KeySource::Remote { url, http } => fetch_jwks(http, url).await,
        };
        let Some(set) = set else { return };
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
                keys.insert(kid.clone(), key);
            }
        }
        *self.keys.write().await = keys;
        self.key_sets.fetch_add(1, Ordering::Release);
        self.verified().clear();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// What `jsonwebtoken` decides for `exp`: a token is good until `exp` plus the leeway.
fn expired(claims: &Claims, now: i64) -> bool {
    claims.exp.saturating_add(LEEWAY_SECONDS) < now
}

async fn fetch_jwks(http: &reqwest::Client, url: &str) -> Option<JwkSet> {
    let response = match http.get(url).send().await {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            tracing::warn!(url, status = %response.status(), "fetching JWKS failed");
            return None;
        }
        Err(e) => {
            tracing::warn!(url, error = %e, "fetching JWKS failed");
            return None;
        }
    };
    response.json::<JwkSet>().await.ok()
}

/// The bearer token of a request, if any.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    bearer_from_headers(&parts.headers)
}

/// The bearer token in `Authorization`, if any.
pub fn bearer_from_headers(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Any caller with a valid access token: a user or a service client.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<JwtVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Claims>() {
            return Ok(Self(claims.clone()));
        }
        let token = bearer_token(parts).ok_or_else(|| {
            Problem::unauthorized("Send an access token as `Authorization: Bearer <token>`.")
        })?;
        let verifier = Arc::<JwtVerifier>::from_ref(state);
        match verifier.verify(token).await {
            Ok(claims) => {
                parts.extensions.insert(claims.clone());
                Ok(Self(claims))
            }
            Err(e) => {
                tracing::debug!(reason = %e, "access token refused");
                Err(Problem::unauthorized(
                    "The access token is invalid or expired.",
                ))
            }
        }
    }
}

/// A signed-in user holding the `admin` role.
#[derive(Debug, Clone)]
pub struct Admin(pub Claims);

impl<S> FromRequestParts<S> for Admin
where
    Arc<JwtVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        if claims.is_admin() {
            Ok(Self(claims))
        } else {
            Err(Problem::forbidden("This needs the admin role."))
        }
    }
}

/// Names a scope for [`Scoped`].
pub trait ScopeName {
    const SCOPE: &'static str;
}

/// A caller whose token carries the scope `S::SCOPE` (service-to-service calls).
#[derive(Debug, Clone)]
pub struct Scoped<S: ScopeName>(pub Claims, std::marker::PhantomData<S>);

impl<S: ScopeName, St> FromRequestParts<St> for Scoped<S>
where
    Arc<JwtVerifier>: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        if claims.has_scope(S::SCOPE) {
            Ok(Self(claims, std::marker::PhantomData))
        } else {
            Err(Problem::forbidden(format!(
                "This needs the `{}` scope.",
                S::SCOPE
            )))
        }
    }
}

#[cfg(test)]
mod proptests;
