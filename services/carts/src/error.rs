//! The carts service's one error type and how each case answers.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::error::{FieldError, Problem};

use crate::domain::{MAX_LINES, MAX_QUANTITY};
use crate::storage::{Refusal, StoreError};

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

/// The one answer for a cart the caller may not see, whether or not it exists.
pub fn no_such_cart() -> ApiError {
    Problem::not_found("No such cart.").into()
}

fn refusal(refusal: Refusal) -> Problem {
    match refusal {
        Refusal::UnknownProduct => Problem::validation(vec![FieldError::new(
            "product_id",
            "no such product is for sale",
        )]),
        Refusal::TooMany { have } => Problem::validation(vec![FieldError::new(
            "quantity",
            format!("the line holds {have}; a line holds at most {MAX_QUANTITY}"),
        )]),
        Refusal::SoldOut => Problem::new(StatusCode::CONFLICT, "sold-out", "Sold out")
            .detail("The product has no stock; nothing was added."),
        Refusal::Full => Problem::new(StatusCode::CONFLICT, "cart-full", "Cart full").detail(
            format!("A cart holds at most {MAX_LINES} lines; nothing was added."),
        ),
        Refusal::Currency { cart, product } => Problem::validation(vec![FieldError::new(
            "product_id",
            format!("the product is priced in {product}; this cart is in {cart}"),
        )]),
        Refusal::NotOpen(status) => {
            Problem::new(StatusCode::CONFLICT, "cart-not-open", "Cart not open")
                .detail(format!("The cart is {status}; it cannot change."))
        }
        Refusal::NoSuchLine => Problem::not_found("The cart has no line for that product."),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            ApiError::Problem(problem) => problem,
            ApiError::Store(StoreError::NotFound) => Problem::not_found("No such cart."),
            ApiError::Store(StoreError::Refused(r)) => refusal(r),
            ApiError::Store(StoreError::Database(e)) => platform::db::problem(&e),
        };
        problem.into_response()
    }
}
