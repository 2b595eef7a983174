//! The payment gateway simulator over real HTTP, as a Stripe client sees it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod faults;
mod idempotency;
mod intents;
mod refunds;
mod webhooks;

use std::time::Duration;

use reqwest::Response;
use serde_json::{json, Map, Value};

pub const KEY: &str = "sk_test_api_tests_0123456789";
pub const WEBHOOK_SECRET: &str = "whsec_api_tests";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(json!({})).await
}

/// Starts the simulator on a free port with `settings` on top of the test defaults.
pub async fn spawn_with(settings: Value) -> TestApp {
    let mut overrides = Map::new();
    overrides.insert("port".into(), json!(0));
    overrides.insert("psp_api_key".into(), json!(KEY));
    overrides.insert("psp_webhook_secret".into(), json!(WEBHOOK_SECRET));
    overrides.insert("fault_seed".into(), json!(42));
    if let Value::Object(settings) = settings {
        overrides.extend(settings);
    }
    let app = payment_gateway_sim::Application::build(
        payment_gateway_sim::Config::load(overrides).unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run(platform::shutdown::never()));
    TestApp {
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A form POST with the API key and, if given, an idempotency key.
    pub fn post_request(
        &self,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.post(self.url(path)).bearer_auth(KEY).form(form);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.post_request(path, form, None).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
    }

    /// A manual-capture intent authorized with `pm_card_visa`.
    pub async fn authorize(&self, amount: i64, order: &str) -> Value {
        let amount = amount.to_string();
        ok(self
            .post(
                "/v1/payment_intents",
                &[
                    ("amount", &amount),
                    ("currency", "eur"),
                    ("payment_method", "pm_card_visa"),
                    ("capture_method", "manual"),
                    ("confirm", "true"),
                    ("metadata[order_id]", order),
                ],
            )
            .await)
        .await
    }

    pub async fn capture(&self, id: &str, amount: Option<i64>) -> Response {
        let amount = amount.map(|a| a.to_string());
        let form: Vec<(&str, &str)> = amount
            .iter()
            .map(|a| ("amount_to_capture", a.as_str()))
            .collect();
        self.post(&format!("/v1/payment_intents/{id}/capture"), &form)
            .await
    }

    /// The intents whose `order_id` metadata is `order`, newest first.
    pub async fn by_order(&self, order: &str) -> Vec<Value> {
        let r = self
            .http
            .get(self.url("/v1/payment_intents/search"))
            .bearer_auth(KEY)
            .query(&[("query", format!("metadata['order_id']:'{order}'"))])
            .send()
            .await
            .unwrap();
        let found = ok(r).await;
        assert_eq!(found["object"], "search_result");
        found["data"].as_array().unwrap().clone()
    }

    pub async fn set_faults(&self, faults: Value) -> Value {
        let r = self
            .http
            .put(self.url("/admin/faults"))
            .bearer_auth(KEY)
            .json(&faults)
            .send()
            .await
            .unwrap();
        ok(r).await
    }
}

/// A 200 answer's JSON.
pub async fn ok(response: Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Stripe's error object from an answer with `status`.
pub async fn stripe_error(response: Response, status: u16) -> Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "errors are JSON"
    );
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body["error"].clone()
}

pub fn new_order() -> String {
    format!("ORD-{}", rand_suffix())
}

pub fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
