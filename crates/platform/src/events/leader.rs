//! One leader among a service's replicas for a piece of event work (the relay of its outbox, the
//! consumer of a producer's feed): replicas share the service's database, so the lock lives there.
//!
//! * PostgreSQL: a session advisory lock held by a connection of its own, outside the pool; it goes
//!   when that session ends, however the process ends.
//! * SQLite (replicas share the file): a lease row renewed while held. A replica that dies keeps
//!   it until it expires ([`LEASE`]), then another takes over.
//!
//! A leader checks it still leads ([`Leadership::confirm`]) before each batch of work, so two
//! leaders can overlap only for a lost session or an expired lease, and then at-least-once
//! delivery and the consumers' inbox make the overlap harmless.
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection, PgConnection, SqlitePool};

use crate::db::Database;
use crate::shutdown::Shutdown;

/// How long a SQLite lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often a replica that does not lead tries again.
const RETRY: Duration = Duration::from_secs(1);

/// Held leadership of one name; released on [`Leadership::release`] (or when the process ends).
pub struct Leadership {
    held: Held,
}

enum Held {
    Postgres(PgConnection),
    Sqlite {
        pool: SqlitePool,
        name: String,
        owner: String,
        renewed: Instant,
    },
}

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(7140003, hashtext($1))";
const CLAIM_LEASE: &str = "INSERT INTO agora_leases (name, owner, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at WHERE agora_leases.owner = excluded.owner OR agora_leases.expires_at < $4";
const RENEW_LEASE: &str = "UPDATE agora_leases SET expires_at = $3 WHERE name = $1 AND owner = $2";
const DROP_LEASE: &str = "DELETE FROM agora_leases WHERE name = $1 AND owner = $2";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_ms() -> i64 {
    i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX)
}

/// Leadership of `name` when no one else holds it; `None` when someone does.
pub async fn try_acquire(db: &Database, name: &str) -> Result<Option<Leadership>, sqlx::Error> {
    match db {
        Database::Postgres(pool) => {
            let mut connection = pool.connect_options().connect().await?;
            let (locked,): (bool,) = sqlx::query_as(TRY_LOCK)
                .bind(name)
                .fetch_one(&mut connection)
                .await?;
            if locked {
                Ok(Some(Leadership {
                    held: Held::Postgres(connection),
                }))
            } else {
                connection.close().await?;
                Ok(None)
            }
        }
        Database::Sqlite(pool, _) => {
            let owner = uuid::Uuid::now_v7().to_string();
            let now = now_ms();
            let claimed = sqlx::query(CLAIM_LEASE)
                .bind(name)
                .bind(&owner)
                .bind(now.saturating_add(lease_ms()))
                .bind(now)
                .execute(pool)
                .await?;
            Ok((claimed.rows_affected() == 1).then(|| Leadership {
                held: Held::Sqlite {
                    pool: pool.clone(),
                    name: name.to_owned(),
                    owner,
                    renewed: Instant::now(),
                },
            }))
        }
    }
}

/// Waits until this replica leads `name`; `None` when `shutdown` comes first.
pub async fn acquire(db: &Database, name: &str, shutdown: &mut Shutdown) -> Option<Leadership> {
    let mut waiting = false;
    loop {
        match try_acquire(db, name).await {
            Ok(Some(leadership)) => {
                tracing::info!(name, "leading");
                return Some(leadership);
            }
            Ok(None) if !waiting => {
                tracing::info!(name, "another replica leads; standing by");
                waiting = true;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(name, error = %e, "taking the lead failed; retrying"),
        }
        tokio::select! {
            _ = &mut *shutdown => return None,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

impl Leadership {
    /// `true` while this replica still leads: the PostgreSQL session is alive, or the SQLite lease
    /// is renewed (written only once a third of it has gone).
    pub async fn confirm(&mut self) -> bool {
        match &mut self.held {
            Held::Postgres(connection) => connection.ping().await.is_ok(),
            Held::Sqlite {
                pool,
                name,
                owner,
                renewed,
            } => {
                if renewed.elapsed() < LEASE / 3 {
                    return true;
                }
                let started = Instant::now();
                let renewal = sqlx::query(RENEW_LEASE)
                    .bind(&*name)
                    .bind(&*owner)
                    .bind(now_ms().saturating_add(lease_ms()))
                    .execute(&*pool)
                    .await;
                match renewal {
                    Ok(done) if done.rows_affected() == 1 => {
                        *renewed = started;
                        true
                    }
                    Ok(_) => false,
                    // Still ours until it expires; renewal is tried again next time.
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing a lease failed");
                        renewed.elapsed() < LEASE
                    }
                }
            }
        }
    }

    /// Gives the lead up at once, so that another replica need not wait for the lease to expire.
    pub async fn release(self) {
        let released = match self.held {
            Held::Postgres(connection) => connection.close().await,
            Held::Sqlite {
                pool, name, owner, ..
            } => sqlx::query(DROP_LEASE)
                .bind(name)
                .bind(owner)
                .execute(&pool)
                .await
                .map(|_| ()),
        };
        if let Err(e) = released {
            tracing::warn!(error = %e, "releasing the lead failed; it lapses by itself");
        }
    }
}
