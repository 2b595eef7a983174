//! What payments does with the gateway, apart from HTTP: authorize, capture, void, refund, and
//! settle what is left unknown (reconciliation and webhooks).
//!
//! The rules that make it exactly-once:
//! * every gateway call carries an idempotency key derived from our ids (`<payment>-authorize`,
//!   `<payment>-capture`, ...), so repeating it never repeats its effect;
//! * a call is written to the audit log before it is made and after its answer, each line in the
//!   transaction of the state change it belongs to when there is one (the new payment with its
//!   authorization's request line; the compare-and-set with the answer's line);
//! * the state moves to `*_pending` before the call and out of it only by a compare-and-set, so a
//!   request, its repeat, the reconciler and a webhook may all race and the effect is applied once;
//! * an unknown outcome leaves the payment pending; the reconciler asks the gateway later.
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Utc;
use platform::error::Problem;
use platform::events::Event;
use serde_json::json;

use crate::clients::{Authorization, CardError, GatewayError, Intent, PaymentGateway};
use crate::domain::Status;
use crate::error::ApiError;
use crate::routes::views::PaymentView;
use crate::storage::{
    Created, GatewayCall, Payment, Refund, RefundBegun, Store, StoreError, PHASE_REQUEST,
    PHASE_RESPONSE, REFUND_FAILED, REFUND_PENDING, REFUND_SUCCEEDED,
};

pub struct Payments {
    pub store: Arc<dyn Store>,
    pub gateway: Arc<dyn PaymentGateway>,
}

/// A final answer to `POST /payments`, kept with the payment and replayed byte for byte.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Payments {
    /// Authorizes a new payment, or answers a repeat of the request that created one.
    pub async fn authorize(&self, new: Payment) -> Result<Answer, ApiError> {
        let request = audit_line(
            &new,
            "authorize",
            &authorize_key(&new),
            PHASE_REQUEST,
            "sent",
        );
        let (payment, request_written) = match self.store.create(&new, &request).await? {
            Created::New(p) => (p, true),
            Created::Existing(p) if p.request_hash != new.request_hash => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-mismatch",
                    "Idempotency-Key reused",
                )
                .detail("This Idempotency-Key was used with another request.")
                .into())
            }
            Created::Existing(p) => (p, false),
        };
        if let Some(answer) = stored_answer(&payment) {
            return Ok(answer);
        }
        let payment = match self.drive_authorization(&payment, request_written).await? {
            Some(settled) => settled,
            // Not moved by us: settled meanwhile by another (read what it wrote), or unknown.
            None => self.load(&payment.id).await?,
        };
        // Still pending: another request or the reconciler holds the outcome; ours is unknown.
        stored_answer(&payment).ok_or_else(|| {
            GatewayError::Unknown("the authorization has not settled yet".into()).into()
        })
    }

    /// Makes (or repeats, with the same key) the authorization call and settles what it answers;
    /// the payment as it moved, if it did. `request_written`: its request line is in the audit
    /// log already (written with the payment).
    async fn drive_authorization(
        &self,
        p: &Payment,
        request_written: bool,
    ) -> Result<Option<Payment>, ApiError> {
        let key = authorize_key(p);
        let request = Authorization {
            payment_id: &p.id,
            order_id: &p.order_id,
            amount: p.amount,
            currency: &p.currency,
            payment_method: &p.payment_method,
        };
        let (answer, mut response) = self
            .audited(
                p,
                "authorize",
                &key,
                request_written,
                self.gateway.authorize(&request, &key),
            )
            .await?;
        let moved = match answer {
            Ok(intent) => self.apply_intent(p, &intent, &mut response).await?,
            Err(GatewayError::Declined(card)) => {
                self.settle(p, Status::Declined, None, 0, Some(&card), &mut response)
                    .await?
            }
            Err(GatewayError::Invalid(message)) => {
                let refused = CardError {
                    code: Some("invalid_request".into()),
                    decline_code: None,
                    message: Some(message),
                };
                self.settle(p, Status::Failed, None, 0, Some(&refused), &mut response)
                    .await?
            }
            Err(e) => {
                self.write_response(response).await?;
                return Err(e.into());
            }
        };
        self.write_response(response).await?;
        Ok(moved)
    }

    /// Captures an authorized payment, all of it or `amount` of it (once).
    pub async fn capture(&self, id: &str, amount: Option<i64>) -> Result<Payment, ApiError> {
        let p = self.load(id).await?;
        match p.state() {
            Status::Captured | Status::Refunded
                if amount.is_none_or(|a| a == p.captured_amount) =>
            {
                return Ok(p)
            }
            Status::Authorized => {
                let amount = amount.unwrap_or(p.amount);
                if amount > p.amount {
                    return Err(Problem::validation(vec![platform::error::FieldError::new(
                        "amount",
                        format!("must not exceed the authorized {}", p.amount),
                    )])
                    .into());
                }
                let mut next = p.clone();
                next.capture_amount = Some(amount);
                next.set_state(Status::CapturePending);
                let request = audit_line(&p, "capture", &capture_key(&p), PHASE_REQUEST, "sent");
                if !self
                    .store
                    .transition(Status::Authorized, &next, None, Some(&request))
                    .await?
                {
                    return Err(changed_meanwhile());
                }
                self.drive_capture(&next, true).await?;
                return self.load(id).await;
            }
            Status::CapturePending if amount.is_none_or(|a| Some(a) == p.capture_amount) => {}
            other => {
                return Err(Problem::conflict(format!(
                    "The payment is {}; only an authorized payment can be captured (once).",
                    other.as_str()
                ))
                .into())
            }
        }
        self.drive_capture(&p, false).await?;
        self.load(id).await
    }

    /// `request_written`: the capture's request line went in with the move to capture_pending.
    async fn drive_capture(&self, p: &Payment, request_written: bool) -> Result<(), ApiError> {
        let intent_id = intent_of(p)?;
        let amount = p.capture_amount.unwrap_or(p.amount);
        let key = capture_key(p);
        let (answer, response) = self
            .audited(
                p,
                "capture",
                &key,
                request_written,
                self.gateway.capture(&intent_id, amount, &key),
            )
            .await?;
        self.after_change(p, &intent_id, answer, response, Status::CapturePending)
            .await
    }

    /// Cancels an authorization, so the customer is never charged.
    pub async fn void(&self, id: &str) -> Result<Payment, ApiError> {
        let p = self.load(id).await?;
        match p.state() {
            Status::Voided => return Ok(p),
            Status::Authorized => {
                let mut next = p.clone();
                next.set_state(Status::VoidPending);
                let request = audit_line(&p, "void", &void_key(&p), PHASE_REQUEST, "sent");
                if !self
                    .store
                    .transition(Status::Authorized, &next, None, Some(&request))
                    .await?
                {
                    return Err(changed_meanwhile());
                }
                self.drive_void(&next, true).await?;
            }
            Status::VoidPending => self.drive_void(&p, false).await?,
            Status::Pending => {
                return Err(Problem::conflict(
                    "The authorization's outcome is not known yet; it is being settled. Try again shortly.",
                )
                .retry_after(2)
                .into())
            }
            other => {
                return Err(Problem::conflict(format!(
                    "The payment is {}; only an authorized payment can be voided{}.",
                    other.as_str(),
                    if other == Status::Captured {
                        " (refund it instead)"
                    } else {
                        ""
                    }
                ))
                .into())
            }
        }
        self.load(id).await
    }

    /// `request_written`: the void's request line went in with the move to void_pending.
    async fn drive_void(&self, p: &Payment, request_written: bool) -> Result<(), ApiError> {
        let intent_id = intent_of(p)?;
        let key = void_key(p);
        let (answer, response) = self
            .audited(
                p,
                "void",
                &key,
                request_written,
                self.gateway.cancel(&intent_id, &key),
            )
            .await?;
        self.after_change(p, &intent_id, answer, response, Status::VoidPending)
            .await
    }

    /// Settles a capture or void from the gateway's answer. When the gateway says the intent is
    /// not in a state for it, the intent itself tells what happened; when it refuses the call,
    /// the payment goes back to authorized.
    async fn after_change(
        &self,
        p: &Payment,
        intent_id: &str,
        answer: Result<Intent, GatewayError>,
        mut response: Option<GatewayCall>,
        pending: Status,
    ) -> Result<(), ApiError> {
        let result: Result<(), ApiError> = match answer {
            Ok(intent) => self
                .apply_intent(p, &intent, &mut response)
                .await
                .map(|_| ())
                .map_err(ApiError::from),
            Err(GatewayError::UnexpectedState(message)) => {
                match self.gateway.intent(intent_id).await {
                    Ok(intent) => match self.apply_intent(p, &intent, &mut response).await {
                        Ok(Some(_)) => Ok(()),
                        Ok(None) => Err(Problem::conflict(message).into()),
                        Err(e) => Err(e.into()),
                    },
                    Err(e) => Err(e.into()),
                }
            }
            // Refused: it had no effect, so the payment is authorized as before.
            Err(refused @ (GatewayError::Invalid(_) | GatewayError::Declined(_))) => {
                let mut back = p.clone();
                back.set_state(Status::Authorized);
                back.capture_amount = None;
                self.store
                    .transition(pending, &back, None, response.take().as_ref())
                    .await?;
                Err(refused.into())
            }
            Err(e) => Err(e.into()),
        };
        self.write_response(response).await?;
        result
    }

    /// Refunds `amount` (default: what is left) of a captured payment. `key` makes it safe to
    /// repeat; the sum of refunds never exceeds the capture.
    pub async fn refund(
        &self,
        payment_id: &str,
        key: &str,
        amount: Option<i64>,
        reason: Option<String>,
    ) -> Result<Refund, ApiError> {
        let p = self.load(payment_id).await?;
        let amount = amount.unwrap_or(p.captured_amount - p.refunded_amount);
        let now = Utc::now();
        let refund = Refund {
            id: uuid::Uuid::now_v7().to_string(),
            payment_id: p.id.clone(),
            idempotency_key: key.to_owned(),
            amount,
            reason,
            status: REFUND_PENDING.into(),
            gateway_refund_id: None,
            failure: None,
            created_at: now,
            updated_at: now,
        };
        let refund = match self.store.begin_refund(&refund).await? {
            RefundBegun::New(r) => r,
            RefundBegun::Existing(r) if r.amount != amount => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-mismatch",
                    "Idempotency-Key reused",
                )
                .detail("This Idempotency-Key was used for a refund of another amount.")
                .into())
            }
            RefundBegun::Existing(r) if r.status != REFUND_PENDING => return Ok(r),
            RefundBegun::Existing(r) => r,
            RefundBegun::NotRefundable(status) => {
                return Err(Problem::conflict(format!(
                    "The payment is {status}; only a captured payment can be refunded."
                ))
                .into())
            }
            RefundBegun::TooMuch { remaining } => {
                return Err(Problem::conflict(format!(
                    "Only {remaining} is left to refund on this payment."
                ))
                .extension("remaining", remaining)
                .into())
            }
        };
        self.drive_refund(&p, refund).await
    }

    async fn drive_refund(&self, p: &Payment, mut refund: Refund) -> Result<Refund, ApiError> {
        let intent_id = intent_of(p)?;
        let key = format!("{}-refund-{}", p.id, refund.id);
        let (answer, response) = self
            .audited(
                p,
                "refund",
                &key,
                false,
                self.gateway
                    .refund(&intent_id, refund.amount, &key, &refund.id),
            )
            .await?;
        self.write_response(response).await?;
        let event = match answer {
            Ok(done) => {
                refund.status = REFUND_SUCCEEDED.into();
                refund.gateway_refund_id = Some(done.id);
                count("refunded", &p.currency, refund.amount);
                Some(refunded_event(p, &refund))
            }
            Err(GatewayError::Invalid(message) | GatewayError::UnexpectedState(message)) => {
                refund.status = REFUND_FAILED.into();
                refund.failure = Some(message);
                None
            }
            Err(e) => return Err(e.into()),
        };
        self.store.finish_refund(&refund, event.as_ref()).await?;
        Ok(refund)
    }

    /// Settles what is still unknown: payments and refunds whose gateway call did not answer,
    /// untouched for `after`. Returns how many it looked at.
    pub async fn reconcile(&self, after: std::time::Duration) -> Result<usize, StoreError> {
        let before = Utc::now() - chrono::Duration::from_std(after).unwrap_or_default();
        let payments = self.store.unsettled(before).await?;
        let refunds = self.store.pending_refunds(before).await?;
        let count = payments.len() + refunds.len();
        for p in payments {
            let settled = match p.state() {
                // Ask first: the authorization may have been made with its answer lost. When the
                // gateway knows nothing of it, making it again with the same key is safe.
                Status::Pending => match self.gateway.find(&p.id).await {
                    Ok(Some(intent)) => self
                        .apply_intent(&p, &intent, &mut None)
                        .await
                        .map(|_| ())
                        .map_err(ApiError::from),
                    Ok(None) => self.drive_authorization(&p, false).await.map(|_| ()),
                    Err(e) => Err(e.into()),
                },
                Status::CapturePending => self.drive_capture(&p, false).await,
                Status::VoidPending => self.drive_void(&p, false).await,
                _ => Ok(()),
            };
            if let Err(e) = settled {
                tracing::warn!(payment = %p.id, error = %e, "reconciliation: not settled yet");
            }
        }
        for refund in refunds {
            if let Some(p) = self.store.payment(&refund.payment_id).await? {
                if let Err(e) = self.drive_refund(&p, refund).await {
                    tracing::warn!(payment = %p.id, error = %e, "reconciliation: refund not settled yet");
                }
            }
        }
        Ok(count)
    }

    /// Applies what a gateway webhook tells; true when it changed something. Everything it does
    /// is a compare-and-set (or a refund keyed by the charge and its total), so a repeated or
    /// late event changes nothing. An event telling what payments recorded already (the webhook
    /// of an authorization whose answer it had) is one read and no write.
    pub async fn on_webhook(&self, object: WebhookObject) -> Result<bool, ApiError> {
        match object {
            WebhookObject::Intent(intent) => match self.payment_of(&intent).await? {
                Some(p) => Ok(self.apply_intent(&p, &intent, &mut None).await?.is_some()),
                None => Ok(false),
            },
            WebhookObject::Charge(charge) => {
                match self.store.by_intent(&charge.payment_intent).await? {
                    Some(p) => {
                        self.record_outside_refund(&p, &charge.id, charge.amount_refunded)
                            .await
                    }
                    None => Ok(false),
                }
            }
            WebhookObject::Other => Ok(false),
        }
    }

    /// A refund made at the gateway directly (its dashboard): whatever the charge says was
    /// refunded beyond the refunds we made or are making is recorded as one refund.
    async fn record_outside_refund(
        &self,
        p: &Payment,
        charge: &str,
        refunded: i64,
    ) -> Result<bool, ApiError> {
        let ours: i64 = self
            .store
            .refunds(&p.id)
            .await?
            .iter()
            .filter(|r| r.status != REFUND_FAILED)
            .map(|r| r.amount)
            .sum();
        if refunded <= ours {
            return Ok(false);
        }
        let now = Utc::now();
        let refund = Refund {
            id: uuid::Uuid::now_v7().to_string(),
            payment_id: p.id.clone(),
            idempotency_key: format!("gateway-{charge}-{refunded}"),
            amount: refunded - ours,
            reason: Some("made at the payment gateway".into()),
            status: REFUND_PENDING.into(),
            gateway_refund_id: None,
            failure: None,
            created_at: now,
            updated_at: now,
        };
        if let RefundBegun::New(mut refund) = self.store.begin_refund(&refund).await? {
            refund.status = REFUND_SUCCEEDED.into();
            let event = refunded_event(p, &refund);
            return Ok(self.store.finish_refund(&refund, Some(&event)).await?);
        }
        Ok(false)
    }

    async fn payment_of(&self, intent: &Intent) -> Result<Option<Payment>, StoreError> {
        match intent.metadata.get("payment_id") {
            Some(id) => self.store.payment(id).await,
            None => self.store.by_intent(&intent.id).await,
        }
    }

    /// Moves a payment to what the gateway's intent says, when that is news: the payment as it
    /// moved, or None. `response`, the answer's audit line, goes in with the move if there is one.
    async fn apply_intent(
        &self,
        p: &Payment,
        intent: &Intent,
        response: &mut Option<GatewayCall>,
    ) -> Result<Option<Payment>, StoreError> {
        let target = match (p.state(), intent.status.as_str()) {
            (Status::Pending, "requires_capture") => Status::Authorized,
            (
                Status::Pending | Status::Authorized | Status::CapturePending | Status::VoidPending,
                "succeeded",
            ) => Status::Captured,
            (
                Status::Pending | Status::Authorized | Status::CapturePending | Status::VoidPending,
                "canceled",
            ) => Status::Voided,
            (Status::Pending, "requires_payment_method") => Status::Declined,
            _ => return Ok(None),
        };
        let received = if target == Status::Captured {
            intent.amount_received
        } else {
            0
        };
        self.settle(
            p,
            target,
            Some(&intent.id),
            received,
            intent.last_payment_error.as_ref(),
            response,
        )
        .await
    }

    /// Writes a payment's new state and its event (and `response`, the answer's audit line, if
    /// not written yet); from `pending` it also keeps the final answer to the request that created
    /// it. The payment as it moved, or None when another got there first.
    async fn settle(
        &self,
        p: &Payment,
        target: Status,
        intent_id: Option<&str>,
        received: i64,
        error: Option<&CardError>,
        response: &mut Option<GatewayCall>,
    ) -> Result<Option<Payment>, StoreError> {
        let mut next = p.clone();
        next.set_state(target);
        if intent_id.is_some() {
            next.intent_id = intent_id.map(str::to_owned);
        }
        if target == Status::Captured {
            next.captured_amount = received;
        }
        if matches!(target, Status::Declined | Status::Failed) {
            next.decline_code = error.map(CardError::reason);
            next.decline_message = error.and_then(|e| e.message.clone());
        }
        next.updated_at = Utc::now();
        if p.state() == Status::Pending {
            let answer = answer_for(&next);
            next.response_status = Some(i32::from(answer.status.as_u16()));
            next.response_body = Some(answer.body);
        }
        let event = event_for(&next);
        let moved = self
            .store
            .transition(p.state(), &next, event.as_ref(), response.take().as_ref())
            .await?;
        if !moved {
            return Ok(None);
        }
        count_settled(&next);
        Ok(Some(next))
    }

    /// Writes the call's request line to the audit log (unless `request_written`: it went in
    /// with a state change), makes the call, and gives its answer with the answer's audit line,
    /// for the caller to write with the state change it leads to, or alone
    /// ([`Payments::write_response`]).
    async fn audited<T>(
        &self,
        p: &Payment,
        operation: &str,
        key: &str,
        request_written: bool,
        call: impl std::future::Future<Output = Result<T, GatewayError>>,
    ) -> Result<(Result<T, GatewayError>, Option<GatewayCall>), StoreError> {
        if !request_written {
            self.store
                .audit(&audit_line(p, operation, key, PHASE_REQUEST, "sent"))
                .await?;
        }
        let answer = call.await;
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(e) => &e.to_string(),
        };
        let response = audit_line(p, operation, key, PHASE_RESPONSE, outcome);
        Ok((answer, Some(response)))
    }

    /// Writes an answer's audit line that no state change took.
    async fn write_response(&self, response: Option<GatewayCall>) -> Result<(), StoreError> {
        match response {
            Some(line) => self.store.audit(&line).await,
            None => Ok(()),
        }
    }

    pub async fn load(&self, id: &str) -> Result<Payment, ApiError> {
        Ok(self.store.payment(id).await?.ok_or(StoreError::NotFound)?)
    }
}

/// What a webhook's `data.object` is, as payments reads it.
pub enum WebhookObject {
    /// A `payment_intent.*` event's intent.
    Intent(Intent),
    /// A `charge.refunded` event's charge.
    Charge(RefundedCharge),
    /// Anything else: nothing to do.
    Other,
}

/// The charge of a `charge.refunded` event, reduced to what payments reads.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RefundedCharge {
    pub id: String,
    pub payment_intent: String,
    pub amount_refunded: i64,
}

fn authorize_key(p: &Payment) -> String {
    format!("{}-authorize", p.id)
}

fn capture_key(p: &Payment) -> String {
    format!("{}-capture", p.id)
}

fn void_key(p: &Payment) -> String {
    format!("{}-void", p.id)
}

/// One line of a payment's gateway audit log, stamped now.
fn audit_line(p: &Payment, operation: &str, key: &str, phase: &str, outcome: &str) -> GatewayCall {
    GatewayCall {
        payment_id: p.id.clone(),
        operation: operation.to_owned(),
        idempotency_key: key.to_owned(),
        phase: phase.to_owned(),
        outcome: outcome.to_owned(),
        created_at: Utc::now(),
    }
}

fn intent_of(p: &Payment) -> Result<String, ApiError> {
    p.intent_id
        .clone()
        .ok_or_else(|| GatewayError::Invalid("the payment has no gateway intent".into()).into())
}

fn changed_meanwhile() -> ApiError {
    Problem::conflict("The payment changed meanwhile; read it and try again.").into()
}

fn stored_answer(p: &Payment) -> Option<Answer> {
    let status = StatusCode::from_u16(u16::try_from(p.response_status?).ok()?).ok()?;
    Some(Answer {
        status,
        body: p.response_body.clone()?,
    })
}

/// Business metrics of a payment that has just settled: `payments_total` and
/// `payments_amount_total` (minor units) by outcome and currency. What was authorized counts its
/// amount; what was captured, what the gateway took.
fn count_settled(p: &Payment) {
    let (outcome, amount) = match p.state() {
        Status::Authorized => ("authorized", p.amount),
        Status::Captured => ("captured", p.captured_amount),
        Status::Voided => ("voided", p.amount),
        Status::Declined => ("declined", p.amount),
        Status::Failed => ("failed", p.amount),
        _ => return,
    };
    count(outcome, &p.currency, amount);
}

fn count(outcome: &'static str, currency: &str, amount: i64) {
    let labels = [
        ("outcome", outcome.to_owned()),
        ("currency", currency.to_owned()),
    ];
    metrics::counter!("payments_total", &labels).increment(1);
    metrics::counter!("payments_amount_total", &labels).increment(amount.max(0).unsigned_abs());
}

/// The answer to `POST /payments` once its payment has settled.
fn answer_for(p: &Payment) -> Answer {
    let (status, body) = match p.state() {
        Status::Declined => {
            let problem = Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment-declined",
                "Payment declined",
            )
            .detail(
                p.decline_message
                    .clone()
                    .unwrap_or_else(|| "The card was declined.".into()),
            )
            .extension("decline_code", &p.decline_code)
            .extension("payment_id", &p.id);
            (
                StatusCode::PAYMENT_REQUIRED,
                serde_json::to_string(&problem),
            )
        }
        Status::Failed => {
            let problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "payment-refused",
                "Payment refused by the gateway",
            )
            .detail(p.decline_message.clone().unwrap_or_default())
            .extension("payment_id", &p.id);
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::to_string(&problem),
            )
        }
        _ => (
            StatusCode::CREATED,
            serde_json::to_string(&PaymentView::from(p)),
        ),
    };
    Answer {
        status,
        body: body.unwrap_or_default(),
    }
}

fn payload(p: &Payment) -> serde_json::Value {
    json!({
        "payment_id": p.id,
        "order_id": p.order_id,
        "customer_id": p.customer_id,
        "amount": p.amount,
        "currency": p.currency,
        "status": p.status,
        "captured_amount": p.captured_amount,
        "refunded_amount": p.refunded_amount,
        "decline_code": p.decline_code,
    })
}

/// The event a settled state publishes.
fn event_for(p: &Payment) -> Option<Event> {
    let name = match p.state() {
        Status::Authorized => "payment_authorized",
        Status::Declined | Status::Failed => "payment_declined",
        Status::Captured => "payment_captured",
        Status::Voided => "payment_voided",
        _ => return None,
    };
    Some(Event::new(crate::NAME, name, p.id.clone(), payload(p)))
}

fn refunded_event(p: &Payment, refund: &Refund) -> Event {
    let mut data = payload(p);
    data["refund_id"] = json!(refund.id);
    data["refund_amount"] = json!(refund.amount);
    data["refunded_amount"] = json!(p.refunded_amount + refund.amount);
    Event::new(crate::NAME, "payment_refunded", p.id.clone(), data)
}
