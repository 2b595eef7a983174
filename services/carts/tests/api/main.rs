//! The carts service over real HTTP, every test on SQLite and on PostgreSQL. The catalog, stock
//! and order events carts follows are fed to its event handler the way the feed consumer does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod carts;
mod events;

use std::sync::Arc;

use platform::events::{Event, EventHandler};
use reqwest::Response;
use serde_json::{json, Map, Value};
use testkit::{TestDatabase, TestIssuer};

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub issuer: Arc<TestIssuer>,
    pub backend: testkit::Backend,
    /// carts' own event handler over its database, to deliver products', inventory's and
    /// orders' events.
    pub handler: ::carts::events::Reactions,
    /// Per product id, its version so far.
    versions: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

pub async fn spawn_with(db: TestDatabase, settings: Value) -> TestApp {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut overrides = Map::new();
    overrides.insert("port".into(), json!(0));
    overrides.insert("database_url".into(), json!(db.url));
    overrides.insert("users_url".into(), json!(issuer.users_url));
    overrides.insert("data_dir".into(), json!(dir.path().display().to_string()));
    overrides.insert("database_max_connections".into(), json!(10));
    for (k, v) in settings.as_object().unwrap() {
        overrides.insert(k.clone(), v.clone());
    }
    let app = ::carts::Application::build(::carts::Config::load(overrides).unwrap())
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run(platform::shutdown::never()));
    let (store, _) = ::carts::storage::connect(&db.url, 2).await.unwrap();
    TestApp {
        base,
        http: reqwest::Client::new(),
        issuer,
        backend: db.backend,
        handler: ::carts::events::Reactions { store },
        versions: Default::default(),
        _db: db,
        _dir: dir,
    }
}

pub async fn apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for db in TestDatabase::all().await {
        apps.push(spawn_with(db, json!({})).await);
    }
    apps
}

/// A user, as a token for a new id.
pub struct User {
    pub id: String,
    pub token: String,
}

/// A guest cart: its id and secret.
pub struct Guest {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn user(&self) -> User {
        let id = uuid::Uuid::now_v7().to_string();
        let token = self
            .issuer
            .sign(&self.issuer.claims(&id, &["customer"], ""));
        User { id, token }
    }

    async fn deliver(&self, event: Event, position: Option<i64>) {
        self.handler.handle_at(&event, position).await.unwrap();
    }

    /// A products event for product `id`, at the next version.
    pub async fn product_event(&self, kind: &str, id: &str, sku: &str, price: i64, currency: &str) {
        let version = {
            let mut versions = self.versions.lock().unwrap();
            let v = versions.entry(id.to_owned()).or_insert(0);
            // A deletion carries the version it deleted.
            if kind != "product_deleted" {
                *v += 1;
            }
            *v
        };
        let data = json!({"id": id, "sku": sku, "name": format!("Product {sku}"),
            "price": {"amount": price, "currency": currency}, "category": "test", "version": version});
        self.deliver(Event::new("products", kind, id.to_owned(), data), None)
            .await;
    }

    /// A product in the catalog projection, priced in EUR; returns its id.
    pub async fn product(&self, sku: &str, price: i64) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        self.product_event("product_created", &id, sku, price, "EUR")
            .await;
        id
    }

    pub async fn stock(&self, sku: &str, available: i64, position: i64) {
        let data = json!({"sku": sku, "on_hand": available, "reserved": 0, "available": available});
        self.deliver(
            Event::new("inventory", "stock_changed", sku.to_owned(), data),
            Some(position),
        )
        .await;
    }

    pub async fn confirm_order(&self, cart_id: &str, order_id: &str) -> Event {
        let event = Event::new(
            "orders",
            "order_confirmed",
            order_id.to_owned(),
            json!({"order_id": order_id, "cart_id": cart_id, "status": "confirmed"}),
        );
        self.deliver(event.clone(), None).await;
        event
    }

    pub async fn new_guest(&self) -> Guest {
        let r = self.http.post(self.url("/carts")).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        Guest {
            id: body["cart"]["id"].as_str().unwrap().to_owned(),
            secret: body["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// The user's current cart id.
    pub async fn user_cart(&self, user: &User) -> String {
        let r = self
            .http
            .post(self.url("/carts"))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap();
        assert!(r.status() == 201 || r.status() == 200);
        let body: Value = r.json().await.unwrap();
        body["cart"]["id"].as_str().unwrap().to_owned()
    }

    /// A request on `path` as a guest holding `secret`.
    pub fn as_guest(
        &self,
        method: reqwest::Method,
        path: &str,
        secret: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("X-Cart-Secret", secret)
    }

    pub async fn guest_read(&self, g: &Guest) -> Value {
        let r = self
            .as_guest(reqwest::Method::GET, &format!("/carts/{}", g.id), &g.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn guest_add(&self, g: &Guest, product: &str, quantity: i64) -> Response {
        self.as_guest(
            reqwest::Method::POST,
            &format!("/carts/{}/items", g.id),
            &g.secret,
        )
        .json(&json!({"product_id": product, "quantity": quantity}))
        .send()
        .await
        .unwrap()
    }

    pub async fn user_add(&self, u: &User, cart: &str, product: &str, quantity: i64) -> Response {
        self.http
            .post(self.url(&format!("/carts/{cart}/items")))
            .bearer_auth(&u.token)
            .json(&json!({"product_id": product, "quantity": quantity}))
            .send()
            .await
            .unwrap()
    }

    pub async fn user_read(&self, u: &User, cart: &str) -> Value {
        let r = self
            .http
            .get(self.url(&format!("/carts/{cart}")))
            .bearer_auth(&u.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn events(&self) -> Vec<Value> {
        let page: Value = self
            .http
            .get(self.url("/events?after=0&limit=500"))
            .bearer_auth(self.issuer.service("notifications", "events:read"))
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

pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

/// (product id, quantity) of each line.
pub fn lines(cart: &Value) -> Vec<(String, i64)> {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["product_id"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect()
}
