//! The services orders calls, over REST with its own service token: products (what is sold, at
//! what price), inventory (hold, sell, give back stock) and payments (authorize, capture, void,
//! refund). Every call that changes something is keyed by the order id, so repeating it is safe.
//! Carts (the lines and prices of a cart an order is placed from) is read as the buyer: with the
//! buyer's own token and cart secret, so carts decides whose cart it is.
use std::time::Duration;

use platform::client::{CallError, ClientCredentials, ServiceClient};
use platform::config::CommonConfig;
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::storage::{LineRow, OrderRow};

/// A call that did not get a definite answer: tried again later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

impl From<CallError> for Transient {
    fn from(e: CallError) -> Self {
        Self(e.to_string())
    }
}

pub struct Clients {
    products: ServiceClient,
    inventory: ServiceClient,
    payments: ServiceClient,
    carts: ServiceClient,
}

/// A cart as carts shows it (the fields orders uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Cart {
    pub id: String,
    pub status: String,
    pub items: Vec<CartLine>,
    /// Product ids of lines whose flags the buyer has not acknowledged.
    pub needs_review: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CartLine {
    pub product_id: String,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub quantity: i64,
    pub unit_price: Option<Price>,
    pub flags: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub price: Price,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub amount: i64,
    pub currency: String,
}

pub enum Reserve {
    Reserved,
    /// Not enough stock: inventory's `short` list (sku, requested, available).
    Short(Value),
    /// SKUs inventory does not sell.
    Unknown(Value),
}

pub enum Authorize {
    Authorized {
        payment_id: String,
    },
    /// Declined or refused: the reason.
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentSummary {
    pub id: String,
    pub status: String,
    pub captured_amount: i64,
    pub refunded_amount: i64,
}

#[derive(Deserialize)]
struct PaymentList {
    items: Vec<PaymentSummary>,
}

/// A definite "no" to a change (a 409): the reason.
pub type Refusal = String;

impl Clients {
    pub fn new(common: &CommonConfig, settings: &crate::config::Settings) -> Self {
        let timeout = Duration::from_millis(settings.call_timeout_ms);
        let client = |name: &str, url: &str| {
            let client = ServiceClient::new(name, url, timeout);
            match (&common.client_id, &common.client_secret) {
                (Some(id), Some(secret)) => client.with_credentials(ClientCredentials::new(
                    &common.users_url,
                    id.clone(),
                    secret.clone(),
                )),
                _ => client,
            }
        };
        Self {
            products: client("products", &settings.products_url),
            inventory: client("inventory", &settings.inventory_url),
            payments: client("payments", &settings.payments_url),
            // No service credentials: each call carries the buyer's.
            carts: ServiceClient::new("carts", &settings.carts_url, timeout),
        }
    }

    /// The cart as the buyer (`bearer`, and `secret` for a guest cart) sees it; `None` when it
    /// does not exist for them.
    pub async fn cart(
        &self,
        id: &str,
        bearer: &str,
        secret: Option<&str>,
    ) -> Result<Option<Cart>, Transient> {
        let r = self
            .carts
            .send(Method::GET, &format!("/carts/{id}"), None, |r| {
                let r = r.bearer_auth(bearer);
                match secret {
                    Some(secret) => r.header("X-Cart-Secret", secret),
                    None => r,
                }
            })
            .await?;
        match r.status() {
            StatusCode::OK => Ok(Some(json_of(r).await?)),
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => Ok(None),
            other => Err(unexpected("carts", other, r).await),
        }
    }

    /// The product as it is now; `None` when it does not exist (or was deleted).
    pub async fn product(&self, id: &str) -> Result<Option<Product>, Transient> {
        let r = self
            .products
            .send(Method::GET, &format!("/products/{id}"), None, |r| r)
            .await?;
        match r.status() {
            StatusCode::OK => Ok(Some(json_of(r).await?)),
            StatusCode::NOT_FOUND | StatusCode::GONE | StatusCode::BAD_REQUEST => Ok(None),
            other => Err(unexpected("products", other, r).await),
        }
    }

    pub async fn reserve(
        &self,
        order_id: &str,
        lines: &[LineRow],
        ttl_seconds: i64,
    ) -> Result<Reserve, Transient> {
        let items: Vec<Value> = lines
            .iter()
            .map(|l| json!({"sku": l.sku, "quantity": l.quantity}))
            .collect();
        let body = json!({"reservation_id": order_id, "items": items, "ttl_seconds": ttl_seconds});
        let r = self
            .inventory
            .send(Method::POST, "/reservations", None, |r| r.json(&body))
            .await?;
        match r.status() {
            StatusCode::CREATED | StatusCode::OK => Ok(Reserve::Reserved),
            StatusCode::CONFLICT => {
                let problem: Value = json_of(r).await?;
                Ok(Reserve::Short(problem["short"].clone()))
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                let problem: Value = json_of(r).await?;
                Ok(Reserve::Unknown(problem["unknown_skus"].clone()))
            }
            other => Err(unexpected("inventory", other, r).await),
        }
    }

    /// `action` is commit, release or return. A reservation that never existed counts as released.
    pub async fn reservation(
        &self,
        order_id: &str,
        action: &str,
    ) -> Result<Result<(), Refusal>, Transient> {
        let path = format!("/reservations/{order_id}/{action}");
        let r = self
            .inventory
            .send(Method::POST, &path, None, |r| r)
            .await?;
        match r.status() {
            StatusCode::OK => Ok(Ok(())),
            StatusCode::NOT_FOUND if action == "release" => Ok(Ok(())),
            StatusCode::CONFLICT | StatusCode::NOT_FOUND => Ok(Err(detail(r).await)),
            other => Err(unexpected("inventory", other, r).await),
        }
    }

    /// Authorizes the order's total, keyed by the order id: asking again answers the same.
    pub async fn authorize(&self, order: &OrderRow) -> Result<Authorize, Transient> {
        let body = json!({"order_id": order.id, "amount": order.total_amount, "currency": order.currency,
            "payment_method": order.payment_method, "customer_id": order.user_id});
        let r = self
            .payments
            .send(Method::POST, "/payments", None, |r| {
                r.header("Idempotency-Key", format!("order-{}", order.id))
                    .json(&body)
            })
            .await?;
        match r.status() {
            StatusCode::CREATED | StatusCode::OK => {
                let payment: PaymentSummary = json_of(r).await?;
                Ok(Authorize::Authorized {
                    payment_id: payment.id,
                })
            }
            StatusCode::PAYMENT_REQUIRED | StatusCode::UNPROCESSABLE_ENTITY => {
                let problem: Value = json_of(r).await?;
                let reason = problem["decline_code"]
                    .as_str()
                    .or(problem["detail"].as_str())
                    .unwrap_or("declined")
                    .to_owned();
                Ok(Authorize::Failed { reason })
            }
            other => Err(unexpected("payments", other, r).await),
        }
    }

    pub async fn payments_of(&self, order_id: &str) -> Result<Vec<PaymentSummary>, Transient> {
        let path = format!("/payments?order_id={order_id}");
        let r = self.payments.send(Method::GET, &path, None, |r| r).await?;
        match r.status() {
            StatusCode::OK => Ok(json_of::<PaymentList>(r).await?.items),
            other => Err(unexpected("payments", other, r).await),
        }
    }

    /// `action` is capture or void.
    pub async fn payment(
        &self,
        payment_id: &str,
        action: &str,
    ) -> Result<Result<(), Refusal>, Transient> {
        let path = format!("/payments/{payment_id}/{action}");
        let r = self.payments.send(Method::POST, &path, None, |r| r).await?;
        match r.status() {
            StatusCode::OK => Ok(Ok(())),
            StatusCode::CONFLICT => Ok(Err(detail(r).await)),
            other => Err(unexpected("payments", other, r).await),
        }
    }

    /// Refunds what is left of a captured payment, keyed so that asking again is the same refund.
    pub async fn refund(
        &self,
        payment_id: &str,
        key: &str,
    ) -> Result<Result<(), Refusal>, Transient> {
        let path = format!("/payments/{payment_id}/refunds");
        let r = self
            .payments
            .send(Method::POST, &path, None, |r| {
                r.header("Idempotency-Key", key)
                    .json(&json!({"reason": "order cancelled"}))
            })
            .await?;
        match r.status() {
            StatusCode::CREATED | StatusCode::OK => Ok(Ok(())),
            StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => Ok(Err(detail(r).await)),
            other => Err(unexpected("payments", other, r).await),
        }
    }
}

async fn json_of<T: serde::de::DeserializeOwned>(r: Response) -> Result<T, Transient> {
    r.json()
        .await
        .map_err(|e| Transient(format!("unreadable answer: {e}")))
}

async fn detail(r: Response) -> String {
    let problem: Value = r.json().await.unwrap_or_default();
    problem["detail"].as_str().unwrap_or("refused").to_owned()
}

/// An answer orders did not expect: logged, and treated as "try again later".
async fn unexpected(service: &str, status: StatusCode, r: Response) -> Transient {
    let body = r.text().await.unwrap_or_default();
    tracing::warn!(service, %status, body = %body.chars().take(300).collect::<String>(), "unexpected answer");
    Transient(format!("{service} answered {status}"))
}
