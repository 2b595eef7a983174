//! The platform's event tables and all their SQL, on both databases.
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Event;
use crate::db::{query, Database, Tx};

const SQLITE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS agora_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    envelope TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agora_inbox (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS agora_cursors (
    consumer TEXT NOT NULL,
    producer TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (consumer, producer)
);
CREATE TABLE IF NOT EXISTS agora_dead_letters (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    position INTEGER,
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS agora_subject_positions (
    consumer TEXT NOT NULL,
    producer TEXT NOT NULL,
    subject TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (consumer, producer, subject)
);
CREATE TABLE IF NOT EXISTS agora_feed_readers (
    reader TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agora_outbox_pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    up_to INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agora_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
"#;

const POSTGRES_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS agora_outbox (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    envelope TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS agora_inbox (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS agora_cursors (
    consumer TEXT NOT NULL,
    producer TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (consumer, producer)
);
CREATE TABLE IF NOT EXISTS agora_dead_letters (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
ALTER TABLE agora_dead_letters ADD COLUMN IF NOT EXISTS position BIGINT;
CREATE TABLE IF NOT EXISTS agora_subject_positions (
    consumer TEXT NOT NULL,
    producer TEXT NOT NULL,
    subject TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (consumer, producer, subject)
);
CREATE TABLE IF NOT EXISTS agora_feed_readers (
    reader TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS agora_outbox_pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    up_to BIGINT NOT NULL
);
"#;

/// Creates the event tables if they are missing. Idempotent; every producer and consumer runs it at
/// start, after its own migrations.
pub async fn migrate(db: &Database) -> Result<(), sqlx::Error> {
    match db {
        Database::Sqlite(pool, _) => {
            sqlx::raw_sql(SQLITE_SCHEMA).execute(pool).await?;
            // Dead letters kept before they had a position gain the column (SQLite has no
            // `ADD COLUMN IF NOT EXISTS`).
            let (has_position,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM pragma_table_info('agora_dead_letters') WHERE name = 'position'",
            )
            .fetch_one(pool)
            .await?;
            if has_position == 0 {
                sqlx::query("ALTER TABLE agora_dead_letters ADD COLUMN position INTEGER")
                    .execute(pool)
                    .await?;
            }
        }
        Database::Postgres(pool) => {
            // Two services starting at once must not race on CREATE TABLE IF NOT EXISTS.
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(7140001)")
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(POSTGRES_SCHEMA).execute(&mut *tx).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

const INSERT_OUTBOX: &str = "INSERT INTO agora_outbox (id, event_type, subject, envelope, created_at) VALUES ($1, $2, $3, $4, $5)";
/// PostgreSQL: the transaction's id is taken (`pg_current_xact_id`, in a CTE evaluated before the
/// row's `seq` is drawn) before its `seq`, which [`read_after`] relies on to tell a gap that may
/// still fill from one that never will.
const INSERT_OUTBOX_PG: &str = "WITH x AS MATERIALIZED (SELECT pg_current_xact_id()) INSERT INTO agora_outbox (id, event_type, subject, envelope, created_at) SELECT $1, $2, $3, $4, $5 FROM x";

impl Tx {
    /// Writes `event` to the outbox inside this transaction.
    ///
    /// Call it after the transaction's last row write, just before commit. An entry's `seq` is
    /// drawn here, so two transactions changing one subject, which queue on that subject's row,
    /// draw theirs in the order they commit; readers follow `seq` and wait at a gap that a
    /// transaction still open may fill ([`read_after`]). Writers take no lock of their own: on
    /// PostgreSQL a lock held to the end of the transaction (as this did with an advisory lock
    /// and the `NOTIFY`, which takes one too) would hold every outbox writer of the database
    /// behind the one waiting for its commit to reach the disk, one flush per transaction
    /// instead of one for all that commit together (docs/performance.md, "Outbox writers no
    /// longer queue").
    ///
    /// The commit wakes the outbox's readers ([`super::wake`]): this process's once the commit has
    /// returned, and on PostgreSQL the other replicas' through a `NOTIFY` sent after it.
    pub async fn enqueue(&mut self, event: &Event) -> Result<(), sqlx::Error> {
        let postgres = matches!(self, Tx::Postgres(_));
        let insert = query(if postgres {
            INSERT_OUTBOX_PG
        } else {
            INSERT_OUTBOX
        })
        .bind(event.id.to_string())
        .bind(&event.event_type)
        .bind(&event.subject)
        .bind(envelope_json(event)?)
        .bind(event.time);
        // Nothing needs the insert's outcome before the commit: on SQLite it goes with it.
        self.execute_later(insert).await?;
        self.wake_outbox_on_commit();
        Ok(())
    }

    /// Records that `consumer` handled `event` inside this transaction. `false` means it was
    /// handled before: the caller applies nothing and commits.
    pub async fn claim(&mut self, consumer: &str, event: &Event) -> Result<bool, sqlx::Error> {
        let done = query(CLAIM)
            .bind(consumer)
            .bind(event.id.to_string())
            .bind(Utc::now())
            .execute(self)
            .await?;
        Ok(done == 1)
    }

    /// For a consumer that keeps the latest state of each subject: records, inside this
    /// transaction, that `consumer` has applied `event`'s subject up to `position` (its place in
    /// the producer's outbox, which along one subject follows commit order). `false` means a newer event of that
    /// subject was applied already: the caller applies nothing (an older state must not
    /// overwrite a newer one, whatever order the transport delivered them in). On PostgreSQL two
    /// replicas advancing one subject at once queue on its row, and the second sees what the
    /// first committed.
    pub async fn advance(
        &mut self,
        consumer: &str,
        event: &Event,
        position: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = query(ADVANCE)
            .bind(consumer)
            .bind(&event.source)
            .bind(&event.subject)
            .bind(position)
            .execute(self)
            .await?;
        Ok(done == 1)
    }
}

fn envelope_json(event: &Event) -> Result<String, sqlx::Error> {
    serde_json::to_string(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// One outbox entry as the feed serves it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedEntry {
    /// Position in the producer's outbox; pass the last one seen as `after`.
    pub position: i64,
    pub event: Event,
}

const READ_AFTER: &str =
    "SELECT seq, envelope FROM agora_outbox WHERE seq > $1 ORDER BY seq LIMIT $2";
/// PostgreSQL: the entries with the snapshot they were read in (the oldest transaction still
/// open, and the first not yet begun, as numbers).
const READ_AFTER_PG: &str = "WITH s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap) \
    SELECT seq, envelope, pg_snapshot_xmin(snap)::text::bigint, pg_snapshot_xmax(snap)::text::bigint \
    FROM agora_outbox, s WHERE seq > $1 ORDER BY seq LIMIT $2";

/// How long [`read_after`] waits, at most, for a gap in the outbox's positions to fill or to be
/// shown for good, and how often it looks again meanwhile.
const GAP_WAIT: Duration = Duration::from_millis(200);
const GAP_LOOK: Duration = Duration::from_millis(2);

/// Outbox entries after `position`, oldest first.
///
/// On PostgreSQL writers commit in any order, so positions can show a gap: a `seq` drawn by a
/// transaction still open, or by one that rolled back (a gap for good). Entries are returned up
/// to the first gap only, so that a reader never moves past an entry that commits later. A gap
/// right after `position` is waited on (up to [`GAP_WAIT`]): every transaction that drew a `seq`
/// below the highest one read had its id before that read's snapshot (the insert takes the id
/// first), so once the oldest transaction still open is younger than that snapshot, whatever is
/// still missing below that `seq` never comes and is passed over (at once when no transaction at
/// all was open at the read). Until then, or on a timeout, nothing is returned and the caller
/// reads again at its next wake-up.
pub async fn read_after(
    db: &Database,
    position: i64,
    limit: i64,
) -> Result<Vec<FeedEntry>, sqlx::Error> {
    if !matches!(db, Database::Postgres(_)) {
        let rows: Vec<(i64, String)> = query(READ_AFTER)
            .bind(position)
            .bind(limit)
            .fetch_all(db)
            .await?;
        return rows.into_iter().map(entry).collect();
    }
    let give_up = tokio::time::Instant::now() + GAP_WAIT;
    // The highest `seq` and the snapshot's first unbegun transaction of the read that first
    // found a gap right after `position`.
    let mut first_gap: Option<(i64, i64)> = None;
    loop {
        let rows: Vec<(i64, String, i64, i64)> = query(READ_AFTER_PG)
            .bind(position)
            .bind(limit)
            .fetch_all(db)
            .await?;
        let Some(&(_, _, oldest_open, first_unbegun)) = rows.first() else {
            return Ok(Vec::new());
        };
        let highest = rows.last().map_or(position, |r| r.0);
        let settled_up_to = match first_gap {
            // No transaction was open when this read began: what it does not see never comes.
            _ if oldest_open >= first_unbegun => highest,
            Some((highest, begun_before)) if oldest_open >= begun_before => highest,
            _ => position,
        };
        let kept = before_first_gap(position, settled_up_to, rows.iter().map(|r| r.0));
        if kept > 0 || tokio::time::Instant::now() >= give_up {
            return rows
                .into_iter()
                .take(kept)
                .map(|(seq, envelope, _, _)| entry((seq, envelope)))
                .collect();
        }
        if first_gap.is_none() {
            first_gap = Some((highest, first_unbegun));
        }
        tokio::time::sleep(GAP_LOOK).await;
    }
}

/// How many of `seqs` (ascending, all after `position`) come before the first gap: a `seq`
/// missing after `position` that may still commit. Any `seq` up to `settled_up_to` is known
/// not to be coming any more, so a gap below it is none.
fn before_first_gap(position: i64, settled_up_to: i64, seqs: impl Iterator<Item = i64>) -> usize {
    let mut last = position;
    let mut kept = 0;
    for seq in seqs {
        if seq != last + 1 && seq - 1 > settled_up_to {
            break;
        }
        last = seq;
        kept += 1;
    }
    kept
}

fn entry((seq, envelope): (i64, String)) -> Result<FeedEntry, sqlx::Error> {
    serde_json::from_str(&envelope)
        .map(|event| FeedEntry {
            position: seq,
            event,
        })
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

const CLAIM: &str = "INSERT INTO agora_inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

const ADVANCE: &str = "INSERT INTO agora_subject_positions (consumer, producer, subject, position) VALUES ($1, $2, $3, $4) ON CONFLICT (consumer, producer, subject) DO UPDATE SET position = excluded.position WHERE agora_subject_positions.position < excluded.position";

const READ_CURSOR: &str =
    "SELECT position FROM agora_cursors WHERE consumer = $1 AND producer = $2";
const WRITE_CURSOR: &str = "INSERT INTO agora_cursors (consumer, producer, position) VALUES ($1, $2, $3) ON CONFLICT (consumer, producer) DO UPDATE SET position = excluded.position";

/// Where `consumer` is in `producer`'s feed; 0 before the first event.
pub async fn cursor(db: &Database, consumer: &str, producer: &str) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> = query(READ_CURSOR)
        .bind(consumer)
        .bind(producer)
        .fetch_optional(db)
        .await?;
    Ok(row.map_or(0, |(p,)| p))
}

pub async fn set_cursor(
    db: &Database,
    consumer: &str,
    producer: &str,
    position: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    // On SQLite the BEGIN, the upsert and the COMMIT go as one call.
    tx.execute_later(
        query(WRITE_CURSOR)
            .bind(consumer)
            .bind(producer)
            .bind(position),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An event a consumer gave up on, kept for inspection and replay.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub consumer: String,
    pub event: Event,
    pub error: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    /// Its place in the producer's outbox, when the transport said.
    pub position: Option<i64>,
}

const INSERT_DEAD: &str = "INSERT INTO agora_dead_letters (consumer, event_id, envelope, error, attempts, created_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (consumer, event_id) DO UPDATE SET error = excluded.error, attempts = excluded.attempts";
const LIST_DEAD: &str = "SELECT consumer, envelope, error, attempts, created_at, position FROM agora_dead_letters WHERE consumer = $1 ORDER BY created_at, event_id";
const DELETE_DEAD: &str = "DELETE FROM agora_dead_letters WHERE consumer = $1 AND event_id = $2";

pub async fn add_dead_letter(
    db: &Database,
    consumer: &str,
    event: &Event,
    error: &str,
    attempts: i32,
    position: Option<i64>,
) -> Result<(), sqlx::Error> {
    let envelope = envelope_json(event)?;
    let mut tx = db.begin_write().await?;
    query(INSERT_DEAD)
        .bind(consumer)
        .bind(event.id.to_string())
        .bind(envelope)
        .bind(error)
        .bind(attempts)
        .bind(Utc::now())
        .bind(position)
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn dead_letters(db: &Database, consumer: &str) -> Result<Vec<DeadLetter>, sqlx::Error> {
    type Row = (String, String, String, i32, DateTime<Utc>, Option<i64>);
    let rows: Vec<Row> = query(LIST_DEAD).bind(consumer).fetch_all(db).await?;
    rows.into_iter()
        .map(
            |(consumer, envelope, error, attempts, created_at, position)| {
                let event = serde_json::from_str(&envelope)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                Ok(DeadLetter {
                    consumer,
                    event,
                    error,
                    attempts,
                    created_at,
                    position,
                })
            },
        )
        .collect()
}

/// Removes a dead letter (after a successful replay). `false` when there was none.
pub async fn remove_dead_letter(
    db: &Database,
    consumer: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let done = query(DELETE_DEAD)
        .bind(consumer)
        .bind(event_id)
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(done == 1)
}

const SAW_READER: &str = "INSERT INTO agora_feed_readers (reader, position, seen_at) VALUES ($1, $2, $3) ON CONFLICT (reader) DO UPDATE SET position = excluded.position, seen_at = excluded.seen_at";

/// Records where a reader of this producer's feed is (the `after` of its latest request), so that
/// pruning keeps what it has not read.
pub async fn saw_reader(db: &Database, reader: &str, position: i64) -> Result<(), sqlx::Error> {
    query(SAW_READER)
        .bind(reader)
        .bind(position)
        .bind(Utc::now())
        .execute(db)
        .await?;
    Ok(())
}

const BOUNDS: &str = "SELECT COALESCE((SELECT up_to FROM agora_outbox_pruned WHERE id = 1), 0), COALESCE((SELECT MAX(seq) FROM agora_outbox), 0)";

/// The last outbox position pruning has deleted (0 when none: a reader after an earlier position
/// has missed events) and the newest position (0 when the outbox is empty), in one read: the feed
/// asks for both on every poll.
pub async fn bounds(db: &Database) -> Result<(i64, i64), sqlx::Error> {
    query(BOUNDS).fetch_one(db).await
}

/// Deletes the outbox's oldest entries: those up to the newest one created before `before`, at or
/// below `up_to` (when given: what the RabbitMQ relay has published) and at or below every known
/// feed reader's position. What goes is always a prefix of the outbox, and the last position
/// deleted is kept, so that a reader who comes back from further behind is told of the gap.
/// Returns how many went.
pub async fn prune_outbox(
    db: &Database,
    before: DateTime<Utc>,
    up_to: Option<i64>,
) -> Result<u64, sqlx::Error> {
    // The slowest reader holds pruning back.
    const LAST: &str = "SELECT MAX(seq) FROM agora_outbox WHERE created_at < $1 AND seq <= $2 AND seq <= COALESCE((SELECT MIN(position) FROM agora_feed_readers), $2)";
    const DELETE: &str = "DELETE FROM agora_outbox WHERE seq <= $1";
    const MARK: &str = "INSERT INTO agora_outbox_pruned (id, up_to) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET up_to = excluded.up_to WHERE agora_outbox_pruned.up_to < excluded.up_to";
    let up_to = up_to.unwrap_or(i64::MAX);
    let mut tx = db.begin_write().await?;
    // SQLite keeps the time as RFC 3339 text, which sorts like the instant it names.
    let (last,): (Option<i64>,) = query(LAST)
        .bind(before)
        .bind(up_to)
        .fetch_one(&mut tx)
        .await?;
    let Some(last) = last else { return Ok(0) };
    let done = query(DELETE).bind(last).execute(&mut tx).await?;
    query(MARK).bind(last).execute(&mut tx).await?;
    tx.commit().await?;
    Ok(done)
}
