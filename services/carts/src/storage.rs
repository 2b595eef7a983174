//! Carts storage: one trait, implemented once over either database (`platform::db`): every
//! statement is the same in both dialects; how a write transaction starts and how events are
//! written are the platform's.
//!
//! Every write to a cart first updates the cart's row (`TOUCH`), which on PostgreSQL row-locks it:
//! two writes to one cart run one after the other, so the line count, the sum of units and the
//! currency each checks are still true when it writes. SQLite's write transactions are serial.
//!
//! Events go to the outbox after the transaction's last row write (see
//! `platform::db::Tx::enqueue`).
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::db::{is_unique_violation, query, Database, Tx};
use platform::events::Event;
use platform::service::Migrations;
use serde_json::json;

use crate::domain::{Money, Product, MAX_LINES, MAX_QUANTITY};

/// The service's schema per dialect, and the platform's event tables.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
    events: true,
};

pub const OPEN: &str = "open";
pub const CHECKED_OUT: &str = "checked_out";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Why a change to a cart was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The catalog has no such product, or it was deleted.
    UnknownProduct,
    SoldOut,
    /// The line would hold more than 99 units; it holds `have`.
    TooMany {
        have: i64,
    },
    /// The cart has 100 lines already.
    Full,
    /// The product is priced in another currency than the cart's lines.
    Currency {
        cart: String,
        product: String,
    },
    /// The cart is checked out.
    NotOpen(String),
    NoSuchLine,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CartRow {
    pub id: String,
    pub user_id: Option<String>,
    pub secret_hash: Option<String>,
    pub status: String,
    pub order_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// A line with its product as the projection knows it (`None`s: the catalog never told us).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LineRow {
    pub product_id: String,
    pub quantity: i64,
    pub seen_price: i64,
    pub seen_currency: String,
    pub added_at: DateTime<Utc>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub price_amount: Option<i64>,
    pub currency: Option<String>,
    pub deleted: Option<bool>,
    pub available: Option<i64>,
}

impl LineRow {
    pub fn seen(&self) -> Money {
        Money {
            amount: self.seen_price,
            currency: self.seen_currency.clone(),
        }
    }

    pub fn product(&self) -> Option<Product> {
        Some(Product {
            sku: self.sku.clone()?,
            name: self.name.clone()?,
            price: Money {
                amount: self.price_amount?,
                currency: self.currency.clone()?,
            },
            deleted: self.deleted.unwrap_or(false),
            available: self.available,
        })
    }

    fn summary(&self) -> serde_json::Value {
        json!({"product_id": self.product_id, "sku": self.sku, "quantity": self.quantity,
            "unit_price": self.price_amount, "currency": self.currency})
    }
}

#[derive(Debug, Clone)]
pub struct Cart {
    pub row: CartRow,
    pub lines: Vec<LineRow>,
}

/// What a merge or an acknowledgement did to a line besides the obvious.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Note {
    pub product_id: String,
    pub note: String,
}

/// How `put_line` changes a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Adds units (creating the line).
    Add,
    /// Sets the units of an existing line.
    Set,
}

/// The catalog's view of a product, from a products event.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub price: Money,
    pub deleted: bool,
    pub version: i64,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn create_guest(&self, id: &str, secret_hash: &str) -> Result<Cart, StoreError>;
    /// The user's open cart, created when there is none; `true` when it was created.
    async fn user_cart(&self, user_id: &str) -> Result<(Cart, bool), StoreError>;
    async fn cart(&self, id: &str) -> Result<Option<Cart>, StoreError>;
    /// Records a use of the cart (for the guest expiry); at most one write per `every`.
    async fn touch(&self, id: &str, every: chrono::Duration) -> Result<(), StoreError>;
    async fn put_line(
        &self,
        cart_id: &str,
        product_id: &str,
        quantity: i64,
        put: Put,
    ) -> Result<Cart, StoreError>;
    async fn remove_line(&self, cart_id: &str, product_id: &str) -> Result<Cart, StoreError>;
    /// Accepts the catalog's current prices and removes lines that cannot be bought.
    async fn acknowledge(&self, cart_id: &str) -> Result<(Cart, Vec<Note>), StoreError>;
    /// Moves a guest cart's lines into the user's open cart and deletes the guest cart.
    async fn merge(&self, guest_id: &str, user_id: &str) -> Result<(Cart, Vec<Note>), StoreError>;
    /// Applies a products event once, unless a newer version of the product is known.
    async fn apply_product(&self, event: &Event, entry: &CatalogEntry) -> Result<(), StoreError>;
    /// Applies a stock level once, unless a newer one (by the producer's `position`) was applied.
    async fn apply_stock(
        &self,
        event: &Event,
        sku: &str,
        available: i64,
        position: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Applies orders' `order_confirmed` for a cart once: an open cart is checked out.
    async fn apply_checkout(
        &self,
        event: &Event,
        cart_id: &str,
        order_id: &str,
    ) -> Result<(), StoreError>;
    /// Publishes `cart_abandoned` for open carts with lines unchanged since `idle_before`.
    async fn abandon_idle(&self, idle_before: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Deletes guest carts unused since `unused_before`.
    async fn expire_guests(&self, unused_before: DateTime<Utc>) -> Result<usize, StoreError>;
}

/// Connects to `url`, migrates it and opens the store (tests use a store on its own this way).
pub async fn connect(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<(Arc<dyn Store>, Database)> {
    let db = platform::service::connect_url(url, max_connections, &MIGRATIONS).await?;
    Ok((open(db.clone()), db))
}

const CART: &str = "SELECT id, user_id, secret_hash, status, order_id, created_at, updated_at, last_used_at FROM carts WHERE id = $1";
const USER_CART: &str = "SELECT id FROM carts WHERE user_id = $1 AND status = 'open'";
const INSERT_CART: &str = "INSERT INTO carts (id, user_id, secret_hash, status, created_at, updated_at, last_used_at) VALUES ($1, $2, $3, 'open', $4, $4, $4)";
const LINES: &str = "SELECT l.product_id, l.quantity, l.seen_price, l.seen_currency, l.added_at, c.sku, c.name, c.price_amount, c.currency, c.deleted, s.available FROM cart_lines l LEFT JOIN catalog c ON c.product_id = l.product_id LEFT JOIN stock_levels s ON s.sku = c.sku WHERE l.cart_id = $1 ORDER BY l.added_at, l.product_id";
/// A change to an open cart: locks its row (on PostgreSQL) and marks it used and changed, which
/// also makes its contents new for the abandonment notice.
const TOUCH: &str = "UPDATE carts SET updated_at = $2, last_used_at = $2, abandoned_at = NULL WHERE id = $1 AND status = 'open'";
const USED: &str = "UPDATE carts SET last_used_at = $2 WHERE id = $1 AND last_used_at < $3";
const PRODUCT: &str = "SELECT c.price_amount, c.currency, c.deleted, s.available FROM catalog c LEFT JOIN stock_levels s ON s.sku = c.sku WHERE c.product_id = $1";
const LINE_QUANTITY: &str =
    "SELECT quantity FROM cart_lines WHERE cart_id = $1 AND product_id = $2";
const COUNT_LINES: &str = "SELECT COUNT(*) FROM cart_lines WHERE cart_id = $1";
const CART_CURRENCY: &str =
    "SELECT seen_currency FROM cart_lines WHERE cart_id = $1 ORDER BY added_at LIMIT 1";
const INSERT_LINE: &str = "INSERT INTO cart_lines (cart_id, product_id, quantity, seen_price, seen_currency, added_at) VALUES ($1, $2, $3, $4, $5, $6)";
const SET_QUANTITY: &str =
    "UPDATE cart_lines SET quantity = $3 WHERE cart_id = $1 AND product_id = $2";
const SEEN: &str = "UPDATE cart_lines SET seen_price = $3, seen_currency = $4 WHERE cart_id = $1 AND product_id = $2";
const DELETE_LINE: &str = "DELETE FROM cart_lines WHERE cart_id = $1 AND product_id = $2";
const DELETE_LINES: &str = "DELETE FROM cart_lines WHERE cart_id = $1";
const DELETE_CART: &str = "DELETE FROM carts WHERE id = $1";
const UPSERT_PRODUCT: &str = "INSERT INTO catalog (product_id, sku, name, price_amount, currency, deleted, version) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (product_id) DO UPDATE SET sku = excluded.sku, name = excluded.name, price_amount = excluded.price_amount, currency = excluded.currency, deleted = excluded.deleted, version = excluded.version WHERE catalog.version < excluded.version OR (excluded.deleted AND NOT catalog.deleted AND catalog.version <= excluded.version)";
const UPSERT_STOCK: &str = "INSERT INTO stock_levels (sku, available) VALUES ($1, $2) ON CONFLICT (sku) DO UPDATE SET available = excluded.available";
const CHECK_OUT: &str = "UPDATE carts SET status = 'checked_out', order_id = $2, updated_at = $3 WHERE id = $1 AND status = 'open'";
const IDLE: &str = "SELECT id FROM carts WHERE status = 'open' AND abandoned_at IS NULL AND updated_at < $1 AND EXISTS (SELECT 1 FROM cart_lines WHERE cart_id = carts.id) ORDER BY updated_at LIMIT 100";
const ABANDON: &str = "UPDATE carts SET abandoned_at = $2 WHERE id = $1 AND status = 'open' AND abandoned_at IS NULL AND updated_at < $3";
const UNUSED_GUESTS: &str =
    "SELECT id FROM carts WHERE user_id IS NULL AND last_used_at < $1 ORDER BY last_used_at LIMIT 100";
const DELETE_UNUSED_LINES: &str = "DELETE FROM cart_lines WHERE cart_id = $1 AND EXISTS (SELECT 1 FROM carts WHERE id = $1 AND user_id IS NULL AND last_used_at < $2)";
const DELETE_UNUSED: &str =
    "DELETE FROM carts WHERE id = $1 AND user_id IS NULL AND last_used_at < $2";

#[derive(sqlx::FromRow)]
struct ProductRow {
    price_amount: i64,
    currency: String,
    deleted: bool,
    available: Option<i64>,
}

fn cart_event(name: &str, cart: &Cart, extra: serde_json::Value) -> Event {
    let mut data = json!({
        "cart_id": cart.row.id,
        "user_id": cart.row.user_id,
        "lines": cart.lines.iter().map(LineRow::summary).collect::<Vec<_>>(),
    });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    Event::new(crate::NAME, name, cart.row.id.clone(), data)
}

/// The one store, over either database: every statement is the same in both dialects.
pub struct DbStore {
    db: Database,
}

/// The store over a connected, migrated database.
pub fn open(db: Database) -> Arc<dyn Store> {
    Arc::new(DbStore { db })
}

impl DbStore {
    async fn load(tx: &mut Tx, id: &str) -> Result<Option<Cart>, sqlx::Error> {
        let row: Option<CartRow> = query(CART).bind(id).fetch_optional(&mut *tx).await?;
        let Some(row) = row else { return Ok(None) };
        let lines: Vec<LineRow> = query(LINES).bind(id).fetch_all(&mut *tx).await?;
        Ok(Some(Cart { row, lines }))
    }

    /// Locks an open cart for a change (see `TOUCH`); a cart that is not open is refused.
    async fn lock_open(tx: &mut Tx, id: &str) -> Result<(), StoreError> {
        let done = query(TOUCH)
            .bind(id)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        if done == 1 {
            return Ok(());
        }
        let row: Option<CartRow> = query(CART).bind(id).fetch_optional(&mut *tx).await?;
        match row {
            Some(row) => Err(StoreError::Refused(Refusal::NotOpen(row.status))),
            None => Err(StoreError::NotFound),
        }
    }

    async fn loaded(tx: &mut Tx, id: &str) -> Result<Cart, StoreError> {
        Self::load(tx, id).await?.ok_or(StoreError::NotFound)
    }

    /// A cart read on its own (a plain transaction: its row and its lines read together).
    async fn read(&self, id: &str) -> Result<Option<Cart>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        Self::load(&mut tx, id).await
    }
}

#[async_trait]
impl Store for DbStore {
    async fn create_guest(&self, id: &str, secret_hash: &str) -> Result<Cart, StoreError> {
        let mut tx = self.db.begin_write().await?;
        query(INSERT_CART)
            .bind(id)
            .bind(None::<String>)
            .bind(secret_hash)
            .bind(Utc::now())
            .execute(&mut tx)
            .await?;
        let cart = Self::loaded(&mut tx, id).await?;
        tx.commit().await?;
        Ok(cart)
    }

    async fn user_cart(&self, user_id: &str) -> Result<(Cart, bool), StoreError> {
        let found: Option<(String,)> = query(USER_CART)
            .bind(user_id)
            .fetch_optional(&self.db)
            .await?;
        if let Some((id,)) = found {
            return Ok((self.read(&id).await?.ok_or(StoreError::NotFound)?, false));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = query(INSERT_CART)
            .bind(&id)
            .bind(user_id)
            .bind(None::<String>)
            .bind(Utc::now())
            .execute(&self.db)
            .await;
        let (id, created) = match inserted {
            Ok(_) => (id, true),
            // Created by a concurrent request of the same user: that one is the cart.
            Err(e) if is_unique_violation(&e) => {
                let (id,): (String,) = query(USER_CART).bind(user_id).fetch_one(&self.db).await?;
                (id, false)
            }
            Err(e) => return Err(e.into()),
        };
        Ok((self.read(&id).await?.ok_or(StoreError::NotFound)?, created))
    }

    async fn cart(&self, id: &str) -> Result<Option<Cart>, StoreError> {
        Ok(self.read(id).await?)
    }

    async fn touch(&self, id: &str, every: chrono::Duration) -> Result<(), StoreError> {
        let now = Utc::now();
        query(USED)
            .bind(id)
            .bind(now)
            .bind(now - every)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn put_line(
        &self,
        cart_id: &str,
        product_id: &str,
        quantity: i64,
        put: Put,
    ) -> Result<Cart, StoreError> {
        let mut tx = self.db.begin_write().await?;
        Self::lock_open(&mut tx, cart_id).await?;
        let have: Option<(i64,)> = query(LINE_QUANTITY)
            .bind(cart_id)
            .bind(product_id)
            .fetch_optional(&mut tx)
            .await?;
        match (put, have) {
            (Put::Set, None) => return Err(StoreError::Refused(Refusal::NoSuchLine)),
            (Put::Set, Some(_)) => {
                query(SET_QUANTITY)
                    .bind(cart_id)
                    .bind(product_id)
                    .bind(quantity)
                    .execute(&mut tx)
                    .await?;
            }
            (Put::Add, have) => {
                let product: Option<ProductRow> = query(PRODUCT)
                    .bind(product_id)
                    .fetch_optional(&mut tx)
                    .await?;
                let product = match product {
                    Some(p) if !p.deleted => p,
                    _ => return Err(StoreError::Refused(Refusal::UnknownProduct)),
                };
                if product.available.is_some_and(|a| a <= 0) {
                    return Err(StoreError::Refused(Refusal::SoldOut));
                }
                match have {
                    Some((have,)) if have + quantity > MAX_QUANTITY => {
                        return Err(StoreError::Refused(Refusal::TooMany { have }));
                    }
                    Some((have,)) => {
                        query(SET_QUANTITY)
                            .bind(cart_id)
                            .bind(product_id)
                            .bind(have + quantity)
                            .execute(&mut tx)
                            .await?;
                    }
                    None => {
                        let (count,): (i64,) =
                            query(COUNT_LINES).bind(cart_id).fetch_one(&mut tx).await?;
                        if count >= MAX_LINES {
                            return Err(StoreError::Refused(Refusal::Full));
                        }
                        let currency: Option<(String,)> = query(CART_CURRENCY)
                            .bind(cart_id)
                            .fetch_optional(&mut tx)
                            .await?;
                        if let Some((cart,)) = currency.filter(|(c,)| *c != product.currency) {
                            return Err(StoreError::Refused(Refusal::Currency {
                                cart,
                                product: product.currency,
                            }));
                        }
                        query(INSERT_LINE)
                            .bind(cart_id)
                            .bind(product_id)
                            .bind(quantity)
                            .bind(product.price_amount)
                            .bind(&product.currency)
                            .bind(Utc::now())
                            .execute(&mut tx)
                            .await?;
                    }
                }
            }
        }
        let cart = Self::loaded(&mut tx, cart_id).await?;
        tx.commit().await?;
        Ok(cart)
    }

    async fn remove_line(&self, cart_id: &str, product_id: &str) -> Result<Cart, StoreError> {
        let mut tx = self.db.begin_write().await?;
        Self::lock_open(&mut tx, cart_id).await?;
        let done = query(DELETE_LINE)
            .bind(cart_id)
            .bind(product_id)
            .execute(&mut tx)
            .await?;
        if done == 0 {
            return Err(StoreError::Refused(Refusal::NoSuchLine));
        }
        let cart = Self::loaded(&mut tx, cart_id).await?;
        tx.commit().await?;
        Ok(cart)
    }

    async fn acknowledge(&self, cart_id: &str) -> Result<(Cart, Vec<Note>), StoreError> {
        let mut tx = self.db.begin_write().await?;
        Self::lock_open(&mut tx, cart_id).await?;
        let mut notes = Vec::new();
        for line in Self::loaded(&mut tx, cart_id).await?.lines {
            let removed = match line.product() {
                Some(p) if p.deleted => Some("removed: the product is discontinued"),
                None => Some("removed: the product is discontinued"),
                Some(p) if p.available.is_some_and(|a| a <= 0) => Some("removed: sold out"),
                Some(p) => {
                    if p.price != line.seen() {
                        query(SEEN)
                            .bind(cart_id)
                            .bind(&line.product_id)
                            .bind(p.price.amount)
                            .bind(&p.price.currency)
                            .execute(&mut tx)
                            .await?;
                        notes.push(Note {
                            product_id: line.product_id.clone(),
                            note: format!(
                                "price accepted: {} {} (was {} {})",
                                p.price.amount,
                                p.price.currency,
                                line.seen_price,
                                line.seen_currency
                            ),
                        });
                    }
                    None
                }
            };
            if let Some(note) = removed {
                query(DELETE_LINE)
                    .bind(cart_id)
                    .bind(&line.product_id)
                    .execute(&mut tx)
                    .await?;
                notes.push(Note {
                    product_id: line.product_id.clone(),
                    note: note.into(),
                });
            }
        }
        let cart = Self::loaded(&mut tx, cart_id).await?;
        tx.commit().await?;
        Ok((cart, notes))
    }

    async fn merge(&self, guest_id: &str, user_id: &str) -> Result<(Cart, Vec<Note>), StoreError> {
        // The user's cart exists before the transaction (its creation handles a race).
        let (target, _) = self.user_cart(user_id).await?;
        let target_id = target.row.id;
        let mut tx = self.db.begin_write().await?;
        // Both carts locked in one order, so two merges never wait on each other.
        let mut ids = [guest_id, target_id.as_str()];
        ids.sort_unstable();
        for id in ids {
            Self::lock_open(&mut tx, id).await?;
        }
        let guest = Self::loaded(&mut tx, guest_id).await?;
        if guest.row.user_id.is_some() {
            return Err(StoreError::NotFound);
        }
        let mine = Self::loaded(&mut tx, &target_id).await?;
        let mut count = i64::try_from(mine.lines.len()).unwrap_or(MAX_LINES);
        let mut currency = mine.lines.first().map(|l| l.seen_currency.clone());
        let mut notes = Vec::new();
        let mut note = |product_id: &str, note: String| {
            notes.push(Note {
                product_id: product_id.to_owned(),
                note,
            })
        };
        for line in &guest.lines {
            if line.product().is_none_or(|p| p.deleted) {
                note(
                    &line.product_id,
                    "dropped: the product is discontinued".into(),
                );
                continue;
            }
            if let Some(existing) = mine.lines.iter().find(|l| l.product_id == line.product_id) {
                let sum = existing.quantity + line.quantity;
                if sum > MAX_QUANTITY {
                    note(
                        &line.product_id,
                        format!("{sum} units capped at {MAX_QUANTITY}"),
                    );
                }
                query(SET_QUANTITY)
                    .bind(&target_id)
                    .bind(&line.product_id)
                    .bind(sum.min(MAX_QUANTITY))
                    .execute(&mut tx)
                    .await?;
                continue;
            }
            if count >= MAX_LINES {
                note(
                    &line.product_id,
                    format!("dropped: the cart holds {MAX_LINES} lines already"),
                );
                continue;
            }
            if currency.as_ref().is_some_and(|c| *c != line.seen_currency) {
                note(
                    &line.product_id,
                    "dropped: priced in another currency than the cart".into(),
                );
                continue;
            }
            // The price the guest saw goes along: a change since still shows as a flag.
            query(INSERT_LINE)
                .bind(&target_id)
                .bind(&line.product_id)
                .bind(line.quantity)
                .bind(line.seen_price)
                .bind(&line.seen_currency)
                .bind(line.added_at)
                .execute(&mut tx)
                .await?;
            count += 1;
            currency.get_or_insert_with(|| line.seen_currency.clone());
        }
        query(DELETE_LINES).bind(guest_id).execute(&mut tx).await?;
        query(DELETE_CART).bind(guest_id).execute(&mut tx).await?;
        let cart = Self::loaded(&mut tx, &target_id).await?;
        tx.commit().await?;
        Ok((cart, notes))
    }

    async fn apply_product(&self, event: &Event, e: &CatalogEntry) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        if tx.claim(crate::NAME, event).await? {
            query(UPSERT_PRODUCT)
                .bind(&e.product_id)
                .bind(&e.sku)
                .bind(&e.name)
                .bind(e.price.amount)
                .bind(&e.price.currency)
                .bind(e.deleted)
                .bind(e.version)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn apply_stock(
        &self,
        event: &Event,
        sku: &str,
        available: i64,
        position: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        // A SKU's latest level wins, whatever order the transport delivered levels in. With the
        // event's position, the SKU's position alone decides, and a redelivery is not newer than
        // itself, so the inbox claim (one more statement and kept row) is only for an event
        // without one, as in products.
        let apply = match position {
            Some(position) => tx.advance(crate::NAME, event, position).await?,
            None => tx.claim(crate::NAME, event).await?,
        };
        if apply {
            // Nothing reads it back: on SQLite it goes with the COMMIT, one call fewer a level.
            tx.execute_later(query(UPSERT_STOCK).bind(sku).bind(available))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn apply_checkout(
        &self,
        event: &Event,
        cart_id: &str,
        order_id: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        if tx.claim(crate::NAME, event).await? {
            let done = query(CHECK_OUT)
                .bind(cart_id)
                .bind(order_id)
                .bind(Utc::now())
                .execute(&mut tx)
                .await?;
            if done == 1 {
                let cart = Self::loaded(&mut tx, cart_id).await?;
                tx.enqueue(&cart_event(
                    "cart_checked_out",
                    &cart,
                    json!({"order_id": order_id}),
                ))
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn abandon_idle(&self, idle_before: DateTime<Utc>) -> Result<usize, StoreError> {
        let ids: Vec<(String,)> = query(IDLE).bind(idle_before).fetch_all(&self.db).await?;
        let mut announced = 0;
        for (id,) in ids {
            let mut tx = self.db.begin_write().await?;
            // Conditional: a change since the look, or another replica's worker, wins.
            let done = query(ABANDON)
                .bind(&id)
                .bind(Utc::now())
                .bind(idle_before)
                .execute(&mut tx)
                .await?;
            if done == 1 {
                let cart = Self::loaded(&mut tx, &id).await?;
                tx.enqueue(&cart_event(
                    "cart_abandoned",
                    &cart,
                    json!({"idle_since": cart.row.updated_at}),
                ))
                .await?;
                announced += 1;
            }
            tx.commit().await?;
        }
        Ok(announced)
    }

    async fn expire_guests(&self, unused_before: DateTime<Utc>) -> Result<usize, StoreError> {
        let ids: Vec<(String,)> = query(UNUSED_GUESTS)
            .bind(unused_before)
            .fetch_all(&self.db)
            .await?;
        let mut expired = 0;
        for (id,) in ids {
            let mut tx = self.db.begin_write().await?;
            query(DELETE_UNUSED_LINES)
                .bind(&id)
                .bind(unused_before)
                .execute(&mut tx)
                .await?;
            let done = query(DELETE_UNUSED)
                .bind(&id)
                .bind(unused_before)
                .execute(&mut tx)
                .await?;
            expired += usize::try_from(done).unwrap_or(0);
            tx.commit().await?;
        }
        Ok(expired)
    }
}
