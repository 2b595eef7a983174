//! Database pools from a URL: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL, with each
//! service's migrations run at start; the pool's usage as metrics and each transaction as a span.
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Arguments;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::ConnectOptions;

use crate::error::Problem;
use crate::telemetry::{otel, TraceContext};

/// How long a request waits for a PostgreSQL connection. While the server is down sqlx keeps
/// retrying the connect until this runs out, so it is what a client waits before its 503: short,
/// so that an outage answers fast instead of hanging every caller.
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// A connected, migrated database of one of the two kinds Agora supports.
#[derive(Debug, Clone)]
pub enum Database {
    /// Reads run on the pool; writes on the one [`Writer`] connection.
    Sqlite(SqlitePool, Writer),
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
            let writer = Writer::open(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("opening {url}: {e}"))?;
            Ok(Self::Sqlite(pool, writer))
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
                Self::Sqlite(pool, _) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
                Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            }
        };
        tokio::time::timeout(Duration::from_secs(2), probe)
            .await
            .unwrap_or(false)
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool, _) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// The pool's connections now: in use, idle, and the most it opens (on SQLite the readers'
    /// pool; the [`Writer`] is one more connection).
    pub fn pool_usage(&self) -> PoolUsage {
        let (size, idle, max) = match self {
            Self::Sqlite(pool, _) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
            Self::Postgres(pool) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        PoolUsage {
            in_use: size - idle,
            idle,
            max,
        }
    }

    /// Sets the pool gauges `db_pool_connections{state="in_use"|"idle"}` and
    /// `db_pool_connections_max` (docs/operations.md) to [`Database::pool_usage`]. A service's
    /// runtime samples its database every few seconds ([`POOL_SAMPLE_INTERVAL`]): reading the
    /// pool's counters is two atomic loads, cheaper than hooking every acquire and release.
    pub fn record_pool_usage(&self) {
        let usage = self.pool_usage();
        metrics::gauge!("db_pool_connections", "state" => "in_use").set(f64::from(usage.in_use));
        metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(usage.idle));
        metrics::gauge!("db_pool_connections_max").set(f64::from(usage.max));
    }
}

/// How often a service's runtime records its pool's usage ([`Database::record_pool_usage`]).
pub const POOL_SAMPLE_INTERVAL: Duration = Duration::from_secs(2);

/// A pool's connections at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Checked out: running a statement or holding a transaction.
    pub in_use: u32,
    /// Open and waiting in the pool.
    pub idle: u32,
    /// The pool's limit (`database_max_connections`); a request waits when all are in use.
    pub max: u32,
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
        // sqlx pings a connection before lending it out, to find one the server has dropped: for
        // a file on this machine there is no such thing, and each ping is a round trip to the
        // connection's thread (two thread wake-ups) on every query and transaction.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("opening {url}: {e}"))
}

/// The turn of this process's writers to one SQLite file: they take it, first come first served,
/// before `BEGIN IMMEDIATE` and hold it until the transaction ends ([`Database::begin_write`]).
/// Without it they queue inside SQLite's busy handler, which sleeps 1, 2, 5 … up to 100 ms between
/// tries and leaves the lock free while they sleep: under 32 concurrent reservations that wait,
/// not the writes, set the throughput (docs/performance.md, "Inventory: reservations"). Another
/// process on the same file (a replica) still queues on the busy timeout. Keyed by the file, as
/// SQLite's own lock is, so that every pool and store of the process on that file shares it.
fn writers_turn(pool: &SqlitePool) -> Arc<tokio::sync::Mutex<()>> {
    type Turns = std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>;
    static TURNS: LazyLock<Turns> = LazyLock::new(Turns::default);
    let file = pool.connect_options().get_filename().to_path_buf();
    let mut turns = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
    turns.entry(file).or_default().clone()
}

/// The connection a [`Database`] writes its SQLite file through, one for all its writers, who take
/// turns on it first come first served (and on [`writers_turn`] first, with any other `Database`
/// of the process on the same file).
///
/// Why not a pooled connection per write, as before (docs/performance.md, "One writer
/// connection"): writes are serial on SQLite anyway, and a pooled one cost twice over. sqlx pings a
/// pooled connection when it goes back to the pool (a round trip to its thread per transaction,
/// which cannot be turned off), and in WAL mode a connection drops its whole page cache when
/// another connection has written since its last transaction, so each write on a connection other
/// than the last writer's read the tables' pages back from the file. One writer keeps its pages:
/// its own writes do not invalidate them.
#[derive(Clone)]
pub struct Writer(Arc<tokio::sync::Mutex<WriterConnection>>);

struct WriterConnection {
    conn: SqliteConnection,
    /// A transaction may be open on the connection: it was begun (or its `BEGIN` was under way
    /// when the caller gave up) and has not ended, because its [`WriteTx`] was dropped or its
    /// commit failed or was given up. Whoever has the connection next rolls back first.
    open: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Opens the writer on the pool's file, with the pool's settings (WAL, synchronous, foreign
    /// keys, busy timeout).
    async fn open(pool: &SqlitePool) -> Result<Self, sqlx::Error> {
        let conn = pool.connect_options().connect().await?;
        Ok(Self(Arc::new(tokio::sync::Mutex::new(WriterConnection {
            conn,
            open: false,
        }))))
    }

    /// Waits for the connection, with no transaction open on it.
    async fn take(&self) -> tokio::sync::OwnedMutexGuard<WriterConnection> {
        let mut writer = Arc::clone(&self.0).lock_owned().await;
        writer.settle().await;
        writer
    }
}

impl WriterConnection {
    /// Rolls back what a dropped transaction left open. The `ROLLBACK` fails when nothing was
    /// (a `BEGIN` given up before it ran, a `COMMIT` given up after): either way nothing is open
    /// after it. Were something still open, the next `BEGIN` would fail, mark it open again, and
    /// the writer after would roll back once more.
    async fn settle(&mut self) {
        if self.open {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
            self.open = false;
        }
    }
}

/// A write transaction on the [`Writer`]: `BEGIN IMMEDIATE` takes SQLite's write lock at once (a
/// deferred transaction that reads first and writes later can fail with SQLITE_BUSY without
/// waiting, where `IMMEDIATE` makes another process's writers queue on the busy timeout).
///
/// Every call to the connection is a round trip to its thread, a thread switch each way, and the
/// kernel's share, mostly those switches, was half of inventory's CPU per reservation
/// (docs/performance.md, "BEGIN with the first statement"). So statements share calls: the
/// `BEGIN IMMEDIATE` goes in front of the transaction's first statement, and the statements kept
/// for later ([`Tx::execute_later`]) go in front of the next one, or of the `COMMIT`, as one
/// multi-statement call ([`WriteTx::prepare`]). Nothing else can use the connection meanwhile
/// (this holds it), so the transaction is the same; a transaction that runs no statement sends
/// neither `BEGIN` nor `COMMIT`.
pub struct WriteTx {
    writer: tokio::sync::OwnedMutexGuard<WriterConnection>,
    /// Its `BEGIN IMMEDIATE` has been sent (with a statement, or on its own by
    /// [`SqliteTx::connection`]).
    begun: bool,
    /// The statements whose results nobody waits for ([`Tx::execute_later`]), in order, as one.
    later: Option<Query>,
}

impl WriteTx {
    async fn begin(writer: &Writer) -> Self {
        Self {
            writer: writer.take().await,
            begun: false,
            later: None,
        }
    }

    /// Whether the `BEGIN IMMEDIATE` still has to go; marks it sent either way. Marked before
    /// the call that carries it runs: a caller that gives up meanwhile (a request cancelled) drops
    /// the future while the connection's thread may still begin the transaction.
    fn begin_now(&mut self) -> bool {
        let first = !self.begun;
        self.begun = true;
        self.writer.open = true;
        first
    }

    /// The connection and what to send on it to run `query` as the transaction's next statement:
    /// the `BEGIN IMMEDIATE` in front of the first, the statements kept for later in front of it.
    /// Its results are the last ones of the call (the statements kept for later return no rows).
    fn prepare(&mut self, query: Query) -> (&mut SqliteConnection, Query) {
        let mut query = self.after_later(query);
        if self.begin_now() {
            query.sql = Cow::Owned(format!("BEGIN IMMEDIATE; {}", query.sql));
        }
        (&mut self.writer.conn, query)
    }

    /// The statements kept for later, then `query`, as one.
    fn after_later(&mut self, query: Query) -> Query {
        match self.later.take() {
            Some(later) => later.then(query),
            None => query,
        }
    }

    /// Runs `query` as the transaction's next statement (see [`WriteTx::prepare`]).
    async fn run(&mut self, query: Query) -> Result<(), sqlx::Error> {
        let (conn, query) = self.prepare(query);
        sqlx::query_with(&query.sql, query.sqlite_args()?)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Sends the statements kept for later, if any, on their own.
    async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if let Some(later) = self.later.take() {
            self.run(later).await?;
        }
        Ok(())
    }

    /// Commits (`COMMIT`, with the statements kept for later in the same call) or rolls back
    /// (`ROLLBACK`; the statements kept for later are never sent). A failing statement stops the
    /// call before the `COMMIT`: the transaction stays open and is rolled back as a dropped one.
    async fn end(mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        if statement == "ROLLBACK" {
            self.later = None;
        }
        if self.begun || self.later.is_some() {
            self.run(query(statement)).await?;
        }
        self.writer.open = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    /// A transaction dropped open (an early return) is rolled back at once rather than by the next
    /// writer, so that SQLite's write lock, which another process may be waiting for, goes now.
    fn drop(&mut self) {
        if self.writer.open {
            let writer = Arc::clone(tokio::sync::OwnedMutexGuard::mutex(&self.writer));
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    writer.lock().await.settle().await;
                });
            }
        }
    }
}

/// A SQLite transaction: a read on a pooled connection, or a write on the [`Writer`].
pub enum SqliteTx {
    Read(sqlx::Transaction<'static, sqlx::Sqlite>),
    Write(WriteTx),
}

impl SqliteTx {
    async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Read(tx) => tx.commit().await,
            Self::Write(tx) => tx.end("COMMIT").await,
        }
    }

    async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Read(tx) => tx.rollback().await,
            Self::Write(tx) => tx.end("ROLLBACK").await,
        }
    }

    /// The connection and what to send on it to run `query` inside the transaction (see
    /// [`WriteTx::prepare`]).
    fn prepare(&mut self, query: Query) -> (&mut SqliteConnection, Query) {
        match self {
            Self::Read(tx) => (&mut **tx, query),
            Self::Write(tx) => tx.prepare(query),
        }
    }

    /// The connection, for statements built with sqlx directly (the search index's), with the
    /// transaction begun on it.
    pub async fn connection(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        match self {
            Self::Read(tx) => Ok(&mut **tx),
            Self::Write(tx) => {
                tx.flush().await?;
                if tx.begin_now() {
                    sqlx::query("BEGIN IMMEDIATE")
                        .execute(&mut tx.writer.conn)
                        .await?;
                }
                Ok(&mut tx.writer.conn)
            }
        }
    }
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

    /// This statement, then `next`, as one multi-statement call (SQLite only). sqlx binds a `$n`
    /// of any statement in a call to the call's n-th argument, so `next`'s are renumbered to
    /// follow this one's.
    fn then(mut self, next: Query) -> Query {
        let sql = renumbered(&next.sql, self.args.len());
        self.sql = Cow::Owned(format!("{}; {sql}", self.sql));
        self.args.extend(next.args);
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

/// `sql` with each parameter `$n` made `$n+by` (none inside a quoted string or name).
fn renumbered(sql: &str, by: usize) -> Cow<'_, str> {
    if by == 0 || !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote = None;
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') => {
                let mut n = 0usize;
                let mut digits = false;
                while let Some(&(_, d)) = chars.peek() {
                    let Some(digit) = d.to_digit(10) else { break };
                    n = n * 10 + digit as usize;
                    digits = true;
                    chars.next();
                }
                if digits {
                    out.push_str(&(n + by).to_string());
                }
            }
            (None, _) => {}
        }
    }
    Cow::Owned(out)
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
    /// A statement on its own (a write: reads fetch). On SQLite it takes the writers' turn
    /// ([`writers_turn`]) like a write transaction, so that the two do not meet in the busy handler.
    async fn execute(self, query: Query) -> Result<u64, sqlx::Error> {
        let done = match self {
            Database::Sqlite(pool, writer) => {
                let _turn = writers_turn(pool).lock_owned().await;
                let mut writer = writer.take().await;
                sqlx::query_with(&query.sql, query.sqlite_args()?)
                    .execute(&mut writer.conn)
                    .await?
                    .rows_affected()
            }
            Database::Postgres(pool) => sqlx::query_with(&query.sql, query.postgres_args()?)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    async fn fetch_all<T: FromRow>(self, query: Query) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Database::Sqlite(pool, _) => {
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
            Database::Sqlite(pool, _) => {
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
    /// Starts a write transaction: on SQLite `BEGIN IMMEDIATE` on the [`Writer`] ([`WriteTx`]),
    /// on PostgreSQL a plain `BEGIN`. Its span is named `tx`; [`Database::begin_write_named`] names it.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        self.begin_write_named("").await
    }

    /// [`Database::begin_write`], its span named `tx <name>` (`tx reserve`): what the work is.
    pub async fn begin_write_named(&self, name: &'static str) -> Result<Tx, sqlx::Error> {
        let span = TxSpan::new(name, self.system(), true);
        Ok(match self {
            Self::Sqlite(pool, writer) => {
                let waiting = writers_turn(pool).lock_owned();
                let turn = tracing::Instrument::instrument(waiting, span.span.clone()).await;
                let begin = async { Ok(SqliteTx::Write(WriteTx::begin(writer).await)) };
                let mut tx = span.begin(begin).await?;
                tx.turn = Some(turn);
                Tx::Sqlite(tx)
            }
            Self::Postgres(pool) => Tx::Postgres(span.begin(pool.begin()).await?),
        })
    }

    /// Starts a plain (deferred) transaction, for reads that belong together.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.begin_named("").await
    }

    /// [`Database::begin`], its span named `tx <name>`.
    pub async fn begin_named(&self, name: &'static str) -> Result<Tx, sqlx::Error> {
        let span = TxSpan::new(name, self.system(), false);
        Ok(match self {
            Self::Sqlite(pool, _) => {
                let begin = async { pool.begin().await.map(SqliteTx::Read) };
                Tx::Sqlite(span.begin(begin).await?)
            }
            Self::Postgres(pool) => Tx::Postgres(span.begin(pool.begin()).await?),
        })
    }

    /// The OpenTelemetry `db.system` of this database.
    fn system(&self) -> &'static str {
        match self {
            Self::Sqlite(..) => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }
}

/// A transaction on either database; dropped without [`Tx::commit`], it rolls back.
///
/// When spans are exported and the transaction is begun for some work (a request, a saga, an
/// event: a [`TraceContext`] is current), it has a span from `BEGIN` (waiting for a connection
/// and, on SQLite, for the write lock, included) to its commit or rollback, a child of that work's
/// span, with `outcome` = `commit`, `rollback`, `error` (the commit or rollback failed) or
/// `dropped` (rolled back by being dropped: the code returned early, on an error or with nothing
/// to write). Otherwise it has none, and costs
/// nothing: the span is `Span::none()`.
pub enum Tx {
    Sqlite(Traced<SqliteTx>),
    Postgres(Traced<sqlx::Transaction<'static, sqlx::Postgres>>),
}

impl Tx {
    /// Commits; when the transaction wrote the outbox, then wakes the outbox's readers in this
    /// process (`events::wake`), now that what they read includes the new entry.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let wakes_outbox = self.wrote_outbox();
        let committed = match self {
            Self::Sqlite(tx) => tx.end("commit", |tx| tx.commit()).await,
            Self::Postgres(tx) => tx.end("commit", |tx| tx.commit()).await,
        };
        if committed.is_ok() && wakes_outbox {
            crate::events::wake::committed();
        }
        committed
    }

    /// True once the transaction has written the outbox ([`Tx::enqueue`]).
    pub(crate) fn wrote_outbox(&self) -> bool {
        match self {
            Self::Sqlite(tx) => tx.wakes_outbox,
            Self::Postgres(tx) => tx.wakes_outbox,
        }
    }

    /// Marks the transaction as one that wrote the outbox ([`Tx::enqueue`]).
    pub(crate) fn wake_outbox_on_commit(&mut self) {
        match self {
            Self::Sqlite(tx) => tx.wakes_outbox = true,
            Self::Postgres(tx) => tx.wakes_outbox = true,
        }
    }

    /// Runs `query` in this transaction when nothing needs its outcome before the commit: on
    /// SQLite's writer it is sent in front of the next statement, or of the `COMMIT`, in the same
    /// call (one round trip to the connection's thread fewer for each); elsewhere at once. Its
    /// error, if any, comes from that statement or the commit, and the transaction then rolls
    /// back. So it is for rows a correct request always can write (an outbox entry, a history or
    /// ledger line), never for one whose failure is the caller's answer (a unique key taken), and
    /// never for a statement that returns rows.
    pub async fn execute_later(&mut self, query: Query) -> Result<(), sqlx::Error> {
        if let Self::Sqlite(tx) = self {
            if let SqliteTx::Write(writer) = &mut **tx {
                writer.later = Some(writer.after_later(query));
                return Ok(());
            }
        }
        query.execute(self).await.map(drop)
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.end("rollback", |tx| tx.rollback()).await,
            Self::Postgres(tx) => tx.end("rollback", |tx| tx.rollback()).await,
        }
    }
}

/// A transaction with its span: derefs to the transaction, so `Tx::Postgres(tx) => f(tx)` passes
/// the sqlx transaction on, and `Tx::Sqlite(tx) => f(tx.connection().await?)` the SQLite
/// connection with the transaction begun on it.
pub struct Traced<T> {
    conn: T,
    span: TxSpan,
    /// It wrote the outbox: its commit wakes the outbox's readers ([`Tx::commit`]).
    wakes_outbox: bool,
    /// A SQLite write transaction's turn ([`writers_turn`]), given back when it ends: declared
    /// after `conn`, so dropped after it.
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<T> Deref for Traced<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.conn
    }
}

impl<T> DerefMut for Traced<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.conn
    }
}

impl<T> Traced<T> {
    /// Commits or rolls back (`finish`) inside the span, then ends it with its outcome.
    async fn end<F>(
        self,
        outcome: &'static str,
        finish: impl FnOnce(T) -> F,
    ) -> Result<(), sqlx::Error>
    where
        F: Future<Output = Result<(), sqlx::Error>>,
    {
        let Traced {
            conn,
            mut span,
            turn,
            ..
        } = self;
        let result = tracing::Instrument::instrument(finish(conn), span.span.clone()).await;
        span.ended(if result.is_ok() { outcome } else { "error" });
        // The next writer's turn once this one's commit or rollback is done.
        drop(turn);
        result
    }
}

/// The span of one transaction (see [`Tx`]); records `outcome = dropped` when it ends without a
/// commit or rollback.
struct TxSpan {
    span: tracing::Span,
    ended: bool,
}

impl TxSpan {
    fn new(name: &'static str, system: &'static str, write: bool) -> Self {
        let span = match TraceContext::current() {
            Some(context) if otel::exporting() => {
                let span = tracing::info_span!(
                    "transaction",
                    otel.name = %if name.is_empty() { "tx".to_owned() } else { format!("tx {name}") },
                    db.system = system,
                    write,
                    outcome = tracing::field::Empty,
                    request_id = %context.request_id,
                    trace_id = %context.trace_id,
                );
                // A child of the work's span even when the transaction runs on another task.
                context.parent(&span);
                span
            }
            _ => tracing::Span::none(),
        };
        Self { span, ended: false }
    }

    /// Begins the transaction (`begin`) inside the span.
    async fn begin<T>(
        self,
        begin: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<Traced<T>, sqlx::Error> {
        let begun = tracing::Instrument::instrument(begin, self.span.clone()).await;
        match begun {
            Ok(conn) => Ok(Traced {
                conn,
                span: self,
                wakes_outbox: false,
                turn: None,
            }),
            Err(e) => {
                let mut span = self;
                span.ended("error");
                Err(e)
            }
        }
    }

    fn ended(&mut self, outcome: &'static str) {
        self.span.record("outcome", outcome);
        self.ended = true;
    }
}

impl Drop for TxSpan {
    fn drop(&mut self) {
        if !self.ended {
            self.span.record("outcome", "dropped");
        }
    }
}

impl Exec for &mut Tx {
    async fn execute(self, query: Query) -> Result<u64, sqlx::Error> {
        let done = match self {
            Tx::Sqlite(tx) => {
                let (conn, query) = tx.prepare(query);
                // The statement's own count is the last result's: a `BEGIN` in front of it
                // reports the count of the connection's previous statement (`sqlite3_changes`).
                // Several statements in one call with arguments is SQLite-only in sqlx and marked
                // deprecated there (sqlx issue 3108); the writer's tests hold it to its behaviour.
                #[allow(deprecated)]
                let mut results = sqlx::query_with(&query.sql, query.sqlite_args()?)
                    .execute_many(conn)
                    .await;
                let mut changed = 0;
                while let Some(result) = futures::TryStreamExt::try_next(&mut results).await? {
                    changed = result.rows_affected();
                }
                changed
            }
            Tx::Postgres(tx) => sqlx::query_with(&query.sql, query.postgres_args()?)
                .execute(&mut ***tx)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    async fn fetch_all<T: FromRow>(self, query: Query) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                let (conn, query) = tx.prepare(query);
                sqlx::query_as_with(&query.sql, query.sqlite_args()?)
                    .fetch_all(conn)
                    .await
            }
            Tx::Postgres(tx) => {
                sqlx::query_as_with(&query.sql, query.postgres_args()?)
                    .fetch_all(&mut ***tx)
                    .await
            }
        }
    }

    async fn fetch_optional<T: FromRow>(self, query: Query) -> Result<Option<T>, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => {
                let (conn, query) = tx.prepare(query);
                sqlx::query_as_with(&query.sql, query.sqlite_args()?)
                    .fetch_optional(conn)
                    .await
            }
            Tx::Postgres(tx) => {
                sqlx::query_as_with(&query.sql, query.postgres_args()?)
                    .fetch_optional(&mut ***tx)
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

    /// SQLite writers of one process are served in the order they came, each once the one before
    /// has ended: a write transaction, then a statement on its own, then another transaction,
    /// queued behind a transaction held open. (In SQLite's busy handler they would retry on their
    /// own backoff, in no particular order.)
    #[tokio::test]
    async fn sqlite_writers_take_turns_in_the_order_they_came() {
        let dir = tempfile::tempdir().unwrap();
        let db = writes_table(&dir).await;
        let mut first = db.begin_write().await.unwrap();
        insert("first").execute(&mut first).await.unwrap();
        let mut waiting = Vec::new();
        for who in ["second", "third", "fourth"] {
            let (db, statement) = (db.clone(), insert(who));
            waiting.push(tokio::spawn(async move {
                if who == "third" {
                    statement.execute(&db).await.unwrap();
                } else {
                    let mut tx = db.begin_write().await.unwrap();
                    statement.execute(&mut tx).await.unwrap();
                    tx.commit().await.unwrap();
                }
            }));
            // Each is queued before the next comes (a pause for ordering, nothing is timed).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        first.commit().await.unwrap();
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(written(&db).await, ["first", "second", "third", "fourth"]);
    }

    /// A SQLite database in `dir` with a table `writes`, for [`insert`] and [`written`].
    async fn writes_table(dir: &tempfile::TempDir) -> Database {
        let url = format!("sqlite:{}", dir.path().join("writes.db").display());
        let db = Database::connect(&url, 5, &Migrator::DEFAULT, &Migrator::DEFAULT)
            .await
            .unwrap();
        query("CREATE TABLE writes (n INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL)")
            .execute(&db)
            .await
            .unwrap();
        db
    }

    fn insert(who: &str) -> Query {
        query("INSERT INTO writes (who) VALUES ($1)").bind(who.to_owned())
    }

    /// What `writes` holds, in the order it was written, read on the pool.
    async fn written(db: &Database) -> Vec<String> {
        let rows: Vec<(String,)> = query("SELECT who FROM writes ORDER BY n")
            .fetch_all(db)
            .await
            .unwrap();
        rows.into_iter().map(|(w,)| w).collect()
    }

    /// A write transaction dropped without a commit (an early return) leaves nothing behind, and
    /// the writer connection goes on to serve the next writes; what they commit, the pool reads.
    #[tokio::test]
    async fn a_dropped_sqlite_write_transaction_rolls_back_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = writes_table(&dir).await;
        {
            let mut tx = db.begin_write().await.unwrap();
            insert("dropped").execute(&mut tx).await.unwrap();
        }
        insert("alone").execute(&db).await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        insert("rolled back").execute(&mut tx).await.unwrap();
        tx.rollback().await.unwrap();
        let mut tx = db.begin_write().await.unwrap();
        insert("committed").execute(&mut tx).await.unwrap();
        // A failing statement inside a transaction does not end it.
        let failed = query("INSERT INTO missing (who) VALUES (1)")
            .execute(&mut tx)
            .await;
        assert!(failed.is_err());
        tx.commit().await.unwrap();
        assert_eq!(written(&db).await, ["alone", "committed"]);
    }

    /// A write transaction's `BEGIN IMMEDIATE` goes with its first statement: a transaction with
    /// no statement is nothing; a first statement that fails still leaves the transaction begun,
    /// so what follows is in it and rolls back with it; a first statement may read or return rows.
    #[tokio::test]
    async fn a_write_transaction_begins_with_its_first_statement() {
        let dir = tempfile::tempdir().unwrap();
        let db = writes_table(&dir).await;
        db.begin_write().await.unwrap().commit().await.unwrap();
        db.begin_write().await.unwrap().rollback().await.unwrap();

        let mut tx = db.begin_write().await.unwrap();
        let failed = query("INSERT INTO missing (who) VALUES (1)")
            .execute(&mut tx)
            .await;
        assert!(failed.is_err());
        insert("after a failed first statement")
            .execute(&mut tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();

        let returning = |who: &str| {
            query("INSERT INTO writes (who) VALUES ($1) RETURNING who").bind(who.to_owned())
        };
        let mut tx = db.begin_write().await.unwrap();
        let row: Option<(String,)> = returning("rolled back")
            .fetch_optional(&mut tx)
            .await
            .unwrap();
        assert_eq!(row, Some(("rolled back".to_owned(),)));
        drop(tx);

        let mut tx = db.begin_write().await.unwrap();
        let counted: Vec<(i64,)> = query("SELECT COUNT(*) FROM writes")
            .fetch_all(&mut tx)
            .await
            .unwrap();
        assert_eq!(counted, [(0,)]);
        let row: Option<(String,)> = returning("committed")
            .fetch_optional(&mut tx)
            .await
            .unwrap();
        assert_eq!(row, Some(("committed".to_owned(),)));
        tx.commit().await.unwrap();
        assert_eq!(written(&db).await, ["committed"]);

        // A first statement's count of changed rows is its own, not the last insert's (1).
        let mut tx = db.begin_write().await.unwrap();
        let changed = query("UPDATE writes SET who = who WHERE who = 'nobody'")
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(changed, 0);
        let changed = query("UPDATE writes SET who = 'again' WHERE who = 'committed'")
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(changed, 1);
        tx.commit().await.unwrap();
    }

    /// A statement run "later" on the writer goes with the `COMMIT`, or before the next statement
    /// (in its place in the transaction); a rollback drops it; when it fails, the commit fails
    /// and nothing of the transaction stays.
    #[tokio::test]
    async fn a_statement_kept_for_later_goes_with_the_commit_or_the_next_statement() {
        let dir = tempfile::tempdir().unwrap();
        let db = writes_table(&dir).await;
        let mut tx = db.begin_write().await.unwrap();
        tx.execute_later(insert("alone, with the commit"))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tx = db.begin_write().await.unwrap();
        insert("first").execute(&mut tx).await.unwrap();
        tx.execute_later(insert("second")).await.unwrap();
        tx.execute_later(insert("third")).await.unwrap();
        insert("fourth").execute(&mut tx).await.unwrap();
        tx.execute_later(insert("fifth")).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = db.begin_write().await.unwrap();
        insert("rolled back").execute(&mut tx).await.unwrap();
        tx.execute_later(insert("never sent")).await.unwrap();
        tx.rollback().await.unwrap();

        let mut tx = db.begin_write().await.unwrap();
        insert("with a failing one").execute(&mut tx).await.unwrap();
        tx.execute_later(query("INSERT INTO missing (who) VALUES (1)"))
            .await
            .unwrap();
        assert!(tx.commit().await.is_err());

        // Several kept, each with its own `$1`, `$2`, in front of a statement that has its own
        // and returns a row, then one that counts: each gets its own arguments and results.
        let pair = |a: &str, b: &str| {
            query("INSERT INTO writes (who) VALUES ($1 || '$2' || $2)")
                .bind(a.to_owned())
                .bind(b.to_owned())
        };
        let mut tx = db.begin_write().await.unwrap();
        tx.execute_later(pair("a", "b")).await.unwrap();
        tx.execute_later(pair("c", "d")).await.unwrap();
        let row: Option<(String,)> = query("INSERT INTO writes (who) VALUES ($1) RETURNING who")
            .bind("returned".to_owned())
            .fetch_optional(&mut tx)
            .await
            .unwrap();
        assert_eq!(row, Some(("returned".to_owned(),)));
        tx.execute_later(pair("e", "f")).await.unwrap();
        let changed = query("UPDATE writes SET who = $1 WHERE who = $2")
            .bind("renamed".to_owned())
            .bind("returned".to_owned())
            .execute(&mut tx)
            .await
            .unwrap();
        assert_eq!(changed, 1);
        tx.commit().await.unwrap();

        insert("after").execute(&db).await.unwrap();
        assert_eq!(
            written(&db).await,
            [
                "alone, with the commit",
                "first",
                "second",
                "third",
                "fourth",
                "fifth",
                "a$2b",
                "c$2d",
                "renamed",
                "e$2f",
                "after"
            ]
        );
    }

    #[test]
    fn parameters_are_renumbered_outside_quotes_only() {
        assert_eq!(
            renumbered("SELECT $1, '$1', \"$2\", $10, $ || 'it''s $3' || $3", 4),
            "SELECT $5, '$1', \"$2\", $14, $ || 'it''s $3' || $7"
        );
        assert_eq!(renumbered("SELECT $1", 0), "SELECT $1");
    }

    /// A caller that gives up while its `BEGIN` or `COMMIT` runs leaves the writer marked open
    /// whether or not a transaction is: either way the next writes go through.
    #[tokio::test]
    async fn a_writer_marked_open_with_nothing_open_serves_the_next_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = writes_table(&dir).await;
        let Database::Sqlite(_, writer) = &db else {
            unreachable!()
        };
        // A COMMIT given up after it ran: nothing open, marked open.
        writer.take().await.open = true;
        insert("after a commit").execute(&db).await.unwrap();
        // A BEGIN given up after it ran: open, and marked open.
        {
            let mut conn = writer.take().await;
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn.conn)
                .await
                .unwrap();
            sqlx::query("INSERT INTO writes (who) VALUES ('never')")
                .execute(&mut conn.conn)
                .await
                .unwrap();
            conn.open = true;
        }
        let mut tx = db.begin_write().await.unwrap();
        insert("after a begin").execute(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(written(&db).await, ["after a commit", "after a begin"]);
    }

    #[tokio::test]
    async fn pool_usage_counts_a_transaction_in_use_until_it_ends_and_is_exported() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("pool.db").display());
        let db = Database::connect(&url, 3, &Migrator::DEFAULT, &Migrator::DEFAULT)
            .await
            .unwrap();
        assert_eq!(db.pool_usage().max, 3);
        // The migrations' connection goes back to the pool on a task of its own, which a slow
        // build (coverage) may not have run yet: start from a settled pool.
        let usage = settled(&db).await;
        assert_eq!(usage.in_use, 0, "{usage:?}");
        // A read transaction: writes run on the writer, not on the pool.
        let mut tx = db.begin_named("test").await.unwrap();
        query("SELECT 1").execute(&mut tx).await.unwrap();
        let held = db.pool_usage();
        assert_eq!(held.in_use, 1, "{held:?}");
        let recorder = crate::telemetry::prometheus().unwrap();
        db.record_pool_usage();
        let scraped = recorder.render();
        for line in [
            "db_pool_connections{state=\"in_use\"} 1",
            "db_pool_connections_max 3",
        ] {
            assert!(scraped.contains(line), "{line} in {scraped}");
        }
        tx.commit().await.unwrap();
        let usage = settled(&db).await;
        assert_eq!(usage.in_use, 0, "{usage:?}");
        assert!(usage.idle >= 1, "{usage:?}");
    }

    /// The pool's usage once no connection is in use, or after 5 s of asking (bounded).
    async fn settled(db: &Database) -> PoolUsage {
        let mut usage = db.pool_usage();
        for _ in 0..500 {
            if usage.in_use == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            usage = db.pool_usage();
        }
        usage
    }

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
