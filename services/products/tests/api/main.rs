//! The products service over real HTTP, every test on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod categories;
mod events;
mod filters;
mod listings;
mod products;
mod search;

use std::sync::Arc;

use reqwest::{Response, StatusCode};
use serde_json::{json, Map, Value};
use testkit::{TestDatabase, TestIssuer};

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub issuer: Arc<TestIssuer>,
    pub admin: String,
    pub backend: testkit::Backend,
    /// The database's URL, for a second replica over it (`spawn_replica`).
    pub db_url: String,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app(db: TestDatabase) -> TestApp {
    let issuer = TestIssuer::start().await;
    let (base, dir) = start(&db.url, &issuer).await;
    TestApp {
        base,
        http: reqwest::Client::new(),
        admin: issuer.admin(),
        issuer,
        backend: db.backend,
        db_url: db.url.clone(),
        _db: db,
        _dir: dir,
    }
}

/// A second products process over one database, as a replica behind a load balancer.
pub struct Replica {
    pub base: String,
    _dir: tempfile::TempDir,
}

/// Starts a replica over `app`'s database and issuer.
pub async fn spawn_replica(app: &TestApp) -> Replica {
    let (base, dir) = start(&app.db_url, &app.issuer).await;
    Replica { base, _dir: dir }
}

/// Starts the service on `url`; returns its base URL and its data directory.
async fn start(url: &str, issuer: &TestIssuer) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut overrides = Map::new();
    overrides.insert("port".into(), json!(0));
    overrides.insert("database_url".into(), json!(url));
    overrides.insert("users_url".into(), json!(issuer.users_url));
    overrides.insert("data_dir".into(), json!(dir.path().display().to_string()));
    let config = ::products::Config::load(overrides).unwrap();
    let app = ::products::Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run(platform::shutdown::never()));
    (base, dir)
}

/// One app per backend available to this run.
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

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `DELETE path` as the admin.
    pub async fn delete_as_admin(&self, path: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
    }

    pub async fn category(&self, slug: &str, parent: Option<&str>) {
        let r = self
            .post_as(
                &self.admin,
                "/categories",
                json!({"slug": slug, "name": slug.to_uppercase(), "parent": parent}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
    }

    /// Creates a product and returns it.
    pub async fn product(
        &self,
        sku: &str,
        name: &str,
        description: &str,
        amount: i64,
        category: &str,
    ) -> Value {
        let r = self
            .post_as(
                &self.admin,
                "/products",
                json!({"sku": sku, "name": name, "description": description,
                       "price": {"amount": amount, "currency": "EUR"}, "category": category}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    pub async fn count_products(&self) -> usize {
        let page: Value = self.get("/products?limit=100").await.json().await.unwrap();
        page["items"].as_array().unwrap().len()
    }
}

/// (name, price) of each item of a page of products.
pub fn names_and_prices(page: &Value) -> Vec<(String, i64)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_owned();
            (name, p["price"]["amount"].as_i64().unwrap())
        })
        .collect()
}

/// Asserts a problem+json answer and returns its body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "{:?}",
        response.url().path()
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    body
}

/// The fields a 422 names.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
