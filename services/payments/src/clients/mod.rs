//! The external payment gateway, as payments needs it. [`stripe::StripeGateway`] is the
//! implementation: it talks Stripe's PaymentIntents API, to Stripe itself or to the simulator.
//!
//! Every call that changes something carries an idempotency key derived from Agora's own ids, so
//! that repeating a call whose outcome is unknown is always safe: the gateway applies it once and
//! answers the repeat with the first answer.
use std::collections::HashMap;

use async_trait::async_trait;
use serde::Deserialize;

pub mod stripe;

/// A PaymentIntent, reduced to what payments reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Intent {
    pub id: String,
    /// `requires_capture`, `succeeded`, `canceled`, `requires_payment_method`, ...
    pub status: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_received: i64,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    #[serde(default)]
    pub last_payment_error: Option<CardError>,
}

/// Why a card was declined, in the gateway's words.
#[derive(Debug, Clone, Deserialize)]
pub struct CardError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl CardError {
    /// The most specific reason the gateway gave.
    pub fn reason(&self) -> String {
        self.decline_code
            .clone()
            .or_else(|| self.code.clone())
            .unwrap_or_else(|| "card_declined".into())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct GatewayRefund {
    pub id: String,
    pub amount: i64,
    pub status: String,
}

/// What to authorize.
#[derive(Debug, Clone)]
pub struct Authorization<'a> {
    pub payment_id: &'a str,
    pub order_id: &'a str,
    pub amount: i64,
    /// ISO 4217, upper case.
    pub currency: &'a str,
    pub payment_method: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The card was declined; the intent exists and stays unpaid.
    #[error("declined: {}", .0.reason())]
    Declined(CardError),
    /// The intent is not in a state that allows the call (already captured, canceled, ...).
    #[error("unexpected state: {0}")]
    UnexpectedState(String),
    /// The gateway refused the request as invalid: it had no effect.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Nothing was sent, or the gateway said it did nothing: safe to try again later.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
    /// The call may or may not have taken effect (timeout, lost answer, 5xx).
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Creates and confirms a manual-capture intent: `requires_capture` when authorized.
    async fn authorize(
        &self,
        request: &Authorization<'_>,
        key: &str,
    ) -> Result<Intent, GatewayError>;
    async fn capture(
        &self,
        intent_id: &str,
        amount: i64,
        key: &str,
    ) -> Result<Intent, GatewayError>;
    async fn cancel(&self, intent_id: &str, key: &str) -> Result<Intent, GatewayError>;
    async fn refund(
        &self,
        intent_id: &str,
        amount: i64,
        key: &str,
        refund_id: &str,
    ) -> Result<GatewayRefund, GatewayError>;
    async fn intent(&self, intent_id: &str) -> Result<Intent, GatewayError>;
    /// The intent made for one of our payments, found by its metadata.
    async fn find(&self, payment_id: &str) -> Result<Option<Intent>, GatewayError>;
}
