//! Authorize, capture, void and refund; declines; validation; illegal transitions; who may read.
use serde_json::json;

use crate::{apps, new_id};

#[tokio::test]
async fn authorize_partial_capture_and_several_refunds_never_exceed_the_capture() {
    for app in apps().await {
        let (status, p) = app.pay(1000, "pm_card_visa").await;
        assert_eq!(status, 201, "{}: {p}", app.backend);
        assert_eq!(p["status"], "authorized");
        assert!(p.get("payment_method").is_none());
        let id = p["id"].as_str().unwrap();

        let r = app
            .post(
                &format!("/payments/{id}/capture"),
                Some(json!({"amount": 600})),
            )
            .await;
        assert_eq!(r.status(), 200);
        let captured: serde_json::Value = r.json().await.unwrap();
        assert_eq!(captured["status"], "captured");
        assert_eq!(captured["captured_amount"], 600);
        // Capturing again answers the same; another amount is a conflict.
        let again = app.post(&format!("/payments/{id}/capture"), None).await;
        assert_eq!(again.status(), 200);
        let other = app
            .post(
                &format!("/payments/{id}/capture"),
                Some(json!({"amount": 700})),
            )
            .await;
        assert_eq!(other.status(), 409);
        let same = app
            .post(
                &format!("/payments/{id}/capture"),
                Some(json!({"amount": 600})),
            )
            .await;
        assert_eq!(same.status(), 200);

        let intents = app.intents_of(id).await;
        assert_eq!(intents.len(), 1);
        assert_eq!(intents[0]["amount_received"], 600);
        assert_eq!(intents[0]["status"], "succeeded");

        assert_eq!(app.refund(id, "r1", Some(200)).await.status(), 201);
        // The same key again is the same refund, not a second one.
        assert_eq!(app.refund(id, "r1", Some(200)).await.status(), 201);
        assert_eq!(app.refund(id, "r1", Some(250)).await.status(), 422);
        assert_eq!(app.refund(id, "r2", Some(300)).await.status(), 201);
        let too_much = app.refund(id, "r3", Some(101)).await;
        assert_eq!(too_much.status(), 409);
        let problem: serde_json::Value = too_much.json().await.unwrap();
        assert_eq!(problem["remaining"], 100);
        // Without an amount: what is left.
        let last = app.refund(id, "r4", None).await;
        assert_eq!(last.status(), 201);
        let last: serde_json::Value = last.json().await.unwrap();
        assert_eq!(last["amount"], 100);

        let p = app.payment(id).await;
        assert_eq!(p["status"], "refunded");
        assert_eq!(p["refunded_amount"], 600);
        let refunds: serde_json::Value = app
            .http
            .get(app.url(&format!("/payments/{id}/refunds")))
            .bearer_auth(&app.orders)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(refunds["items"].as_array().unwrap().len(), 3);
        assert_eq!(app.refund(id, "r5", Some(1)).await.status(), 409);

        // Every gateway call is in the audit log, before and after.
        let calls: Vec<serde_json::Value> = app
            .http
            .get(app.url(&format!("/payments/{id}/gateway-calls")))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let operations: Vec<_> = calls
            .iter()
            .filter(|c| c["phase"] == "request")
            .map(|c| c["operation"].as_str().unwrap())
            .collect();
        assert_eq!(
            operations,
            ["authorize", "capture", "refund", "refund", "refund"]
        );
        assert_eq!(calls.len(), 10);
        assert!(calls
            .iter()
            .all(|c| c["idempotency_key"].as_str().unwrap().starts_with(id)));
    }
}

#[tokio::test]
async fn void_cancels_the_authorization_and_illegal_transitions_are_409() {
    for app in apps().await {
        let (_, p) = app.pay(500, "pm_card_mastercard").await;
        let id = p["id"].as_str().unwrap();
        assert_eq!(app.refund(id, "early", None).await.status(), 409);
        let r = app.post(&format!("/payments/{id}/void"), None).await;
        assert_eq!(r.status(), 200);
        let voided: serde_json::Value = r.json().await.unwrap();
        assert_eq!(voided["status"], "voided");
        assert_eq!(app.intents_of(id).await[0]["status"], "canceled");
        assert_eq!(
            app.post(&format!("/payments/{id}/void"), None)
                .await
                .status(),
            200
        );
        assert_eq!(
            app.post(&format!("/payments/{id}/capture"), None)
                .await
                .status(),
            409
        );

        let (_, p) = app.pay(500, "pm_card_visa").await;
        let id = p["id"].as_str().unwrap();
        assert_eq!(
            app.post(&format!("/payments/{id}/capture"), None)
                .await
                .status(),
            200
        );
        let void = app.post(&format!("/payments/{id}/void"), None).await;
        assert_eq!(void.status(), 409);
        let over = app
            .post(
                &format!("/payments/{id}/capture"),
                Some(json!({"amount": 501})),
            )
            .await;
        assert_eq!(over.status(), 409);
    }
}

#[tokio::test]
async fn declines_of_every_kind_are_402_with_the_reason() {
    let cases = [
        ("pm_card_chargeDeclined", "generic_decline"),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
        ),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
        ("pm_card_chargeDeclinedProcessingError", "processing_error"),
    ];
    for app in apps().await {
        for (method, reason) in cases {
            let (status, problem) = app.pay(700, method).await;
            assert_eq!(status, 402, "{method}: {problem}");
            assert_eq!(problem["decline_code"], reason, "{method}");
            assert_eq!(
                problem["type"],
                "https://agora.dev/problems/payment-declined"
            );
            let id = problem["payment_id"].as_str().unwrap();
            let p = app.payment(id).await;
            assert_eq!(p["status"], "declined");
            let r = app.post(&format!("/payments/{id}/capture"), None).await;
            assert_eq!(r.status(), 409);
        }
        // A payment method the gateway does not know: refused, not a server error.
        let (status, problem) = app.pay(700, "pm_card_unknown").await;
        assert_eq!(status, 422, "{problem}");
    }
}

#[tokio::test]
async fn bad_requests_are_4xx_and_change_nothing() {
    for app in apps().await {
        let order = new_id();
        let good = json!({"order_id": order, "amount": 100, "currency": "EUR",
            "payment_method": "pm_card_visa", "customer_id": new_id()});
        // No idempotency key.
        let r = app
            .http
            .post(app.url("/payments"))
            .bearer_auth(&app.orders)
            .json(&good)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // Card details anywhere: refused, whatever else the body says.
        let mut card = good.clone();
        card["card"] = json!({"number": "4242424242424242", "cvc": "123", "exp_month": 12});
        let r = app.authorize(&new_id(), &card).await;
        assert_eq!(r.status(), 422);
        let text = r.text().await.unwrap();
        assert!(!text.contains("4242424242424242"), "{text}");
        assert!(text.contains("card.number"), "{text}");
        for (field, value) in [
            ("amount", json!(0)),
            ("amount", json!(-5)),
            ("amount", json!(1.5)),
            ("currency", json!("eur")),
            ("payment_method", json!("4242424242424242")),
            ("order_id", json!("")),
        ] {
            let mut body = good.clone();
            body[field] = value.clone();
            let r = app.authorize(&new_id(), &body).await;
            assert_eq!(r.status(), 422, "{field}={value}");
            assert_eq!(
                r.headers()["content-type"],
                "application/problem+json",
                "{field}"
            );
        }
        // Not JSON at all.
        let r = app
            .http
            .post(app.url("/payments"))
            .bearer_auth(&app.orders)
            .header("Idempotency-Key", new_id())
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // A customer cannot charge; nobody without a token can.
        let r = app
            .http
            .post(app.url("/payments"))
            .bearer_auth(app.issuer.customer())
            .header("Idempotency-Key", new_id())
            .json(&good)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = app
            .http
            .post(app.url("/payments"))
            .header("Idempotency-Key", new_id())
            .json(&good)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // Nothing of the above reached the gateway or the database.
        let listed: serde_json::Value = app
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
        assert_eq!(listed["items"].as_array().unwrap().len(), 0);
        // Unknown or malformed ids.
        for id in [new_id(), "nope".to_string()] {
            let r = app.post(&format!("/payments/{id}/capture"), None).await;
            assert_eq!(r.status(), 404);
        }
    }
}

#[tokio::test]
async fn a_payment_is_visible_to_its_customer_admins_and_services_only() {
    for app in apps().await {
        let customer = new_id();
        let order = new_id();
        let body = json!({"order_id": order, "amount": 100, "currency": "EUR",
            "payment_method": "pm_card_visa", "customer_id": customer});
        let p: serde_json::Value = app.authorize(&new_id(), &body).await.json().await.unwrap();
        let id = p["id"].as_str().unwrap();
        let owner = app
            .issuer
            .sign(&app.issuer.claims(&customer, &["customer"], ""));
        let stranger = app.issuer.customer();
        for (token, expected, listed) in [
            (&owner, 200, 1),
            (&app.admin, 200, 1),
            (&app.orders, 200, 1),
            (&stranger, 404, 0),
        ] {
            let r = app
                .http
                .get(app.url(&format!("/payments/{id}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), expected);
            let list: serde_json::Value = app
                .http
                .get(app.url("/payments"))
                .query(&[("order_id", &order)])
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(list["items"].as_array().unwrap().len(), listed);
        }
    }
}
