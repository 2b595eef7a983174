//! `/users`: registration, the signed-in user's own account, and (admin) every account.
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::{Admin, Authenticated};
use platform::error::{Problem, Violations};
use platform::extract::{Json, Query};
use platform::pagination::{PageQuery, Paginated};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{parse_roles, Email, NewPassword, Username, ROLE_CUSTOMER};
use crate::error::ApiError;
use crate::storage::UserRow;
use crate::tokens::TokenPair;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, list))
        .routes(routes!(me, update_me))
        .routes(routes!(get_one, update_one))
}

/// An account as the API shows it: never a password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    id: String,
    username: String,
    email: String,
    roles: Vec<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for UserView {
    fn from(row: UserRow) -> Self {
        let roles = row.roles();
        Self {
            id: row.id,
            username: row.username,
            email: row.email,
            roles,
            disabled: row.disabled,
            created_at: row.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    username: String,
    email: String,
    password: String,
}

/// Creates a customer account.
#[utoipa::path(post, path = "/users", tag = "users", request_body = Register,
    responses((status = 201, body = UserView, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn register(
    State(state): State<AppState>,
    Json(body): Json<Register>,
) -> Result<Response, ApiError> {
    let user = state
        .create_user(
            &body.username,
            &body.email,
            &body.password,
            vec![ROLE_CUSTOMER.into()],
        )
        .await?;
    let location = format!("/users/{}", user.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(UserView::from(user)),
    )
        .into_response())
}

impl AppState {
    /// Validates and stores a new account; every invalid field is named at once.
    pub async fn create_user(
        &self,
        username: &str,
        email: &str,
        password: &str,
        roles: Vec<String>,
    ) -> Result<UserRow, ApiError> {
        let mut v = Violations::new();
        let username = v.check("username", Username::parse(username));
        let email = v.check("email", Email::parse(email));
        let password = v.check(
            "password",
            NewPassword::parse(password, username.as_ref().map_or("", Username::as_str)),
        );
        let (Some(username), Some(email), Some(password)) = (username, email, password) else {
            return Err(v.into_problem().into());
        };
        let now = Utc::now();
        let row = UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            username: username.as_str().to_owned(),
            email: email.as_str().to_owned(),
            password_hash: self.hasher.hash(password.expose()).await?,
            roles: roles.join(" "),
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_user(&row).await?;
        Ok(row)
    }

    async fn signed_in(&self, claims: &platform::auth::Claims) -> Result<UserRow, ApiError> {
        let id = claims.user_id().ok_or_else(|| {
            Problem::forbidden("This is for signed-in users, not service clients.")
        })?;
        self.store
            .user(&id.to_string())
            .await?
            .ok_or_else(|| Problem::not_found("No such user.").into())
    }
}

/// The signed-in user's account.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.signed_in(&claims).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    email: Option<String>,
    password: Option<String>,
    /// Required to change the email or the password: a stolen access token alone must not be
    /// enough to take the account over. Missing: 422; wrong: 403.
    current_password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UpdatedMe {
    user: UserView,
    /// After a password change every login of the user is ended; these tokens start a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<TokenPair>,
}

/// Changes the signed-in user's email or password, both or neither, in one step. Either change
/// needs the current password (`current_password`: 422 when missing, 403 when wrong). A password
/// change revokes every refresh-token family of the user (every login, this one included: an
/// access token does not say which family it came from); the answer then carries a new token pair
/// so that this client stays signed in.
#[utoipa::path(patch, path = "/users/me", tag = "users", request_body = UpdateMe, security(("bearer" = [])),
    responses((status = 200, body = UpdatedMe),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Json(body): Json<UpdateMe>,
) -> Result<Json<UpdatedMe>, ApiError> {
    let user = state.signed_in(&claims).await?;
    let mut v = Violations::new();
    let email = body
        .email
        .as_deref()
        .and_then(|e| v.check("email", Email::parse(e)));
    let password = body
        .password
        .as_deref()
        .and_then(|p| v.check("password", NewPassword::parse(p, &user.username)));
    let changes = body.email.is_some() || body.password.is_some();
    if changes && body.current_password.is_none() {
        v.add(
            "current_password",
            "is required to change the email or the password",
        );
    }
    v.finish()?;
    if let Some(current) = body.current_password.as_deref().filter(|_| changes) {
        if !state
            .hasher
            .verify(current, Some(&user.password_hash))
            .await
        {
            return Err(Problem::forbidden("The current password is wrong.").into());
        }
    }
    let hash = match &password {
        Some(password) => Some(state.hasher.hash(password.expose()).await?),
        None => None,
    };
    if email.is_some() || hash.is_some() {
        state
            .store
            .update_account(&user.id, email.as_ref().map(Email::as_str), hash.as_deref())
            .await?;
    }
    let updated = state
        .store
        .user(&user.id)
        .await?
        .ok_or_else(|| Problem::not_found("No such user."))?;
    let tokens = match password {
        Some(_) => Some(state.token_pair(&updated, None).await?),
        None => None,
    };
    Ok(Json(UpdatedMe {
        user: updated.into(),
        tokens,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Part of a username or email.
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Every account, by id (admin).
#[utoipa::path(get, path = "/users", tag = "users", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = Paginated<UserView>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(params): Query<ListParams>,
) -> Result<Json<Paginated<UserView>>, ApiError> {
    let page = PageQuery {
        limit: params.limit,
        cursor: params.cursor,
    }
    .parse::<String>()?;
    let q = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let rows = state
        .store
        .list_users(q, page.after.as_deref(), page.fetch_limit())
        .await?;
    Ok(Json(
        Paginated::from_rows(rows, page.limit, |u| u.id.clone()).map(UserView::from),
    ))
}

async fn find(state: &AppState, id: &str) -> Result<UserRow, ApiError> {
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| Problem::bad_request("The user id is not a UUID."))?;
    state
        .store
        .user(&id.to_string())
        .await?
        .ok_or_else(|| Problem::not_found("No such user.").into())
}

/// One account (admin).
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(find(&state, &id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    roles: Option<Vec<String>>,
    /// A disabled user cannot log in or refresh; disabling ends every login.
    disabled: Option<bool>,
}

/// Changes an account's roles or disables it (admin).
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UpdateUser, security(("bearer" = [])),
    responses((status = 200, body = UserView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    Json(body): Json<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    let user = find(&state, &id).await?;
    let mut v = Violations::new();
    let roles = match &body.roles {
        Some(roles) => v.check("roles", parse_roles(roles)),
        None => Some(user.roles()),
    };
    let Some(roles) = roles else {
        return Err(v.into_problem().into());
    };
    state
        .store
        .set_access(
            &user.id,
            &roles.join(" "),
            body.disabled.unwrap_or(user.disabled),
        )
        .await?;
    Ok(Json(find(&state, &user.id).await?.into()))
}
