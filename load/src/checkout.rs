//! Write scenarios: an authorization at the gateway simulator alone, the same through payments,
//! and a whole checkout through orders, so that what payments and the saga add is a ratio.
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::Request;

/// The customer the write scenarios log in as (a throwaway account of the throwaway platform).
const CUSTOMER: &str = "loadtester";
const CUSTOMER_PASSWORD: &str = "load test password";

/// `key` in a file of `key: value` or `key = "value"` lines that `agora up` wrote.
fn setting(dir: &Path, file: &str, key: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(dir.join(file))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| {
            v.trim_start_matches([':', ' ', '='])
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .ok_or_else(|| anyhow::anyhow!("{key} not found in {file}"))
}

async fn token(request: reqwest::RequestBuilder) -> anyhow::Result<String> {
    let body: Value = request.send().await?.error_for_status()?.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no access token"))
}

/// What the write scenarios need: tokens, keys and URLs from the running platform.
pub struct Setup {
    /// The gateway's port; the services' follow it.
    port: u16,
    admin: String,
    service: String,
    customer: String,
    psp_key: String,
    product_id: String,
    /// SKUs of the products given to [`Setup::new`] (up to [`SPREAD`]), each with stock enough for
    /// the run: the first for the one-SKU reservations, all for those that do not all queue on
    /// one stock row.
    skus: Vec<String>,
}

/// How many of the catalog's products the spread reservations use.
const SPREAD: usize = 32;

impl Setup {
    pub async fn new(
        http: &reqwest::Client,
        data: &Path,
        port: u16,
        product_ids: &[String],
    ) -> anyhow::Result<Self> {
        let product_id = product_ids
            .first()
            .ok_or_else(|| anyhow::anyhow!("the catalog is empty"))?;
        let url = |offset: u16, path: &str| format!("http://127.0.0.1:{}{path}", port + offset);
        let admin = token(http.post(url(1, "/auth/login")).json(&json!({
            "login": "admin",
            "password": setting(data, "admin-credentials", "password")?,
        })))
        .await?;
        let mut skus = Vec::new();
        for id in product_ids.iter().take(SPREAD) {
            let product: Value = http
                .get(url(2, &format!("/products/{id}")))
                .send()
                .await?
                .json()
                .await?;
            let sku = product["sku"].as_str().unwrap_or_default().to_owned();
            // Enough stock that no checkout or reservation of the run is short.
            http.put(url(3, &format!("/stock/{sku}")))
                .bearer_auth(&admin)
                .json(&json!({"on_hand": 1_000_000_000, "reason": "load test"}))
                .send()
                .await?
                .error_for_status()?;
            skus.push(sku);
        }
        // Orders' own client holds inventory:reserve and payments:write, as in the checkout.
        let service = token(
            http.post(url(1, "/oauth/token"))
                .basic_auth(
                    "orders",
                    Some(setting(data, "config/orders.toml", "client_secret")?),
                )
                .form(&[("grant_type", "client_credentials")]),
        )
        .await?;
        http.post(url(1, "/users"))
            .json(&json!({"username": CUSTOMER, "email": "load@example.com", "password": CUSTOMER_PASSWORD}))
            .send()
            .await?;
        let customer = token(http.post(url(1, "/auth/login")).json(&json!({
            "login": CUSTOMER, "password": CUSTOMER_PASSWORD
        })))
        .await?;
        Ok(Self {
            port,
            admin,
            service,
            customer,
            psp_key: setting(data, "config/payment-gateway-sim.toml", "psp_api_key")?,
            product_id: product_id.to_owned(),
            skus,
        })
    }

    fn url(&self, offset: u16, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port + offset)
    }

    /// Reservations of one unit (one line), of each of `skus` in turn.
    fn reservations(&self, skus: Vec<String>) -> Request {
        let (reservations, service) = (self.url(3, "/reservations"), self.service.clone());
        Arc::new(move |client, i| {
            client
                .post(&reservations)
                .bearer_auth(&service)
                .json(&json!({"reservation_id": uuid::Uuid::now_v7().to_string(), "items": [{"sku": skus[i % skus.len()], "quantity": 1}], "ttl_seconds": 3600}))
        })
    }

    pub fn scenarios(&self) -> Vec<(&'static str, Request)> {
        let key = || uuid::Uuid::now_v7().to_string();
        let (psp, psp_key) = (self.url(6, "/v1/payment_intents"), self.psp_key.clone());
        let direct: Request = Arc::new(move |client, _| {
            client
                .post(&psp)
                .bearer_auth(&psp_key)
                .header("Idempotency-Key", key())
                .form(&[
                    ("amount", "1999"),
                    ("currency", "eur"),
                    ("payment_method", "pm_card_visa"),
                    ("capture_method", "manual"),
                    ("confirm", "true"),
                    ("metadata[order_id]", "load"),
                ])
        });
        let (payments, service) = (self.url(5, "/payments"), self.service.clone());
        let through_payments: Request = Arc::new(move |client, _| {
            client
                .post(&payments)
                .bearer_auth(&service)
                .header("Idempotency-Key", key())
                .json(
                    &json!({"order_id": key(), "amount": 1999, "currency": "EUR",
                    "payment_method": "pm_card_visa", "customer_id": "load"}),
                )
        });
        let reserve = self.reservations(self.skus[..1].to_vec());
        let reserve_spread = self.reservations(self.skus.clone());
        let checkout = self.checkout(&self.url(4, ""));
        vec![
            ("reserve stock (POST /reservations, 1 line)", reserve),
            (
                "reserve stock, one of 32 SKUs in turn (POST /reservations, 1 line)",
                reserve_spread,
            ),
            (
                "authorize at the gateway simulator alone (POST /v1/payment_intents)",
                direct,
            ),
            (
                "authorize through payments (POST /payments → simulator)",
                through_payments,
            ),
            (
                "checkout (POST /orders → products, inventory, payments → simulator)",
                checkout,
            ),
        ]
    }

    /// `POST {base}/orders`: a checkout of one unit of the stocked product, paid by card, as the
    /// customer (`base` is the orders service, or the gateway's `/api`).
    pub fn checkout(&self, base: &str) -> Request {
        let (orders, customer, product_id) = (
            format!("{base}/orders"),
            self.customer.clone(),
            self.product_id.clone(),
        );
        Arc::new(move |client, _| {
            client
                .post(&orders)
                .bearer_auth(&customer)
                .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
                .json(
                    &json!({"items": [{"product_id": product_id, "quantity": 1}],
                    "payment_method": "pm_card_visa",
                    "shipping_address": {"name": "Load", "line1": "1 Test St", "city": "Berlin",
                        "postal_code": "10115", "country": "DE"}}),
                )
        })
    }

    /// `POST {base}/auth/login` as the customer: a password check (argon2) and a new token.
    pub fn login(&self, base: &str) -> Request {
        let url = format!("{base}/auth/login");
        Arc::new(move |client, _| {
            client
                .post(&url)
                .json(&json!({"login": CUSTOMER, "password": CUSTOMER_PASSWORD}))
        })
    }

    /// `GET {base}/orders`: the customer's order history, first page.
    pub fn orders(&self, base: &str) -> Request {
        let (url, customer) = (format!("{base}/orders"), self.customer.clone());
        Arc::new(move |client, _| client.get(&url).bearer_auth(&customer))
    }

    /// Sets a product's stock `count` times, one after the other, and measures each time how long
    /// until the catalog shows it (inventory's outbox → transport → products' projection).
    pub async fn availability_delays(
        &self,
        http: &reqwest::Client,
        product_id: &str,
        count: usize,
    ) -> anyhow::Result<Vec<std::time::Duration>> {
        let product: Value = http
            .get(self.url(2, &format!("/products/{product_id}")))
            .send()
            .await?
            .json()
            .await?;
        let sku = product["sku"].as_str().unwrap_or_default();
        let mut delays = Vec::new();
        for i in 0..count {
            let units = 1000 + i as i64;
            let started = std::time::Instant::now();
            http.put(self.url(3, &format!("/stock/{sku}")))
                .bearer_auth(&self.admin)
                .json(&json!({"on_hand": units, "reason": "load test"}))
                .send()
                .await?
                .error_for_status()?;
            loop {
                let seen: Value = http
                    .get(self.url(2, &format!("/products/{product_id}")))
                    .send()
                    .await?
                    .json()
                    .await?;
                if seen["availability"]["available"] == units {
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "availability did not follow within 10 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            delays.push(started.elapsed());
        }
        delays.sort_unstable();
        Ok(delays)
    }
}
