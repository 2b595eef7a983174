//! Test databases on both backends, so every storage test runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL is used when `AGORA_TEST_POSTGRES_URL` is set (each test gets a fresh database on
//! that server). When it is not, the PostgreSQL half is skipped with a `SKIPPED` line on the
//! terminal, unless `AGORA_TEST_REQUIRE_EXTERNAL=1`, under which the test fails instead.
use std::fmt;
use std::io::Write;
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

/// `AGORA_TEST_POSTGRES_URL`, or `None` after a `SKIPPED` line; panics when it is required.
pub fn postgres_url() -> Option<String> {
    external(
        "AGORA_TEST_POSTGRES_URL",
        "PostgreSQL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
}

/// `AGORA_TEST_AMQP_URL`, or `None` after a `SKIPPED` line; panics when it is required.
pub fn amqp_url() -> Option<String> {
    external(
        "AGORA_TEST_AMQP_URL",
        "RabbitMQ",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    )
}

/// The one place a test decides to skip its half on an external service.
fn external(variable: &str, what: &str, example: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("AGORA_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
                panic!(
                    "{variable} is not set but AGORA_TEST_REQUIRE_EXTERNAL=1: {what} is required"
                );
            }
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_owned();
            // Straight to the process's stderr: libtest captures `eprintln!` and shows it only for
            // failing tests, which hid every skip behind an `ok`.
            let line = format!(
                "SKIPPED the {what} half of {test}: {variable} is not set (e.g. {variable}={example}; AGORA_TEST_REQUIRE_EXTERNAL=1 makes this a failure)\n"
            );
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one test of this binary in a child process, as `cargo test` runs it (output captured),
    /// with `variable` unset and `required` as `AGORA_TEST_REQUIRE_EXTERNAL`; returns whether it
    /// passed and everything it printed.
    fn run_alone(test: &str, variable: &str, required: Option<&str>) -> (bool, String) {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([test, "--exact"])
            .env_remove(variable)
            .env_remove("AGORA_TEST_REQUIRE_EXTERNAL");
        if let Some(value) = required {
            command.env("AGORA_TEST_REQUIRE_EXTERNAL", value);
        }
        let output = command.output().unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), printed)
    }

    #[test]
    fn the_postgres_url_is_the_variable_when_it_is_set_and_none_otherwise() {
        let set = std::env::var("AGORA_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty());
        assert_eq!(postgres_url(), set);
    }

    #[test]
    fn the_amqp_url_is_the_variable_when_it_is_set_and_none_otherwise() {
        let set = std::env::var("AGORA_TEST_AMQP_URL")
            .ok()
            .filter(|v| !v.is_empty());
        assert_eq!(amqp_url(), set);
    }

    #[test]
    fn a_skipped_postgres_half_shows_a_skipped_line_even_though_the_test_passes() {
        let (passed, printed) = run_alone(
            "db::tests::the_postgres_url_is_the_variable_when_it_is_set_and_none_otherwise",
            "AGORA_TEST_POSTGRES_URL",
            None,
        );
        assert!(passed, "{printed}");
        let skip = printed
            .lines()
            .find(|l| l.starts_with("SKIPPED the PostgreSQL half"))
            .unwrap_or_else(|| panic!("no SKIPPED line in:\n{printed}"));
        assert!(skip.contains("AGORA_TEST_POSTGRES_URL"), "{skip}");
        assert!(
            skip.contains("the_postgres_url_is_the_variable_when_it_is_set_and_none_otherwise"),
            "the line names the test: {skip}"
        );
    }

    #[test]
    fn a_skipped_rabbitmq_half_names_the_amqp_variable_and_an_amqp_example() {
        let (passed, printed) = run_alone(
            "db::tests::the_amqp_url_is_the_variable_when_it_is_set_and_none_otherwise",
            "AGORA_TEST_AMQP_URL",
            None,
        );
        assert!(passed, "{printed}");
        let skip = printed
            .lines()
            .find(|l| l.starts_with("SKIPPED the RabbitMQ half"))
            .unwrap_or_else(|| panic!("no SKIPPED line in:\n{printed}"));
        assert!(skip.contains("AGORA_TEST_AMQP_URL=amqp://"), "{skip}");
        assert!(!skip.contains("postgres"), "{skip}");
    }

    #[test]
    fn a_missing_service_fails_the_test_when_external_services_are_required() {
        for (test, variable) in [
            (
                "db::tests::the_postgres_url_is_the_variable_when_it_is_set_and_none_otherwise",
                "AGORA_TEST_POSTGRES_URL",
            ),
            (
                "db::tests::the_amqp_url_is_the_variable_when_it_is_set_and_none_otherwise",
                "AGORA_TEST_AMQP_URL",
            ),
        ] {
            let (passed, printed) = run_alone(test, variable, Some("1"));
            assert!(!passed, "{printed}");
            assert!(
                printed.contains(&format!(
                    "{variable} is not set but AGORA_TEST_REQUIRE_EXTERNAL=1"
                )),
                "{printed}"
            );
        }
    }
}
