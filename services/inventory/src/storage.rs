//! Inventory storage: one trait, implemented once over either database (`platform::db`): every
//! statement is the same in both dialects; how a write transaction starts and how events are
//! written are the platform's.
//!
//! No oversell: reservations are made a batch at a time (`platform::batch`: those that arrive
//! while one batch is written share the next one's transaction and commit). A batch first locks
//! the stock row of every SKU it names, in SKU order as every writer here takes them (so two
//! writers never wait on each other's rows in opposite orders), and reads the levels; then each
//! reservation is decided on those levels, kept up to date in memory, all its lines or none. The
//! table's `CHECK (reserved <= on_hand)` stands behind that: were the arithmetic ever wrong, the
//! batch would fail rather than oversell.
//!
//! Why batches: a row updated in a transaction stays locked until its commit is on disk, so
//! reservations of one SKU, one transaction each, went one per WAL flush on PostgreSQL, ~700/s
//! however many cores (docs/performance.md, "Reservations share a commit").
//!
//! Nothing is read back that the transaction already knows: every statement is a round trip to
//! PostgreSQL, and on SQLite one more hop to the connection's thread while the write lock is held.
//! Events are collected while a transaction writes and go to the outbox just before it commits.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use platform::batch::{Batcher, Stopped};
use platform::db::{query, Database, Exec, Tx};
use platform::events::Event;
use platform::service::Migrations;
use serde_json::json;

use crate::domain::MAX_ON_HAND;

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
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The task that makes reservations is gone (the service is stopping).
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StockRow {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub low_stock_threshold: Option<i64>,
    pub discontinued: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MovementRow {
    pub seq: i64,
    pub id: String,
    pub sku: String,
    pub delta: i64,
    pub kind: String,
    pub reason: String,
    pub reservation_id: Option<String>,
    pub on_hand_after: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReservationRow {
    pub id: String,
    pub status: String,
    pub request_hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Reservation {
    pub row: ReservationRow,
    pub lines: Vec<(String, i64)>,
}

/// A line that could not be reserved.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Short {
    pub sku: String,
    pub requested: i64,
    pub available: i64,
}

/// Reservations held and stock levels now, for the gauges (see [`Store::levels`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Levels {
    /// Pending reservations.
    pub held: i64,
    /// SKUs on sale whose availability is at or under their low-stock threshold.
    pub low: i64,
    /// SKUs on sale with nothing available.
    pub out: i64,
}

pub enum Reserved {
    Created(Reservation),
    /// The same request again: the stored reservation.
    Replayed(Reservation),
    /// The same id with another request.
    Mismatch,
    Short(Vec<Short>),
    /// SKUs inventory does not know, or that are discontinued.
    Unknown(Vec<String>),
}

pub const PENDING: &str = "pending";
pub const COMMITTED: &str = "committed";
pub const RELEASED: &str = "released";
pub const EXPIRED: &str = "expired";
/// Sold, then given back (an order cancelled after its stock was committed).
pub const RETURNED: &str = "returned";

#[async_trait]
pub trait Store: Send + Sync {
    async fn stock(&self, sku: &str) -> Result<Option<StockRow>, StoreError>;
    async fn stocks(&self, skus: &[String]) -> Result<Vec<StockRow>, StoreError>;
    /// Sets on_hand (creating the SKU when new); below what is reserved is a conflict.
    async fn set_on_hand(
        &self,
        sku: &str,
        on_hand: i64,
        reason: &str,
        threshold: Option<Option<i64>>,
    ) -> Result<StockRow, StoreError>;
    async fn adjust(&self, sku: &str, delta: i64, reason: &str) -> Result<StockRow, StoreError>;
    /// Newest first, before `before` (a movement's `seq`).
    async fn movements(
        &self,
        sku: &str,
        before: Option<i64>,
        fetch: i64,
    ) -> Result<Vec<MovementRow>, StoreError>;
    /// `lines` sorted by SKU, one per SKU.
    async fn reserve(
        &self,
        id: &str,
        lines: &[(String, i64)],
        request_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Reserved, StoreError>;
    async fn reservation(&self, id: &str) -> Result<Option<Reservation>, StoreError>;
    async fn commit(&self, id: &str) -> Result<Reservation, StoreError>;
    /// Gives the stock back; `expired` when the service does it because the TTL ran out.
    async fn release(&self, id: &str, expired: bool) -> Result<Reservation, StoreError>;
    /// Puts a committed reservation's units back on hand (ledger kind `return`).
    async fn give_back_sold(&self, id: &str) -> Result<Reservation, StoreError>;
    /// Pending reservations whose TTL has run out.
    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;
    /// What the service's gauges show: reservations held, SKUs low and out of stock, a SKU's own
    /// low-stock threshold applying where it has one and `default_threshold` elsewhere.
    async fn levels(&self, default_threshold: i64) -> Result<Levels, StoreError>;
    /// Applies a products event once: a new product gets a stock row at 0, a deleted one is
    /// discontinued.
    async fn apply_product(
        &self,
        event: &Event,
        sku: &str,
        deleted: bool,
    ) -> Result<(), StoreError>;
}

/// Connects to `url`, migrates it and opens the store (tests use a store on its own this way).
pub async fn connect(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<(Arc<dyn Store>, Database)> {
    let db = platform::service::connect_url(url, max_connections, &MIGRATIONS).await?;
    Ok((open(db.clone()), db))
}

const STOCK_COLUMNS: &str = "sku, on_hand, reserved, low_stock_threshold, discontinued, updated_at";
const SET_STOCK: &str = "UPDATE stock SET on_hand = $2, low_stock_threshold = $3, updated_at = $4 WHERE sku = $1 RETURNING sku, on_hand, reserved, low_stock_threshold, discontinued, updated_at";
/// Row-locks a stock row (on PostgreSQL; SQLite's write transaction holds the whole database) and
/// reads it in one statement, so that what a write computes from the row (the ledger's delta,
/// whether it goes below what is reserved) is still true when it writes.
const LOCK_STOCK: &str = "UPDATE stock SET updated_at = updated_at WHERE sku = $1 RETURNING sku, on_hand, reserved, low_stock_threshold, discontinued, updated_at";
/// No row: the change would leave less on hand than is reserved, or more than the most allowed.
const ADJUST: &str = "UPDATE stock SET on_hand = on_hand + $2, updated_at = $3 WHERE sku = $1 AND on_hand + $2 >= reserved AND on_hand + $2 <= $4 RETURNING sku, on_hand, reserved, low_stock_threshold, discontinued, updated_at";
const RESTOCK: &str = "UPDATE stock SET on_hand = on_hand + $2, updated_at = $3 WHERE sku = $1 RETURNING sku, on_hand, reserved, low_stock_threshold, discontinued, updated_at";
/// Takes a line's units, on a row the batch has locked and found them available on (the `CHECK`
/// on `reserved` refuses the write were they not).
const TAKE: &str = "UPDATE stock SET reserved = reserved + $2, updated_at = $3 WHERE sku = $1";
const GIVE_BACK: &str = "UPDATE stock SET reserved = reserved - $2, updated_at = $3 WHERE sku = $1 RETURNING sku, on_hand, reserved, low_stock_threshold, discontinued, updated_at";
const SELL: &str = "UPDATE stock SET on_hand = on_hand - $2, reserved = reserved - $2, updated_at = $3 WHERE sku = $1 RETURNING sku, on_hand, reserved, low_stock_threshold, discontinued, updated_at";
const INSERT_MOVEMENT: &str = "INSERT INTO movements (id, sku, delta, kind, reason, reservation_id, on_hand_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const MOVEMENTS: &str = "SELECT seq, id, sku, delta, kind, reason, reservation_id, on_hand_after, created_at FROM movements WHERE sku = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3";
const RESERVATION: &str =
    "SELECT id, status, request_hash, expires_at, created_at FROM reservations WHERE id = $1";
/// Claims the id: no row inserted means it was reserved before (on PostgreSQL, if a transaction
/// holding the same id is still open, this waits for it and then sees its outcome).
const INSERT_RESERVATION: &str = "INSERT INTO reservations (id, status, request_hash, expires_at, created_at, updated_at) VALUES ($1, 'pending', $2, $3, $4, $4) ON CONFLICT (id) DO NOTHING";
/// Gives back a claimed id (see [`INSERT_RESERVATION`]) whose reservation cannot be made.
const UNCLAIM: &str = "DELETE FROM reservations WHERE id = $1";
const SET_STATUS: &str = "UPDATE reservations SET status = $2, updated_at = $3 WHERE id = $1";
/// Taken first by whatever moves a reservation on (commit, release, expiry, return): on PostgreSQL
/// it row-locks the reservation, so two of them for one reservation run one after the other and
/// the second sees what the first did (without it both could sell the same units). SQLite's write
/// transactions are serial already.
const LOCK_RESERVATION: &str = "UPDATE reservations SET updated_at = updated_at WHERE id = $1 RETURNING id, status, request_hash, expires_at, created_at";
/// A commit's usual case in one statement: a pending reservation still in time becomes committed
/// (and is row-locked, as by `LOCK_RESERVATION`). No row: anything else, decided by the slow path.
const COMMIT_PENDING: &str = "UPDATE reservations SET status = 'committed', updated_at = $2 WHERE id = $1 AND status = 'pending' AND expires_at > $2 RETURNING id, status, request_hash, expires_at, created_at";
const LINES: &str =
    "SELECT sku, quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY sku";
const INSERT_LINE: &str =
    "INSERT INTO reservation_lines (reservation_id, sku, quantity) VALUES ($1, $2, $3)";
const DUE: &str = "SELECT id FROM reservations WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT 100";
/// One statement, so the three figures are of one moment. Discontinued SKUs are not on sale:
/// neither low nor out.
const LEVELS: &str = "SELECT \
    (SELECT COUNT(*) FROM reservations WHERE status = 'pending') AS held, \
    (SELECT COUNT(*) FROM stock WHERE discontinued = FALSE AND on_hand - reserved <= COALESCE(low_stock_threshold, $1)) AS low, \
    (SELECT COUNT(*) FROM stock WHERE discontinued = FALSE AND on_hand - reserved <= 0) AS out";
const NEW_PRODUCT: &str = "INSERT INTO stock (sku, on_hand, reserved, updated_at) VALUES ($1, 0, 0, $2) ON CONFLICT (sku) DO NOTHING";
const DISCONTINUE: &str = "UPDATE stock SET discontinued = TRUE, updated_at = $2 WHERE sku = $1";

fn stock_changed(row: &StockRow) -> Event {
    Event::new(
        crate::NAME,
        "stock_changed",
        row.sku.clone(),
        json!({"sku": row.sku, "on_hand": row.on_hand, "reserved": row.reserved, "available": row.on_hand - row.reserved}),
    )
}

/// `low_stock` when availability has just dropped to or below the threshold.
fn low_stock(before: i64, row: &StockRow) -> Option<Event> {
    let threshold = row.low_stock_threshold?;
    let available = row.on_hand - row.reserved;
    (available <= threshold && before > threshold).then(|| {
        Event::new(
            crate::NAME,
            "low_stock",
            row.sku.clone(),
            json!({"sku": row.sku, "available": available, "threshold": threshold}),
        )
    })
}

/// Collects the events of a new stock level.
fn publish(events: &mut Vec<Event>, before_available: i64, row: &StockRow) {
    events.push(stock_changed(row));
    events.extend(low_stock(before_available, row));
}

/// Counts a reservation expired (`inventory_reservations_expired_total`), once its transaction
/// has committed.
fn count_expired() {
    metrics::counter!("inventory_reservations_expired_total").increment(1);
}

/// The one store, over either database: every statement is the same in both dialects. On SQLite
/// its writers take turns in `platform::db::Database::begin_write`.
pub struct DbStore {
    db: Database,
    /// One lane on SQLite, [`PG_LANES`] on PostgreSQL; a reservation goes to the lane of its
    /// first SKU.
    reservations: Vec<Batcher<Job, Result<Reserved, StoreError>>>,
}

/// The most reservations one transaction makes: enough to share a commit among the requests a
/// busy service has in flight, few enough that a batch holds its rows for a few milliseconds.
const BATCH: usize = 32;

/// Batches made side by side on PostgreSQL. A lane makes its batches one statement after another,
/// each a round trip; reservations of many SKUs, which did not wait on each other before, queue
/// behind each other's round trips in too few lanes (over 32 SKUs: one lane ×0.6 of the rate
/// before batching, 4 lanes ×0.7, 16 lanes ×1.3; docs/performance.md, "Reservations share a
/// commit"). Lanes by SKU keep a hot SKU's reservations together, sharing commits, and the rest
/// apart; the pool's connections bound how many write at once. Batches lock in SKU order like
/// every writer, so lanes cannot deadlock on stock rows. SQLite writes one transaction at a time
/// anyway: one lane, the largest batches.
const PG_LANES: usize = 16;

/// The store over a connected, migrated database. Starts the tasks that make reservations, on
/// the current Tokio runtime.
pub fn open(db: Database) -> Arc<dyn Store> {
    let lanes = if matches!(db, Database::Postgres(_)) {
        PG_LANES
    } else {
        1
    };
    let reservations = (0..lanes)
        .map(|_| {
            let on = db.clone();
            Batcher::spawn(BATCH, move |jobs| reserve_batch(on.clone(), jobs))
        })
        .collect();
    Arc::new(DbStore { db, reservations })
}

/// A reservation asked for: what [`Store::reserve`] takes.
struct Job {
    id: String,
    /// Sorted by SKU, one per SKU.
    lines: Vec<(String, i64)>,
    request_hash: String,
    expires_at: DateTime<Utc>,
}

/// Makes a batch's reservations in one transaction. If it fails (a deadlock with a writer of
/// another process, the connection lost) nothing of it was written, and each is tried alone, so
/// that one bad reservation does not fail the others.
async fn reserve_batch(db: Database, jobs: Vec<Job>) -> Vec<Result<Reserved, StoreError>> {
    if jobs.len() > 1 {
        match reserve_together(&db, &jobs).await {
            Ok(answers) => return answers.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::warn!(error = %e, reservations = jobs.len(), "a batch of reservations failed; each is tried alone");
            }
        }
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        answers.push(
            reserve_together(&db, std::slice::from_ref(&job))
                .await
                .map_err(StoreError::from)
                .and_then(|mut one| one.pop().ok_or(StoreError::NotFound)),
        );
    }
    answers
}

/// The reservations of `jobs`, in one transaction: every SKU named is locked and read first (in
/// SKU order), then each reservation is decided on the levels kept in memory; one that cannot be
/// made writes nothing (its claimed id is given back) and the rest go on.
async fn reserve_together(db: &Database, jobs: &[Job]) -> Result<Vec<Reserved>, sqlx::Error> {
    let now = stored(Utc::now());
    let mut tx = db.begin_write_named("reserve").await?;
    // SKU on sale -> (available when locked, the row now).
    let mut levels: BTreeMap<&str, (i64, StockRow)> = BTreeMap::new();
    let skus: BTreeSet<&str> = jobs
        .iter()
        .flat_map(|job| job.lines.iter().map(|(sku, _)| sku.as_str()))
        .collect();
    for sku in skus {
        let row: Option<StockRow> = query(LOCK_STOCK).bind(sku).fetch_optional(&mut tx).await?;
        if let Some(row) = row.filter(|row| !row.discontinued) {
            levels.insert(sku, (row.on_hand - row.reserved, row));
        }
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        // Claims the id first: on PostgreSQL this waits for a transaction (another replica's)
        // holding the same id, and then sees its outcome.
        let claimed = query(INSERT_RESERVATION)
            .bind(&job.id)
            .bind(&job.request_hash)
            .bind(job.expires_at)
            .bind(now)
            .execute(&mut tx)
            .await?;
        if claimed == 0 {
            // Reserved before (or just now, by a request that has committed since).
            let existing = DbStore::load(&mut tx, &job.id)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            answers.push(if existing.row.request_hash == job.request_hash {
                Reserved::Replayed(existing)
            } else {
                Reserved::Mismatch
            });
            continue;
        }
        if let Some(refused) = refusal(&job.lines, &levels) {
            tx.execute_later(query(UNCLAIM).bind(&job.id)).await?;
            answers.push(refused);
            continue;
        }
        for (sku, quantity) in &job.lines {
            let Some((_, row)) = levels.get_mut(sku.as_str()) else {
                continue;
            };
            // Nothing is read back: the level is known. On SQLite both go with the next call.
            tx.execute_later(query(INSERT_LINE).bind(&job.id).bind(sku).bind(*quantity))
                .await?;
            tx.execute_later(query(TAKE).bind(sku).bind(*quantity).bind(now))
                .await?;
            row.reserved += quantity;
            row.updated_at = now;
        }
        answers.push(Reserved::Created(Reservation {
            row: ReservationRow {
                id: job.id.clone(),
                status: PENDING.to_owned(),
                request_hash: job.request_hash.clone(),
                expires_at: job.expires_at,
                created_at: now,
            },
            lines: job.lines.clone(),
        }));
    }
    // One `stock_changed` per SKU with its level after the batch: the event carries the level,
    // and a reader wants the latest.
    let mut events = Vec::new();
    for (available_before, row) in levels.values() {
        if row.on_hand - row.reserved != *available_before {
            publish(&mut events, *available_before, row);
        }
    }
    DbStore::enqueue(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(answers)
}

/// Why a reservation cannot be made on these levels, if it cannot: a SKU unknown or not on sale
/// (before any short one), or lines short, each with what is available.
fn refusal(lines: &[(String, i64)], levels: &BTreeMap<&str, (i64, StockRow)>) -> Option<Reserved> {
    let unknown: Vec<String> = lines
        .iter()
        .filter(|(sku, _)| !levels.contains_key(sku.as_str()))
        .map(|(sku, _)| sku.clone())
        .collect();
    if !unknown.is_empty() {
        return Some(Reserved::Unknown(unknown));
    }
    let short: Vec<Short> = lines
        .iter()
        .filter_map(|(sku, quantity)| {
            let (_, row) = levels.get(sku.as_str())?;
            let available = row.on_hand - row.reserved;
            (available < *quantity).then(|| Short {
                sku: sku.clone(),
                requested: *quantity,
                available,
            })
        })
        .collect();
    (!short.is_empty()).then_some(Reserved::Short(short))
}

/// A time as the databases keep it (PostgreSQL to the microsecond), so that what a write answers
/// from memory is what a later read of the row answers.
fn stored(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

impl DbStore {
    /// The stock row, locked for the rest of the write transaction (see `LOCK_STOCK`).
    async fn lock_stock(tx: &mut Tx, sku: &str) -> Result<StockRow, StoreError> {
        query(LOCK_STOCK)
            .bind(sku)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn read_stock(on: impl Exec, sku: &str) -> Result<Option<StockRow>, sqlx::Error> {
        query(format!("SELECT {STOCK_COLUMNS} FROM stock WHERE sku = $1"))
            .bind(sku)
            .fetch_optional(on)
            .await
    }

    /// Records a movement in the caller's transaction and collects the new level's events.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        tx: &mut Tx,
        events: &mut Vec<Event>,
        before_available: i64,
        row: &StockRow,
        delta: i64,
        kind: &str,
        reason: &str,
        reservation: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        Self::ledger(tx, row, delta, kind, reason, reservation).await?;
        publish(events, before_available, row);
        Ok(())
    }

    /// Records a movement in the caller's transaction: the ledger line alone, no event.
    async fn ledger(
        tx: &mut Tx,
        row: &StockRow,
        delta: i64,
        kind: &str,
        reason: &str,
        reservation: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        if delta != 0 || kind == "set" {
            // Nothing reads the ledger line back in the transaction: on SQLite it goes with the
            // next statement or the commit (`execute_later`).
            tx.execute_later(
                query(INSERT_MOVEMENT)
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(&row.sku)
                    .bind(delta)
                    .bind(kind)
                    .bind(reason)
                    .bind(reservation)
                    .bind(row.on_hand)
                    .bind(Utc::now()),
            )
            .await?;
        }
        Ok(())
    }

    /// Writes the collected events to the outbox: after the transaction's last row write
    /// (see the module's comment), just before it commits.
    async fn enqueue(tx: &mut Tx, events: &[Event]) -> Result<(), sqlx::Error> {
        for event in events {
            tx.enqueue(event).await?;
        }
        Ok(())
    }

    /// Locks the reservation (see `LOCK_RESERVATION`) and reads it, in a write transaction.
    async fn load_for_update(tx: &mut Tx, id: &str) -> Result<Option<Reservation>, sqlx::Error> {
        let row: Option<ReservationRow> = query(LOCK_RESERVATION)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        Self::with_lines(tx, row).await
    }

    /// The reservation `row` (if any) with its lines.
    async fn with_lines(
        tx: &mut Tx,
        row: Option<ReservationRow>,
    ) -> Result<Option<Reservation>, sqlx::Error> {
        let Some(row) = row else { return Ok(None) };
        let lines: Vec<(String, i64)> = query(LINES).bind(&row.id).fetch_all(&mut *tx).await?;
        Ok(Some(Reservation { row, lines }))
    }

    async fn load(tx: &mut Tx, id: &str) -> Result<Option<Reservation>, sqlx::Error> {
        let row: Option<ReservationRow> =
            query(RESERVATION).bind(id).fetch_optional(&mut *tx).await?;
        Self::with_lines(tx, row).await
    }

    /// Gives a pending reservation's stock back and marks it `status`.
    async fn give_back(
        tx: &mut Tx,
        events: &mut Vec<Event>,
        reservation: &mut Reservation,
        status: &str,
    ) -> Result<(), sqlx::Error> {
        for (sku, quantity) in &reservation.lines {
            let after: Option<StockRow> = query(GIVE_BACK)
                .bind(sku)
                .bind(*quantity)
                .bind(Utc::now())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(after) = after {
                publish(events, after.on_hand - after.reserved - quantity, &after);
            }
        }
        query(SET_STATUS)
            .bind(&reservation.row.id)
            .bind(status)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        if status == EXPIRED {
            let items: Vec<_> = reservation
                .lines
                .iter()
                .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
                .collect();
            events.push(Event::new(
                crate::NAME,
                "reservation_expired",
                reservation.row.id.clone(),
                json!({"reservation_id": reservation.row.id, "items": items}),
            ));
        }
        reservation.row.status = status.to_owned();
        Ok(())
    }
}

#[async_trait]
impl Store for DbStore {
    async fn stock(&self, sku: &str) -> Result<Option<StockRow>, StoreError> {
        Ok(Self::read_stock(&self.db, sku).await?)
    }

    async fn stocks(&self, skus: &[String]) -> Result<Vec<StockRow>, StoreError> {
        let mut rows = Vec::new();
        for sku in skus {
            rows.extend(Self::read_stock(&self.db, sku).await?);
        }
        Ok(rows)
    }

    async fn set_on_hand(
        &self,
        sku: &str,
        on_hand: i64,
        reason: &str,
        threshold: Option<Option<i64>>,
    ) -> Result<StockRow, StoreError> {
        let mut tx = self.db.begin_write().await?;
        // A new SKU starts at 0. `ON CONFLICT DO NOTHING`, not read-then-insert: products'
        // `product_created` may create the row at the same moment (on PostgreSQL this waits
        // for that transaction instead of failing on the primary key).
        query(NEW_PRODUCT)
            .bind(sku)
            .bind(Utc::now())
            .execute(&mut tx)
            .await?;
        let before = Self::lock_stock(&mut tx, sku).await?;
        if on_hand < before.reserved {
            return Err(StoreError::Conflict(format!(
                "{} units of {sku} are reserved; on_hand cannot go below that",
                before.reserved
            )));
        }
        let threshold = threshold.unwrap_or(before.low_stock_threshold);
        let after: StockRow = query(SET_STOCK)
            .bind(sku)
            .bind(on_hand)
            .bind(threshold)
            .bind(Utc::now())
            .fetch_optional(&mut tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut events = Vec::new();
        Self::record(
            &mut tx,
            &mut events,
            before.on_hand - before.reserved,
            &after,
            on_hand - before.on_hand,
            "set",
            reason,
            None,
        )
        .await?;
        Self::enqueue(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn adjust(&self, sku: &str, delta: i64, reason: &str) -> Result<StockRow, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let before = Self::lock_stock(&mut tx, sku).await?;
        let after: Option<StockRow> = query(ADJUST)
            .bind(sku)
            .bind(delta)
            .bind(Utc::now())
            .bind(MAX_ON_HAND)
            .fetch_optional(&mut tx)
            .await?;
        let Some(after) = after else {
            return Err(StoreError::Conflict(format!(
                        "{sku} has {} on hand and {} reserved; a change of {delta} would leave less than is reserved or more than {MAX_ON_HAND} on hand",
                        before.on_hand, before.reserved
                    )));
        };
        let mut events = Vec::new();
        Self::record(
            &mut tx,
            &mut events,
            before.on_hand - before.reserved,
            &after,
            delta,
            "adjustment",
            reason,
            None,
        )
        .await?;
        Self::enqueue(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn movements(
        &self,
        sku: &str,
        before: Option<i64>,
        fetch: i64,
    ) -> Result<Vec<MovementRow>, StoreError> {
        Ok(query(MOVEMENTS)
            .bind(sku)
            .bind(before.unwrap_or(i64::MAX))
            .bind(fetch)
            .fetch_all(&self.db)
            .await?)
    }

    async fn reserve(
        &self,
        id: &str,
        lines: &[(String, i64)],
        request_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Reserved, StoreError> {
        let job = Job {
            id: id.to_owned(),
            lines: lines.to_vec(),
            request_hash: request_hash.to_owned(),
            expires_at: stored(expires_at),
        };
        let lane = job.lines.first().map_or(0, |(sku, _)| {
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(sku, &mut hasher);
            std::hash::Hasher::finish(&hasher)
        });
        // The lane count is small: the remainder always fits a usize.
        let lane = usize::try_from(lane % self.reservations.len() as u64).unwrap_or(0);
        self.reservations[lane].submit(job).await?
    }

    async fn reservation(&self, id: &str) -> Result<Option<Reservation>, StoreError> {
        let mut tx = self.db.begin().await?;
        Ok(Self::load(&mut tx, id).await?)
    }

    async fn commit(&self, id: &str) -> Result<Reservation, StoreError> {
        let mut tx = self.db.begin_write_named("commit_reservation").await?;
        let now = Utc::now();
        // The usual case first: pending and in time, committed by this one statement.
        let committed: Option<ReservationRow> = query(COMMIT_PENDING)
            .bind(id)
            .bind(now)
            .fetch_optional(&mut tx)
            .await?;
        let reservation = match Self::with_lines(&mut tx, committed).await? {
            Some(reservation) => reservation,
            None => {
                let mut reservation = Self::load_for_update(&mut tx, id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                return match reservation.row.status.as_str() {
                    COMMITTED => Ok(reservation),
                    PENDING => {
                        // Pending, so its TTL ran out.
                        let mut events = Vec::new();
                        Self::give_back(&mut tx, &mut events, &mut reservation, EXPIRED).await?;
                        Self::enqueue(&mut tx, &events).await?;
                        tx.commit().await?;
                        count_expired();
                        Err(StoreError::Conflict(
                            "the reservation expired before it was committed".into(),
                        ))
                    }
                    other => Err(StoreError::Conflict(format!(
                        "the reservation is {other}; it cannot be committed"
                    ))),
                };
            }
        };
        for (sku, quantity) in &reservation.lines {
            let after: StockRow = query(SELL)
                .bind(sku)
                .bind(*quantity)
                .bind(now)
                .fetch_optional(&mut tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            // A sale takes units that were reserved: what is available does not change, so it
            // publishes no `stock_changed` (its readers want the available level, which the
            // reservation published; the ledger line records the sale). One event fewer a
            // checkout, and one wake-up fewer of every reader of the feed.
            Self::ledger(&mut tx, &after, -quantity, "sale", "sale", Some(id)).await?;
        }
        tx.commit().await?;
        Ok(reservation)
    }

    async fn release(&self, id: &str, expired: bool) -> Result<Reservation, StoreError> {
        let mut tx = self.db.begin_write_named("release_reservation").await?;
        let mut reservation = Self::load_for_update(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        match reservation.row.status.as_str() {
            PENDING => {
                let mut events = Vec::new();
                Self::give_back(
                    &mut tx,
                    &mut events,
                    &mut reservation,
                    if expired { EXPIRED } else { RELEASED },
                )
                .await?;
                Self::enqueue(&mut tx, &events).await?;
                tx.commit().await?;
                if expired {
                    count_expired();
                }
                Ok(reservation)
            }
            RELEASED | EXPIRED => Ok(reservation),
            other => Err(StoreError::Conflict(format!(
                "the reservation is {other}; it cannot be released"
            ))),
        }
    }

    async fn give_back_sold(&self, id: &str) -> Result<Reservation, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let mut reservation = Self::load_for_update(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        match reservation.row.status.as_str() {
            RETURNED => return Ok(reservation),
            COMMITTED => {}
            other => {
                return Err(StoreError::Conflict(format!(
                    "the reservation is {other}; only committed stock can be returned"
                )))
            }
        }
        let mut events = Vec::new();
        for (sku, quantity) in &reservation.lines {
            let after: StockRow = query(RESTOCK)
                .bind(sku)
                .bind(*quantity)
                .bind(Utc::now())
                .fetch_optional(&mut tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            Self::record(
                &mut tx,
                &mut events,
                after.on_hand - after.reserved - quantity,
                &after,
                *quantity,
                "return",
                "returned",
                Some(id),
            )
            .await?;
        }
        query(SET_STATUS)
            .bind(id)
            .bind(RETURNED)
            .bind(Utc::now())
            .execute(&mut tx)
            .await?;
        reservation.row.status = RETURNED.into();
        Self::enqueue(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(reservation)
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = query(DUE).bind(now).fetch_all(&self.db).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn levels(&self, default_threshold: i64) -> Result<Levels, StoreError> {
        Ok(query(LEVELS)
            .bind(default_threshold)
            .fetch_one(&self.db)
            .await?)
    }

    async fn apply_product(
        &self,
        event: &Event,
        sku: &str,
        deleted: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        if tx.claim(crate::NAME, event).await? {
            let now = Utc::now();
            let sql = if deleted { DISCONTINUE } else { NEW_PRODUCT };
            let changed = query(sql).bind(sku).bind(now).execute(&mut tx).await?;
            // A new product's level is known: none. Said at once, so the catalog shows "out of
            // stock" rather than "availability not known yet" until the first delivery.
            if !deleted && changed == 1 {
                let row = StockRow {
                    sku: sku.to_owned(),
                    on_hand: 0,
                    reserved: 0,
                    low_stock_threshold: None,
                    discontinued: false,
                    updated_at: now,
                };
                Self::enqueue(&mut tx, &[stock_changed(&row)]).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
