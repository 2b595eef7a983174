//! The PostgreSQL store: the shared statements in ordinary transactions.
use async_trait::async_trait;
use chrono::Utc;
use platform::db::is_unique_violation;

use super::*;

pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }
}

backend!(PostgresStore, sqlx::PgPool::begin);
