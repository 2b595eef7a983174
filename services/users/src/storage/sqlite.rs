//! The SQLite store: the shared statements, with every write transaction taking the write lock
//! at once (`BEGIN IMMEDIATE`) so concurrent writers queue instead of failing busy.
use async_trait::async_trait;
use chrono::Utc;
use platform::db::is_unique_violation;

use super::*;

pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    pub fn new(pool: sqlx::SqlitePool) -> Self {
        Self { pool }
    }
}

backend!(SqliteStore, platform::db::sqlite_write);
