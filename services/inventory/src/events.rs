//! What inventory publishes and consumes.
//!
//! Out (outbox, in the transaction of the change): `agora.inventory.stock_changed.v1`
//! `{"sku", "on_hand", "reserved", "available"}` when what is available changes (a sale takes
//! units already reserved and publishes none; the ledger records it), `low_stock` `{"sku", "available", "threshold"}`,
//! `reservation_expired` `{"reservation_id", "items": [{"sku", "quantity"}]}`.
//! In: products' `product_created` (a stock row at 0) and `product_deleted` (the SKU is
//! discontinued: no new reservations).
use std::sync::Arc;

use async_trait::async_trait;
use platform::events::{Event, EventHandler, HandlerError};

use crate::storage::Store;

const CREATED: &str = "agora.products.product_created.v1";
const DELETED: &str = "agora.products.product_deleted.v1";

pub struct ProductEvents {
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl EventHandler for ProductEvents {
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[CREATED, DELETED])
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let Some(sku) = event.data["sku"].as_str() else {
            return Err(HandlerError::Permanent(
                "a product event without a sku".into(),
            ));
        };
        self.store
            .apply_product(event, sku, event.event_type == DELETED)
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))
    }
}
