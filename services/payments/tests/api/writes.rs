//! What one authorization writes: the payment with the request line of its gateway call in one
//! transaction, then the answer's line with the compare-and-set and its event in another; a
//! webhook telling what was recorded already writes nothing. Counted at the store, over both
//! databases, with a gateway that authorizes everything.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use payments::clients::{Authorization, GatewayError, GatewayRefund, Intent, PaymentGateway};
use payments::storage::{
    self, Created, GatewayCall, Payment, Refund, RefundBegun, Store, StoreError,
};
use platform::events::Event;

/// The store, counting the calls that write.
struct Counting {
    inner: Arc<dyn Store>,
    writes: AtomicUsize,
}

impl Counting {
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for Counting {
    async fn create(
        &self,
        payment: &Payment,
        request: &GatewayCall,
    ) -> Result<Created, StoreError> {
        self.wrote();
        self.inner.create(payment, request).await
    }
    async fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        self.inner.payment(id).await
    }
    async fn by_order(&self, order_id: &str) -> Result<Vec<Payment>, StoreError> {
        self.inner.by_order(order_id).await
    }
    async fn by_intent(&self, intent_id: &str) -> Result<Option<Payment>, StoreError> {
        self.inner.by_intent(intent_id).await
    }
    async fn transition(
        &self,
        from: payments::domain::Status,
        next: &Payment,
        event: Option<&Event>,
        call: Option<&GatewayCall>,
    ) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.transition(from, next, event, call).await
    }
    async fn unsettled(&self, before: DateTime<Utc>) -> Result<Vec<Payment>, StoreError> {
        self.inner.unsettled(before).await
    }
    async fn begin_refund(&self, refund: &Refund) -> Result<RefundBegun, StoreError> {
        self.wrote();
        self.inner.begin_refund(refund).await
    }
    async fn finish_refund(
        &self,
        refund: &Refund,
        event: Option<&Event>,
    ) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.finish_refund(refund, event).await
    }
    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError> {
        self.inner.refunds(payment_id).await
    }
    async fn pending_refunds(&self, before: DateTime<Utc>) -> Result<Vec<Refund>, StoreError> {
        self.inner.pending_refunds(before).await
    }
    async fn audit(&self, call: &GatewayCall) -> Result<(), StoreError> {
        self.wrote();
        self.inner.audit(call).await
    }
    async fn gateway_calls(&self, payment_id: &str) -> Result<Vec<GatewayCall>, StoreError> {
        self.inner.gateway_calls(payment_id).await
    }
    async fn record_webhook(&self, id: &str, kind: &str) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.record_webhook(id, kind).await
    }
}

/// A gateway that authorizes every payment (and is not asked anything else here).
struct Approving;

fn intent_for(payment_id: &str, amount: i64) -> Intent {
    Intent {
        id: format!("pi_{}", payment_id.replace('-', "")),
        status: "requires_capture".into(),
        amount,
        amount_received: 0,
        metadata: HashMap::from([("payment_id".to_owned(), payment_id.to_owned())]),
        last_payment_error: None,
    }
}

#[async_trait]
impl PaymentGateway for Approving {
    async fn authorize(
        &self,
        request: &Authorization<'_>,
        _key: &str,
    ) -> Result<Intent, GatewayError> {
        Ok(intent_for(request.payment_id, request.amount))
    }
    async fn capture(&self, _: &str, _: i64, _: &str) -> Result<Intent, GatewayError> {
        Err(GatewayError::Invalid("not in this test".into()))
    }
    async fn cancel(&self, _: &str, _: &str) -> Result<Intent, GatewayError> {
        Err(GatewayError::Invalid("not in this test".into()))
    }
    async fn refund(
        &self,
        _: &str,
        _: i64,
        _: &str,
        _: &str,
    ) -> Result<GatewayRefund, GatewayError> {
        Err(GatewayError::Invalid("not in this test".into()))
    }
    async fn intent(&self, _: &str) -> Result<Intent, GatewayError> {
        Err(GatewayError::Invalid("not in this test".into()))
    }
    async fn find(&self, _: &str) -> Result<Option<Intent>, GatewayError> {
        Ok(None)
    }
}

fn new_payment() -> Payment {
    let now = Utc::now();
    Payment {
        id: crate::new_id(),
        order_id: crate::new_id(),
        customer_id: crate::new_id(),
        amount: 1999,
        currency: "EUR".into(),
        payment_method: "pm_card_visa".into(),
        status: "pending".into(),
        intent_id: None,
        capture_amount: None,
        captured_amount: 0,
        refunded_amount: 0,
        decline_code: None,
        decline_message: None,
        idempotency_key: crate::new_id(),
        request_hash: "hash".into(),
        response_status: None,
        response_body: None,
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test]
async fn an_authorization_is_two_writes_with_both_audit_lines() {
    for db in testkit::TestDatabase::all().await {
        let (inner, _db) = storage::connect(&db.url, 5).await.unwrap();
        let store = Arc::new(Counting {
            inner,
            writes: AtomicUsize::new(0),
        });
        let payments = payments::workflow::Payments {
            store: store.clone(),
            gateway: Arc::new(Approving),
        };
        let p = new_payment();
        let answer = payments.authorize(p.clone()).await.unwrap();
        assert_eq!(answer.status, 201, "{}: {}", db.backend, answer.body);
        assert_eq!(
            store.writes.load(Ordering::SeqCst),
            2,
            "{}: the payment with its request line, the answer's line with the state",
            db.backend
        );
        let stored = store.payment(&p.id).await.unwrap().unwrap();
        assert_eq!(stored.status, "authorized", "{}", db.backend);
        let calls = store.gateway_calls(&p.id).await.unwrap();
        let lines: Vec<_> = calls
            .iter()
            .map(|c| (c.operation.as_str(), c.phase.as_str(), c.outcome.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                ("authorize", "request", "sent"),
                ("authorize", "response", "ok")
            ],
            "{}",
            db.backend
        );
    }
}
