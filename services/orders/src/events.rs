//! What orders publishes and what it reacts to.
//!
//! Out (outbox, with the state change): `agora.orders.order_placed.v1`, `order_confirmed`,
//! `order_rejected` (also for payment_failed; see `status`), `order_cancelled`, `order_shipped`,
//! `order_delivered`, each `{"order_id", "user_id", "status", "total_amount", "currency", "lines",
//! "note"}`.
//!
//! In: what tells orders something it did not wait for —
//! * inventory's `reservation_expired` for an order still being placed: its saga is woken at once
//!   (its commit will find the hold gone and compensate);
//! * payments' `payment_voided` for a confirmed order (voided at the gateway, so it can never be
//!   captured): the order is cancelled, its stock returned;
//! * payments' `payment_refunded` that orders did not ask for (made at the gateway): a line in the
//!   order's history.
use std::sync::Arc;

use async_trait::async_trait;
use platform::events::{Event, EventHandler, HandlerError};

use crate::storage::{Reaction, Store};

const EXPIRED: &str = "agora.inventory.reservation_expired.v1";
const VOIDED: &str = "agora.payments.payment_voided.v1";
const REFUNDED: &str = "agora.payments.payment_refunded.v1";

pub struct Reactions {
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl EventHandler for Reactions {
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[EXPIRED, VOIDED, REFUNDED])
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let key = if event.event_type == EXPIRED {
            "reservation_id"
        } else {
            "order_id"
        };
        let Some(order_id) = event.data[key].as_str() else {
            return Err(HandlerError::Permanent(format!("an event without {key}")));
        };
        let reaction = match event.event_type.as_str() {
            EXPIRED => Reaction::Wake,
            VOIDED => Reaction::CancelConfirmed,
            _ => Reaction::Note(format!(
                "{} refunded at the payment gateway",
                event.data["refund_amount"].as_i64().unwrap_or_default()
            )),
        };
        self.store
            .react(event, order_id, reaction)
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))
    }
}
