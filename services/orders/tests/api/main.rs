//! Orders over real HTTP with the real products, inventory and payments services and the payment
//! gateway simulator (each an application on its own port), on SQLite and on PostgreSQL. Every
//! test ends with the conservation check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod checkout;
mod context;
mod lease;
mod lifecycle;
mod listing;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Response;
use serde_json::{json, Map, Value};
use testkit::{Backend, TestDatabase, TestIssuer};

pub const PSP_KEY: &str = "sk_test_orders_suite";
const WEBHOOK_SECRET: &str = "whsec_orders_suite";

pub struct Stack {
    pub http: reqwest::Client,
    pub issuer: Arc<TestIssuer>,
    pub admin: String,
    pub products: String,
    pub inventory: String,
    pub payments: String,
    pub orders: String,
    pub sim: String,
    pub backend: Backend,
    _dbs: Vec<TestDatabase>,
    _dir: tempfile::TempDir,
}

async fn database(backend: Backend) -> TestDatabase {
    match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres().await.unwrap(),
    }
}

fn common(issuer: &TestIssuer, db: &TestDatabase, dir: &std::path::Path) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("port".into(), json!(0));
    o.insert("database_url".into(), json!(db.url));
    o.insert("users_url".into(), json!(issuer.users_url));
    o.insert("data_dir".into(), json!(dir.display().to_string()));
    o.insert("database_max_connections".into(), json!(20));
    o.insert("client_id".into(), json!("test-client"));
    o.insert("client_secret".into(), json!("test-secret"));
    o
}

/// Every service the checkout touches, on `backend`.
pub async fn stack_on(backend: Backend, orders_settings: Value) -> Stack {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dbs = vec![
        database(backend).await,
        database(backend).await,
        database(backend).await,
        database(backend).await,
    ];

    // Each follows the other's events; their ports are picked first.
    let (products_port, inventory_port) = (testkit::free_port(), testkit::free_port());
    let mut config = common(&issuer, &dbs[0], dir.path());
    config.insert("port".into(), json!(products_port));
    config.insert(
        "inventory_url".into(),
        json!(format!("http://127.0.0.1:{inventory_port}")),
    );
    let products = ::products::Application::build(::products::Config::load(config).unwrap())
        .await
        .unwrap();
    let products_url = format!("http://127.0.0.1:{}", products.port());
    tokio::spawn(products.run(platform::shutdown::never()));

    let mut config = common(&issuer, &dbs[1], dir.path());
    config.insert("port".into(), json!(inventory_port));
    config.insert(
        "products_url".into(),
        json!(format!("http://127.0.0.1:{products_port}")),
    );
    let inventory = ::inventory::Application::build(::inventory::Config::load(config).unwrap())
        .await
        .unwrap();
    let inventory_url = format!("http://127.0.0.1:{}", inventory.port());
    tokio::spawn(inventory.run(platform::shutdown::never()));

    let payments_port = testkit::free_port();
    let mut sim = Map::new();
    sim.insert("port".into(), json!(0));
    sim.insert("psp_api_key".into(), json!(PSP_KEY));
    sim.insert("psp_webhook_secret".into(), json!(WEBHOOK_SECRET));
    sim.insert(
        "webhook_url".into(),
        json!(format!("http://127.0.0.1:{payments_port}/webhooks/gateway")),
    );
    let sim = ::payment_gateway_sim::Application::build(
        ::payment_gateway_sim::Config::load(sim).unwrap(),
    )
    .await
    .unwrap();
    let sim_url = format!("http://127.0.0.1:{}", sim.port());
    tokio::spawn(sim.run(platform::shutdown::never()));

    let mut p = common(&issuer, &dbs[2], dir.path());
    p.insert("port".into(), json!(payments_port));
    p.insert("psp_url".into(), json!(sim_url));
    p.insert("psp_api_key".into(), json!(PSP_KEY));
    p.insert("psp_webhook_secret".into(), json!(WEBHOOK_SECRET));
    p.insert("reconcile_interval_ms".into(), json!(200));
    p.insert("reconcile_after_ms".into(), json!(1000));
    let payments = ::payments::Application::build(::payments::Config::load(p).unwrap())
        .await
        .unwrap();
    let payments_url = format!("http://127.0.0.1:{}", payments.port());
    tokio::spawn(payments.run(platform::shutdown::never()));

    let mut o = common(&issuer, &dbs[3], dir.path());
    o.insert("products_url".into(), json!(products_url));
    o.insert("inventory_url".into(), json!(inventory_url));
    o.insert("payments_url".into(), json!(payments_url));
    o.insert("recovery_interval_ms".into(), json!(100));
    o.insert("lease_ms".into(), json!(2000));
    for (k, v) in orders_settings.as_object().unwrap() {
        o.insert(k.clone(), v.clone());
    }
    let orders = ::orders::Application::build(::orders::Config::load(o).unwrap())
        .await
        .unwrap();
    let orders_url = format!("http://127.0.0.1:{}", orders.port());
    tokio::spawn(orders.run(platform::shutdown::never()));

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let admin = issuer.admin();
    let r = http
        .post(format!("{products_url}/categories"))
        .bearer_auth(&admin)
        .json(&json!({"slug": "test", "name": "Test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    Stack {
        http,
        admin,
        issuer,
        products: products_url,
        inventory: inventory_url,
        payments: payments_url,
        orders: orders_url,
        sim: sim_url,
        backend,
        _dbs: dbs,
        _dir: dir,
    }
}

/// A stack per backend available.
pub async fn stacks() -> Vec<Stack> {
    let mut stacks = Vec::new();
    for db in TestDatabase::all().await {
        stacks.push(stack_on(db.backend, json!({})).await);
    }
    stacks
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
        "postal_code": "SW1Y 4JH", "country": "GB"})
}

/// A user, as a token for a new id.
pub struct Customer {
    pub id: String,
    pub token: String,
}

impl Stack {
    pub fn customer(&self) -> Customer {
        let id = new_id();
        let token = self
            .issuer
            .sign(&self.issuer.claims(&id, &["customer"], ""));
        Customer { id, token }
    }

    /// A product with `stock` units; returns (product id, sku).
    pub async fn product(&self, sku: &str, price: i64, currency: &str, stock: i64) -> String {
        let r = self
            .http
            .post(format!("{}/products", self.products))
            .bearer_auth(&self.admin)
            .json(
                &json!({"sku": sku, "name": format!("Product {sku}"), "description": "test",
                "price": {"amount": price, "currency": currency}, "category": "test"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let product: Value = r.json().await.unwrap();
        let r = self
            .http
            .put(format!("{}/stock/{sku}", self.inventory))
            .bearer_auth(&self.admin)
            .json(&json!({"on_hand": stock, "reason": "stock count"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        product["id"].as_str().unwrap().to_owned()
    }

    pub async fn place(&self, who: &Customer, key: &str, items: Value, method: &str) -> Response {
        self.http
            .post(format!("{}/orders", self.orders))
            .bearer_auth(&who.token)
            .header("Idempotency-Key", key)
            .json(&json!({"items": items, "payment_method": method, "shipping_address": address()}))
            .send()
            .await
            .unwrap()
    }

    /// Places an order of `quantity` × `product` with a good card; the answer's body.
    pub async fn buy(&self, who: &Customer, product: &str, quantity: i64) -> Value {
        self.place(
            who,
            &new_id(),
            json!([{"product_id": product, "quantity": quantity}]),
            "pm_card_visa",
        )
        .await
        .json()
        .await
        .unwrap()
    }

    pub async fn order(&self, token: &str, id: &str) -> Response {
        self.http
            .get(format!("{}/orders/{id}", self.orders))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn act(&self, token: &str, id: &str, action: &str) -> Response {
        self.http
            .post(format!("{}/orders/{id}/{action}", self.orders))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn stock(&self, sku: &str) -> Value {
        self.http
            .get(format!("{}/stock/{sku}", self.inventory))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits (bounded) until the order leaves `pending` and no saga step is left.
    pub async fn settled(&self, id: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            last = self.order(&self.admin, id).await.json().await.unwrap();
            if last["status"] != "pending" {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{}: order {id} never settled: {last}", self.backend);
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
        assert!(r.status().is_success());
    }

    /// The conservation check over `skus`.
    pub async fn conserved(&self, skus: &[&str]) {
        testkit::conservation::check(
            &testkit::conservation::Platform {
                http: &self.http,
                inventory: &self.inventory,
                orders: &self.orders,
                payments: &self.payments,
                psp: &self.sim,
                psp_key: PSP_KEY,
                admin_token: &self.admin,
            },
            skus,
        )
        .await;
    }
}
