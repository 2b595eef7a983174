//! The users service's one error type and how each case answers.
use axum::response::{IntoResponse, Response};
use platform::error::{FieldError, Problem};

use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("problem")]
    Problem(Problem),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
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
            ApiError::Store(StoreError::Taken(field)) => {
                Problem::conflict(format!("That {field} is already taken."))
                    .errors(vec![FieldError::new(field, "is already taken")])
            }
            ApiError::Store(StoreError::NotFound) => Problem::not_found("No such resource."),
            ApiError::Store(StoreError::Database(e)) => platform::db::problem(&e),
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                Problem::internal()
            }
        };
        problem.into_response()
    }
}
