//! Payments over real HTTP against the payment gateway simulator, every test on SQLite and on
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod faults;
mod idempotency;
mod lifecycle;
mod webhooks;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Response;
use serde_json::{json, Map, Value};
use testkit::{TestDatabase, TestIssuer};

pub const PSP_KEY: &str = "sk_test_payments_suite";
pub const WEBHOOK_SECRET: &str = "whsec_payments_suite";

pub struct TestApp {
    pub base: String,
    pub sim: String,
    pub http: reqwest::Client,
    pub issuer: Arc<TestIssuer>,
    pub admin: String,
    /// A service token with `payments:write`, as orders holds.
    pub orders: String,
    pub backend: testkit::Backend,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app(db: TestDatabase) -> TestApp {
    spawn_app_with(db, true).await
}

/// Without webhooks, only the reconciliation worker can settle an unknown outcome.
pub async fn spawn_app_with(db: TestDatabase, webhooks: bool) -> TestApp {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The simulator posts webhooks to payments, and payments calls the simulator: payments' port
    // is picked first.
    let port = testkit::free_port();
    let mut sim = Map::new();
    sim.insert("port".into(), json!(0));
    sim.insert("psp_api_key".into(), json!(PSP_KEY));
    sim.insert("psp_webhook_secret".into(), json!(WEBHOOK_SECRET));
    if webhooks {
        sim.insert(
            "webhook_url".into(),
            json!(format!("http://127.0.0.1:{port}/webhooks/gateway")),
        );
    }
    sim.insert("data_dir".into(), json!(dir.path().display().to_string()));
    let sim = ::payment_gateway_sim::Application::build(
        ::payment_gateway_sim::Config::load(sim).unwrap(),
    )
    .await
    .unwrap();
    let sim_base = format!("http://127.0.0.1:{}", sim.port());
    tokio::spawn(sim.run(platform::shutdown::never()));

    let mut overrides = Map::new();
    overrides.insert("port".into(), json!(port));
    overrides.insert("database_url".into(), json!(db.url));
    overrides.insert("users_url".into(), json!(issuer.users_url));
    overrides.insert("data_dir".into(), json!(dir.path().display().to_string()));
    overrides.insert("database_max_connections".into(), json!(20));
    overrides.insert("psp_url".into(), json!(sim_base));
    overrides.insert("psp_api_key".into(), json!(PSP_KEY));
    overrides.insert("psp_webhook_secret".into(), json!(WEBHOOK_SECRET));
    overrides.insert("psp_timeout_ms".into(), json!(1000));
    overrides.insert("reconcile_interval_ms".into(), json!(100));
    overrides.insert("reconcile_after_ms".into(), json!(300));
    overrides.insert("psp_breaker_open_ms".into(), json!(1000));
    let app = ::payments::Application::build(::payments::Config::load(overrides).unwrap())
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run(platform::shutdown::never()));
    TestApp {
        base,
        sim: sim_base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        admin: issuer.admin(),
        orders: issuer.service("orders", "payments:write"),
        issuer,
        backend: db.backend,
        _db: db,
        _dir: dir,
    }
}

pub async fn apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for db in TestDatabase::all().await {
        apps.push(spawn_app(db).await);
    }
    apps
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /payments` as orders would send it.
    pub async fn authorize(&self, key: &str, body: &Value) -> Response {
        self.http
            .post(self.url("/payments"))
            .bearer_auth(&self.orders)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Authorizes `amount` for a new order with `method`; returns the answer's status and body.
    pub async fn pay(&self, amount: i64, method: &str) -> (u16, Value) {
        let body = json!({"order_id": new_id(), "amount": amount, "currency": "EUR",
            "payment_method": method, "customer_id": new_id()});
        let r = self.authorize(&new_id(), &body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Response {
        let mut request = self.http.post(self.url(path)).bearer_auth(&self.orders);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn refund(&self, id: &str, key: &str, amount: Option<i64>) -> Response {
        let body = match amount {
            Some(a) => json!({"amount": a}),
            None => json!({}),
        };
        self.http
            .post(self.url(&format!("/payments/{id}/refunds")))
            .bearer_auth(&self.orders)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn payment(&self, id: &str) -> Value {
        let r = self
            .http
            .get(self.url(&format!("/payments/{id}")))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The intents the gateway holds for one of our payments.
    pub async fn intents_of(&self, payment_id: &str) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/v1/payment_intents/search", self.sim))
            .bearer_auth(PSP_KEY)
            .query(&[("query", format!("metadata['payment_id']:'{payment_id}'"))])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let found: Value = r.json().await.unwrap();
        found["data"].as_array().unwrap().clone()
    }

    pub async fn set_faults(&self, faults: Value) {
        let r = self
            .http
            .put(format!("{}/admin/faults", self.sim))
            .bearer_auth(PSP_KEY)
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// Waits (bounded) until the payment's status is `status`.
    pub async fn eventually(&self, id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            last = self.payment(id).await;
            if last["status"] == status {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{}: payment {id} never became {status}: {last}",
            self.backend
        );
    }
}
