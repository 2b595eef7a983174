//! A stand-in token issuer for testing a service on its own: it serves a JWKS on a random local
//! port and mints EdDSA tokens exactly as the users service does, with whatever claims a test needs.
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::Claims;
use serde_json::json;

pub const ISSUER: &str = "agora";
pub const AUDIENCE: &str = "agora";
/// What the stand-in `/oauth/token` grants.
pub const SERVICE_SCOPES: &str = "events:read inventory:reserve payments:write";

pub struct TestIssuer {
    /// Pass as the service's `users_url`; the JWKS is at `<users_url>/.well-known/jwks.json`.
    pub users_url: String,
    kid: String,
    key: EncodingKey,
}

impl TestIssuer {
    pub async fn start() -> Arc<Self> {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = uuid::Uuid::now_v7().to_string();
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}]});
        let der = signing.to_pkcs8_der().expect("pkcs8");
        let key = EncodingKey::from_ed_der(der.as_bytes());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = Arc::new(Self {
            users_url: format!("http://127.0.0.1:{port}"),
            kid,
            key,
        });
        let minting = issuer.clone();
        // A client-credentials endpoint that trusts every caller and grants every service scope:
        // enough for a service under test to read another's event feed or call another service.
        let app = Router::new()
            .route(
                "/.well-known/jwks.json",
                get(move || {
                    let jwks = jwks.clone();
                    async move { axum::Json(jwks) }
                }),
            )
            .route(
                "/oauth/token",
                post(move || {
                    let token = minting.service("test-client", SERVICE_SCOPES);
                    async move {
                        axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 900, "scope": SERVICE_SCOPES}))
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        issuer
    }

    pub fn claims(&self, sub: &str, roles: &[&str], scope: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            sub: sub.into(),
            aud: AUDIENCE.into(),
            exp: now + 900,
            iat: now,
            nbf: None,
            jti: uuid::Uuid::now_v7().to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            scope: scope.into(),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// A token for a new admin user.
    pub fn admin(&self) -> String {
        let sub = uuid::Uuid::now_v7().to_string();
        self.sign(&self.claims(&sub, &["admin", "customer"], ""))
    }

    /// A token for a new customer.
    pub fn customer(&self) -> String {
        let sub = uuid::Uuid::now_v7().to_string();
        self.sign(&self.claims(&sub, &["customer"], ""))
    }

    /// A client-credentials token carrying `scope`.
    pub fn service(&self, client: &str, scope: &str) -> String {
        self.sign(&self.claims(client, &[], scope))
    }
}
