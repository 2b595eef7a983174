//! Orders storage: one trait, implemented once over either database (`platform::db`).
//!
//! The saga's progress is a compare-and-set on `saga_step`: whoever moves an order from a step
//! (the request that placed it, the recovery worker after a crash) does so once. Only one worker
//! runs an order's saga at a time: it claims a lease on the order first (see [`Store::claim`]),
//! and every write it makes is fenced by it: the write checks that the worker still holds the
//! lease, that the order is still at the step the worker read, and in the status that step
//! belongs to ([`Step::status`]).
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use platform::db::{is_unique_violation, query, Database, Tx};
use platform::events::Event;
use platform::service::Migrations;

use crate::domain::{Status, Step};

/// The service's schema per dialect, and the platform's event tables.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
    events: true,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub currency: String,
    pub total_amount: i64,
    pub payment_method: String,
    /// JSON of [`crate::domain::Address`].
    pub shipping_address: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub saga_step: Option<String>,
    /// Where a compensation ends: rejected or payment_failed.
    pub saga_outcome: Option<String>,
    /// After this, a step that cannot reach its service gives up and compensates.
    pub saga_deadline: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub attempts: i32,
    pub payment_id: Option<String>,
    /// Why the order was rejected, failed payment, or why a step is retrying.
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The request that placed the order: the saga's calls and events carry them.
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    /// The cart the order was placed from, if any.
    pub cart_id: Option<String>,
}

/// The time now, to the microsecond: what both databases keep, so that an order held in memory
/// reads the same as the row written from it.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl OrderRow {
    pub fn state(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Pending)
    }

    pub fn step(&self) -> Option<Step> {
        self.saga_step.as_deref().and_then(Step::parse)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LineRow {
    pub line_no: i32,
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i64,
}

/// A line of one of the orders of a page.
#[derive(sqlx::FromRow)]
struct PageLine {
    order_id: String,
    #[sqlx(flatten)]
    line: LineRow,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub status: String,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PageHistory {
    order_id: String,
    #[sqlx(flatten)]
    entry: HistoryRow,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub row: OrderRow,
    pub lines: Vec<LineRow>,
    pub history: Vec<HistoryRow>,
}

pub enum Placed {
    New(Order),
    /// An order already exists for this user and idempotency key.
    Existing(Order),
}

/// Which orders to list, newest first.
pub struct Filter<'a> {
    pub user_id: Option<&'a str>,
    pub status: Option<Status>,
    /// Orders older than this id (ids are time-ordered UUIDs).
    pub before: Option<&'a str>,
    pub fetch: i64,
}

/// A change of an order's saga and, when `status` is set, of its status (with a history line and
/// an event).
pub struct Change<'a> {
    /// The saga worker making the change, which must hold the order's lease; `None` for a change
    /// made outside a saga run (starting a cancellation, shipping).
    pub owner: Option<&'a str>,
    pub from_step: Option<Step>,
    pub to_step: Option<Step>,
    pub outcome: Option<Status>,
    pub status: Option<(Status, Option<&'a str>)>,
    pub payment_id: Option<&'a str>,
    pub failure: Option<&'a str>,
    /// When the change is made (the order's `updated_at`, its history line's time) and when the
    /// next step is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The owner's lease, renewed by the change, runs until then; ending the saga (`to_step`
    /// `None`) ends the lease.
    pub lease_until: Option<DateTime<Utc>>,
    pub event: Option<&'a Event>,
}

impl Order {
    /// What [`Store::change`] wrote, applied to the order in memory: a saga worker goes on from
    /// the order it holds instead of reading it again.
    pub fn apply(&mut self, c: &Change<'_>) {
        let o = &mut self.row;
        o.saga_step = c.to_step.map(|s| s.as_str().to_owned());
        if let Some(outcome) = c.outcome {
            o.saga_outcome = Some(outcome.as_str().to_owned());
        }
        if let Some(payment_id) = c.payment_id {
            o.payment_id = Some(payment_id.to_owned());
        }
        if let Some(failure) = c.failure {
            o.failure = Some(failure.to_owned());
        }
        o.next_attempt_at = c.next_attempt_at;
        o.attempts = 0;
        o.updated_at = c.next_attempt_at;
        if let Some((status, note)) = c.status {
            o.status = status.as_str().to_owned();
            self.history.push(HistoryRow {
                status: status.as_str().to_owned(),
                note: note.map(str::to_owned),
                at: c.next_attempt_at,
            });
        }
    }
}

/// What an event from another service does to an order.
pub enum Reaction {
    /// Run the order's saga step now.
    Wake,
    /// Cancel the order if it is confirmed and nothing else is under way.
    CancelConfirmed,
    /// A line in the order's history (its status unchanged), unless the order is being cancelled
    /// (then the event is orders' own doing).
    Note(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts a new order with its lines, its first history line and its event, its saga's lease
    /// held by `owner` until `until` (the placing request runs the saga: claiming it apart
    /// would be one more write a checkout); or finds the order the same user placed with the
    /// same idempotency key.
    async fn place(
        &self,
        order: &Order,
        event: &Event,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<Placed, StoreError>;
    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError>;
    /// The order a user placed with an idempotency key.
    async fn by_key(&self, user_id: &str, key: &str) -> Result<Option<Order>, StoreError>;
    async fn list(&self, filter: &Filter<'_>) -> Result<Vec<Order>, StoreError>;
    /// Applies `change` if the order is still at `change.from_step`, in the status its new step
    /// belongs to (a cancellation only of a confirmed order, the other steps only of a pending
    /// one) or, for a status change, in a status that allows it, and, for a saga worker, under
    /// its lease. False when someone else moved it first.
    async fn change(&self, id: &str, change: &Change<'_>) -> Result<bool, StoreError>;
    /// Sets when the saga's step is tried again after a failure (counted in `attempts`) and ends
    /// `owner`'s lease; nothing when `owner` no longer holds it.
    async fn schedule(
        &self,
        id: &str,
        owner: &str,
        at: DateTime<Utc>,
        failure: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Claims (or renews) the lease on an order's saga for `owner` until `until`: true when the
    /// order has a step to run and nobody else holds an unexpired lease on it. One conditional
    /// update, so of two workers racing for an order exactly one wins.
    async fn claim(
        &self,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Renews `owner`'s lease until `until` if it still holds it and the order is still at `step`:
    /// the fence a saga worker passes before each call that changes something elsewhere. Unlike
    /// [`Store::claim`] it never takes a lease back: a worker that lost its lease learns so here,
    /// even after the new owner let it go.
    async fn renew(
        &self,
        id: &str,
        owner: &str,
        step: Step,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Ends `owner`'s lease, if it still holds it.
    async fn release(&self, id: &str, owner: &str) -> Result<(), StoreError>;
    /// Applies another service's event to an order, once (the event id is claimed in the inbox in
    /// the same transaction).
    async fn react(
        &self,
        event: &Event,
        order_id: &str,
        reaction: Reaction,
    ) -> Result<(), StoreError>;
    /// Orders whose saga step is due and that nobody holds a lease on.
    async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError>;
}

/// Connects to `url`, migrates it and opens the store (tests use a store on its own this way).
pub async fn connect(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<(Arc<dyn Store>, Database)> {
    let db = platform::service::connect_url(url, max_connections, &MIGRATIONS).await?;
    Ok((open(db.clone()), db))
}

const ORDER_COLUMNS: &str = "id, user_id, status, currency, total_amount, payment_method, shipping_address, idempotency_key, request_hash, saga_step, saga_outcome, saga_deadline, next_attempt_at, attempts, payment_id, failure, created_at, updated_at, request_id, traceparent, cart_id";
const INSERT_ORDER: &str = "INSERT INTO orders (id, user_id, status, currency, total_amount, payment_method, shipping_address, idempotency_key, request_hash, saga_step, saga_deadline, next_attempt_at, created_at, updated_at, request_id, traceparent, cart_id, lease_owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17, $18)";
const INSERT_LINES: &str =
    "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price, quantity) VALUES ";
const INSERT_HISTORY: &str =
    "INSERT INTO order_history (order_id, status, note, at) VALUES ($1, $2, $3, $4)";
/// `$2` is the step the change starts from ('' for none), so the update is a compare-and-set; `$8`
/// the saga worker, which must hold the lease (renewed until `$9`); `$10` the status the new step
/// belongs to; `$11` a new status, which only `$12` or `$13` may become. Ending the saga ends
/// the lease.
const CHANGE: &str = "UPDATE orders SET saga_step = $3, saga_outcome = COALESCE($4, saga_outcome), payment_id = COALESCE($5, payment_id), failure = COALESCE($6, failure), next_attempt_at = $7, attempts = 0, updated_at = $7, status = COALESCE($11, status), lease_owner = CASE WHEN $3 IS NULL THEN NULL ELSE lease_owner END, lease_until = CASE WHEN $3 IS NULL THEN NULL ELSE COALESCE($9, lease_until) END WHERE id = $1 AND COALESCE(saga_step, '') = $2 AND ($8 IS NULL OR lease_owner = $8) AND ($10 IS NULL OR status = $10) AND ($11 IS NULL OR status IN ($12, $13))";
const SCHEDULE: &str = "UPDATE orders SET next_attempt_at = $2, attempts = attempts + 1, failure = COALESCE($3, failure), updated_at = $4, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND saga_step IS NOT NULL AND lease_owner = $5";
const CLAIM: &str = "UPDATE orders SET lease_owner = $2, lease_until = $4 WHERE id = $1 AND saga_step IS NOT NULL AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until IS NULL OR lease_until <= $3)";
const RENEW: &str =
    "UPDATE orders SET lease_until = $4 WHERE id = $1 AND lease_owner = $2 AND saga_step = $3";
const RELEASE: &str =
    "UPDATE orders SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2";
const DUE: &str = "SELECT id FROM orders WHERE saga_step IS NOT NULL AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at LIMIT $2";

/// `$1, $2, ... $n`, for an `IN (...)` over the ids of a page.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one store, over either database: every statement is the same in both dialects.
pub struct DbStore {
    db: Database,
}

/// The store over a connected, migrated database.
pub fn open(db: Database) -> Arc<dyn Store> {
    Arc::new(DbStore { db })
}

impl DbStore {
    async fn load(conn: &mut Tx, id: &str) -> Result<Option<Order>, sqlx::Error> {
        let row: Option<OrderRow> =
            query(format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Self::complete(conn, vec![row]).await?.pop())
    }

    /// The orders of `rows` with their lines and history: two queries for any number of
    /// orders, not two per order.
    async fn complete(conn: &mut Tx, rows: Vec<OrderRow>) -> Result<Vec<Order>, sqlx::Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids = placeholders(rows.len());
        let lines_sql = format!("SELECT order_id, line_no, product_id, sku, name, unit_price, quantity FROM order_lines WHERE order_id IN ({ids}) ORDER BY order_id, line_no");
        let mut lines_query = query(lines_sql);
        for row in &rows {
            lines_query = lines_query.bind(&row.id);
        }
        let mut lines: HashMap<String, Vec<LineRow>> = HashMap::new();
        for l in lines_query.fetch_all::<PageLine>(&mut *conn).await? {
            lines.entry(l.order_id).or_default().push(l.line);
        }
        let history_sql = format!("SELECT order_id, status, note, at FROM order_history WHERE order_id IN ({ids}) ORDER BY seq");
        let mut history_query = query(history_sql);
        for row in &rows {
            history_query = history_query.bind(&row.id);
        }
        let mut history: HashMap<String, Vec<HistoryRow>> = HashMap::new();
        for h in history_query.fetch_all::<PageHistory>(&mut *conn).await? {
            history.entry(h.order_id).or_default().push(h.entry);
        }
        Ok(rows
            .into_iter()
            .map(|row| Order {
                lines: lines.remove(&row.id).unwrap_or_default(),
                history: history.remove(&row.id).unwrap_or_default(),
                row,
            })
            .collect())
    }
}

#[async_trait]
impl Store for DbStore {
    async fn place(
        &self,
        order: &Order,
        event: &Event,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<Placed, StoreError> {
        let o = &order.row;
        let mut tx = self.db.begin_write_named("place_order").await?;
        let inserted = query(INSERT_ORDER)
            .bind(&o.id)
            .bind(&o.user_id)
            .bind(&o.status)
            .bind(&o.currency)
            .bind(o.total_amount)
            .bind(&o.payment_method)
            .bind(&o.shipping_address)
            .bind(&o.idempotency_key)
            .bind(&o.request_hash)
            .bind(&o.saga_step)
            .bind(o.saga_deadline)
            .bind(o.next_attempt_at)
            .bind(o.created_at)
            .bind(&o.request_id)
            .bind(&o.traceparent)
            .bind(&o.cart_id)
            .bind(owner)
            .bind(until)
            .execute(&mut tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                let (id,): (String,) =
                    query("SELECT id FROM orders WHERE user_id = $1 AND idempotency_key = $2")
                        .bind(&o.user_id)
                        .bind(&o.idempotency_key)
                        .fetch_one(&self.db)
                        .await?;
                let mut conn = self.db.begin().await?;
                let existing = Self::load(&mut conn, &id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                return Ok(Placed::Existing(existing));
            }
            Err(e) => return Err(e.into()),
        }
        // All lines in one statement (at most MAX_LINES, 7 values each).
        let rows: Vec<String> = (0..order.lines.len())
            .map(|i| {
                let n = i * 7;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7
                )
            })
            .collect();
        let mut lines = query(format!("{INSERT_LINES}{}", rows.join(", ")));
        for line in &order.lines {
            lines = lines
                .bind(&o.id)
                .bind(line.line_no)
                .bind(&line.product_id)
                .bind(&line.sku)
                .bind(&line.name)
                .bind(line.unit_price)
                .bind(line.quantity);
        }
        // The lines, the history line and the event need nothing back: on SQLite they go with
        // the commit, one call (`execute_later`).
        if !order.lines.is_empty() {
            tx.execute_later(lines).await?;
        }
        tx.execute_later(
            query(INSERT_HISTORY)
                .bind(&o.id)
                .bind(&o.status)
                .bind(None::<String>)
                .bind(o.created_at),
        )
        .await?;
        // Last before the commit: on PostgreSQL the outbox is written under one lock for all
        // writers (feed order), held until the commit.
        tx.enqueue(event).await?;
        tx.commit().await?;
        // What was written, as written: nothing to read back.
        Ok(Placed::New(Order {
            row: o.clone(),
            lines: order.lines.clone(),
            history: vec![HistoryRow {
                status: o.status.clone(),
                note: None,
                at: o.created_at,
            }],
        }))
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let mut conn = self.db.begin().await?;
        Ok(Self::load(&mut conn, id).await?)
    }

    async fn by_key(&self, user_id: &str, key: &str) -> Result<Option<Order>, StoreError> {
        let id: Option<(String,)> =
            query("SELECT id FROM orders WHERE user_id = $1 AND idempotency_key = $2")
                .bind(user_id)
                .bind(key)
                .fetch_optional(&self.db)
                .await?;
        let Some((id,)) = id else { return Ok(None) };
        self.order(&id).await
    }

    async fn list(&self, f: &Filter<'_>) -> Result<Vec<Order>, StoreError> {
        let mut conn = self.db.begin().await?;
        let rows: Vec<OrderRow> = query(format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
                ))
                .bind(f.user_id)
                .bind(f.status.map(Status::as_str))
                .bind(f.before)
                .bind(f.fetch)
                .fetch_all(&mut conn)
                .await?;
        Ok(Self::complete(&mut conn, rows).await?)
    }

    async fn change(&self, id: &str, c: &Change<'_>) -> Result<bool, StoreError> {
        // The new step's status (a cancellation is of a confirmed order, every other step of a
        // pending one); for a new status, the ones that may become it (at most two; none for
        // pending, which nothing becomes).
        let step_status = c.to_step.map(|s| s.status().as_str());
        let mut before = c.status.iter().flat_map(|(new, _)| {
            Status::ALL
                .into_iter()
                .filter(|s| s.can_become(*new))
                .map(Status::as_str)
        });
        let (first, second) = (before.next().unwrap_or(""), before.next());
        let update = query(CHANGE)
            .bind(id)
            .bind(c.from_step.map_or("", Step::as_str))
            .bind(c.to_step.map(Step::as_str))
            .bind(c.outcome.map(Status::as_str))
            .bind(c.payment_id)
            .bind(c.failure)
            .bind(c.next_attempt_at)
            .bind(c.owner)
            .bind(c.lease_until)
            .bind(step_status)
            .bind(c.status.map(|(s, _)| s.as_str()))
            .bind(first)
            .bind(second.unwrap_or(first));
        if c.status.is_none() && c.event.is_none() {
            // One statement: atomic on its own, no transaction needed.
            return Ok(update.execute(&self.db).await? == 1);
        }
        let mut tx = self.db.begin_write_named("change_order").await?;
        if update.execute(&mut tx).await? != 1 {
            return Ok(false);
        }
        if let Some((status, note)) = c.status {
            tx.execute_later(
                query(INSERT_HISTORY)
                    .bind(id)
                    .bind(status.as_str())
                    .bind(note)
                    .bind(c.next_attempt_at),
            )
            .await?;
        }
        if let Some(event) = c.event {
            tx.enqueue(event).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn schedule(
        &self,
        id: &str,
        owner: &str,
        at: DateTime<Utc>,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        query(SCHEDULE)
            .bind(id)
            .bind(at)
            .bind(failure)
            .bind(Utc::now())
            .bind(owner)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn claim(
        &self,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let claimed = query(CLAIM)
            .bind(id)
            .bind(owner)
            .bind(now)
            .bind(until)
            .execute(&self.db)
            .await?;
        Ok(claimed == 1)
    }

    async fn renew(
        &self,
        id: &str,
        owner: &str,
        step: Step,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let renewed = query(RENEW)
            .bind(id)
            .bind(owner)
            .bind(step.as_str())
            .bind(until)
            .execute(&self.db)
            .await?;
        Ok(renewed == 1)
    }

    async fn release(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        query(RELEASE)
            .bind(id)
            .bind(owner)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn react(
        &self,
        event: &Event,
        order_id: &str,
        reaction: Reaction,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        if tx.claim(crate::NAME, event).await? {
            let now = Utc::now();
            match reaction {
                Reaction::Wake => {
                    query("UPDATE orders SET next_attempt_at = $2 WHERE id = $1 AND saga_step IS NOT NULL")
                                .bind(order_id).bind(now).execute(&mut tx).await?;
                }
                Reaction::CancelConfirmed => {
                    query("UPDATE orders SET saga_step = 'cancel', saga_outcome = 'cancelled', failure = 'the payment was voided at the payment gateway', next_attempt_at = $2, updated_at = $2 WHERE id = $1 AND status = 'confirmed' AND saga_step IS NULL")
                                .bind(order_id).bind(now).execute(&mut tx).await?;
                }
                Reaction::Note(note) => {
                    query("INSERT INTO order_history (order_id, status, note, at) SELECT id, status, $2, $3 FROM orders WHERE id = $1 AND COALESCE(saga_step, '') <> 'cancel' AND status <> 'cancelled'")
                                .bind(order_id).bind(note).bind(now).execute(&mut tx).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = query(DUE).bind(now).bind(limit).fetch_all(&self.db).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
