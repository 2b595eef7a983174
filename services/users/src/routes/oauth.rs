//! `POST /oauth/token`: the OAuth2 client-credentials grant (RFC 6749 §4.4), for calls between
//! services and for integrations.
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use platform::error::Problem;
use platform::extract::{Form, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::crypto::{same, sha256};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(token))
}

#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// A space-separated subset of the client's scopes; all of them when absent.
    scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientToken {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
}

fn invalid_client() -> ApiError {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed",
    )
    .detail("Unknown client or wrong secret.")
    .into()
}

/// Client id and secret from HTTP Basic, else from the form.
fn credentials(headers: &HeaderMap, form: &TokenRequest) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        });
    basic.or_else(|| Some((form.client_id.clone()?, form.client_secret.clone()?)))
}

/// Issues an access token to a client holding its id and secret.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = ClientToken),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenRequest>,
) -> Result<Json<ClientToken>, ApiError> {
    if form.grant_type != "client_credentials" {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        )
        .detail("Only `client_credentials` is supported here; users log in at /auth/login.")
        .into());
    }
    let (id, secret) = credentials(&headers, &form).ok_or_else(invalid_client)?;
    let client = state.store.client(&id).await?.ok_or_else(invalid_client)?;
    if !same(&sha256(&secret), &client.secret_hash) {
        return Err(invalid_client());
    }
    let held: Vec<&str> = client.scopes.split_whitespace().collect();
    let scope = match form.scope.as_deref() {
        None => held.join(" "),
        Some(asked) => {
            let asked: Vec<&str> = asked.split_whitespace().collect();
            if let Some(extra) = asked.iter().find(|s| !held.contains(s)) {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "Invalid scope",
                )
                .detail(format!("This client does not hold `{extra}`."))
                .into());
            }
            asked.join(" ")
        }
    };
    Ok(Json(ClientToken {
        access_token: state.access_token(&client.id, Vec::new(), scope.clone())?,
        token_type: "Bearer",
        expires_in: state.settings.access_token_seconds,
        scope,
    }))
}
