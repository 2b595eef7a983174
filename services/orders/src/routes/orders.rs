//! `/orders`: place (customers, with an `Idempotency-Key`), read, list, cancel; ship and deliver
//! (admins).
use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::{Admin, Authenticated, Claims};
use platform::error::{FieldError, Problem, Violations};
use platform::extract::{Json, Query};
use platform::pagination::{PageQuery, Paginated};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clients::Product;
use crate::domain::{self, Address, Status, Step, MAX_LINES, MAX_QUANTITY};
use crate::error::ApiError;
use crate::storage::{Change, Filter, LineRow, Order, OrderRow, Placed};
use crate::workflow::order_event;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place, list))
        .routes(routes!(get_one))
        .routes(routes!(cancel))
        .routes(routes!(ship))
        .routes(routes!(deliver))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    /// 1 to 50 lines; or else `cart_id`.
    #[serde(default)]
    items: Option<Vec<ItemRequest>>,
    /// Orders the lines of this cart at its prices instead of `items`: the caller's own cart, or a
    /// guest cart whose secret comes as `X-Cart-Secret`. A cart with unacknowledged flags is
    /// refused (409); the cart is checked out when the order is confirmed.
    #[serde(default)]
    cart_id: Option<String>,
    /// A payment method token such as `pm_card_visa`.
    payment_method: String,
    shipping_address: Address,
}

/// A line to buy. Anything else sent with it (a price, a name) is ignored: those come from the
/// catalog.
#[derive(Deserialize, ToSchema)]
pub struct ItemRequest {
    product_id: String,
    /// 1 to 100.
    quantity: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Money {
    /// Minor units.
    amount: i64,
    currency: String,
}

#[derive(Serialize, ToSchema)]
pub struct LineView {
    product_id: String,
    sku: String,
    name: String,
    unit_price: Money,
    quantity: i64,
    line_total: Money,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryView {
    status: String,
    at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderView {
    id: String,
    user_id: String,
    /// pending, confirmed, rejected, payment_failed, shipped, delivered or cancelled.
    status: String,
    items: Vec<LineView>,
    total: Money,
    shipping_address: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_id: Option<String>,
    /// Why the order was rejected or its payment failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    status_history: Vec<HistoryView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        let o = &order.row;
        let money = |amount: i64| Money {
            amount,
            currency: o.currency.clone(),
        };
        Self {
            id: o.id.clone(),
            user_id: o.user_id.clone(),
            status: o.status.clone(),
            items: order
                .lines
                .iter()
                .map(|l| LineView {
                    product_id: l.product_id.clone(),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    unit_price: money(l.unit_price),
                    quantity: l.quantity,
                    line_total: money(l.unit_price.saturating_mul(l.quantity)),
                })
                .collect(),
            total: money(o.total_amount),
            shipping_address: serde_json::from_str(&o.shipping_address).unwrap_or(Address {
                name: String::new(),
                line1: String::new(),
                line2: None,
                city: String::new(),
                postal_code: String::new(),
                country: String::new(),
            }),
            payment_id: o.payment_id.clone(),
            failure: (o.state() != Status::Confirmed)
                .then(|| o.failure.clone())
                .flatten(),
            status_history: order
                .history
                .iter()
                .map(|h| HistoryView {
                    status: h.status.clone(),
                    at: h.at,
                    note: h.note.clone(),
                })
                .collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

fn user_of(claims: &Claims) -> Result<String, ApiError> {
    claims
        .user_id()
        .map(|u| u.to_string())
        .ok_or_else(|| Problem::forbidden("Orders are placed by users.").into())
}

/// The order, if the caller may see it; someone else's order does not exist for them.
async fn visible(state: &AppState, claims: &Claims, id: &str) -> Result<Order, ApiError> {
    let not_found = || ApiError::from(Problem::not_found("No such order."));
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| not_found())?
        .to_string();
    let order = state.store.order(&id).await?.ok_or_else(not_found)?;
    let mine = claims
        .user_id()
        .is_some_and(|u| u.to_string() == order.row.user_id);
    if mine || claims.is_admin() {
        Ok(order)
    } else {
        Err(not_found())
    }
}

/// What an order's state answers: 201 confirmed (or any settled state for a read-back), 202 while
/// the saga runs, 409 rejected (naming the SKUs), 402 payment failed.
fn answer(order: &Order, created: bool) -> Response {
    let view = OrderView::from(order);
    let location = HeaderValue::from_str(&format!("/orders/{}", order.row.id)).ok();
    let mut response = match order.row.state() {
        Status::Pending => (StatusCode::ACCEPTED, axum::Json(view)).into_response(),
        Status::Rejected => Problem::new(StatusCode::CONFLICT, "order-rejected", "Order rejected")
            .detail(order.row.failure.clone().unwrap_or_default())
            .extension("order", &view)
            .into_response(),
        Status::PaymentFailed => Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment-failed",
            "Payment failed",
        )
        .detail(order.row.failure.clone().unwrap_or_default())
        .extension("order", &view)
        .into_response(),
        _ if created => (StatusCode::CREATED, axum::Json(view)).into_response(),
        _ => (StatusCode::OK, axum::Json(view)).into_response(),
    };
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Runs the saga for up to the request deadline; it goes on in the background after that. The
/// order just placed (`placed`, with the owner of the lease written with it) is run as it is in
/// hand; any other is read and claimed by the saga.
async fn run_saga(
    state: &AppState,
    id: &str,
    placed: Option<(Order, String)>,
) -> Result<Order, ApiError> {
    let saga = state.saga.clone();
    let owned = id.to_owned();
    // The saga outlives a slow request; it still runs in the request's context.
    let task = tokio::spawn(platform::telemetry::in_current(async move {
        let ran = match placed {
            Some((order, owner)) => saga.run(order, owner).await,
            None => saga.advance(&owned).await,
        };
        ran.unwrap_or_else(|e| {
            tracing::warn!(order = %owned, error = %e, "saga step failed; the recovery worker resumes it");
            None
        })
    }));
    // Ended within the deadline: the saga holds the order as it wrote it.
    if let Ok(Ok(Some(order))) = tokio::time::timeout(state.request_deadline, task).await {
        return Ok(order);
    }
    Ok(state
        .store
        .order(id)
        .await?
        .ok_or(crate::storage::StoreError::NotFound)?)
}

/// Places an order of `items` (prices from the catalog) or of a cart (`cart_id`: its lines at the
/// prices the cart shows, checked out once the order is confirmed, kept when the payment fails);
/// stock is held, the payment authorized, the stock sold. Answers 201 when that is done within the
/// request deadline, 202 (with `Location`) while it goes on. The same `Idempotency-Key` answers the
/// same order.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrder,
    params(("Idempotency-Key" = String, Header, description = "Required; repeats are safe"),
        ("X-Cart-Secret" = Option<String>, Header, description = "With `cart_id` of a guest cart: its secret")),
    security(("bearer" = [])),
    responses((status = 201, body = OrderView, description = "Confirmed"),
        (status = 202, body = OrderView, description = "Still being placed; see Location"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 402, body = Problem, content_type = "application/problem+json", description = "Payment failed; `order` holds the order"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Rejected: out of stock (`order.failure` names the SKUs); or the cart has unacknowledged flags (`cart-needs-review`: `lines` names them) or is checked out"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Invalid, unknown product, mixed currencies, or the key reused with another body"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "The catalog (or, with cart_id, carts) is unreachable; nothing was placed")))]
async fn place(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    headers: HeaderMap,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ApiError> {
    let user_id = user_of(&claims)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            Problem::bad_request(
                "An Idempotency-Key header (1 to 255 characters) is required, so that repeating the request is safe.",
            )
        })?
        .to_owned();

    let mut v = Violations::new();
    let cart_id = match (&body.items, &body.cart_id) {
        (Some(_), Some(_)) => {
            v.add("cart_id", "send items or cart_id, not both");
            None
        }
        (None, Some(id)) => v.check(
            "cart_id",
            uuid::Uuid::parse_str(id).map_err(|_| "must be a cart id (UUID)"),
        ),
        (Some(items), None) if items.is_empty() || items.len() > MAX_LINES => {
            v.add("items", format!("must have 1 to {MAX_LINES} lines"));
            None
        }
        (Some(_), None) => None,
        (None, None) => {
            v.add("items", "items or cart_id is required");
            None
        }
    };
    // One line per product, in the order first named.
    let mut wanted: Vec<(String, i64)> = Vec::new();
    for (i, item) in body.items.iter().flatten().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            v.add(
                format!("items[{i}].quantity"),
                format!("must be 1 to {MAX_QUANTITY}"),
            );
        }
        match uuid::Uuid::parse_str(&item.product_id) {
            Err(_) => v.add(
                format!("items[{i}].product_id"),
                "must be a product id (UUID)",
            ),
            Ok(id) => match wanted.iter_mut().find(|(p, _)| *p == id.to_string()) {
                Some((_, q)) => *q += item.quantity,
                None => wanted.push((id.to_string(), item.quantity)),
            },
        }
    }
    if let Some((product, _)) = wanted.iter().find(|(_, q)| *q > MAX_QUANTITY) {
        v.add("items", format!("at most {MAX_QUANTITY} of {product}"));
    }
    v.check(
        "payment_method",
        domain::check_payment_method(&body.payment_method),
    );
    for (field, message) in domain::check_address(&body.shipping_address) {
        v.add(field, message);
    }
    v.finish()?;

    let what = match &cart_id {
        Some(cart) => serde_json::json!({"cart_id": cart.to_string()}),
        None => serde_json::json!(wanted),
    };
    let request_hash = hex::encode(Sha256::digest(
        serde_json::json!([what, body.payment_method, body.shipping_address])
            .to_string()
            .as_bytes(),
    ));
    if let Some(existing) = state.store.by_key(&user_id, &key).await? {
        return replay(&state, existing, &request_hash).await;
    }

    let (lines, currency) = match &cart_id {
        Some(cart) => priced_from_cart(&state, &headers, &cart.to_string()).await?,
        None => priced_from_catalog(&state, &wanted).await?,
    };
    let total = lines
        .iter()
        .try_fold(0i64, |sum, l| {
            l.unit_price
                .checked_mul(l.quantity)
                .and_then(|t| sum.checked_add(t))
        })
        .ok_or_else(|| {
            Problem::validation(vec![FieldError::new("items", "the total is too large")])
        })?;
    let now = crate::storage::now();
    let context = platform::telemetry::TraceContext::current();
    let order = Order {
        row: OrderRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id,
            status: Status::Pending.as_str().into(),
            currency,
            total_amount: total,
            payment_method: body.payment_method,
            shipping_address: serde_json::to_string(&body.shipping_address).unwrap_or_default(),
            idempotency_key: key,
            request_hash: request_hash.clone(),
            saga_step: Some(Step::Reserve.as_str().into()),
            saga_outcome: None,
            saga_deadline: now
                + chrono::Duration::from_std(state.saga_deadline).unwrap_or_default(),
            // The request runs the saga; the recovery worker takes over only if it does not.
            next_attempt_at: now + chrono::Duration::from_std(state.saga.lease).unwrap_or_default(),
            attempts: 0,
            payment_id: None,
            failure: None,
            created_at: now,
            updated_at: now,
            traceparent: context.as_ref().map(|c| c.traceparent()),
            request_id: context.map(|c| c.request_id),
            cart_id: cart_id.map(|c| c.to_string()),
        },
        lines,
        history: Vec::new(),
    };
    let event = order_event(&order, Status::Pending, "placed", serde_json::json!({}));
    let (owner, until) = state.saga.new_lease();
    match state.store.place(&order, &event, &owner, until).await? {
        Placed::Existing(existing) => replay(&state, existing, &request_hash).await,
        Placed::New(order) => {
            metrics::counter!("orders_placed_total").increment(1);
            let id = order.row.id.clone();
            let order = run_saga(&state, &id, Some((order, owner))).await?;
            Ok(answer(&order, true))
        }
    }
}

/// The lines of an order of explicit items: names, SKUs and prices as the catalog has them now;
/// what the client sent is not used.
async fn priced_from_catalog(
    state: &AppState,
    wanted: &[(String, i64)],
) -> Result<(Vec<LineRow>, String), ApiError> {
    let products =
        futures::future::join_all(wanted.iter().map(|(id, _)| state.saga.clients.product(id)))
            .await;
    let mut found: Vec<Product> = Vec::new();
    let mut unknown = Vec::new();
    for ((id, _), product) in wanted.iter().zip(products) {
        match product {
            Ok(Some(p)) => found.push(p),
            Ok(None) => unknown.push(id.clone()),
            Err(e) => {
                return Err(Problem::unavailable(format!(
                    "The catalog could not be reached ({e}); nothing was ordered."
                ))
                .retry_after(2)
                .into())
            }
        }
    }
    if !unknown.is_empty() {
        return Err(Problem::validation(
            unknown
                .iter()
                .map(|id| FieldError::new("items", format!("no product {id} is for sale")))
                .collect(),
        )
        .extension("unknown_products", &unknown)
        .into());
    }
    let currencies: BTreeMap<&str, ()> = found
        .iter()
        .map(|p| (p.price.currency.as_str(), ()))
        .collect();
    if currencies.len() > 1 {
        return Err(Problem::validation(vec![FieldError::new(
            "items",
            format!(
                "all products of an order must be priced in one currency; these are in {}",
                currencies.keys().copied().collect::<Vec<_>>().join(", ")
            ),
        )])
        .into());
    }
    let lines: Vec<LineRow> = found
        .iter()
        .zip(wanted)
        .enumerate()
        .map(|(i, (p, (_, quantity)))| LineRow {
            line_no: i32::try_from(i).unwrap_or(i32::MAX),
            product_id: p.id.clone(),
            sku: p.sku.clone(),
            name: p.name.clone(),
            unit_price: p.price.amount,
            quantity: *quantity,
        })
        .collect();
    let currency = found
        .first()
        .map(|p| p.price.currency.clone())
        .unwrap_or_default();
    Ok((lines, currency))
}

/// The lines of an order placed from a cart, at the cart's prices (the catalog's current ones,
/// which the buyer has seen: a cart with unacknowledged flags is refused).
async fn priced_from_cart(
    state: &AppState,
    headers: &HeaderMap,
    cart_id: &str,
) -> Result<(Vec<LineRow>, String), ApiError> {
    let bearer = platform::auth::bearer_from_headers(headers).unwrap_or_default();
    let secret = headers.get("x-cart-secret").and_then(|v| v.to_str().ok());
    let cart = state
        .saga
        .clients
        .cart(cart_id, bearer, secret)
        .await
        .map_err(|e| {
            Problem::unavailable(format!(
                "The cart could not be read ({e}); nothing was ordered."
            ))
            .retry_after(2)
        })?
        .ok_or_else(|| {
            Problem::validation(vec![FieldError::new(
                "cart_id",
                "no such cart, or not yours (a guest cart needs its X-Cart-Secret)",
            )])
        })?;
    if cart.status != "open" {
        return Err(
            Problem::new(StatusCode::CONFLICT, "cart-not-open", "Cart not open")
                .detail(format!("The cart is {}; nothing was ordered.", cart.status))
                .into(),
        );
    }
    if cart.items.is_empty() {
        return Err(
            Problem::validation(vec![FieldError::new("cart_id", "the cart is empty")]).into(),
        );
    }
    if !cart.needs_review.is_empty() {
        let flagged: Vec<_> = cart
            .items
            .iter()
            .filter(|l| cart.needs_review.contains(&l.product_id))
            .map(
                |l| serde_json::json!({"product_id": l.product_id, "sku": l.sku, "flags": l.flags}),
            )
            .collect();
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "cart-needs-review",
            "Cart needs review",
        )
        .detail(format!(
            "The catalog changed under {} of the cart's lines ({}); acknowledge them (POST /carts/{}/acknowledge) and order again. Nothing was ordered.",
            flagged.len(),
            cart.needs_review.join(", "),
            cart.id
        ))
        .extension("lines", &flagged)
        .into());
    }
    let mut lines = Vec::new();
    let mut currencies = BTreeMap::new();
    for (i, l) in cart.items.iter().enumerate() {
        let (Some(sku), Some(name), Some(price)) = (&l.sku, &l.name, &l.unit_price) else {
            return Err(Problem::conflict(format!(
                "The cart's line {} is not in the catalog; acknowledge the cart's lines and order again.",
                l.product_id
            ))
            .into());
        };
        currencies.insert(price.currency.clone(), ());
        lines.push(LineRow {
            line_no: i32::try_from(i).unwrap_or(i32::MAX),
            product_id: l.product_id.clone(),
            sku: sku.clone(),
            name: name.clone(),
            unit_price: price.amount,
            quantity: l.quantity,
        });
    }
    if currencies.len() > 1 {
        return Err(Problem::validation(vec![FieldError::new(
            "cart_id",
            "all lines of an order must be priced in one currency",
        )])
        .into());
    }
    let currency = currencies.into_keys().next().unwrap_or_default();
    Ok((lines, currency))
}

async fn replay(
    state: &AppState,
    existing: Order,
    request_hash: &str,
) -> Result<Response, ApiError> {
    if existing.row.request_hash != request_hash {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-mismatch",
            "Idempotency-Key reused",
        )
        .detail("This Idempotency-Key was used for another order.")
        .into());
    }
    let order = if existing.row.saga_step.is_some() {
        run_saga(state, &existing.row.id, None).await?
    } else {
        existing
    };
    Ok(answer(&order, true))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only orders in this status.
    status: Option<String>,
    /// Admins: only this user's orders.
    user_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The caller's orders, newest first; admins see everyone's and may filter by user.
#[utoipa::path(get, path = "/orders", tag = "orders", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Paginated<OrderView>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<Json<Paginated<OrderView>>, ApiError> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse::<String>()?;
    let status = match &query.status {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            Problem::validation(vec![FieldError::new("status", "not an order status")])
        })?),
    };
    let user = if claims.is_admin() {
        query.user_id.clone()
    } else {
        if query.user_id.is_some() {
            return Err(Problem::forbidden("Only admins list other users' orders.").into());
        }
        Some(user_of(&claims)?)
    };
    let orders = state
        .store
        .list(&Filter {
            user_id: user.as_deref(),
            status,
            before: page.after.as_deref(),
            fetch: page.fetch_limit(),
        })
        .await?;
    Ok(Json(
        Paginated::from_rows(orders, page.limit, |o| o.row.id.clone()).map(|o| OrderView::from(&o)),
    ))
}

/// One order: its owner's or, for an admin, anyone's.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = OrderView),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order = visible(&state, &claims, &id).await?;
    Ok(Json(OrderView::from(&order)))
}

/// Cancels a pending or confirmed order (its owner or an admin): the authorization is voided (or
/// the capture refunded) and the stock given back. 200 when done, 202 while it goes on.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = OrderView),
        (status = 202, body = OrderView, description = "Being cancelled"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Shipped, delivered, rejected or failed")))]
async fn cancel(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order = visible(&state, &claims, &id).await?;
    let o = &order.row;
    let change = |from: Option<Step>, to: Step| Change {
        owner: None,
        from_step: from,
        to_step: Some(to),
        outcome: Some(Status::Cancelled),
        status: None,
        payment_id: None,
        failure: Some("cancelled"),
        next_attempt_at: crate::storage::now(),
        lease_until: None,
        event: None,
    };
    let started = match (o.state(), o.step()) {
        (Status::Cancelled, _) | (Status::Confirmed, Some(Step::Cancel)) => true,
        (Status::Pending, Some(Step::Compensate)) => {
            // Already undoing (a failed payment, or a cancel): it ends where it was heading.
            true
        }
        (Status::Pending, step @ Some(_)) => {
            state
                .store
                .change(&o.id, &change(step, Step::Compensate))
                .await?
        }
        (Status::Confirmed, None) => {
            state
                .store
                .change(&o.id, &change(None, Step::Cancel))
                .await?
        }
        (other, _) => {
            return Err(Problem::conflict(format!(
                "The order is {}; only a pending or confirmed order can be cancelled.",
                other.as_str()
            ))
            .into())
        }
    };
    if !started {
        return Err(
            Problem::conflict("The order changed meanwhile; read it and try again.").into(),
        );
    }
    let order = run_saga(&state, &o.id, None).await?;
    let status = if order.row.saga_step.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(OrderView::from(&order))).into_response())
}

/// Ships a confirmed order (admin): the payment is captured first, then the order is shipped.
#[utoipa::path(post, path = "/orders/{id}/ship", tag = "orders", security(("bearer" = ["admin"])),
    responses((status = 200, body = OrderView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "The payment could not be captured now; the order stays confirmed")))]
async fn ship(
    State(state): State<AppState>,
    Admin(claims): Admin,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order = visible(&state, &claims, &id).await?;
    if order.row.state() == Status::Shipped {
        return Ok(Json(OrderView::from(&order)));
    }
    let (Status::Confirmed, None, Some(payment_id)) = (
        order.row.state(),
        order.row.step(),
        order.row.payment_id.as_deref(),
    ) else {
        return Err(Problem::conflict(format!(
            "The order is {}; only a confirmed order can be shipped.",
            order.row.status
        ))
        .into());
    };
    // Capture on shipment: the customer pays for what leaves the warehouse.
    match state.saga.clients.payment(payment_id, "capture").await {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => return Err(Problem::conflict(refusal).into()),
        Err(e) => {
            return Err(Problem::unavailable(format!(
            "The payment could not be captured now ({e}); the order is still confirmed. Try again."
        ))
            .retry_after(2)
            .into())
        }
    }
    set_status(
        &state,
        &order,
        Status::Shipped,
        "payment captured, parcel handed over",
    )
    .await
}

/// Marks a shipped order delivered (admin).
#[utoipa::path(post, path = "/orders/{id}/deliver", tag = "orders", security(("bearer" = ["admin"])),
    responses((status = 200, body = OrderView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn deliver(
    State(state): State<AppState>,
    Admin(claims): Admin,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order = visible(&state, &claims, &id).await?;
    if order.row.state() == Status::Delivered {
        return Ok(Json(OrderView::from(&order)));
    }
    set_status(&state, &order, Status::Delivered, "delivered").await
}

async fn set_status(
    state: &AppState,
    order: &Order,
    status: Status,
    note: &str,
) -> Result<Json<OrderView>, ApiError> {
    let event = order_event(order, status, note, serde_json::json!({}));
    let change = Change {
        owner: None,
        from_step: None,
        to_step: None,
        outcome: None,
        status: Some((status, Some(note))),
        payment_id: None,
        failure: None,
        next_attempt_at: crate::storage::now(),
        lease_until: None,
        event: Some(&event),
    };
    if !state.store.change(&order.row.id, &change).await? {
        return Err(Problem::conflict(format!(
            "The order is {}; it cannot become {}.",
            order.row.status,
            status.as_str()
        ))
        .into());
    }
    let order = state
        .store
        .order(&order.row.id)
        .await?
        .ok_or(crate::storage::StoreError::NotFound)?;
    Ok(Json(OrderView::from(&order)))
}
