//! The inventory service's one error type and how each case answers.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::error::Problem;

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("problem")]
    Problem(Problem),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            ApiError::Problem(problem) => problem,
            ApiError::Store(StoreError::NotFound) => Problem::not_found("No such resource."),
            ApiError::Store(StoreError::Conflict(detail)) => Problem::conflict(detail),
            ApiError::Store(StoreError::Database(e)) if is_contention(&e) => {
                tracing::warn!(error = %e, "a write lost a race with another; answered 409");
                Problem::new(
                    StatusCode::CONFLICT,
                    "concurrent-update",
                    "Concurrent update",
                )
                .detail("Another change to the same stock ran at the same moment; nothing was changed. Retry the request.")
                .extension("retryable", true)
                .retry_after(1)
            }
            ApiError::Store(StoreError::Database(e)) => platform::db::problem(&e),
            ApiError::Store(StoreError::Stopped(_)) => {
                Problem::unavailable("The service is stopping; retry the request.")
            }
        };
        problem.into_response()
    }
}

/// A transaction that lost a race and changed nothing: PostgreSQL's serialization failure,
/// deadlock and lock-not-available, SQLite's busy and locked (a write lock held past the busy
/// timeout). The same request can succeed when retried, so it is the client's 409, not our 500.
fn is_contention(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes keep the primary code in the low byte.
        const SQLITE_BUSY: i32 = 5;
        const SQLITE_LOCKED: i32 = 6;
        return code
            .parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED));
    }
    matches!(&*code, "40001" | "40P01" | "55P03")
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection, Executor};

    use super::*;

    /// Status, `Retry-After` and body of the answer to a database error.
    async fn answer(error: sqlx::Error) -> (u16, Option<String>, serde_json::Value) {
        let response = ApiError::from(StoreError::Database(error)).into_response();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    fn assert_retryable_conflict(
        (status, retry_after, body): (u16, Option<String>, serde_json::Value),
    ) {
        assert_eq!(status, 409, "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["type"], "https://agora.dev/problems/concurrent-update");
        assert_eq!(body["retryable"], true);
    }

    #[tokio::test]
    async fn a_sqlite_write_lock_held_elsewhere_is_a_retryable_409() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite://{}",
            dir.path().join("busy.db").display()
        ))
        .unwrap()
        .create_if_missing(true)
        .busy_timeout(std::time::Duration::ZERO);
        let mut holder = options.connect().await.unwrap();
        let mut other = options.connect().await.unwrap();
        holder.execute("BEGIN IMMEDIATE").await.unwrap();
        let busy = other.execute("BEGIN IMMEDIATE").await.unwrap_err();
        assert_retryable_conflict(answer(busy).await);
    }

    async fn lock(tx: &mut sqlx::PgConnection, key: i64) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(tx)
            .await
            .map(drop)
    }

    #[tokio::test]
    async fn a_postgres_deadlock_is_a_retryable_409() {
        let Some(db) = testkit::TestDatabase::postgres().await else {
            return;
        };
        let options = sqlx::postgres::PgConnectOptions::from_str(&db.url).unwrap();
        let mut first = options.connect().await.unwrap();
        let mut second = options.connect().await.unwrap();
        let mut a = first.begin().await.unwrap();
        let mut b = second.begin().await.unwrap();
        lock(&mut a, 1).await.unwrap();
        lock(&mut b, 2).await.unwrap();
        // Each waits for the other's lock: PostgreSQL aborts one of them with 40P01.
        let (x, y) = tokio::join!(lock(&mut a, 2), lock(&mut b, 1));
        let deadlock = match (x, y) {
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
            other => panic!("expected one deadlock: {other:?}"),
        };
        assert_retryable_conflict(answer(deadlock).await);
    }
}
