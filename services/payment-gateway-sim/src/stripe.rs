//! Stripe's wire format: the objects this simulator answers with and its error object. Field names,
//! status names, codes and messages follow Stripe's, so that a client written against this
//! simulator is a client written against Stripe.
use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;

/// The API version stamped on events.
pub const API_VERSION: &str = "2024-06-20";

/// Stripe's ids: a prefix (`pi`, `ch`, `re`, `evt`), `_`, then 24 random alphanumerics.
pub fn new_id(prefix: &str) -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}_{suffix}")
}

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    Automatic,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresCapture,
    Succeeded,
    Canceled,
}

impl IntentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresConfirmation => "requires_confirmation",
            Self::RequiresCapture => "requires_capture",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::RequiresPaymentMethod,
            Self::RequiresConfirmation,
            Self::RequiresCapture,
            Self::Succeeded,
            Self::Canceled,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// A PaymentIntent, with the fields of Stripe's that this simulator keeps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentIntent {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub canceled_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub capture_method: CaptureMethod,
    pub confirmation_method: &'static str,
    pub created: i64,
    pub currency: String,
    pub description: Option<String>,
    pub last_payment_error: Option<ErrorObject>,
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<&'static str>,
    pub status: IntentStatus,
}

/// The charge behind an intent: one per confirmation attempt, failed or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charge {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub captured: bool,
    pub created: i64,
    pub currency: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub paid: bool,
    pub payment_intent: String,
    pub payment_method: Option<String>,
    pub refunded: bool,
    /// `succeeded` or `failed`.
    pub status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refund {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub charge: String,
    pub created: i64,
    pub currency: String,
    pub metadata: Metadata,
    pub payment_intent: String,
    pub reason: Option<String>,
    pub status: &'static str,
}

/// What a webhook delivers. `data.object` is a snapshot of the intent or charge at the time.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    pub object: &'static str,
    pub api_version: &'static str,
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
    pub pending_webhooks: u32,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

impl Event {
    pub fn new(kind: &'static str, object: &impl Serialize, created: i64) -> Self {
        Self {
            id: new_id("evt"),
            object: "event",
            api_version: API_VERSION,
            created,
            data: EventData {
                object: serde_json::to_value(object).unwrap_or_default(),
            },
            livemode: false,
            pending_webhooks: 1,
            kind,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    ApiError,
    CardError,
    IdempotencyError,
    InvalidRequestError,
}

/// Stripe's error object: the body of every error answer (under `error`), and an intent's
/// `last_payment_error`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorObject {
    #[serde(rename = "type")]
    pub kind: ErrorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<Box<PaymentIntent>>,
}

impl ErrorObject {
    fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            decline_code: None,
            message: message.into(),
            param: None,
            charge: None,
            payment_method: None,
            payment_intent: None,
        }
    }
}

/// An error answer: a status and Stripe's error object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: ErrorObject,
    /// False for requests refused before they started executing (bad parameters): Stripe does
    /// not keep those under an idempotency key, so a corrected retry with the same key may run.
    pub saved: bool,
}

/// Marks a response the idempotency layer must not keep (see [`ApiError::saved`]).
#[derive(Debug, Clone, Copy)]
pub struct NotSaved;

impl ApiError {
    fn new(status: StatusCode, error: ErrorObject) -> Self {
        Self {
            status,
            error,
            saved: true,
        }
    }

    /// 400 for a bad parameter.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        let mut error = ErrorObject::new(ErrorType::InvalidRequestError, message);
        error.param = Some(param.to_owned());
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// 400 for a bad parameter, with a code.
    pub fn invalid_code(param: &str, code: &str, message: impl Into<String>) -> Self {
        let mut e = Self::invalid(param, message);
        e.error.code = Some(code.to_owned());
        e
    }

    /// 400 without a parameter to blame (a malformed body, say).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorObject::new(ErrorType::InvalidRequestError, message),
        )
    }

    /// 400 `resource_missing`: a parameter names an object that does not exist.
    pub fn missing_param(param: &str, object: &str, id: &str) -> Self {
        Self::invalid_code(
            param,
            "resource_missing",
            format!("No such {object}: '{id}'"),
        )
    }

    /// 404 `resource_missing`: the URL names an object that does not exist.
    pub fn not_found(param: &str, object: &str, id: &str) -> Self {
        let mut e = Self::missing_param(param, object, id);
        e.status = StatusCode::NOT_FOUND;
        e
    }

    /// 404 for a URL this API does not have, in Stripe's words.
    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorObject::new(
                ErrorType::InvalidRequestError,
                format!("Unrecognized request URL ({method}: {path})."),
            ),
        )
    }

    /// 400 `payment_intent_unexpected_state`, carrying the intent as it is.
    pub fn unexpected_state(intent: &PaymentIntent, message: String) -> Self {
        let mut error = ErrorObject::new(ErrorType::InvalidRequestError, message);
        error.code = Some("payment_intent_unexpected_state".into());
        error.payment_intent = Some(Box::new(intent.clone()));
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// 402: the card was declined. The body carries the intent, which exists and stays unpaid.
    pub fn card_error(last_payment_error: &ErrorObject, intent: &PaymentIntent) -> Self {
        let mut error = last_payment_error.clone();
        error.payment_intent = Some(Box::new(intent.clone()));
        Self::new(StatusCode::PAYMENT_REQUIRED, error)
    }

    /// 401: no or the wrong API key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorObject::new(ErrorType::InvalidRequestError, message),
        )
    }

    /// 400 or 409 `idempotency_error`.
    pub fn idempotency(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(
            status,
            ErrorObject::new(ErrorType::IdempotencyError, message),
        )
    }

    /// 500/503 `api_error`: something went wrong on the gateway's side.
    pub fn server_error(status: StatusCode) -> Self {
        Self::new(
            status,
            ErrorObject::new(
                ErrorType::ApiError,
                "An unknown error occurred while processing your request. Please try again later.",
            ),
        )
    }

    /// Marks the error as a refusal before execution (see [`ApiError::saved`]).
    pub fn not_saved(mut self) -> Self {
        self.saved = false;
        self
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a ErrorObject,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, json(&ErrorBody { error: &self.error })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"Stripe\""),
            );
        }
        if !self.saved {
            response.extensions_mut().insert(NotSaved);
        }
        response
    }
}

/// A JSON answer, pretty-printed as Stripe's are.
pub fn json(value: &impl Serialize) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_prefix_and_24_alphanumerics() {
        let id = new_id("pi");
        let suffix = id.strip_prefix("pi_").unwrap();
        assert_eq!(suffix.len(), 24);
        assert!(suffix.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(new_id("pi"), new_id("pi"));
    }

    #[test]
    fn an_error_leaves_out_what_it_does_not_have() {
        let e = ApiError::invalid("amount", "Invalid integer: x");
        let body = serde_json::to_value(ErrorBody { error: &e.error }).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "type": "invalid_request_error",
                "message": "Invalid integer: x",
                "param": "amount"
            }})
        );
    }
}
