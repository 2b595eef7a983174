//! Payments storage: one trait, implemented once over either database (`platform::db`): every
//! statement is the same in both dialects; how a write transaction starts and how events are
//! written are the platform's.
//!
//! Every change of a payment is a compare-and-set on its status, so two actors settling the same
//! payment (a request, a repeat of it, the reconciliation worker, a webhook) apply it once.
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::db::{is_unique_violation, query, Database, Query};
use platform::events::Event;
use platform::service::Migrations;

use crate::domain::Status;

/// The service's schema per dialect, and the platform's event tables.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
    events: true,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub id: String,
    pub order_id: String,
    pub customer_id: String,
    pub amount: i64,
    pub currency: String,
    pub payment_method: String,
    pub status: String,
    pub intent_id: Option<String>,
    /// What a capture in progress asked for.
    pub capture_amount: Option<i64>,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    pub decline_code: Option<String>,
    pub decline_message: Option<String>,
    pub idempotency_key: String,
    pub request_hash: String,
    /// The answer to the request that created the payment, once it is final.
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    pub fn state(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Failed)
    }

    pub fn set_state(&mut self, status: Status) {
        self.status = status.as_str().to_owned();
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub idempotency_key: String,
    pub amount: i64,
    pub reason: Option<String>,
    /// pending, succeeded or failed.
    pub status: String,
    pub gateway_refund_id: Option<String>,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One line of the gateway audit log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GatewayCall {
    pub payment_id: String,
    pub operation: String,
    pub idempotency_key: String,
    /// [`PHASE_REQUEST`] (written before the call) or [`PHASE_RESPONSE`].
    pub phase: String,
    pub outcome: String,
    pub created_at: DateTime<Utc>,
}

/// The audit line written before a gateway call.
pub const PHASE_REQUEST: &str = "request";
/// The audit line written with the call's answer.
pub const PHASE_RESPONSE: &str = "response";

pub enum Created {
    New(Payment),
    /// A payment already exists for this idempotency key.
    Existing(Payment),
}

pub enum RefundBegun {
    New(Refund),
    /// The same idempotency key again: the refund it made.
    Existing(Refund),
    /// The payment has nothing captured to refund (its status).
    NotRefundable(String),
    /// More than what is left to refund.
    TooMuch {
        remaining: i64,
    },
}

pub const REFUND_PENDING: &str = "pending";
pub const REFUND_SUCCEEDED: &str = "succeeded";
pub const REFUND_FAILED: &str = "failed";

#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts a new payment with the audit line of the authorization it is about to make, in one
    /// transaction; neither when its idempotency key is taken.
    async fn create(&self, payment: &Payment, request: &GatewayCall)
        -> Result<Created, StoreError>;
    async fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError>;
    async fn by_order(&self, order_id: &str) -> Result<Vec<Payment>, StoreError>;
    async fn by_intent(&self, intent_id: &str) -> Result<Option<Payment>, StoreError>;
    /// Writes `next` if the stored status is still `from`, with its event; false when it was not.
    /// `call`, an audit line, goes in the same transaction: a `request` line (the call the change
    /// is about to make) only with the change, a `response` line (the answer the change records)
    /// whether or not the change applies, since the call was made either way.
    async fn transition(
        &self,
        from: Status,
        next: &Payment,
        event: Option<&Event>,
        call: Option<&GatewayCall>,
    ) -> Result<bool, StoreError>;
    /// Payments waiting for a gateway outcome, last touched before `before`.
    async fn unsettled(&self, before: DateTime<Utc>) -> Result<Vec<Payment>, StoreError>;
    /// Reserves a refund's amount against what was captured.
    async fn begin_refund(&self, refund: &Refund) -> Result<RefundBegun, StoreError>;
    /// Settles a pending refund (`refund.status` is the outcome); adds a success to the payment.
    async fn finish_refund(
        &self,
        refund: &Refund,
        event: Option<&Event>,
    ) -> Result<bool, StoreError>;
    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError>;
    async fn pending_refunds(&self, before: DateTime<Utc>) -> Result<Vec<Refund>, StoreError>;
    /// Writes one audit line on its own (a call whose answer changes no state).
    async fn audit(&self, call: &GatewayCall) -> Result<(), StoreError>;
    async fn gateway_calls(&self, payment_id: &str) -> Result<Vec<GatewayCall>, StoreError>;
    /// Remembers the id of a webhook event that changed something; false when it was known
    /// already.
    async fn record_webhook(&self, id: &str, kind: &str) -> Result<bool, StoreError>;
}

/// Connects to `url`, migrates it and opens the store (tests use a store on its own this way).
pub async fn connect(
    url: &str,
    max_connections: u32,
) -> anyhow::Result<(Arc<dyn Store>, Database)> {
    let db = platform::service::connect_url(url, max_connections, &MIGRATIONS).await?;
    Ok((open(db.clone()), db))
}

const PAYMENT_COLUMNS: &str = "id, order_id, customer_id, amount, currency, payment_method, status, intent_id, capture_amount, captured_amount, refunded_amount, decline_code, decline_message, idempotency_key, request_hash, response_status, response_body, created_at, updated_at";
const INSERT_PAYMENT: &str = "INSERT INTO payments (id, order_id, customer_id, amount, currency, payment_method, status, idempotency_key, request_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)";
const TRANSITION: &str = "UPDATE payments SET status = $2, intent_id = $3, capture_amount = $4, captured_amount = $5, decline_code = $6, decline_message = $7, response_status = $8, response_body = $9, updated_at = $10 WHERE id = $1 AND status = $11";
/// Takes the payment row's lock (PostgreSQL) so refunds of one payment are checked one at a time;
/// SQLite's write transactions are serial already.
const LOCK_PAYMENT: &str = "UPDATE payments SET updated_at = updated_at WHERE id = $1";
const REFUND_COLUMNS: &str = "id, payment_id, idempotency_key, amount, reason, status, gateway_refund_id, failure, created_at, updated_at";
const INSERT_REFUND: &str = "INSERT INTO refunds (id, payment_id, idempotency_key, amount, reason, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)";
/// The cast: PostgreSQL sums BIGINTs as NUMERIC.
const REFUNDS_HELD: &str = "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds WHERE payment_id = $1 AND status IN ('pending', 'succeeded')";
const FINISH_REFUND: &str = "UPDATE refunds SET status = $2, gateway_refund_id = $3, failure = $4, updated_at = $5 WHERE id = $1 AND status = 'pending'";
const ADD_REFUNDED: &str = "UPDATE payments SET refunded_amount = refunded_amount + $2, status = CASE WHEN refunded_amount + $2 = captured_amount THEN 'refunded' ELSE status END, updated_at = $3 WHERE id = $1";
const INSERT_CALL: &str = "INSERT INTO gateway_calls (payment_id, operation, idempotency_key, phase, outcome, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const CALLS: &str = "SELECT payment_id, operation, idempotency_key, phase, outcome, created_at FROM gateway_calls WHERE payment_id = $1 ORDER BY seq";
const INSERT_WEBHOOK: &str =
    "INSERT INTO webhook_events (id, type, received_at) VALUES ($1, $2, $3)";

/// The one store, over either database: every statement is the same in both dialects.
pub struct DbStore {
    db: Database,
}

/// The store over a connected, migrated database.
pub fn open(db: Database) -> Arc<dyn Store> {
    Arc::new(DbStore { db })
}

#[async_trait]
impl Store for DbStore {
    async fn create(&self, p: &Payment, request: &GatewayCall) -> Result<Created, StoreError> {
        let mut tx = self.db.begin_write_named("payment_create").await?;
        let inserted = query(INSERT_PAYMENT)
            .bind(&p.id)
            .bind(&p.order_id)
            .bind(&p.customer_id)
            .bind(p.amount)
            .bind(&p.currency)
            .bind(&p.payment_method)
            .bind(&p.status)
            .bind(&p.idempotency_key)
            .bind(&p.request_hash)
            .bind(p.created_at)
            .execute(&mut tx)
            .await;
        match inserted {
            Ok(_) => {
                // Nothing reads it back before the commit: it goes with it (`execute_later`).
                tx.execute_later(call_row(request)).await?;
                tx.commit().await?;
                Ok(Created::New(p.clone()))
            }
            Err(e) if is_unique_violation(&e) => {
                // The failed insert ends the transaction on PostgreSQL: read outside it.
                tx.rollback().await?;
                let existing = query(format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE idempotency_key = $1"
                ))
                .bind(&p.idempotency_key)
                .fetch_optional(&self.db)
                .await?
                .ok_or(StoreError::NotFound)?;
                Ok(Created::Existing(existing))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        Ok(query(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?)
    }

    async fn by_order(&self, order_id: &str) -> Result<Vec<Payment>, StoreError> {
        Ok(query(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY created_at, id"
        ))
        .bind(order_id)
        .fetch_all(&self.db)
        .await?)
    }

    async fn by_intent(&self, intent_id: &str) -> Result<Option<Payment>, StoreError> {
        Ok(query(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE intent_id = $1"
        ))
        .bind(intent_id)
        .fetch_optional(&self.db)
        .await?)
    }

    async fn transition(
        &self,
        from: Status,
        next: &Payment,
        event: Option<&Event>,
        call: Option<&GatewayCall>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write_named("payment_transition").await?;
        let changed = query(TRANSITION)
            .bind(&next.id)
            .bind(&next.status)
            .bind(&next.intent_id)
            .bind(next.capture_amount)
            .bind(next.captured_amount)
            .bind(&next.decline_code)
            .bind(&next.decline_message)
            .bind(next.response_status)
            .bind(&next.response_body)
            .bind(Utc::now())
            .bind(from.as_str())
            .execute(&mut tx)
            .await?
            == 1;
        let call = call.filter(|c| changed || c.phase == PHASE_RESPONSE);
        if !changed && call.is_none() {
            return Ok(false);
        }
        if let Some(call) = call {
            tx.execute_later(call_row(call)).await?;
        }
        if changed {
            if let Some(event) = event {
                tx.enqueue(event).await?;
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn unsettled(&self, before: DateTime<Utc>) -> Result<Vec<Payment>, StoreError> {
        Ok(query(format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE status IN ('pending', 'capture_pending', 'void_pending') AND updated_at < $1 ORDER BY updated_at LIMIT 100"
                ))
                .bind(before)
                .fetch_all(&self.db)
                .await?)
    }

    async fn begin_refund(&self, r: &Refund) -> Result<RefundBegun, StoreError> {
        let mut tx = self.db.begin_write().await?;
        query(LOCK_PAYMENT)
            .bind(&r.payment_id)
            .execute(&mut tx)
            .await?;
        let existing: Option<Refund> = query(format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 AND idempotency_key = $2"
        ))
        .bind(&r.payment_id)
        .bind(&r.idempotency_key)
        .fetch_optional(&mut tx)
        .await?;
        if let Some(existing) = existing {
            return Ok(RefundBegun::Existing(existing));
        }
        let payment: Payment = query(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
        ))
        .bind(&r.payment_id)
        .fetch_optional(&mut tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        if payment.state() != Status::Captured {
            return Ok(RefundBegun::NotRefundable(payment.status));
        }
        let (held,): (i64,) = query(REFUNDS_HELD)
            .bind(&r.payment_id)
            .fetch_one(&mut tx)
            .await?;
        let remaining = payment.captured_amount - held;
        if r.amount > remaining {
            return Ok(RefundBegun::TooMuch { remaining });
        }
        query(INSERT_REFUND)
            .bind(&r.id)
            .bind(&r.payment_id)
            .bind(&r.idempotency_key)
            .bind(r.amount)
            .bind(&r.reason)
            .bind(r.created_at)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(RefundBegun::New(r.clone()))
    }

    async fn finish_refund(&self, r: &Refund, event: Option<&Event>) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let now = Utc::now();
        let changed = query(FINISH_REFUND)
            .bind(&r.id)
            .bind(&r.status)
            .bind(&r.gateway_refund_id)
            .bind(&r.failure)
            .bind(now)
            .execute(&mut tx)
            .await?
            == 1;
        if !changed {
            return Ok(false);
        }
        if r.status == REFUND_SUCCEEDED {
            query(ADD_REFUNDED)
                .bind(&r.payment_id)
                .bind(r.amount)
                .bind(now)
                .execute(&mut tx)
                .await?;
        }
        if let Some(event) = event {
            tx.enqueue(event).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError> {
        Ok(query(format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"
        ))
        .bind(payment_id)
        .fetch_all(&self.db)
        .await?)
    }

    async fn pending_refunds(&self, before: DateTime<Utc>) -> Result<Vec<Refund>, StoreError> {
        Ok(query(format!(
                    "SELECT {REFUND_COLUMNS} FROM refunds WHERE status = 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT 100"
                ))
                .bind(before)
                .fetch_all(&self.db)
                .await?)
    }

    async fn audit(&self, c: &GatewayCall) -> Result<(), StoreError> {
        call_row(c).execute(&self.db).await?;
        Ok(())
    }

    async fn gateway_calls(&self, payment_id: &str) -> Result<Vec<GatewayCall>, StoreError> {
        Ok(query(CALLS).bind(payment_id).fetch_all(&self.db).await?)
    }

    async fn record_webhook(&self, id: &str, kind: &str) -> Result<bool, StoreError> {
        match query(INSERT_WEBHOOK)
            .bind(id)
            .bind(kind)
            .bind(Utc::now())
            .execute(&self.db)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// The row that records a call to the gateway: a request about to go, or its answer.
fn call_row(c: &GatewayCall) -> Query {
    query(INSERT_CALL)
        .bind(&c.payment_id)
        .bind(&c.operation)
        .bind(&c.idempotency_key)
        .bind(&c.phase)
        .bind(&c.outcome)
        .bind(c.created_at)
}
