//! Test databases on both backends, so every storage test runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL is used when `AGORA_TEST_POSTGRES_URL` is set (each test gets a fresh database on
//! that server). When it is not, the PostgreSQL half is skipped with a loud message, unless
//! `AGORA_TEST_REQUIRE_EXTERNAL=1`, under which the test fails instead.
use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A database that exists only for one test; SQLite files are removed when it drops.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` (after saying so) when none is configured.
    pub async fn postgres() -> Option<Self> {
        let admin_url = postgres_url()?;
        let name = format!("agora_test_{}", uuid::Uuid::now_v7().simple());
        let options = PgConnectOptions::from_str(&admin_url).expect("AGORA_TEST_POSTGRES_URL");
        let mut conn = options
            .connect()
            .await
            .unwrap_or_else(|e| panic!("AGORA_TEST_POSTGRES_URL is set but does not connect: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let url = options.database(&name).to_url_lossy().to_string();
        Some(Self {
            backend: Backend::Postgres,
            url,
            _dir: None,
        })
    }

    /// Every backend available to this run: SQLite always, PostgreSQL when configured.
    pub async fn all() -> Vec<Self> {
        let mut all = vec![Self::sqlite()];
        all.extend(Self::postgres().await);
        all
    }
}

impl Drop for TestDatabase {
    /// A PostgreSQL test database is dropped with the test, so runs do not fill the server's disk.
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        if let Some(name) = PgConnectOptions::from_str(&self.url)
            .ok()
            .and_then(|o| o.get_database().map(str::to_owned))
        {
            drop_postgres_databases(&name);
        }
    }
}

/// Drops every database on the `AGORA_TEST_POSTGRES_URL` server whose name is `pattern` (SQL
/// `LIKE`, e.g. `agora_e2e_1234%`), ending their connections. Best effort and blocking: it runs on
/// a thread with its own runtime because it is called from `Drop`, where the test's runtime may be
/// shutting down.
pub fn drop_postgres_databases(pattern: &str) {
    // Not `postgres_url()`: clean-up must neither warn nor panic when the variable is missing.
    let Some(admin) = std::env::var("AGORA_TEST_POSTGRES_URL").ok() else {
        return;
    };
    let pattern = pattern.to_owned();
    let dropper = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(options) = PgConnectOptions::from_str(&admin) else {
                return;
            };
            let Ok(mut conn) = options.connect().await else {
                return;
            };
            let names: Vec<String> =
                sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
                    .bind(&pattern)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap_or_default();
            for name in names {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
            let _ = conn.close().await;
        });
    });
    let _ = dropper.join();
}

/// `AGORA_TEST_POSTGRES_URL`, or `None` after a loud warning; panics when it is required.
pub fn postgres_url() -> Option<String> {
    external("AGORA_TEST_POSTGRES_URL", "PostgreSQL")
}

/// `AGORA_TEST_AMQP_URL`, or `None` after a loud warning; panics when it is required.
pub fn amqp_url() -> Option<String> {
    external("AGORA_TEST_AMQP_URL", "RabbitMQ")
}

fn external(variable: &str, what: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("AGORA_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
                panic!(
                    "{variable} is not set but AGORA_TEST_REQUIRE_EXTERNAL=1: {what} is required"
                );
            }
            eprintln!(
                "WARNING: {variable} is not set: SKIPPING the {what} half of this test (set it, e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
            None
        }
    }
}
