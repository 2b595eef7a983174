//! The orders service's one error type and how each case answers.
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
            ApiError::Store(StoreError::NotFound) => Problem::not_found("No such order."),
            ApiError::Store(StoreError::Database(e)) => platform::db::problem(&e),
        };
        problem.into_response()
    }
}
