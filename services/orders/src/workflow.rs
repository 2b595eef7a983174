//! The checkout saga, orchestrated by orders and persisted after every step:
//!
//! ```text
//! reserve ──ok──▶ authorize ──ok──▶ commit ──ok──▶ confirmed
//!    │ short          │ declined        │ reservation gone
//!    ▼                ▼                 ▼
//! rejected       compensate ──▶ payment_failed / rejected / cancelled
//! ```
//!
//! Each step calls one service with a key derived from the order id, so running a step twice
//! (after a crash, or by the request and the recovery worker at once) has the effect of running it
//! once; moving to the next step is a compare-and-set. A service that cannot be reached is retried
//! with backoff; past the saga's deadline the saga compensates instead (except `commit` and the
//! compensation itself, which hold money and stock and so are retried until they succeed).
//!
//! One worker at a time runs an order's saga: it claims a lease on the order (the request that
//! placed it, which writes the lease with the order, or a recovery worker of any instance),
//! renews it while a step runs, and moves the
//! saga on only while it holds it. A worker that dies stops renewing; once its lease expires the
//! recovery worker of any instance takes the saga over.
//!
//! Fencing (issue 12): every write a worker makes checks, in the same statement, that it still
//! holds the lease, that the order is still at the step it read, and in the status that step
//! belongs to; a worker whose write or renewal fails has lost the order and reads it again (under
//! a fresh claim) before it does anything more. The undo's calls that give money or stock back
//! (void, refund, release, return) are each sent right after renewing the lease at the undo's
//! step, so they come only from the lease holder of an order still being undone, never from a
//! worker that stalled past its lease and was overtaken.
//!
//! A worker keeps the order it holds in memory and applies its own writes to it (each write is
//! one statement, or one transaction when it adds a status, history line and event): the order
//! is read once per claim, not once per step.
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::events::Event;
use platform::telemetry::TraceContext;
use serde_json::json;
use tracing::Instrument;

use crate::clients::{Authorize, Clients, Reserve, Transient};
use crate::domain::{Status, Step};
use crate::storage::{self, Change, Order, Store, StoreError};

pub struct Saga {
    pub store: Arc<dyn Store>,
    pub clients: Clients,
    pub reservation_ttl_seconds: i64,
    pub lease: Duration,
}

/// What a step came to.
enum Next {
    /// This worker moved the order on; the order in memory is what it wrote.
    Moved,
    /// Someone else moved the order first (its write's compare-and-set failed): read it again.
    Overtaken,
    /// The lease was lost, or the order left the step meanwhile (a renewal failed): read it again
    /// under a fresh claim, if there is one to take.
    LeaseLost,
    /// Not now: try again later, for this reason.
    Later(String),
}

impl Saga {
    /// Runs the order's saga as far as it can go now, unless another worker holds its lease;
    /// the order as the saga left it when the saga ended in this run. Its calls, events and logs
    /// carry the request id and trace of the request running it or, for the recovery worker, of
    /// the request that placed the order.
    pub async fn advance(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.start(id, None).await
    }

    /// A new lease on an order's saga, from now: the owner and until when. The request that
    /// places an order writes it with the order ([`crate::storage::Store::place`]) and hands it
    /// to [`Saga::run`].
    pub fn new_lease(&self) -> (String, DateTime<Utc>) {
        (
            uuid::Uuid::new_v4().to_string(),
            self.lease_from(storage::now()),
        )
    }

    /// [`Saga::advance`] for an order this process has just placed under the lease of `owner`
    /// ([`Saga::new_lease`]): it is in hand, not read again, and not claimed again (were it
    /// changed or the lease taken meanwhile, the first write's compare-and-set says so).
    pub async fn run(&self, placed: Order, owner: String) -> Result<Option<Order>, StoreError> {
        let id = placed.row.id.clone();
        self.start(&id, Some((placed, owner))).await
    }

    async fn start(
        &self,
        id: &str,
        placed: Option<(Order, String)>,
    ) -> Result<Option<Order>, StoreError> {
        let (context, remote) = match TraceContext::current() {
            Some(context) => (context, None),
            None => {
                let order = match &placed {
                    Some((order, _)) => Some(order.clone()),
                    None => self.store.order(id).await?,
                };
                match order {
                    Some(order) => (
                        TraceContext::continuing(
                            order.row.request_id.as_deref(),
                            order.row.traceparent.as_deref(),
                        ),
                        order.row.traceparent,
                    ),
                    None => return Ok(None),
                }
            }
        };
        let span = tracing::info_span!(
            "saga",
            otel.name = "saga",
            order = %id,
            request_id = %context.request_id,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        // A child of the request running it (the saga may run on a task of its own) or, run by
        // the recovery worker, of the request that placed the order.
        match remote {
            Some(traceparent) => platform::telemetry::otel::adopt(&span, Some(&traceparent)),
            None => context.parent(&span),
        }
        let context = context.joined(&span);
        span.record("trace_id", context.trace_id.as_str());
        span.record("span_id", context.span_id.as_str());
        let (placed, owner) = match placed {
            Some((order, owner)) => (Some(order), Some(owner)),
            None => (None, None),
        };
        // A run of an order just placed holds the lease written with it.
        let holding = owner.is_some();
        let run = Run {
            saga: self,
            owner: owner.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        };
        let result = context
            .scope(run.advance(id, placed, holding).instrument(span))
            .await;
        // A saga that ended in this run ended the lease with its last write.
        if !matches!(result, Ok(Some(_))) {
            self.store.release(id, &run.owner).await?;
        }
        result
    }

    fn lease_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.lease).unwrap_or_default()
    }
}

/// One run of a saga by one lease owner.
struct Run<'a> {
    saga: &'a Saga,
    owner: String,
}

impl Deref for Run<'_> {
    type Target = Saga;

    fn deref(&self) -> &Saga {
        self.saga
    }
}

impl Run<'_> {
    /// The order as the saga left it when it ended in this run; `None` when it did not (another
    /// worker runs it, or a step is postponed).
    async fn advance(
        &self,
        id: &str,
        placed: Option<Order>,
        holding: bool,
    ) -> Result<Option<Order>, StoreError> {
        let mut order = placed;
        // Whether this run holds the lease on `order`, as the database has it.
        let mut holding = holding;
        // A saga has at most five steps; the bound only guards against a loop.
        for _ in 0..8 {
            if !holding {
                let now = storage::now();
                if !self
                    .store
                    .claim(id, &self.owner, now, self.lease_from(now))
                    .await?
                {
                    // Nothing left to do, or another worker runs it.
                    return Ok(None);
                }
                holding = true;
                if order.is_none() {
                    order = self.store.order(id).await?;
                }
            }
            let Some(current) = order.as_mut() else {
                return Ok(None);
            };
            let Some(step) = current.row.step() else {
                // Ended by this run's last write.
                return Ok(order);
            };
            let started = std::time::Instant::now();
            let next = self.renewing(id, step, self.step(current, step)).await;
            let outcome = match &next {
                Ok(Next::Moved | Next::Overtaken) => "moved",
                Ok(Next::Later(_)) => "postponed",
                Ok(Next::LeaseLost) => "lease_lost",
                Err(_) => "error",
            };
            metrics::histogram!("orders_saga_step_duration_seconds", "step" => step.as_str(), "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
            match next? {
                Next::Moved => {}
                Next::Overtaken | Next::LeaseLost => {
                    tracing::info!(order = %id, step = step.as_str(), "saga overtaken; reading it again");
                    holding = false;
                    order = None;
                }
                Next::Later(reason) => {
                    // Retried later, by this worker's schedule or the recovery worker.
                    metrics::counter!("orders_saga_step_retries_total", "step" => step.as_str())
                        .increment(1);
                    let attempts = order.as_ref().map_or(0, |o| o.row.attempts);
                    let backoff = Duration::from_millis(200)
                        .saturating_mul(1 << attempts.clamp(0, 5))
                        .min(Duration::from_secs(5));
                    tracing::info!(order = %id, step = step.as_str(), %reason, "saga step postponed");
                    self.store
                        .schedule(
                            id,
                            &self.owner,
                            Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default(),
                            Some(&reason),
                        )
                        .await?;
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Runs `work`, renewing the lease every third of its length; [`Next::LeaseLost`] when a
    /// renewal fails (the lease was taken over, or the order left `step`), and then `work` is
    /// abandoned: each step may be repeated safely.
    async fn renewing(
        &self,
        id: &str,
        step: Step,
        work: impl Future<Output = Result<Next, StoreError>>,
    ) -> Result<Next, StoreError> {
        let every = (self.lease / 3).max(Duration::from_millis(10));
        // Polled beside the work, never instead of it: a renewal waits for the order's row while
        // the work's own write transaction holds it (SQLite's write lock, PostgreSQL's row lock),
        // and that transaction must be able to commit meanwhile. (Run in turn, they waited on
        // each other for SQLite's busy timeout, and the work was then dropped mid-commit.)
        let renewals = async {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                let until = self.lease_from(storage::now());
                match self.store.renew(id, &self.owner, step, until).await {
                    Ok(true) => {}
                    Ok(false) => return Ok(Next::LeaseLost),
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::select! {
            biased;
            done = work => done,
            lost = renewals => lost,
        }
    }

    /// Renews the lease at `step` right before a call that gives money or stock back: false when
    /// this worker no longer holds the order there, and then it must not make the call.
    async fn fence(&self, order: &Order, step: Step) -> Result<bool, StoreError> {
        let until = self.lease_from(storage::now());
        self.store
            .renew(&order.row.id, &self.owner, step, until)
            .await
    }

    async fn step(&self, order: &mut Order, step: Step) -> Result<Next, StoreError> {
        let past_deadline = Utc::now() > order.row.saga_deadline;
        match step {
            Step::Reserve => {
                let reserved = self
                    .clients
                    .reserve(&order.row.id, &order.lines, self.reservation_ttl_seconds)
                    .await;
                match reserved {
                    Ok(Reserve::Reserved) => {
                        self.write(order, self.moving(step, Some(Step::Authorize)))
                            .await
                    }
                    Ok(Reserve::Short(short)) => {
                        let skus = skus_of(&short);
                        let note = format!("out of stock: {skus}");
                        self.finish(
                            order,
                            step,
                            Status::Rejected,
                            &note,
                            json!({"short": short}),
                        )
                        .await
                    }
                    Ok(Reserve::Unknown(skus)) => {
                        let note = format!("no longer sold: {}", skus_of(&skus));
                        self.finish(
                            order,
                            step,
                            Status::Rejected,
                            &note,
                            json!({"unknown": skus}),
                        )
                        .await
                    }
                    Err(e) if past_deadline => {
                        self.compensate(order, step, Status::Rejected, &e).await
                    }
                    Err(e) => Ok(Next::Later(e.0)),
                }
            }
            Step::Authorize => match self.clients.authorize(&order.row).await {
                Ok(Authorize::Authorized { payment_id }) => {
                    let change = Change {
                        payment_id: Some(&payment_id),
                        ..self.moving(step, Some(Step::Commit))
                    };
                    self.write(order, change).await
                }
                Ok(Authorize::Failed { reason }) => {
                    self.compensate(order, step, Status::PaymentFailed, &Transient(reason))
                        .await
                }
                Err(e) if past_deadline => {
                    self.compensate(order, step, Status::PaymentFailed, &e)
                        .await
                }
                Err(e) => Ok(Next::Later(e.0)),
            },
            Step::Commit => match self.clients.reservation(&order.row.id, "commit").await {
                Ok(Ok(())) => {
                    self.finish(
                        order,
                        step,
                        Status::Confirmed,
                        "stock sold, payment authorized",
                        json!({}),
                    )
                    .await
                }
                // The hold ran out before the order got here: give the money back, reject.
                Ok(Err(refusal)) => {
                    self.compensate(order, step, Status::Rejected, &Transient(refusal))
                        .await
                }
                Err(e) => Ok(Next::Later(e.0)),
            },
            Step::Compensate | Step::Cancel => self.undo(order, step).await,
        }
    }

    /// Voids or refunds what was paid and gives the stock back, then ends the order in the saga's
    /// outcome (cancelled for a cancellation). Each call that gives something back is fenced.
    async fn undo(&self, order: &mut Order, step: Step) -> Result<Next, StoreError> {
        let o = &order.row;
        let outcome = if step == Step::Cancel {
            Status::Cancelled
        } else {
            o.saga_outcome
                .as_deref()
                .and_then(Status::parse)
                .unwrap_or(Status::Rejected)
        };
        // Payments was (or may have been) asked: ask again with the same key, which tells the
        // outcome for sure, even when the first call's answer was lost.
        let paid = o.payment_id.is_some() || outcome == Status::PaymentFailed;
        if paid {
            if !self.fence(order, step).await? {
                return Ok(Next::LeaseLost);
            }
            if let Err(e) = self.clients.authorize(o).await {
                return Ok(Next::Later(e.0));
            }
        }
        // Whatever payments holds for this order is voided or refunded, asked or not: an
        // authorization whose answer was lost on its way back leaves no payment id here, and a
        // cancellation during that step must not leave it standing (found by the chaos suite).
        let payments = match self.clients.payments_of(&o.id).await {
            Ok(p) => p,
            Err(e) => return Ok(Next::Later(e.0)),
        };
        for p in payments {
            let action = match p.status.as_str() {
                "authorized" | "void_pending" | "captured" => p.status.as_str(),
                "pending" | "capture_pending" => {
                    return Ok(Next::Later(format!("payment {} is {}", p.id, p.status)))
                }
                _ => continue,
            };
            // Only the lease holder of an order still being undone gives money back.
            if !self.fence(order, step).await? {
                return Ok(Next::LeaseLost);
            }
            let done = match action {
                "captured" => {
                    self.clients
                        .refund(&p.id, &format!("order-{}-undo", o.id))
                        .await
                }
                _ => self.clients.payment(&p.id, "void").await,
            };
            match done {
                Ok(Ok(())) => {}
                Ok(Err(refusal)) => return Ok(Next::Later(refusal)),
                Err(e) => return Ok(Next::Later(e.0)),
            }
        }
        // Held stock is released; sold stock (a confirmed order) is returned.
        if !self.fence(order, step).await? {
            return Ok(Next::LeaseLost);
        }
        let released = match self.clients.reservation(&o.id, "release").await {
            Ok(Err(_)) => self.clients.reservation(&o.id, "return").await,
            other => other,
        };
        match released {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => return Ok(Next::Later(refusal)),
            Err(e) => return Ok(Next::Later(e.0)),
        }
        let note = o
            .failure
            .clone()
            .unwrap_or_else(|| outcome.as_str().to_owned());
        self.finish(order, step, outcome, &note, json!({})).await
    }

    /// Writes `change` (fenced by the lease and the step it starts from) and, when it applied,
    /// applies it to the order in memory.
    async fn write(&self, order: &mut Order, change: Change<'_>) -> Result<Next, StoreError> {
        if !self.store.change(&order.row.id, &change).await? {
            return Ok(Next::Overtaken);
        }
        order.apply(&change);
        Ok(Next::Moved)
    }

    /// Starts compensating towards `outcome`.
    async fn compensate(
        &self,
        order: &mut Order,
        from: Step,
        outcome: Status,
        why: &Transient,
    ) -> Result<Next, StoreError> {
        let change = Change {
            outcome: Some(outcome),
            failure: Some(&why.0),
            ..self.moving(from, Some(Step::Compensate))
        };
        self.write(order, change).await
    }

    /// Ends the saga in `status`, with its history line and event.
    async fn finish(
        &self,
        order: &mut Order,
        from: Step,
        status: Status,
        note: &str,
        extra: serde_json::Value,
    ) -> Result<Next, StoreError> {
        let counter = outcome_counter(from, status, &extra);
        let event = order_event(order, status, note, extra);
        let failure = (status != Status::Confirmed).then_some(note);
        let change = Change {
            status: Some((status, Some(note))),
            failure,
            event: Some(&event),
            ..self.moving(from, None)
        };
        let next = self.write(order, change).await?;
        if matches!(next, Next::Moved) {
            counter.increment(1);
        }
        Ok(next)
    }

    fn moving(&self, from: Step, to: Option<Step>) -> Change<'_> {
        let now = storage::now();
        Change {
            owner: Some(&self.owner),
            from_step: Some(from),
            to_step: to,
            outcome: None,
            status: None,
            payment_id: None,
            failure: None,
            next_attempt_at: now,
            lease_until: Some(self.lease_from(now)),
            event: None,
        }
    }
}

/// The business metric of a saga's end: `orders_confirmed_total`, `orders_cancelled_total`, or
/// `orders_failed_total` by status and reason (what the saga ran into: out of stock, no longer
/// sold, payment refused, or compensated after a later step failed).
fn outcome_counter(from: Step, status: Status, extra: &serde_json::Value) -> metrics::Counter {
    let reason = match (from, status) {
        (_, Status::Confirmed) => return metrics::counter!("orders_confirmed_total"),
        (_, Status::Cancelled) => return metrics::counter!("orders_cancelled_total"),
        (Step::Reserve, _) if extra.get("short").is_some() => "out_of_stock",
        (Step::Reserve, _) if extra.get("unknown").is_some() => "discontinued",
        (_, Status::PaymentFailed) => "payment_failed",
        _ => "compensated",
    };
    metrics::counter!("orders_failed_total", "status" => status.as_str(), "reason" => reason)
}

fn skus_of(list: &serde_json::Value) -> String {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["sku"].as_str().or(i.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The event for an order reaching `status`: order_confirmed, order_rejected (for payment_failed
/// too, with the status saying which), order_cancelled, order_shipped, order_delivered.
pub fn order_event(order: &Order, status: Status, note: &str, extra: serde_json::Value) -> Event {
    let name = match status {
        Status::Pending => "order_placed",
        Status::Confirmed => "order_confirmed",
        Status::Rejected | Status::PaymentFailed => "order_rejected",
        Status::Shipped => "order_shipped",
        Status::Delivered => "order_delivered",
        Status::Cancelled => "order_cancelled",
    };
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| json!({"product_id": l.product_id, "sku": l.sku, "quantity": l.quantity, "unit_price": l.unit_price}))
        .collect();
    let mut data = json!({
        "order_id": order.row.id,
        "user_id": order.row.user_id,
        "status": status.as_str(),
        "total_amount": order.row.total_amount,
        "currency": order.row.currency,
        "lines": lines,
        "note": note,
        "cart_id": order.row.cart_id,
    });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    Event::new(crate::NAME, name, order.row.id.clone(), data)
}
