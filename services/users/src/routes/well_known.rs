//! `/.well-known`: the public keys that verify Agora's tokens, and the issuer's metadata.
use axum::extract::State;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use platform::extract::Json;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(openid_configuration))
}

/// The token-signing public keys (JWKS), current and previous.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "well-known",
    responses((status = 200, body = Object)))]
async fn jwks(State(state): State<AppState>) -> Json<jsonwebtoken::jwk::JwkSet> {
    Json(state.keys.jwks())
}

/// The issuer's metadata (OpenID Connect discovery subset).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "well-known",
    responses((status = 200, body = Object)))]
async fn openid_configuration(State(state): State<AppState>) -> Json<Value> {
    let base = state.public_url.trim_end_matches('/');
    Json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/oauth/token"),
        // Users log in and refresh at /auth/login and /auth/refresh, outside OAuth2.
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "scopes_supported": crate::domain::KNOWN_SCOPES,
    }))
}
