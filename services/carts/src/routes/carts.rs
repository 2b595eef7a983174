//! `/carts`: guest carts (whoever holds the cart's secret, sent as `X-Cart-Secret`) and each
//! signed-in user's current cart; lines priced from the catalog projection on every read, flagged
//! when the catalog changed under them; merge at login; acknowledge flags before checkout.
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::{Authenticated, JwtVerifier};
use platform::error::{Problem, Violations};
use platform::extract::Json;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{self, secret_hash, CartSecret, Flag, Money, ProductId, Quantity, Unavailable};
use crate::error::{no_such_cart, ApiError};
use crate::storage::{Cart, CartRow, Note, Put};
use crate::AppState;

/// The header a guest cart's secret travels in.
pub const SECRET_HEADER: &str = "x-cart-secret";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(get_one))
        .routes(routes!(add_item))
        .routes(routes!(set_item, remove_item))
        .routes(routes!(acknowledge))
        .routes(routes!(merge))
}

/// Who calls: a signed-in user (a verified bearer token; a bad token is a 401), and whatever cart
/// secret came along.
pub struct Caller {
    user: Option<String>,
    secret: Option<String>,
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<JwtVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
            claims.user_id().map(|u| u.to_string())
        } else {
            None
        };
        let secret = parts
            .headers
            .get(SECRET_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self { user, secret })
    }
}

impl Caller {
    /// A user's cart is theirs alone; a guest cart is whoever's holds its secret.
    fn may(&self, cart: &CartRow) -> bool {
        match (&cart.user_id, &cart.secret_hash) {
            (Some(owner), _) => self.user.as_deref() == Some(owner.as_str()),
            (None, Some(stored)) => self
                .secret
                .as_deref()
                .is_some_and(|s| bool::from(secret_hash(s).as_bytes().ct_eq(stored.as_bytes()))),
            (None, None) => false,
        }
    }
}

/// A line as a read shows it: the catalog's current name and price, and its flags.
#[derive(Serialize, ToSchema)]
pub struct LineView {
    product_id: String,
    sku: Option<String>,
    name: Option<String>,
    quantity: i64,
    /// The catalog's current price.
    unit_price: Option<Money>,
    line_total: Option<Money>,
    /// in_stock, sold_out, discontinued, or unknown (inventory said nothing yet).
    availability: String,
    /// What the buyer must acknowledge before checkout.
    flags: Vec<Flag>,
}

#[derive(Serialize, ToSchema)]
pub struct CartView {
    id: String,
    /// open or checked_out.
    status: String,
    /// guest or user.
    owner: String,
    items: Vec<LineView>,
    /// The cart's currency (of its first line); null while empty.
    currency: Option<String>,
    /// The lines that can be bought, at the catalog's current prices; null while empty.
    total: Option<Money>,
    /// Units over all lines.
    item_count: i64,
    /// Product ids of the flagged lines: checkout refuses the cart until they are acknowledged.
    needs_review: Vec<String>,
    /// The order the cart was checked out as.
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
    /// A guest cart is deleted after this without use; a user's cart is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl CartView {
    fn of(cart: &Cart, guest_ttl: chrono::Duration) -> Self {
        let mut total: Option<Money> = None;
        let mut needs_review = Vec::new();
        let items = cart
            .lines
            .iter()
            .map(|line| {
                let product = line.product();
                let flags = domain::flags(&line.seen(), product.as_ref());
                if !flags.is_empty() {
                    needs_review.push(line.product_id.clone());
                }
                let unavailable = flags.iter().find_map(|f| match f {
                    Flag::Unavailable { reason } => Some(*reason),
                    Flag::PriceChanged { .. } => None,
                });
                let availability = match (unavailable, product.as_ref().and_then(|p| p.available)) {
                    (Some(Unavailable::Discontinued), _) => "discontinued",
                    (Some(Unavailable::SoldOut), _) => "sold_out",
                    (None, Some(_)) => "in_stock",
                    (None, None) => "unknown",
                };
                let line_total = product.as_ref().map(|p| Money {
                    amount: p.price.amount.saturating_mul(line.quantity),
                    currency: p.price.currency.clone(),
                });
                if let (None, Some(t)) = (unavailable, &line_total) {
                    let sum = total.get_or_insert(Money {
                        amount: 0,
                        currency: t.currency.clone(),
                    });
                    sum.amount = sum.amount.saturating_add(t.amount);
                }
                LineView {
                    product_id: line.product_id.clone(),
                    sku: product.as_ref().map(|p| p.sku.clone()),
                    name: product.as_ref().map(|p| p.name.clone()),
                    quantity: line.quantity,
                    unit_price: product.as_ref().map(|p| p.price.clone()),
                    line_total,
                    availability: availability.into(),
                    flags,
                }
            })
            .collect();
        let currency = cart.lines.first().map(|l| l.seen_currency.clone());
        let row = &cart.row;
        Self {
            id: row.id.clone(),
            status: row.status.clone(),
            owner: if row.user_id.is_some() {
                "user"
            } else {
                "guest"
            }
            .into(),
            items,
            total: total.or_else(|| {
                currency.clone().map(|currency| Money {
                    amount: 0,
                    currency,
                })
            }),
            currency,
            item_count: cart.lines.iter().map(|l| l.quantity).sum(),
            needs_review,
            order_id: row.order_id.clone(),
            expires_at: row.user_id.is_none().then(|| row.last_used_at + guest_ttl),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedCart {
    cart: CartView,
    /// A guest cart's secret, shown only here: send it as `X-Cart-Secret` with every call on the
    /// cart. Absent for a user's cart.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NotedCart {
    cart: CartView,
    /// What happened to lines besides the obvious (dropped, capped, removed, price accepted).
    notes: Vec<Note>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    product_id: String,
    /// 1 to 99; added to what the line holds (at most 99 in all).
    quantity: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetItem {
    /// 1 to 99.
    quantity: i64,
}

fn cart_id(text: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| Problem::bad_request("The cart id is not a UUID.").into())
}

fn product_in_path(text: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(text).map_err(|_| Problem::bad_request("The product id is not a UUID.").into())
}

/// The cart, if the caller may use it (else 404, whether or not it exists); marks it used.
async fn accessible(state: &AppState, caller: &Caller, id: &str) -> Result<Cart, ApiError> {
    let id = cart_id(id)?;
    let cart = state.store.cart(&id).await?.ok_or_else(no_such_cart)?;
    let expired =
        cart.row.user_id.is_none() && cart.row.last_used_at + state.guest_ttl < Utc::now();
    if expired || !caller.may(&cart.row) {
        return Err(no_such_cart());
    }
    // Use is recorded at most hourly: a read is not a write each time.
    state.store.touch(&id, chrono::Duration::hours(1)).await?;
    Ok(cart)
}

fn view(state: &AppState, cart: &Cart) -> Json<CartView> {
    Json(CartView::of(cart, state.guest_ttl))
}

/// Starts a cart. A guest (no token) gets a new cart and its secret; a signed-in user gets their
/// current cart (201 when it was created now, 200 when it existed).
#[utoipa::path(post, path = "/carts", tag = "carts",
    security((), ("bearer" = [])),
    responses((status = 201, body = CreatedCart),
        (status = 200, body = CreatedCart, description = "The user's existing cart"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn create(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if let Some(user) = &caller.user {
        let (cart, created) = state.store.user_cart(user).await?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let body = CreatedCart {
            cart: CartView::of(&cart, state.guest_ttl),
            secret: None,
        };
        return Ok((status, Json(body)).into_response());
    }
    let secret = CartSecret::generate();
    let id = uuid::Uuid::now_v7().to_string();
    let cart = state
        .store
        .create_guest(&id, &secret_hash(secret.expose()))
        .await?;
    let body = CreatedCart {
        cart: CartView::of(&cart, state.guest_ttl),
        secret: Some(secret.expose().to_owned()),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The cart, each line priced and flagged from the catalog as it is now.
#[utoipa::path(get, path = "/carts/{id}", tag = "carts",
    params(("id" = String, Path), ("X-Cart-Secret" = Option<String>, Header, description = "A guest cart's secret")),
    security((), ("bearer" = [])),
    responses((status = 200, body = CartView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such cart, or not yours (a guest cart needs its X-Cart-Secret)")))]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CartView>, ApiError> {
    let cart = accessible(&state, &caller, &id).await?;
    Ok(view(&state, &cart))
}

/// Adds units of a product (a new line, or more of one). At most 100 lines and 99 units a line;
/// one currency per cart.
#[utoipa::path(post, path = "/carts/{id}/items", tag = "carts", request_body = AddItem,
    params(("id" = String, Path), ("X-Cart-Secret" = Option<String>, Header, description = "A guest cart's secret")),
    security((), ("bearer" = [])),
    responses((status = 200, body = CartView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such cart, or not yours (a guest cart needs its X-Cart-Secret)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Sold out, 100 lines already, or the cart is checked out"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Unknown product, quantity outside 1–99 (in all), or another currency")))]
async fn add_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<AddItem>,
) -> Result<Json<CartView>, ApiError> {
    let mut v = Violations::new();
    let product = v.check("product_id", ProductId::parse(&body.product_id));
    let quantity = v.check("quantity", Quantity::parse(body.quantity));
    let cart = accessible(&state, &caller, &id).await?;
    v.finish()?;
    let (Some(product), Some(quantity)) = (product, quantity) else {
        return Err(Problem::internal().into());
    };
    let cart = state
        .store
        .put_line(&cart.row.id, product.as_str(), quantity.get(), Put::Add)
        .await?;
    Ok(view(&state, &cart))
}

/// Sets the units of a line.
#[utoipa::path(put, path = "/carts/{id}/items/{product_id}", tag = "carts", request_body = SetItem,
    params(("id" = String, Path), ("product_id" = String, Path), ("X-Cart-Secret" = Option<String>, Header, description = "A guest cart's secret")),
    security((), ("bearer" = [])),
    responses((status = 200, body = CartView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such cart (or not yours), or no such line"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The cart is checked out"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Quantity outside 1–99")))]
async fn set_item(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, product)): Path<(String, String)>,
    Json(body): Json<SetItem>,
) -> Result<Json<CartView>, ApiError> {
    let product = product_in_path(&product)?;
    let cart = accessible(&state, &caller, &id).await?;
    let quantity = Quantity::parse(body.quantity)
        .map_err(|m| Problem::validation(vec![platform::error::FieldError::new("quantity", m)]))?;
    let cart = state
        .store
        .put_line(&cart.row.id, product.as_str(), quantity.get(), Put::Set)
        .await?;
    Ok(view(&state, &cart))
}

/// Removes a line.
#[utoipa::path(delete, path = "/carts/{id}/items/{product_id}", tag = "carts",
    params(("id" = String, Path), ("product_id" = String, Path), ("X-Cart-Secret" = Option<String>, Header, description = "A guest cart's secret")),
    security((), ("bearer" = [])),
    responses((status = 200, body = CartView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such cart (or not yours), or no such line"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The cart is checked out")))]
async fn remove_item(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, product)): Path<(String, String)>,
) -> Result<Json<CartView>, ApiError> {
    let product = product_in_path(&product)?;
    let cart = accessible(&state, &caller, &id).await?;
    let cart = state
        .store
        .remove_line(&cart.row.id, product.as_str())
        .await?;
    Ok(view(&state, &cart))
}

/// Acknowledges every flag: the catalog's current prices are accepted; lines of discontinued or
/// sold-out products are removed. The notes say what changed.
#[utoipa::path(post, path = "/carts/{id}/acknowledge", tag = "carts",
    params(("id" = String, Path), ("X-Cart-Secret" = Option<String>, Header, description = "A guest cart's secret")),
    security((), ("bearer" = [])),
    responses((status = 200, body = NotedCart),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such cart, or not yours (a guest cart needs its X-Cart-Secret)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The cart is checked out")))]
async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NotedCart>, ApiError> {
    let cart = accessible(&state, &caller, &id).await?;
    let (cart, notes) = state.store.acknowledge(&cart.row.id).await?;
    Ok(Json(NotedCart {
        cart: CartView::of(&cart, state.guest_ttl),
        notes,
    }))
}

/// Merges the guest cart `{id}` (its `X-Cart-Secret` required) into the signed-in user's current
/// cart, as at login: units of a product in both add up, capped at 99; lines of discontinued
/// products are dropped; the guest cart is deleted. The notes name what was dropped or capped.
#[utoipa::path(post, path = "/carts/{id}/merge", tag = "carts",
    params(("id" = String, Path), ("X-Cart-Secret" = String, Header, description = "The guest cart's secret")),
    security(("bearer" = [])),
    responses((status = 200, body = NotedCart, description = "The user's cart after the merge"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not a user's token"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such guest cart, or a wrong secret"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "A cart is checked out")))]
async fn merge(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NotedCart>, ApiError> {
    let user = claims
        .user_id()
        .map(|u| u.to_string())
        .ok_or_else(|| Problem::forbidden("Carts are merged into a user's cart."))?;
    let guest = accessible(&state, &caller, &id).await?;
    if guest.row.user_id.is_some() {
        return Err(no_such_cart());
    }
    let (cart, notes) = state.store.merge(&guest.row.id, &user).await?;
    Ok(Json(NotedCart {
        cart: CartView::of(&cart, state.guest_ttl),
        notes,
    }))
}
