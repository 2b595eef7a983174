//! The inventory service over real HTTP, every test on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod levels;
mod races;
mod reservations;
mod stock;

use std::sync::Arc;

use reqwest::Response;
use serde_json::{json, Map, Value};
use testkit::{TestDatabase, TestIssuer};

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub issuer: Arc<TestIssuer>,
    pub admin: String,
    /// A service token with `inventory:reserve`, as orders holds.
    pub orders: String,
    pub backend: testkit::Backend,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app(db: TestDatabase) -> TestApp {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut overrides = Map::new();
    overrides.insert("port".into(), json!(0));
    overrides.insert("database_url".into(), json!(db.url));
    overrides.insert("users_url".into(), json!(issuer.users_url));
    overrides.insert("data_dir".into(), json!(dir.path().display().to_string()));
    overrides.insert("expiry_interval_ms".into(), json!(100));
    overrides.insert("database_max_connections".into(), json!(20));
    let app = ::inventory::Application::build(::inventory::Config::load(overrides).unwrap())
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run(platform::shutdown::never()));
    TestApp {
        base,
        http: reqwest::Client::new(),
        admin: issuer.admin(),
        orders: issuer.service("orders", "inventory:reserve"),
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

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn set_stock(&self, sku: &str, on_hand: i64) -> Value {
        let r = self
            .http
            .put(self.url(&format!("/stock/{sku}")))
            .bearer_auth(&self.admin)
            .json(&json!({"on_hand": on_hand, "reason": "stock count"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn stock(&self, sku: &str) -> Value {
        self.http
            .get(self.url(&format!("/stock/{sku}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn reserve(&self, id: &str, items: Value, ttl: i64) -> Response {
        self.http
            .post(self.url("/reservations"))
            .bearer_auth(&self.orders)
            .json(&json!({"reservation_id": id, "items": items, "ttl_seconds": ttl}))
            .send()
            .await
            .unwrap()
    }

    pub async fn act(&self, id: &str, action: &str) -> Response {
        self.http
            .post(self.url(&format!("/reservations/{id}/{action}")))
            .bearer_auth(&self.orders)
            .send()
            .await
            .unwrap()
    }

    /// The invariants: on_hand = available + reserved, and the ledger sums to on_hand.
    pub async fn check_invariants(&self, sku: &str) {
        let stock = self.stock(sku).await;
        let (on_hand, reserved, available) = (
            stock["on_hand"].as_i64().unwrap(),
            stock["reserved"].as_i64().unwrap(),
            stock["available"].as_i64().unwrap(),
        );
        assert_eq!(on_hand, available + reserved, "{} {stock}", self.backend);
        assert!(available >= 0 && reserved >= 0);
        let mut sum = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.url(&format!("/stock/{sku}/movements?limit=100"));
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = self
                .http
                .get(url)
                .bearer_auth(&self.admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            sum += page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["delta"].as_i64().unwrap())
                .sum::<i64>();
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(sum, on_hand, "{} the ledger sums to on_hand", self.backend);
    }

    pub async fn events(&self) -> Vec<Value> {
        let page: Value = self
            .http
            .get(self.url("/events?after=0&limit=500"))
            .bearer_auth(self.issuer.service("products", "events:read"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].clone())
            .collect()
    }
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}
