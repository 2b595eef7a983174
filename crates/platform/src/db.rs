//! Database pools from a URL: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL, with each
//! service's migrations run at start.
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

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
                .acquire_timeout(Duration::from_secs(5))
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
