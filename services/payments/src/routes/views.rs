//! What payments answer: a payment and its refunds, without anything card-like.
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::{Payment, Refund};

#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    pub id: String,
    pub order_id: String,
    pub customer_id: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    /// pending, authorized, declined, failed, capture_pending, captured, void_pending, voided or
    /// refunded.
    pub status: String,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id.clone(),
            order_id: p.order_id.clone(),
            customer_id: p.customer_id.clone(),
            amount: p.amount,
            currency: p.currency.clone(),
            status: p.status.clone(),
            captured_amount: p.captured_amount,
            refunded_amount: p.refunded_amount,
            decline_code: p.decline_code.clone(),
            decline_message: p.decline_message.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RefundView {
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// pending, succeeded or failed.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        Self {
            id: r.id.clone(),
            payment_id: r.payment_id.clone(),
            amount: r.amount,
            reason: r.reason.clone(),
            status: r.status.clone(),
            failure: r.failure.clone(),
            created_at: r.created_at,
        }
    }
}
