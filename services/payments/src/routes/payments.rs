//! `/payments`: authorize (services, with an `Idempotency-Key`), capture, void, refund, read.
//! Writes need a service token with `payments:write` (orders holds it) or an admin; a payment is
//! readable by its customer, admins and services.
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use platform::auth::{Authenticated, Claims};
use platform::error::{FieldError, Problem, Violations};
use platform::extract::Query;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{self, Status};
use crate::error::ApiError;
use crate::routes::views::{PaymentView, RefundView};
use crate::storage::{GatewayCall, Payment, Refund};
use crate::AppState;

pub const WRITE_SCOPE: &str = "payments:write";
pub const READ_SCOPE: &str = "payments:read";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(authorize, list))
        .routes(routes!(get_one))
        .routes(routes!(capture))
        .routes(routes!(void))
        .routes(routes!(refund, refunds))
        .routes(routes!(gateway_calls))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    /// The order paid for (orders uses its order id).
    order_id: String,
    /// Minor units, 1 to 100,000,000.
    amount: i64,
    /// ISO 4217, upper case.
    currency: String,
    /// A gateway payment method token such as `pm_card_visa`. Card numbers are refused.
    payment_method: String,
    /// The user who pays (a users id).
    customer_id: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CaptureBody {
    /// Minor units, at most the authorized amount; all of it when absent.
    amount: Option<i64>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Minor units; what is left to refund when absent.
    amount: Option<i64>,
    reason: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The order whose payments to list.
    order_id: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct PaymentList {
    items: Vec<PaymentView>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct RefundList {
    items: Vec<RefundView>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct GatewayCallView {
    operation: String,
    idempotency_key: String,
    /// `request` (written before the call) or `response`.
    phase: String,
    outcome: String,
    at: chrono::DateTime<Utc>,
}

fn is_service_writer(claims: &Claims) -> bool {
    claims.is_admin() || claims.has_scope(WRITE_SCOPE)
}

fn require_writer(claims: &Claims) -> Result<(), ApiError> {
    if is_service_writer(claims) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!("This needs the {WRITE_SCOPE} scope or an admin.")).into())
    }
}

/// Admins and services read every payment; a customer only theirs.
fn may_read(claims: &Claims, p: &Payment) -> bool {
    is_service_writer(claims)
        || claims.has_scope(READ_SCOPE)
        || claims
            .user_id()
            .is_some_and(|u| u.to_string() == p.customer_id)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Err(Problem::bad_request(
            "An Idempotency-Key header is required, so that repeating the request is safe.",
        )
        .into());
    };
    let text = value
        .to_str()
        .map_err(|_| Problem::bad_request("The Idempotency-Key is not visible ASCII."))?;
    domain::parse_idempotency_key(text)
        .map_err(|e| Problem::bad_request(format!("The Idempotency-Key {e}.")).into())
}

/// A JSON body that may be empty. Card-like fields are refused before anything else is read.
fn optional_body<T: DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    body(bytes)
}

/// `T` is one of this file's bodies: unknown fields refused, every field a string or a number, so
/// a body that reads as `T` holds no card field anywhere and is read in one pass. Anything else
/// is read again as a JSON value, to name card fields first, then what is wrong.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    if let Ok(parsed) = serde_json::from_slice(bytes) {
        return Ok(parsed);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request(format!("The body is not valid JSON: {e}")))?;
    let card = domain::card_fields(&value);
    if !card.is_empty() {
        return Err(Problem::validation(
            card.into_iter()
                .map(|f| {
                    FieldError::new(
                        f,
                        "card details are never accepted; send a payment method token (pm_...)",
                    )
                })
                .collect(),
        )
        .into());
    }
    serde_json::from_value(value)
        .map_err(|e| Problem::validation(vec![FieldError::new("body", e.to_string())]).into())
}

fn payment_id(text: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| Problem::not_found("No such payment.").into())
}

/// Authorizes a payment at the gateway. The same `Idempotency-Key` with the same body answers the
/// first answer again, byte for byte; with another body, 422.
#[utoipa::path(post, path = "/payments", tag = "payments", request_body = AuthorizeBody,
    params(("Idempotency-Key" = String, Header, description = "Required; repeats are safe")),
    security(("bearer" = ["payments:write"])),
    responses((status = 201, body = PaymentView, description = "Authorized"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 402, body = Problem, content_type = "application/problem+json", description = "Declined; `decline_code` says why"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Invalid, card details sent, or the key reused with another body"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Gateway unavailable; nothing charged"),
        (status = 504, body = Problem, content_type = "application/problem+json", description = "Gateway outcome unknown; the payment is pending")))]
async fn authorize(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    require_writer(&claims)?;
    let key = idempotency_key(&headers)?;
    let body: AuthorizeBody = body(&bytes)?;
    let mut v = Violations::new();
    let order_id = v.check("order_id", domain::parse_reference(&body.order_id));
    let amount = v.check("amount", domain::parse_amount(body.amount));
    let currency = v.check("currency", domain::parse_currency(&body.currency));
    let method = v.check(
        "payment_method",
        domain::parse_payment_method(&body.payment_method),
    );
    let customer = v.check("customer_id", domain::parse_reference(&body.customer_id));
    let (Some(order_id), Some(amount), Some(currency), Some(payment_method), Some(customer_id)) =
        (order_id, amount, currency, method, customer)
    else {
        return Err(v.into_problem().into());
    };
    // What makes a repeat "the same request".
    let canonical = serde_json::json!([order_id, amount, currency, payment_method, customer_id]);
    let request_hash = hex::encode(Sha256::digest(canonical.to_string().as_bytes()));
    let now = Utc::now();
    let payment = Payment {
        id: uuid::Uuid::now_v7().to_string(),
        order_id,
        customer_id,
        amount,
        currency,
        payment_method,
        status: Status::Pending.as_str().into(),
        intent_id: None,
        capture_amount: None,
        captured_amount: 0,
        refunded_amount: 0,
        decline_code: None,
        decline_message: None,
        idempotency_key: key,
        request_hash,
        response_status: None,
        response_body: None,
        created_at: now,
        updated_at: now,
    };
    let answer = state.payments.authorize(payment).await?;
    let content_type = if answer.status.is_success() {
        "application/json"
    } else {
        platform::error::PROBLEM_JSON
    };
    Ok((
        answer.status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        answer.body,
    )
        .into_response())
}

/// The payments of an order: all of them for admins and services, the caller's own otherwise.
#[utoipa::path(get, path = "/payments", tag = "payments", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = PaymentList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`order_id` is not an order id")))]
async fn list(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<PaymentList>, ApiError> {
    let order_id = domain::parse_reference(&query.order_id)
        .map_err(|e| Problem::validation(vec![FieldError::new("order_id", e)]))?;
    let items = state
        .payments
        .store
        .by_order(&order_id)
        .await?
        .iter()
        .filter(|p| may_read(&claims, p))
        .map(PaymentView::from)
        .collect();
    Ok(axum::Json(PaymentList { items }))
}

async fn readable(state: &AppState, claims: &Claims, id: &str) -> Result<Payment, ApiError> {
    let p = state.payments.load(&payment_id(id)?).await?;
    if may_read(claims, &p) {
        Ok(p)
    } else {
        // Someone else's payment does not exist, as far as the caller can tell.
        Err(Problem::not_found("No such payment.").into())
    }
}

/// One payment.
#[utoipa::path(get, path = "/payments/{id}", tag = "payments", security(("bearer" = [])),
    responses((status = 200, body = PaymentView),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<PaymentView>, ApiError> {
    let p = readable(&state, &claims, &id).await?;
    Ok(axum::Json(PaymentView::from(&p)))
}

/// Captures an authorized payment (all, or `amount` of it), once. Capturing again answers the same.
#[utoipa::path(post, path = "/payments/{id}/capture", tag = "payments", request_body(content = Option<CaptureBody>),
    security(("bearer" = ["payments:write"])),
    responses((status = 200, body = PaymentView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not authorized (voided, declined, already captured another amount)"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
        (status = 504, body = Problem, content_type = "application/problem+json", description = "Outcome unknown; the capture is pending and will be settled")))]
async fn capture(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<axum::Json<PaymentView>, ApiError> {
    require_writer(&claims)?;
    let id = payment_id(&id)?;
    let body: CaptureBody = optional_body(&bytes)?;
    if let Some(amount) = body.amount {
        domain::parse_amount(amount)
            .map_err(|e| Problem::validation(vec![FieldError::new("amount", e)]))?;
    }
    let p = state.payments.capture(&id, body.amount).await?;
    Ok(axum::Json(PaymentView::from(&p)))
}

/// Cancels the authorization: the customer is not charged. Voiding again answers the same.
#[utoipa::path(post, path = "/payments/{id}/void", tag = "payments", security(("bearer" = ["payments:write"])),
    responses((status = 200, body = PaymentView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Captured (refund instead), declined, or still pending"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
        (status = 504, body = Problem, content_type = "application/problem+json")))]
async fn void(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<PaymentView>, ApiError> {
    require_writer(&claims)?;
    let p = state.payments.void(&payment_id(&id)?).await?;
    Ok(axum::Json(PaymentView::from(&p)))
}

/// Refunds part or all of a captured payment; several refunds never add up to more than the
/// capture. The same `Idempotency-Key` answers the same refund.
#[utoipa::path(post, path = "/payments/{id}/refunds", tag = "payments", request_body(content = Option<RefundBody>),
    params(("Idempotency-Key" = String, Header, description = "Required; repeats are safe")),
    security(("bearer" = ["payments:write"])),
    responses((status = 201, body = RefundView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not captured, or more than what is left"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
        (status = 504, body = Problem, content_type = "application/problem+json")))]
async fn refund(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    require_writer(&claims)?;
    let id = payment_id(&id)?;
    let key = idempotency_key(&headers)?;
    let body: RefundBody = optional_body(&bytes)?;
    let mut v = Violations::new();
    if let Some(amount) = body.amount {
        v.check("amount", domain::parse_amount(amount));
    }
    if let Some(reason) = &body.reason {
        if reason.chars().count() > 200 {
            v.add("reason", "must be at most 200 characters");
        }
    }
    v.finish()?;
    let refund: Refund = state
        .payments
        .refund(&id, &key, body.amount, body.reason)
        .await?;
    let status = match refund.status.as_str() {
        crate::storage::REFUND_FAILED => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::CREATED,
    };
    Ok((status, axum::Json(RefundView::from(&refund))).into_response())
}

/// The refunds of a payment.
#[utoipa::path(get, path = "/payments/{id}/refunds", tag = "payments", security(("bearer" = [])),
    responses((status = 200, body = RefundList),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn refunds(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<RefundList>, ApiError> {
    let p = readable(&state, &claims, &id).await?;
    let items = state.payments.store.refunds(&p.id).await?;
    Ok(axum::Json(RefundList {
        items: items.iter().map(RefundView::from).collect(),
    }))
}

/// The audit log of a payment's gateway calls (admin).
#[utoipa::path(get, path = "/payments/{id}/gateway-calls", tag = "payments", security(("bearer" = ["admin"])),
    responses((status = 200, body = Vec<GatewayCallView>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn gateway_calls(
    State(state): State<AppState>,
    platform::auth::Admin(_admin): platform::auth::Admin,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<GatewayCallView>>, ApiError> {
    let p = state.payments.load(&payment_id(&id)?).await?;
    let calls: Vec<GatewayCall> = state.payments.store.gateway_calls(&p.id).await?;
    Ok(axum::Json(
        calls
            .into_iter()
            .map(|c| GatewayCallView {
                operation: c.operation,
                idempotency_key: c.idempotency_key,
                phase: c.phase,
                outcome: c.outcome,
                at: c.created_at,
            })
            .collect(),
    ))
}
