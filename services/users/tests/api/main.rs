//! The users service over real HTTP, every test on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod admin;
mod auth;
mod clients;
mod keys;

use reqwest::Response;
use serde_json::{json, Map, Value};
use testkit::TestDatabase;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub backend: testkit::Backend,
    pub db: TestDatabase,
    pub dir: tempfile::TempDir,
}

/// Starts the service on `db`; `extra` settings go in as overrides.
pub async fn spawn_with(db: TestDatabase, extra: Value) -> Result<TestApp, anyhow::Error> {
    let dir = tempfile::tempdir().unwrap();
    start(db, dir, extra).await
}

pub async fn start(
    db: TestDatabase,
    dir: tempfile::TempDir,
    extra: Value,
) -> Result<TestApp, anyhow::Error> {
    let base = launch(&db.url, dir.path(), &extra).await?;
    Ok(TestApp {
        base,
        http: reqwest::Client::new(),
        backend: db.backend,
        db,
        dir,
    })
}

/// Starts an instance on `url` and returns its base URL.
async fn launch(url: &str, dir: &std::path::Path, extra: &Value) -> Result<String, anyhow::Error> {
    let mut overrides = Map::new();
    overrides.insert("port".into(), json!(0));
    overrides.insert("database_url".into(), json!(url));
    overrides.insert("data_dir".into(), json!(dir.display().to_string()));
    overrides.insert("admin_email".into(), json!("root@example.com"));
    overrides.insert("admin_password".into(), json!("root secret phrase 42"));
    for (key, value) in extra.as_object().unwrap() {
        overrides.insert(key.clone(), value.clone());
    }
    let app = ::users::Application::build(::users::Config::load(overrides)?).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run(platform::shutdown::never()));
    Ok(base)
}

pub async fn apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for db in TestDatabase::all().await {
        apps.push(spawn_with(db, json!({})).await.unwrap());
    }
    apps
}

pub struct TestReplica {
    pub base: String,
    pub http: reqwest::Client,
}

impl TestReplica {
    pub async fn login(&self, login: &str, password: &str) -> Response {
        self.http
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A second instance of the service on the same database, as a replica behind the gateway.
    pub async fn replica(&self, extra: Value) -> TestReplica {
        TestReplica {
            base: launch(&self.db.url, self.dir.path(), &extra).await.unwrap(),
            http: self.http.clone(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, username: &str) -> Value {
        let r = self
            .post("/users", json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}))
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn login(&self, login: &str, password: &str) -> Response {
        self.post("/auth/login", json!({"login": login, "password": password}))
            .await
    }

    /// Registers `username` and returns its token pair.
    pub async fn customer(&self, username: &str) -> Value {
        self.register(username).await;
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn admin(&self) -> String {
        let r = self.login("admin", "root secret phrase 42").await;
        assert_eq!(r.status(), 200, "the bootstrap admin logs in");
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn count_users(&self) -> usize {
        let admin = self.admin().await;
        let page: Value = self
            .http
            .get(self.url("/users?limit=100"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"].as_array().unwrap().len()
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

pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
