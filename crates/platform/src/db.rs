//! Database pools from a URL: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL, with each
//! service's migrations run at start.
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::Problem;

/// How long a request waits for a PostgreSQL connection. While the server is down sqlx keeps
/// retrying the connect until this runs out, so it is what a client waits before its 503: short,
/// so that an outage answers fast instead of hanging every caller.
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// A connected, migrated database of one of the two kinds Agora supports.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Connects to `url` and runs the migrations for its kind.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        sqlite_migrations: &Migrator,
        postgres_migrations: &Migrator,
    ) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let pool = connect_sqlite(url, max_connections).await?;
            sqlite_migrations
                .run(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("migrating {}: {e}", redact(url)))?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| anyhow::anyhow!("invalid database URL {}: {e}", redact(url)))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", redact(url)))?;
            postgres_migrations
                .run(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("migrating {}: {e}", redact(url)))?;
            Ok(Self::Postgres(pool))
        } else {
            anyhow::bail!(
                "invalid configuration: setting `database_url` (AGORA_DATABASE_URL) must start with sqlite: or postgres:"
            )
        }
    }

    /// True when the database answers a trivial query; what `/health/ready` reports.
    pub async fn ping(&self) -> bool {
        let probe = async {
            match self {
                Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
                Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            }
        };
        tokio::time::timeout(Duration::from_secs(2), probe)
            .await
            .unwrap_or(false)
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

async fn connect_sqlite(url: &str, max_connections: u32) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("invalid database URL {url}: {e}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let path = options.get_filename();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating data directory {}: {e}", dir.display()))?;
    }
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("opening {url}: {e}"))
}

/// Starts a SQLite write transaction that takes the write lock at once. A deferred transaction
/// that reads first and writes later can fail with SQLITE_BUSY without waiting; `IMMEDIATE`
/// makes concurrent writers queue on the busy timeout instead.
pub async fn sqlite_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// True when `error` is a unique-constraint violation, on either database; services map it to 409.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// True when `error` is a foreign-key violation, on either database.
pub fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_foreign_key_violation(),
        _ => false,
    }
}

/// True when `error` says the database cannot be reached (down, restarting, no connection free in
/// time) rather than that a statement is wrong: the request may succeed if retried later.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Class 08 is "connection exception"; 57P01-57P03: the server is shutting down, crashed,
        // or is starting and refuses connections.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// What a storage error answers: 503 (retry shortly) when the database is unreachable, 500
/// otherwise. The error itself goes to the log only.
pub fn problem(error: &sqlx::Error) -> Problem {
    if is_unavailable(error) {
        tracing::warn!(error = %error, "database unavailable");
        Problem::unavailable("The database is unavailable; try again shortly.").retry_after(1)
    } else {
        tracing::error!(error = %error, "database error");
        Problem::internal()
    }
}

/// A URL fit for a log line: the password, if any, replaced.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_answers_503_and_any_other_database_error_500() {
        for unreachable in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
        ] {
            assert_eq!(problem(&unreachable).status, 503, "{unreachable}");
        }
        assert_eq!(problem(&sqlx::Error::RowNotFound).status, 500);
        assert_eq!(
            problem(&sqlx::Error::Protocol("unexpected message".into())).status,
            500
        );
    }
}
