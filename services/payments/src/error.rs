//! The payments service's one error type and how each case answers. A gateway failure is never a
//! 500: it is 503 when nothing happened, 504 when the outcome is unknown (the payment stays
//! pending and is settled by reconciliation), 502 when the gateway refused us.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::error::Problem;

use crate::clients::GatewayError;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("problem")]
    Problem(Problem),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
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
            ApiError::Store(StoreError::NotFound) => Problem::not_found("No such payment."),
            ApiError::Store(StoreError::Database(e)) => platform::db::problem(&e),
            ApiError::Gateway(e) => {
                tracing::warn!(error = %e, "payment gateway call failed");
                match e {
                    GatewayError::Unavailable(_) => Problem::unavailable(
                        "The payment gateway is unavailable; nothing was charged. Try again shortly.",
                    )
                    .retry_after(2),
                    GatewayError::Unknown(_) => Problem::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "gateway-timeout",
                        "Payment gateway outcome unknown",
                    )
                    .detail("The payment gateway did not answer in time. The payment is pending and will be settled; repeating the request with the same Idempotency-Key is safe."),
                    other => Problem::new(
                        StatusCode::BAD_GATEWAY,
                        "gateway-error",
                        "Payment gateway error",
                    )
                    .detail(other.to_string()),
                }
            }
        };
        problem.into_response()
    }
}
