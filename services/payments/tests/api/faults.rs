//! Payments against a gateway that fails: 5xx, lost answers, hangs, and a dead gateway. Every
//! payment settles, nothing is captured twice, and what the gateway holds equals what payments
//! says.
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::{apps, new_id, TestApp};

/// Sends a request until it gets one of `wanted` (bounded), as a caller honouring 503/504 would.
async fn until(app: &TestApp, wanted: u16, send: impl Fn() -> reqwest::RequestBuilder) -> Value {
    let mut last = String::new();
    for _ in 0..60 {
        let r = send().send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        if status == wanted {
            return serde_json::from_str(&text).unwrap();
        }
        assert!(
            [409, 502, 503, 504].contains(&status),
            "{}: unexpected {status}: {text}",
            app.backend
        );
        last = format!("{status} {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{}: never {wanted}: {last}", app.backend);
}

#[tokio::test]
async fn with_injected_5xx_and_lost_answers_every_payment_settles_exactly_once() {
    const PAYMENTS: usize = 500;
    for app in apps().await {
        app.set_faults(json!({"error_rate": 0.3, "lost_answer_rate": 0.1}))
            .await;
        let app = &app;
        let ids: Vec<(String, i64)> = futures::stream::iter(0..PAYMENTS)
            .map(|i| async move {
                let key = new_id();
                let amount = 1000 + i as i64;
                let body = json!({"order_id": new_id(), "amount": amount, "currency": "EUR",
                    "payment_method": "pm_card_visa", "customer_id": new_id()});
                let p = until(app, 201, || {
                    app.http
                        .post(app.url("/payments"))
                        .bearer_auth(&app.orders)
                        .header("Idempotency-Key", &key)
                        .json(&body)
                })
                .await;
                let id = p["id"].as_str().unwrap().to_owned();
                let path = app.url(&format!("/payments/{id}/capture"));
                until(app, 200, || app.http.post(&path).bearer_auth(&app.orders)).await;
                (id, amount)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        app.set_faults(json!({"error_rate": 0.0, "lost_answer_rate": 0.0}))
            .await;
        let mut ours = 0;
        let mut theirs = 0;
        for (id, amount) in &ids {
            let p = app.eventually(id, "captured").await;
            assert_eq!(p["captured_amount"], *amount);
            let intents = app.intents_of(id).await;
            assert_eq!(intents.len(), 1, "{}: one intent per payment", app.backend);
            assert_eq!(intents[0]["status"], "succeeded");
            ours += p["captured_amount"].as_i64().unwrap();
            theirs += intents[0]["amount_received"].as_i64().unwrap();
        }
        assert_eq!(ours, theirs, "{}", app.backend);
        assert_eq!(ours, ids.iter().map(|(_, a)| a).sum::<i64>());
    }
}

#[tokio::test]
async fn an_unknown_outcome_is_504_pending_and_reconciliation_settles_it() {
    for db in testkit::TestDatabase::all().await {
        let app = crate::spawn_app_with(db, false).await;
        app.set_faults(json!({"hang_rate": 1.0, "hang_ms": 2500}))
            .await;
        let order = new_id();
        let body = json!({"order_id": order, "amount": 4200, "currency": "EUR",
            "payment_method": "pm_card_visa", "customer_id": new_id()});
        let r = app.authorize(&new_id(), &body).await;
        assert_eq!(r.status(), 504, "{}", r.text().await.unwrap());
        let listed: Value = app
            .http
            .get(app.url("/payments"))
            .query(&[("order_id", &order)])
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let p = &listed["items"][0];
        assert_eq!(p["status"], "pending");
        // Voiding a payment whose outcome is unknown must wait for it.
        let id = p["id"].as_str().unwrap();
        let void = app.post(&format!("/payments/{id}/void"), None).await;
        assert_eq!(void.status(), 409);
        app.set_faults(json!({"hang_rate": 0.0})).await;
        app.eventually(id, "authorized").await;
        assert_eq!(app.intents_of(id).await.len(), 1);
    }
}

#[tokio::test]
async fn a_dead_gateway_opens_the_breaker_and_answers_503_without_calling_it() {
    for app in apps().await {
        app.set_faults(json!({"error_rate": 1.0})).await;
        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(app.pay(100, "pm_card_visa").await);
        }
        let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
        // The simulator is reachable and answers 5xx, which payments reports as 504 (outcome
        // unknown); a 503 ("nothing was charged") comes only from the open breaker, which does
        // not call the gateway.
        assert_eq!(statuses[0], 504, "{statuses:?}");
        assert_eq!(statuses[3], 503, "{statuses:?}");
        assert_eq!(answers[3].1["status"], 503);
        app.set_faults(json!({"error_rate": 0.0})).await;
        // Once the breaker's open period is over, its probe reaches the healthy gateway and
        // payments go through again: polled, within a deadline, as a caller would retry a 503.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut last = app.pay(100, "pm_card_visa").await;
        while last.0 != 201 && tokio::time::Instant::now() < deadline {
            assert_eq!(last.0, 503, "{}: {last:?}", app.backend);
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = app.pay(100, "pm_card_visa").await;
        }
        assert_eq!(last.0, 201, "{}: {last:?}", app.backend);
    }
}
