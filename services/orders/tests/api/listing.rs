//! Listing a page of orders loads the lines and history of the whole page at once; every order
//! comes back whole and in its own order.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Utc;
use orders::domain::{Status, Step};
use orders::storage::{self, Change, Filter};
use serde_json::json;
use testkit::TestDatabase;

use crate::lease::{pending_order, place};
use crate::new_id;

/// Counts the statements sqlx runs (its `sqlx::query` log events) on this thread: set as the
/// thread's default subscriber in a current-thread runtime, it sees the queries of the test's own
/// calls and of no other test. PostgreSQL's driver logs in the calling task; SQLite's from its
/// worker thread, so only PostgreSQL's statements are counted.
pub struct Statements(pub Arc<AtomicUsize>);

impl tracing::Subscriber for Statements {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn a_page_of_orders_comes_back_with_every_line_and_history_entry_of_each() {
    for db in TestDatabase::all().await {
        let (store, _) = storage::connect(&db.url, 5).await.unwrap();
        let (user, other) = (new_id(), new_id());
        let start = Utc::now();
        let mut placed = Vec::new();
        for n in 0..7 {
            let at = start + chrono::Duration::milliseconds(n);
            placed.push(place(&store, &pending_order(&user, n as usize % 3 + 1, at)).await);
            // Someone else's orders in between are not listed.
            place(&store, &pending_order(&other, 2, at)).await;
        }
        // Some orders gain history: a confirmation and a shipment.
        for order in placed.iter().step_by(2) {
            for (from, status) in [
                (Some(Step::Reserve), Status::Confirmed),
                (None, Status::Shipped),
            ] {
                let event = orders::workflow::order_event(order, status, "test", json!({}));
                let change = Change {
                    owner: None,
                    from_step: from,
                    to_step: None,
                    outcome: None,
                    status: Some((status, Some("test"))),
                    payment_id: None,
                    failure: None,
                    next_attempt_at: start,
                    lease_until: None,
                    event: Some(&event),
                };
                assert!(store.change(&order.row.id, &change).await.unwrap());
            }
        }

        let statements = Arc::new(AtomicUsize::new(0));
        let counting = tracing::subscriber::set_default(Statements(statements.clone()));
        let page = store
            .list(&Filter {
                user_id: Some(&user),
                status: None,
                before: None,
                fetch: 5,
            })
            .await
            .unwrap();
        drop(counting);
        if db.backend == testkit::db::Backend::Postgres {
            // The orders, their lines, their history (and at most a connection check or two): not
            // three more for each order of the page, which made 16 for these 5.
            let ran = statements.load(Ordering::SeqCst);
            assert!(
                (1..=5).contains(&ran),
                "{}: a page of 5 orders took {ran} statements",
                db.backend
            );
        }
        let expected: Vec<_> = placed.iter().rev().take(5).collect();
        assert_eq!(page.len(), 5, "{}", db.backend);
        for (got, want) in page.iter().zip(expected) {
            let whole = store.order(&want.row.id).await.unwrap().unwrap();
            assert_eq!(got.row.id, want.row.id, "{}", db.backend);
            let lines = |o: &orders::storage::Order| {
                o.lines
                    .iter()
                    .map(|l| (l.line_no, l.sku.clone(), l.quantity))
                    .collect::<Vec<_>>()
            };
            let history = |o: &orders::storage::Order| {
                o.history
                    .iter()
                    .map(|h| (h.status.clone(), h.note.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(lines(got), lines(want), "{}", db.backend);
            assert_eq!(history(got), history(&whole), "{}", db.backend);
            assert_eq!(got.row.status, whole.row.status, "{}", db.backend);
        }
        let shipped = &page[0];
        assert_eq!(
            shipped
                .history
                .iter()
                .map(|h| h.status.as_str())
                .collect::<Vec<_>>(),
            ["pending", "confirmed", "shipped"],
            "{}",
            db.backend
        );
        assert_eq!(page[1].history.len(), 1, "{}", db.backend);
    }
}
