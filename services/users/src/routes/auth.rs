//! `/auth`: logging in, refreshing and logging out.
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use chrono::Utc;
use platform::error::Problem;
use platform::extract::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::crypto::sha256;
use crate::error::ApiError;
use crate::tokens::TokenPair;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Username or email.
    login: String,
    password: String,
}

/// The one answer for every failed login, so it tells nothing about which accounts exist.
fn bad_login() -> ApiError {
    Problem::unauthorized("The login or the password is wrong.").into()
}

pub fn invalid_refresh() -> ApiError {
    Problem::unauthorized("The refresh token is invalid, expired or revoked; log in again.").into()
}

fn throttled(wait: std::time::Duration) -> ApiError {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-logins",
        "Too many failed logins",
    )
    .detail("Too many failed logins; wait before trying again.")
    .retry_after(wait.as_secs().max(1))
    .into()
}

/// Logs in with a username or email and a password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = TokenPair),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Login>,
) -> Result<Json<TokenPair>, ApiError> {
    let login = body.login.trim().to_lowercase();
    let user = state.store.user_by_login(&login).await?;
    // Failures count against the account, however it is named (username or email); against
    // the text tried when there is no such account.
    let account = user.as_ref().map_or(login, |u| u.id.clone());
    let address = platform::http::client_ip(peer, &headers).to_string();
    let blocked = match state.account_throttle.blocked(&account).await? {
        Some(wait) => Some(wait),
        None => state.address_throttle.blocked(&address).await?,
    };
    if let Some(wait) = blocked {
        return Err(throttled(wait));
    }
    let matched = state
        .hasher
        .verify(
            &body.password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await;
    match user {
        Some(user) if matched && !user.disabled => {
            state.account_throttle.clear(&account).await?;
            Ok(Json(state.token_pair(&user, None).await?))
        }
        _ => {
            state.account_throttle.fail(&account).await?;
            state.address_throttle.fail(&address).await?;
            Err(bad_login())
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Trades a refresh token for a new pair. The old one stops working; presenting it again revokes
/// every token descended from the same login.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = TokenPair),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    let Some(token) = state
        .store
        .refresh_by_hash(&sha256(&body.refresh_token))
        .await?
    else {
        return Err(invalid_refresh());
    };
    if token.used_at.is_some() {
        tracing::warn!(family = %token.family_id, "a rotated refresh token was presented again; revoking its family");
        state.store.revoke_family(&token.family_id).await?;
        return Err(invalid_refresh());
    }
    if token.revoked_at.is_some() || token.expires_at <= Utc::now() {
        return Err(invalid_refresh());
    }
    let user = state.store.user(&token.user_id).await?;
    match user {
        Some(user) if !user.disabled => Ok(Json(state.token_pair(&user, Some(&token)).await?)),
        _ => Err(invalid_refresh()),
    }
}

/// Ends a login: the refresh token and every one rotated from the same login stop working.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshBody,
    responses((status = 204), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn logout(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    let Some(token) = state
        .store
        .refresh_by_hash(&sha256(&body.refresh_token))
        .await?
    else {
        return Err(invalid_refresh());
    };
    state.store.revoke_family(&token.family_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
