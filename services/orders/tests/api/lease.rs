//! The saga lease: one worker at a time runs an order's saga, whichever instance it is in; a dead
//! worker's lease expires and another takes the saga over; only the lease's owner moves it on.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orders::domain::Step;
use orders::storage::{self, Change, LineRow, Order, OrderRow, Placed, Store};
use orders::workflow::Saga;
use platform::events::Event;
use serde_json::{json, Map};
use testkit::TestDatabase;

use crate::new_id;
use crate::upstream::Upstream;

/// An order of `lines` lines whose saga is at `reserve`, due now (as after a crash), placed by
/// `user` at `at`.
pub fn pending_order(user: &str, lines: usize, at: DateTime<Utc>) -> Order {
    let id = uuid::Uuid::now_v7().to_string();
    Order {
        row: OrderRow {
            id: id.clone(),
            user_id: user.to_owned(),
            status: "pending".into(),
            currency: "EUR".into(),
            total_amount: 1500 * lines as i64,
            payment_method: "pm_card_visa".into(),
            shipping_address: crate::address().to_string(),
            idempotency_key: new_id(),
            request_hash: "hash".into(),
            saga_step: Some("reserve".into()),
            saga_outcome: None,
            saga_deadline: at + chrono::Duration::minutes(5),
            next_attempt_at: at,
            attempts: 0,
            payment_id: None,
            failure: None,
            created_at: at,
            updated_at: at,
            request_id: None,
            traceparent: None,
            cart_id: None,
        },
        lines: (0..lines)
            .map(|i| LineRow {
                line_no: i as i32,
                product_id: new_id(),
                sku: format!("SKU-{id}-{i}"),
                name: format!("Line {i}"),
                unit_price: 1500,
                quantity: i as i64 + 1,
            })
            .collect(),
        history: Vec::new(),
    }
}

pub async fn place(store: &Arc<dyn Store>, order: &Order) -> Order {
    let event = Event::new("orders", "order_placed", order.row.id.clone(), json!({}));
    match store.place(order, &event).await.unwrap() {
        Placed::New(order) => order,
        Placed::Existing(_) => panic!("a new order was found existing"),
    }
}

/// One orders instance's saga on `db`, calling `upstream`, with its own connection pool.
async fn instance(db: &TestDatabase, upstream: &Upstream, lease_ms: u64) -> Arc<Saga> {
    let mut o = Map::new();
    o.insert("database_url".into(), json!(db.url));
    for service in ["products_url", "inventory_url", "payments_url"] {
        o.insert(service.into(), json!(upstream.url));
    }
    o.insert("lease_ms".into(), json!(lease_ms));
    let config = orders::Config::load(o).unwrap();
    let (store, _db) = storage::connect(&db.url, 5).await.unwrap();
    Arc::new(Saga {
        store,
        clients: orders::clients::Clients::new(&config.common, &config.settings),
        reservation_ttl_seconds: 900,
        lease: Duration::from_millis(lease_ms),
    })
}

#[tokio::test]
async fn two_recovery_workers_racing_for_a_stuck_saga_run_it_once() {
    for db in TestDatabase::all().await {
        // Reservations are held, so the worker that got the saga is still running its step while
        // the other one tries.
        let upstream = Upstream::start(false).await;
        let a = instance(&db, &upstream, 10_000).await;
        let b = instance(&db, &upstream, 10_000).await;
        let order = place(&a.store, &pending_order(&new_id(), 1, Utc::now())).await;
        let id = order.row.id.clone();

        let run = |saga: Arc<Saga>| {
            let id = id.clone();
            tokio::spawn(async move { saga.advance(&id).await })
        };
        let (first, second) = (run(a.clone()), run(b.clone()));
        // Wait until one worker is at inventory and the other has given up, or both are there.
        for _ in 0..400 {
            let one_left = first.is_finished() != second.is_finished();
            if upstream.reservations() >= 2 || (upstream.reservations() == 1 && one_left) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            upstream.reservations(),
            1,
            "{}: both workers ran the step",
            db.backend
        );
        assert!(
            first.is_finished() != second.is_finished(),
            "{}: exactly one worker gave way",
            db.backend
        );

        upstream.open();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        let order = a.store.order(&id).await.unwrap().unwrap();
        assert_eq!(order.row.status, "confirmed", "{}", db.backend);
        assert_eq!(upstream.reservations(), 1, "{}", db.backend);
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_only_its_owner_moves_the_saga() {
    for db in TestDatabase::all().await {
        // Two instances on one database.
        let (a, _) = storage::connect(&db.url, 5).await.unwrap();
        let (b, _) = storage::connect(&db.url, 5).await.unwrap();
        let now = Utc::now();
        let id = place(&a, &pending_order(&new_id(), 1, now)).await.row.id;
        let secs = chrono::Duration::seconds;
        let to_authorize = |owner| Change {
            owner: Some(owner),
            from_step: Some(Step::Reserve),
            to_step: Some(Step::Authorize),
            outcome: None,
            status: None,
            payment_id: None,
            failure: None,
            next_attempt_at: now,
            event: None,
        };

        assert!(a.claim(&id, "a", now, now + secs(10)).await.unwrap());
        assert!(!b.claim(&id, "b", now, now + secs(10)).await.unwrap());
        assert!(!b.change(&id, &to_authorize("b")).await.unwrap());
        assert!(b.due(now + secs(5), 10).await.unwrap().is_empty());
        // Renewing keeps it.
        assert!(a
            .claim(&id, "a", now + secs(5), now + secs(15))
            .await
            .unwrap());
        assert!(!b
            .claim(&id, "b", now + secs(12), now + secs(22))
            .await
            .unwrap());

        // `a` dies; once its lease has run out, `b` takes over and `a` can no longer move it on.
        let later = now + secs(16);
        assert_eq!(b.due(later, 10).await.unwrap(), std::slice::from_ref(&id));
        assert!(b.claim(&id, "b", later, later + secs(10)).await.unwrap());
        assert!(!a.change(&id, &to_authorize("a")).await.unwrap());
        assert!(b.change(&id, &to_authorize("b")).await.unwrap());
        let order = a.order(&id).await.unwrap().unwrap();
        assert_eq!(order.row.saga_step.as_deref(), Some("authorize"));

        // Released, anyone may claim it again.
        b.release(&id, "b").await.unwrap();
        assert!(a.claim(&id, "a", later, later + secs(10)).await.unwrap());
    }
}
