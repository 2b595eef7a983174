//! `/reservations`: holding stock for a checkout, all lines or none, then committing (sold) or
//! releasing it. Callers need a service token with the `inventory:reserve` scope.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use platform::auth::{ScopeName, Scoped};
use platform::error::{FieldError, Problem};
use platform::extract::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{parse_lines, MAX_TTL_SECONDS};
use crate::error::ApiError;
use crate::storage::{Reservation, Reserved};
use crate::AppState;

pub struct Reserve;
impl ScopeName for Reserve {
    const SCOPE: &'static str = "inventory:reserve";
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reserve))
        .routes(routes!(get_one))
        .routes(routes!(commit))
        .routes(routes!(release))
        .routes(routes!(give_back))
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct Line {
    sku: String,
    quantity: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReservationView {
    id: String,
    /// pending, committed, released, expired or returned.
    status: String,
    items: Vec<Line>,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl From<Reservation> for ReservationView {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.row.id,
            status: r.row.status,
            items: r
                .lines
                .into_iter()
                .map(|(sku, quantity)| Line { sku, quantity })
                .collect(),
            expires_at: r.row.expires_at,
            created_at: r.row.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// Chosen by the caller (orders uses the order id): repeating a request is safe.
    reservation_id: String,
    items: Vec<Line>,
    /// 1 to 3600; a reservation not committed by then is released.
    ttl_seconds: i64,
}

fn id_in_path(text: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| Problem::bad_request("The reservation id is not a UUID.").into())
}

/// What makes a repeat "the same request": the lines and the TTL, as the canonical JSON
/// `{"items":[["SKU",2]],"ttl_seconds":60}` (keys in this order), hashed. Serialised straight from
/// the values rather than through a `serde_json::Value`; the text, and so the hash of every
/// reservation stored before, is the same.
fn request_hash(lines: &[(String, i64)], ttl_seconds: i64) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Canonical<'a> {
        items: &'a [(String, i64)],
        ttl_seconds: i64,
    }
    let canonical = serde_json::to_vec(&Canonical {
        items: lines,
        ttl_seconds,
    })?;
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(&canonical) {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    Ok(hex)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Reserves every line or none.
#[utoipa::path(post, path = "/reservations", tag = "reservations", request_body = ReserveBody, security(("bearer" = ["inventory:reserve"])),
    responses((status = 201, body = ReservationView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Short: `short` names each SKU"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn reserve(
    State(state): State<AppState>,
    _caller: Scoped<Reserve>,
    Json(body): Json<ReserveBody>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let id = match uuid::Uuid::parse_str(&body.reservation_id) {
        Ok(id) => Some(id.to_string()),
        Err(_) => {
            errors.push(FieldError::new("reservation_id", "must be a UUID"));
            None
        }
    };
    if !(1..=MAX_TTL_SECONDS).contains(&body.ttl_seconds) {
        errors.push(FieldError::new(
            "ttl_seconds",
            format!("must be 1 to {MAX_TTL_SECONDS}"),
        ));
    }
    let raw: Vec<(String, i64)> = body
        .items
        .iter()
        .map(|l| (l.sku.clone(), l.quantity))
        .collect();
    let lines = match parse_lines(&raw) {
        Ok(lines) => Some(lines),
        Err((field, message)) => {
            errors.push(FieldError::new(field, message));
            None
        }
    };
    let (Some(id), Some(lines), true) = (id, lines, errors.is_empty()) else {
        return Err(Problem::validation(errors).into());
    };
    // Strings and integers always serialise; were it ever to fail, a 500 rather than a wrong hash.
    let request_hash =
        request_hash(&lines, body.ttl_seconds).map_err(|_| ApiError::from(Problem::internal()))?;
    let expires_at = Utc::now() + Duration::seconds(body.ttl_seconds);
    let reserved = state
        .store
        .reserve(&id, &lines, &request_hash, expires_at)
        .await?;
    // What new reservations came to (a replay is not counted again).
    let outcome = match &reserved {
        Reserved::Created(_) => Some("held"),
        Reserved::Short(_) => Some("short"),
        Reserved::Unknown(_) => Some("unknown_sku"),
        Reserved::Replayed(_) | Reserved::Mismatch => None,
    };
    if let Some(outcome) = outcome {
        metrics::counter!("inventory_reservations_total", "outcome" => outcome).increment(1);
    }
    match reserved {
        Reserved::Created(r) | Reserved::Replayed(r) => {
            Ok((StatusCode::CREATED, Json(ReservationView::from(r))).into_response())
        }
        Reserved::Mismatch => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-mismatch",
            "Reservation id reused",
        )
        .detail("This reservation_id was used with other items or TTL.")
        .into()),
        Reserved::Unknown(skus) => Err(Problem::validation(
            skus.iter()
                .map(|s| {
                    FieldError::new(
                        "items",
                        format!("no stock is kept for {s}, or it is discontinued"),
                    )
                })
                .collect(),
        )
        .extension("unknown_skus", &skus)
        .into()),
        Reserved::Short(short) => Err(Problem::new(
            StatusCode::CONFLICT,
            "insufficient-stock",
            "Not enough stock",
        )
        .detail(format!(
            "Not enough stock for {}; nothing was reserved.",
            short
                .iter()
                .map(|s| s.sku.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .extension("short", &short)
        .into()),
    }
}

/// One reservation.
#[utoipa::path(get, path = "/reservations/{id}", tag = "reservations", security(("bearer" = ["inventory:reserve"])),
    responses((status = 200, body = ReservationView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(state): State<AppState>,
    _caller: Scoped<Reserve>,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let id = id_in_path(&id)?;
    let found = state
        .store
        .reservation(&id)
        .await?
        .ok_or_else(|| Problem::not_found("No such reservation."))?;
    Ok(Json(found.into()))
}

/// Turns the reserved units into sold ones. Committing again answers the same.
#[utoipa::path(post, path = "/reservations/{id}/commit", tag = "reservations", security(("bearer" = ["inventory:reserve"])),
    responses((status = 200, body = ReservationView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn commit(
    State(state): State<AppState>,
    _caller: Scoped<Reserve>,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let id = id_in_path(&id)?;
    Ok(Json(state.store.commit(&id).await?.into()))
}

/// Gives the reserved units back. Releasing again answers the same.
#[utoipa::path(post, path = "/reservations/{id}/release", tag = "reservations", security(("bearer" = ["inventory:reserve"])),
    responses((status = 200, body = ReservationView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn release(
    State(state): State<AppState>,
    _caller: Scoped<Reserve>,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let id = id_in_path(&id)?;
    Ok(Json(state.store.release(&id, false).await?.into()))
}

/// Puts the units of a committed reservation back on hand, as when an order is cancelled after
/// its stock was sold. Returning again answers the same.
#[utoipa::path(post, path = "/reservations/{id}/return", tag = "reservations", security(("bearer" = ["inventory:reserve"])),
    responses((status = 200, body = ReservationView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not committed")))]
async fn give_back(
    State(state): State<AppState>,
    _caller: Scoped<Reserve>,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let id = id_in_path(&id)?;
    Ok(Json(state.store.give_back_sold(&id).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_hash_is_the_one_reservations_were_stored_with() {
        let lines = vec![("A-1".to_owned(), 2), ("B-\"2".to_owned(), 1)];
        // How it was computed before: through a `serde_json::Value`.
        let before = {
            let canonical = serde_json::json!({"items": lines, "ttl_seconds": 60}).to_string();
            Sha256::digest(canonical.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(request_hash(&lines, 60).unwrap(), before);
    }
}
