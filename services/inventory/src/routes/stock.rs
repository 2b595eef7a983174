//! `/stock`: levels per SKU (public), counts and adjustments (admin), the ledger (admin).
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use platform::auth::Admin;
use platform::error::{Problem, Violations};
use platform::extract::{Json, Query};
use platform::pagination::{PageQuery, Paginated};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{parse_note, parse_reason, parse_sku, MAX_ON_HAND};
use crate::error::ApiError;
use crate::storage::{MovementRow, StockRow};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one, set))
        .routes(routes!(adjust))
        .routes(routes!(movements))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockView {
    sku: String,
    on_hand: i64,
    reserved: i64,
    available: i64,
    low_stock_threshold: Option<i64>,
    discontinued: bool,
    updated_at: DateTime<Utc>,
}

impl From<StockRow> for StockView {
    fn from(row: StockRow) -> Self {
        Self {
            available: row.on_hand - row.reserved,
            sku: row.sku,
            on_hand: row.on_hand,
            reserved: row.reserved,
            low_stock_threshold: row.low_stock_threshold,
            discontinued: row.discontinued,
            updated_at: row.updated_at,
        }
    }
}

fn sku_in_path(text: &str) -> Result<String, ApiError> {
    parse_sku(text).map_err(|e| Problem::bad_request(format!("The SKU {e}.")).into())
}

/// Stock of one SKU.
#[utoipa::path(get, path = "/stock/{sku}", tag = "stock",
    responses((status = 200, body = StockView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> Result<Json<StockView>, ApiError> {
    let sku = sku_in_path(&sku)?;
    let row = state
        .store
        .stock(&sku)
        .await?
        .ok_or_else(|| Problem::not_found(format!("No stock is kept for {sku}.")))?;
    Ok(Json(row.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Comma-separated SKUs, 1 to 100; unknown ones are left out of the answer.
    sku: String,
}

#[derive(Serialize, ToSchema)]
pub struct StockList {
    items: Vec<StockView>,
}

/// Stock of several SKUs at once.
#[utoipa::path(get, path = "/stock", tag = "stock", params(ListParams),
    responses((status = 200, body = StockList),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<StockList>, ApiError> {
    let skus: Vec<&str> = params
        .sku
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if skus.is_empty() || skus.len() > 100 {
        return Err(
            Problem::bad_request("Name 1 to 100 SKUs in `sku`, separated by commas.").into(),
        );
    }
    let skus = skus
        .into_iter()
        .map(sku_in_path)
        .collect::<Result<Vec<_>, _>>()?;
    let items = state
        .store
        .stocks(&skus)
        .await?
        .into_iter()
        .map(StockView::from)
        .collect();
    Ok(Json(StockList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStock {
    on_hand: i64,
    /// Why: a stock count, a first delivery, ...
    reason: String,
    /// Availability at or below this publishes `low_stock`; null removes it.
    #[schema(value_type = Option<i64>)]
    #[serde(default, deserialize_with = "present")]
    low_stock_threshold: Option<Value>,
}

/// Keeps an explicit `null` apart from an absent field.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Sets the quantity on hand (admin); the SKU is created when new. The ledger records the
/// difference.
#[utoipa::path(put, path = "/stock/{sku}", tag = "stock", request_body = SetStock, security(("bearer" = [])),
    responses((status = 200, body = StockView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn set(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sku): Path<String>,
    Json(body): Json<SetStock>,
) -> Result<Json<StockView>, ApiError> {
    let sku = sku_in_path(&sku)?;
    let mut v = Violations::new();
    if !(0..=MAX_ON_HAND).contains(&body.on_hand) {
        v.add("on_hand", format!("must be 0 to {MAX_ON_HAND}"));
    }
    let reason = v.check("reason", parse_note(&body.reason));
    let threshold = match &body.low_stock_threshold {
        None => None,
        Some(Value::Null) => Some(None),
        Some(value) => match value.as_i64().filter(|t| *t >= 0) {
            Some(t) => Some(Some(t)),
            None => {
                v.add("low_stock_threshold", "must be a whole number ≥ 0, or null");
                None
            }
        },
    };
    let Some(reason) = reason.filter(|_| v.is_empty()) else {
        return Err(v.into_problem().into());
    };
    Ok(Json(
        state
            .store
            .set_on_hand(&sku, body.on_hand, &reason, threshold)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// Units added (positive) or removed (negative); not zero.
    delta: i64,
    /// received, damaged, correction, returned or lost.
    reason: String,
}

/// Adds or removes units (admin), with a reason the ledger keeps.
#[utoipa::path(post, path = "/stock/{sku}/adjustments", tag = "stock", request_body = Adjustment, security(("bearer" = [])),
    responses((status = 200, body = StockView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn adjust(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sku): Path<String>,
    Json(body): Json<Adjustment>,
) -> Result<Json<StockView>, ApiError> {
    let sku = sku_in_path(&sku)?;
    let mut v = Violations::new();
    // A range check, not `abs()`: `i64::MIN.abs()` overflows.
    if body.delta == 0 || !(-MAX_ON_HAND..=MAX_ON_HAND).contains(&body.delta) {
        v.add(
            "delta",
            format!("must be non-zero and at most {MAX_ON_HAND} either way"),
        );
    }
    let reason = v.check("reason", parse_reason(&body.reason));
    let Some(reason) = reason.filter(|_| v.is_empty()) else {
        return Err(v.into_problem().into());
    };
    Ok(Json(
        state.store.adjust(&sku, body.delta, &reason).await?.into(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct MovementView {
    id: String,
    sku: String,
    delta: i64,
    /// set, adjustment, sale or return.
    kind: String,
    reason: String,
    reservation_id: Option<String>,
    on_hand_after: i64,
    created_at: DateTime<Utc>,
}

impl From<MovementRow> for MovementView {
    fn from(row: MovementRow) -> Self {
        Self {
            id: row.id,
            sku: row.sku,
            delta: row.delta,
            kind: row.kind,
            reason: row.reason,
            reservation_id: row.reservation_id,
            on_hand_after: row.on_hand_after,
            created_at: row.created_at,
        }
    }
}

/// The ledger of one SKU, newest first (admin). Its deltas sum to on_hand.
#[utoipa::path(get, path = "/stock/{sku}/movements", tag = "stock", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<MovementView>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn movements(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sku): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Paginated<MovementView>>, ApiError> {
    let sku = sku_in_path(&sku)?;
    let page = page.parse::<i64>()?;
    let rows = state
        .store
        .movements(&sku, page.after, page.fetch_limit())
        .await?;
    Ok(Json(
        Paginated::from_rows(rows, page.limit, |m| m.seq).map(MovementView::from),
    ))
}
