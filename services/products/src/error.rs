//! The catalog's one error type and how each case answers.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::error::{FieldError, Problem};

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("problem")]
    Problem(Problem),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            ApiError::NotFound(what) => Problem::not_found(format!("No such {what}.")),
            ApiError::Problem(problem) => problem,
            ApiError::Store(StoreError::NotFound) => Problem::not_found("No such resource."),
            ApiError::Store(StoreError::Conflict(detail)) => Problem::conflict(detail),
            ApiError::Store(StoreError::Invalid { field, message }) => {
                Problem::validation(vec![FieldError::new(field, message)])
            }
            ApiError::Store(StoreError::VersionMismatch) => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "stale-version",
                "Precondition failed",
            )
            .detail(
                "The product changed since you read it; read it again and retry with its new ETag.",
            ),
            ApiError::Store(StoreError::Database(e)) => platform::db::problem(&e),
        };
        problem.into_response()
    }
}
