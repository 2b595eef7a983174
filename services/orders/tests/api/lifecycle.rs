//! After placement: tracking, history, shipping (capture on shipment), delivery, cancellation
//! before and after capture, and who may see what.
use serde_json::{json, Value};

use crate::{new_id, stack_on, stacks};

#[tokio::test]
async fn ship_captures_deliver_ends_and_history_shows_it() {
    for s in stacks().await {
        let p = s.product("SHIP-1", 4000, "EUR", 3).await;
        let who = s.customer();
        let order: Value = s.buy(&who, &p, 1).await;
        let id = order["id"].as_str().unwrap();
        // Customers cannot ship; deliver before ship is a conflict.
        assert_eq!(s.act(&who.token, id, "ship").await.status(), 403);
        assert_eq!(s.act(&s.admin, id, "deliver").await.status(), 409);
        let shipped = s.act(&s.admin, id, "ship").await;
        assert_eq!(shipped.status(), 200);
        let shipped: Value = shipped.json().await.unwrap();
        assert_eq!(shipped["status"], "shipped");
        let payment_id = shipped["payment_id"].as_str().unwrap();
        let payment: Value = s
            .http
            .get(format!("{}/payments/{payment_id}", s.payments))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(payment["status"], "captured");
        assert_eq!(payment["captured_amount"], 4000);
        // Shipping again answers the same; a shipped order cannot be cancelled.
        assert_eq!(s.act(&s.admin, id, "ship").await.status(), 200);
        assert_eq!(s.act(&who.token, id, "cancel").await.status(), 409);
        let delivered: Value = s.act(&s.admin, id, "deliver").await.json().await.unwrap();
        assert_eq!(delivered["status"], "delivered");
        let history: Vec<_> = delivered["status_history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["status"].as_str().unwrap())
            .collect();
        assert_eq!(history, ["pending", "confirmed", "shipped", "delivered"]);

        // History: the customer's own, newest first, filterable; admins filter by user.
        let second: Value = s.buy(&who, &p, 1).await;
        let list = |token: String, query: String| {
            let s = &s;
            async move {
                let v: Value = s
                    .http
                    .get(format!("{}/orders{query}", s.orders))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["id"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            list(who.token.clone(), String::new()).await,
            [second["id"].as_str().unwrap(), id]
        );
        assert_eq!(
            list(who.token.clone(), "?status=delivered".into()).await,
            [id]
        );
        assert_eq!(list(who.token.clone(), "?limit=1".into()).await.len(), 1);
        let stranger = s.customer();
        assert!(list(stranger.token.clone(), String::new()).await.is_empty());
        assert_eq!(
            list(s.admin.clone(), format!("?user_id={}", who.id))
                .await
                .len(),
            2
        );
        s.conserved(&["SHIP-1"]).await;
    }
}

#[tokio::test]
async fn someone_elses_order_does_not_exist_for_you() {
    for s in stacks().await {
        let p = s.product("PRIV-1", 100, "EUR", 3).await;
        let owner = s.customer();
        let order: Value = s.buy(&owner, &p, 1).await;
        let id = order["id"].as_str().unwrap();
        let stranger = s.customer();
        assert_eq!(s.order(&stranger.token, id).await.status(), 404);
        assert_eq!(s.act(&stranger.token, id, "cancel").await.status(), 404);
        assert_eq!(s.order(&owner.token, id).await.status(), 200);
        assert_eq!(s.order(&s.admin, id).await.status(), 200);
        assert_eq!(s.order(&owner.token, "not-an-id").await.status(), 404);
        assert_eq!(s.order(&owner.token, &new_id()).await.status(), 404);
        s.conserved(&["PRIV-1"]).await;
    }
}

#[tokio::test]
async fn cancelling_voids_or_refunds_and_gives_the_stock_back() {
    for s in stacks().await {
        let p = s.product("CAN-1", 700, "EUR", 4).await;
        let who = s.customer();
        // Before capture: the authorization is voided, the sold units return.
        let order: Value = s.buy(&who, &p, 2).await;
        let id = order["id"].as_str().unwrap();
        assert_eq!(s.stock("CAN-1").await["on_hand"], 2);
        let r = s.act(&who.token, id, "cancel").await;
        assert_eq!(r.status(), 200);
        let cancelled: Value = r.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(s.stock("CAN-1").await["on_hand"], 4);
        assert_eq!(
            s.act(&who.token, id, "cancel").await.status(),
            200,
            "cancelling again answers the same"
        );
        assert_eq!(s.act(&s.admin, id, "ship").await.status(), 409);

        // After capture (made at payments directly): the capture is refunded.
        let order: Value = s.buy(&who, &p, 1).await;
        let id = order["id"].as_str().unwrap();
        let payment = order["payment_id"].as_str().unwrap();
        let r = s
            .http
            .post(format!("{}/payments/{payment}/capture", s.payments))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = s.act(&s.admin, id, "cancel").await;
        assert_eq!(r.status(), 200);
        let p: Value = s
            .http
            .get(format!("{}/payments/{payment}", s.payments))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(p["status"], "refunded");
        assert_eq!(p["refunded_amount"], 700);
        assert_eq!(s.stock("CAN-1").await["on_hand"], 4);
        s.conserved(&["CAN-1"]).await;
    }
}

#[tokio::test]
async fn a_slow_gateway_answers_202_and_the_saga_finishes_on_its_own() {
    for db in testkit::TestDatabase::all().await {
        let s = stack_on(db.backend, json!({"request_deadline_ms": 300})).await;
        let p = s.product("SLOW-1", 300, "EUR", 2).await;
        s.set_faults(json!({"latency_ms": 800})).await;
        let who = s.customer();
        let r = s
            .place(
                &who,
                &new_id(),
                json!([{"product_id": p, "quantity": 1}]),
                "pm_card_visa",
            )
            .await;
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let order: Value = r.json().await.unwrap();
        assert_eq!(order["status"], "pending");
        assert_eq!(
            location,
            format!("/orders/{}", order["id"].as_str().unwrap())
        );
        let done = s.settled(order["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "confirmed");
        s.set_faults(json!({"latency_ms": 0})).await;
        s.conserved(&["SLOW-1"]).await;
    }
}

#[tokio::test]
async fn what_other_services_report_reaches_the_order() {
    for s in stacks().await {
        let p = s.product("EVT-1", 900, "EUR", 3).await;
        let who = s.customer();
        // A refund made at the payment gateway (after shipping) shows in the order's history.
        let order: Value = s.buy(&who, &p, 1).await;
        let id = order["id"].as_str().unwrap();
        assert_eq!(s.act(&s.admin, id, "ship").await.status(), 200);
        let payment = order["payment_id"].as_str().unwrap();
        let r = s
            .http
            .post(format!("{}/payments/{payment}/refunds", s.payments))
            .bearer_auth(&s.admin)
            .header("Idempotency-Key", "goodwill")
            .json(&json!({"amount": 300}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let noted = eventually(&s, id, |o| {
            o["status_history"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["note"] == "300 refunded at the payment gateway")
        })
        .await;
        assert_eq!(noted["status"], "shipped");

        // An authorization voided behind orders' back: the order can never be charged, so it is
        // cancelled and its stock returned.
        let order: Value = s.buy(&who, &p, 2).await;
        let id = order["id"].as_str().unwrap();
        assert_eq!(s.stock("EVT-1").await["on_hand"], 0);
        let payment = order["payment_id"].as_str().unwrap();
        let r = s
            .http
            .post(format!("{}/payments/{payment}/void", s.payments))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cancelled = eventually(&s, id, |o| o["status"] == "cancelled").await;
        assert_eq!(
            cancelled["failure"],
            "the payment was voided at the payment gateway"
        );
        assert_eq!(s.stock("EVT-1").await["on_hand"], 2);
        s.conserved(&["EVT-1"]).await;
    }
}

/// Waits (bounded) until the order satisfies `done`.
async fn eventually(s: &crate::Stack, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = s.order(&s.admin, id).await.json().await.unwrap();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{}: order {id} never got there: {last}", s.backend);
}
