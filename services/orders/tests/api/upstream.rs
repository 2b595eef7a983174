//! A stand-in for products, inventory and payments at one address: it answers what the checkout
//! asks (every product exists, stock is always there, every card is good) and records every call
//! with its request id and `traceparent`. Reservations can be held until a test lets them through,
//! and so can the list of an order's payments (which then shows the order's authorization).
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
}

#[derive(Clone)]
struct Shared {
    calls: Arc<Mutex<Vec<Call>>>,
    open: watch::Receiver<bool>,
    /// `None` while the payments list answers at once and empty; `Some(false)` while it is held.
    payments: watch::Receiver<Option<bool>>,
}

pub struct Upstream {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    open: watch::Sender<bool>,
    payments: watch::Sender<Option<bool>>,
}

impl Upstream {
    /// Serving; reservations wait until [`Upstream::open`] unless `open`.
    pub async fn start(open: bool) -> Self {
        let (sender, receiver) = watch::channel(open);
        let (payments, payments_receiver) = watch::channel(None);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(answer).with_state(Shared {
            calls: calls.clone(),
            open: receiver,
            payments: payments_receiver,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            calls,
            open: sender,
            payments,
        }
    }

    /// From now on `GET /payments?order_id=` waits until [`Upstream::let_payments_through`], and
    /// then lists one authorized payment of the order, `pay-<order id>`.
    pub fn hold_payments(&self) {
        self.payments.send_replace(Some(false));
    }

    pub fn let_payments_through(&self) {
        self.payments.send_replace(Some(true));
    }

    /// Lets held reservations through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// How many `POST /reservations` arrived.
    pub fn reservations(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.method == Method::POST && c.path == "/reservations")
            .count()
    }
}

async fn answer(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = uri.path().to_owned();
    shared.calls.lock().unwrap().push(Call {
        method: method.clone(),
        path: path.clone(),
        request_id: header("x-request-id"),
        traceparent: header("traceparent"),
    });
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["products", id]) => axum::Json(json!({"id": id, "sku": format!("SKU-{id}"),
            "name": "A product", "price": {"amount": 1500, "currency": "EUR"}}))
        .into_response(),
        (Method::POST, ["reservations"]) => {
            let mut open = shared.open.clone();
            let _ = open.wait_for(|open| *open).await;
            (StatusCode::CREATED, axum::Json(json!({}))).into_response()
        }
        (Method::POST, ["reservations", _, _]) => axum::Json(json!({})).into_response(),
        (Method::POST, ["payments"]) => (
            StatusCode::CREATED,
            axum::Json(
                json!({"id": uuid::Uuid::now_v7().to_string(), "status": "authorized",
                "captured_amount": 0, "refunded_amount": 0}),
            ),
        )
            .into_response(),
        (Method::GET, ["payments"]) => {
            let mut payments = shared.payments.clone();
            if payments.borrow().is_none() {
                return axum::Json(json!({"items": []})).into_response();
            }
            let _ = payments.wait_for(|p| *p == Some(true)).await;
            let order = uri
                .query()
                .and_then(|q| q.strip_prefix("order_id="))
                .unwrap_or_default();
            axum::Json(
                json!({"items": [{"id": format!("pay-{order}"), "status": "authorized",
                "captured_amount": 0, "refunded_amount": 0}]}),
            )
            .into_response()
        }
        (Method::POST, ["payments", _, "void"]) => axum::Json(json!({})).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
