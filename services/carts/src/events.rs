//! What carts publishes and consumes.
//!
//! Out (outbox, in the transaction of the change): `agora.carts.cart_checked_out.v1`
//! `{"cart_id", "user_id", "order_id", "lines": [{"product_id", "sku", "quantity", "unit_price",
//! "currency"}]}` when the order placed from the cart is confirmed; `cart_abandoned` `{"cart_id",
//! "user_id", "lines", "idle_since"}` once for an open cart with lines left unchanged for
//! `abandon_after_seconds` (for a notifications service).
//!
//! In: the catalog projection every read prices lines from — products' `product_created`,
//! `product_updated`, `price_changed` and `product_deleted` (`{"id", "sku", "name", "price",
//! "version"}`; an older version than the one kept is ignored) and inventory's `stock_changed`
//! (`{"sku", "available"}`; an older level by inventory's outbox position is ignored); and orders'
//! `order_confirmed` with a `cart_id`, which checks the cart out. A failed payment publishes no
//! `order_confirmed`, so the cart stays open for another try.
use std::sync::Arc;

use async_trait::async_trait;
use platform::events::{Event, EventHandler, HandlerError};

use crate::domain::Money;
use crate::storage::{CatalogEntry, Store};

/// What carts follow: the catalog's product events (names, prices, deletions), stock levels, and
/// confirmed orders (a cart checked out).
const WANTED: [&str; 6] = [
    "agora.products.product_created.v1",
    "agora.products.product_updated.v1",
    "agora.products.price_changed.v1",
    DELETED,
    STOCK_CHANGED,
    ORDER_CONFIRMED,
];
const DELETED: &str = "agora.products.product_deleted.v1";
const STOCK_CHANGED: &str = "agora.inventory.stock_changed.v1";
const ORDER_CONFIRMED: &str = "agora.orders.order_confirmed.v1";

pub struct Reactions {
    pub store: Arc<dyn Store>,
}

fn permanent(what: &str) -> HandlerError {
    HandlerError::Permanent(format!("{what} without the fields carts needs"))
}

#[async_trait]
impl EventHandler for Reactions {
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&WANTED)
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.handle_at(event, None).await
    }

    /// A level is the SKU's whole state: of a hot SKU's levels in one page, the newest is enough.
    fn latest_state(&self, event_type: &str) -> bool {
        event_type == STOCK_CHANGED
    }

    async fn handle_at(&self, event: &Event, position: Option<i64>) -> Result<(), HandlerError> {
        let d = &event.data;
        let applied = match event.event_type.as_str() {
            STOCK_CHANGED => {
                let (Some(sku), Some(available)) = (d["sku"].as_str(), d["available"].as_i64())
                else {
                    return Err(permanent("stock_changed"));
                };
                self.store
                    .apply_stock(event, sku, available, position)
                    .await
            }
            ORDER_CONFIRMED => {
                let Some(order_id) = d["order_id"].as_str() else {
                    return Err(permanent("order_confirmed"));
                };
                // An order placed from explicit lines concerns no cart.
                let Some(cart_id) = d["cart_id"].as_str() else {
                    return Ok(());
                };
                self.store.apply_checkout(event, cart_id, order_id).await
            }
            _ => {
                let entry = match (
                    d["id"].as_str(),
                    d["sku"].as_str(),
                    d["name"].as_str(),
                    d["price"]["amount"].as_i64(),
                    d["price"]["currency"].as_str(),
                    d["version"].as_i64(),
                ) {
                    (
                        Some(id),
                        Some(sku),
                        Some(name),
                        Some(amount),
                        Some(currency),
                        Some(version),
                    ) => CatalogEntry {
                        product_id: id.to_owned(),
                        sku: sku.to_owned(),
                        name: name.to_owned(),
                        price: Money {
                            amount,
                            currency: currency.to_owned(),
                        },
                        deleted: event.event_type == DELETED,
                        version,
                    },
                    _ => return Err(permanent("a product event")),
                };
                self.store.apply_product(event, &entry).await
            }
        };
        applied.map_err(|e| HandlerError::Retryable(e.to_string()))
    }
}
