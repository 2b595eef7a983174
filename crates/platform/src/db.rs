//! Database pools from a URL: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL, with each
//! service's migrations run at start.
use std::borrow::Cow;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Arguments;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
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

/// Dialect-neutral queries: a statement is written once (both dialects share `$1` parameters) and
/// runs on whichever database the service was configured with. `query(SQL).bind(..)` builds it;
/// [`Database`] runs it on the pool and [`Tx`] inside a transaction, both through [`Exec`].
/// Plain enums and a trait rather than a macro instantiating each body twice, so that compiler
/// errors land in the service's storage code.
pub struct Query {
    sql: Cow<'static, str>,
    args: Vec<Value>,
}

/// A statement to bind values to.
pub fn query(sql: impl Into<Cow<'static, str>>) -> Query {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl Query {
    /// Binds the next `$n`.
    #[must_use]
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.args.push(value.into());
        self
    }

    fn sqlite_args(&self) -> Result<SqliteArguments<'_>, sqlx::Error> {
        let mut args = SqliteArguments::default();
        for value in &self.args {
            match value {
                Value::Text(v) => args.add(v.as_deref()),
                Value::Int(v) => args.add(*v),
                Value::Int4(v) => args.add(*v),
                Value::Real(v) => args.add(*v),
                Value::Bool(v) => args.add(*v),
                Value::Time(v) => args.add(*v),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }

    fn postgres_args(&self) -> Result<PgArguments, sqlx::Error> {
        let mut args = PgArguments::default();
        for value in &self.args {
            match value {
                Value::Text(v) => args.add(v.as_deref()),
                Value::Int(v) => args.add(*v),
                Value::Int4(v) => args.add(*v),
                Value::Real(v) => args.add(*v),
                Value::Bool(v) => args.add(*v),
                Value::Time(v) => args.add(*v),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }
}

/// A value bound to a statement: the types Agora stores. Each keeps its Rust type (and a `None`
/// its SQL type), so both drivers encode it exactly as they would the value itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Int4(Option<i32>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
}

macro_rules! value_from {
    ($variant:ident: $($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from($v: $t) -> Self {
                Value::$variant($e)
            }
        })*
    };
}

// Conversions only: eleven one-line `From` impls are noise written out; nothing else is generated.
value_from!(Text:
    &str => |v| Some(v.to_owned()),
    String => |v| Some(v),
    &String => |v| Some(v.clone()),
    Option<&str> => |v| v.map(str::to_owned),
    Option<String> => |v| v,
    &Option<String> => |v| v.clone(),
    Option<&String> => |v| v.cloned(),
);
value_from!(Int: i64 => |v| Some(v), &i64 => |v| Some(*v), Option<i64> => |v| v, &Option<i64> => |v| *v);
value_from!(Int4: i32 => |v| Some(v), Option<i32> => |v| v);
value_from!(Real: f64 => |v| Some(v), Option<f64> => |v| v);
value_from!(Bool: bool => |v| Some(v), Option<bool> => |v| v);
value_from!(Time:
    DateTime<Utc> => |v| Some(v),
    &DateTime<Utc> => |v| Some(*v),
    Option<DateTime<Utc>> => |v| v,
    &Option<DateTime<Utc>> => |v| *v,
);

/// A row type readable from both databases: what `#[derive(sqlx::FromRow)]` and tuples of
/// supported types give.
pub trait FromRow:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> FromRow for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

/// Where a [`Query`] runs: `&Database` (the pool) or `&mut Tx` (inside a transaction), like
/// sqlx's executors: `query(SQL).bind(x).fetch_all(&self.db)`, `.execute(&mut tx)`. A helper
/// used with both takes `impl Exec`.
pub trait Exec: Send {
    /// Runs a statement; the number of rows it changed.
    fn execute(self, query: Query) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
    fn fetch_all<T: FromRow>(
        self,
        query: Query,
    ) -> impl Future<Output = Result<Vec<T>, sqlx::Error>> + Send;
    fn fetch_optional<T: FromRow>(
        self,
        query: Query,
    ) -> impl Future<Output = Result<Option<T>, sqlx::Error>> + Send;
}

impl Query {
    /// Runs the statement; the number of rows it changed.
    pub async fn execute(self, on: impl Exec) -> Result<u64, sqlx::Error> {
        on.execute(self).await
    }

    pub async fn fetch_all<T: FromRow>(self, on: impl Exec) -> Result<Vec<T>, sqlx::Error> {
        on.fetch_all(self).await
    }

    pub async fn fetch_optional<T: FromRow>(self, on: impl Exec) -> Result<Option<T>, sqlx::Error> {
        on.fetch_optional(self).await
    }

    /// Exactly one row (`sqlx::Error::RowNotFound` otherwise).
    pub async fn fetch_one<T: FromRow>(self, on: impl Exec) -> Result<T, sqlx::Error> {
        on.fetch_optional(self)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

impl Exec for &Database {
    async fn execute(self, query: Query) -> Result<u64, sqlx::Error> {
        let done = match self {
            Database::Sqlite(pool) => sqlx::query_with(&query.sql, query.sqlite_args()?)
                .execute(pool)
                .await?
                .rows_affected(),
            Database::Postgres(pool) => sqlx::query_with(&query.sql, query.postgres_args()?)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    async fn fetch_all<T: FromRow>(self, query: Query) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Database::Sqlite(pool) => {
                sqlx::query_as_with(&query.sql, query.sqlite_args()?)
                    .fetch_all(pool)
                    .await
            }
            Database::Postgres(pool) => {
                sqlx::query_as_with(&query.sql, query.postgres_args()?)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    async fn fetch_optional<T: FromRow>(self, query: Query) -> Result<Option<T>, sqlx::Error> {
        match self {
            Database::Sqlite(pool) => {
                sqlx::query_as_with(&query.sql, query.sqlite_args()?)
                    .fetch_optional(pool)
                    .await
            }
            Database::Postgres(pool) => {
                sqlx::query_as_with(&query.sql, query.postgres_args()?)
                    .fetch_optional(pool)
                    .await
            }
        }
    }
}

impl Database {
    /// Starts a write transaction: on SQLite `BEGIN IMMEDIATE` (see [`sqlite_write`]), on
    /// PostgreSQL a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(sqlite_write(pool).await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Starts a plain (deferred) transaction, for reads that belong together.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }
}

/// A transaction on either database; dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await,
            Self::Postgres(tx) => tx.rollback().await,
        }
    }
}

impl Exec for &mut Tx {
    async fn execute(self, query: Query) -> Result<u64, sqlx::Error> {
        let done = match self {
            Tx::Sqlite(tx) => sqlx::query_with(&query.sql, query.sqlite_args()?)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Tx::Postgres(tx) => sqlx::query_with(&query.sql, query.postgres_args()?)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    async fn fetch_all<T: FromRow>(self, query: Query) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                sqlx::query_as_with(&query.sql, query.sqlite_args()?)
                    .fetch_all(&mut **tx)
                    .await
            }
            Tx::Postgres(tx) => {
                sqlx::query_as_with(&query.sql, query.postgres_args()?)
                    .fetch_all(&mut **tx)
                    .await
            }
        }
    }

    async fn fetch_optional<T: FromRow>(self, query: Query) -> Result<Option<T>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                sqlx::query_as_with(&query.sql, query.sqlite_args()?)
                    .fetch_optional(&mut **tx)
                    .await
            }
            Tx::Postgres(tx) => {
                sqlx::query_as_with(&query.sql, query.postgres_args()?)
                    .fetch_optional(&mut **tx)
                    .await
            }
        }
    }
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
