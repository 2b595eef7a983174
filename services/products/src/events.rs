//! What the catalog publishes and consumes.
//!
//! Out (through the outbox, in the transaction of the change): `agora.products.product_created.v1`,
//! `product_updated`, `price_changed`, `product_deleted`, each with
//! `{"id", "sku", "name", "price", "category", "version"}`.
//! In: inventory's `agora.inventory.stock_changed.v1` (`{"sku", "available", ...}`) into each
//! product's `availability`; a level older (by inventory's outbox position) than one already
//! applied is ignored.
use std::sync::Arc;

use async_trait::async_trait;
use platform::events::{Event, EventHandler, HandlerError};

use crate::storage::{Availability, Store};

pub const STOCK_CHANGED: &str = "agora.inventory.stock_changed.v1";

pub struct InventoryEvents {
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl EventHandler for InventoryEvents {
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[STOCK_CHANGED])
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.handle_at(event, None).await
    }

    /// A level is the SKU's whole state: of a hot SKU's levels in one page, the newest is enough.
    fn latest_state(&self, event_type: &str) -> bool {
        event_type == STOCK_CHANGED
    }

    /// The position keeps the latest level per SKU when deliveries come out of order.
    async fn handle_at(&self, event: &Event, position: Option<i64>) -> Result<(), HandlerError> {
        let (Some(sku), Some(available)) =
            (event.data["sku"].as_str(), event.data["available"].as_i64())
        else {
            return Err(HandlerError::Permanent(
                "stock_changed without sku or available".into(),
            ));
        };
        self.store
            .apply_availability(
                event,
                &Availability {
                    sku: sku.to_owned(),
                    available,
                    position,
                },
            )
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))
    }
}
