//! `/clients`: OAuth2 clients for integrations (admin). A secret is shown once, at creation.
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::Admin;
use platform::error::{Problem, Violations};
use platform::extract::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::crypto::{random_token, sha256};
use crate::domain::parse_scopes;
use crate::error::ApiError;
use crate::storage::ClientRow;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(delete))
}

#[derive(Serialize, ToSchema)]
pub struct ClientView {
    client_id: String,
    name: String,
    scopes: Vec<String>,
    created_at: DateTime<Utc>,
}

impl From<ClientRow> for ClientView {
    fn from(row: ClientRow) -> Self {
        Self {
            client_id: row.id,
            name: row.name,
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            created_at: row.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NewClient {
    #[serde(flatten)]
    client: ClientView,
    /// Shown this once; only its hash is kept.
    client_secret: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    name: String,
    scopes: Vec<String>,
}

/// Creates a client (admin) and shows its secret once.
#[utoipa::path(post, path = "/clients", tag = "clients", request_body = CreateClient, security(("bearer" = [])),
    responses((status = 201, body = NewClient),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    Json(body): Json<CreateClient>,
) -> Result<Response, ApiError> {
    let mut v = Violations::new();
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        v.add("name", "must be 1 to 100 characters");
    }
    let scopes = v.check("scopes", parse_scopes(&body.scopes));
    let Some(scopes) = scopes.filter(|_| v.is_empty()) else {
        return Err(v.into_problem().into());
    };
    let secret = random_token();
    let row = ClientRow {
        id: format!("cli_{}", uuid::Uuid::now_v7().simple()),
        name: name.to_owned(),
        secret_hash: sha256(&secret),
        scopes: scopes.join(" "),
        created_at: Utc::now(),
        deleted_at: None,
    };
    state.store.insert_client(&row).await?;
    let location = format!("/clients/{}", row.id);
    let body = NewClient {
        client: row.into(),
        client_secret: secret,
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct ClientList {
    items: Vec<ClientView>,
}

/// Every live client, without secrets (admin).
#[utoipa::path(get, path = "/clients", tag = "clients", security(("bearer" = [])),
    responses((status = 200, body = ClientList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list(State(state): State<AppState>, _admin: Admin) -> Result<Json<ClientList>, ApiError> {
    let items = state
        .store
        .clients()
        .await?
        .into_iter()
        .map(ClientView::from)
        .collect();
    Ok(Json(ClientList { items }))
}

/// Deletes a client (admin): it gets no token from now on.
#[utoipa::path(delete, path = "/clients/{id}", tag = "clients", security(("bearer" = [])),
    responses((status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_client(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("No such client.").into())
    }
}
