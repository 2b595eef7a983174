//! Webhooks from the gateway: signed deliveries are applied once; bad, old or replayed ones change
//! nothing. What is done at the gateway directly (a cancel, a refund) reaches payments this way.
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{apps, PSP_KEY, WEBHOOK_SECRET};

fn signed(body: &str, secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn unsigned_old_or_replayed_webhooks_change_nothing() {
    for app in apps().await {
        let (_, p) = app.pay(900, "pm_card_visa").await;
        let id = p["id"].as_str().unwrap();
        let mut intent = app.intents_of(id).await.remove(0);
        intent["status"] = json!("canceled");
        let event = json!({"id": format!("evt_{}", crate::new_id().replace('-', "")),
            "object": "event", "type": "payment_intent.canceled", "data": {"object": intent}})
        .to_string();
        let now = chrono::Utc::now().timestamp();
        let post = |signature: String| {
            app.http
                .post(app.url("/webhooks/gateway"))
                .header("Stripe-Signature", signature)
                .header("content-type", "application/json")
                .body(event.clone())
                .send()
        };
        for bad in [
            signed(&event, "whsec_wrong", now),
            signed(&event, WEBHOOK_SECRET, now - 301),
            signed("{}", WEBHOOK_SECRET, now),
            "t=1,v1=zz".to_string(),
        ] {
            let r = post(bad).await.unwrap();
            assert_eq!(r.status(), 400);
            assert_eq!(r.headers()["content-type"], "application/problem+json");
        }
        assert_eq!(app.payment(id).await["status"], "authorized");

        let r = post(signed(&event, WEBHOOK_SECRET, now)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(app.payment(id).await["status"], "voided");
        let again: Value = post(signed(&event, WEBHOOK_SECRET, now))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again["duplicate"], true);
        assert_eq!(app.payment(id).await["status"], "voided");
    }
}

#[tokio::test]
async fn extreme_or_garbage_signature_timestamps_are_400_and_change_nothing() {
    for app in apps().await {
        let (_, p) = app.pay(700, "pm_card_visa").await;
        let id = p["id"].as_str().unwrap();
        let mut intent = app.intents_of(id).await.remove(0);
        intent["status"] = json!("canceled");
        let event = json!({"id": format!("evt_{}", crate::new_id().replace('-', "")),
            "object": "event", "type": "payment_intent.canceled", "data": {"object": intent}})
        .to_string();
        let post = |signature: String| {
            app.http
                .post(app.url("/webhooks/gateway"))
                .header("Stripe-Signature", signature)
                .header("content-type", "application/json")
                .body(event.clone())
                .send()
        };
        let mut headers: Vec<String> = [i64::MIN, i64::MIN + 1, i64::MAX, 0, -1]
            .iter()
            .map(|&t| signed(&event, WEBHOOK_SECRET, t))
            .collect();
        headers.extend(
            [
                "t=garbage,v1=00",
                "t=99999999999999999999999,v1=00",
                "t=,v1=",
            ]
            .map(String::from),
        );
        for header in headers {
            let r = post(header.clone()).await.unwrap();
            assert_eq!(r.status(), 400, "{}: {header}", app.backend);
            assert_eq!(r.headers()["content-type"], "application/problem+json");
        }
        assert_eq!(app.payment(id).await["status"], "authorized");
        // Nothing was recorded: the same event, properly signed, is new and applies.
        let now = chrono::Utc::now().timestamp();
        let applied: Value = post(signed(&event, WEBHOOK_SECRET, now))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(applied, json!({"received": true}), "{}", app.backend);
        assert_eq!(app.payment(id).await["status"], "voided");
    }
}

#[tokio::test]
async fn a_cancel_and_a_refund_made_at_the_gateway_reach_payments() {
    for app in apps().await {
        let (_, p) = app.pay(800, "pm_card_visa").await;
        let id = p["id"].as_str().unwrap();
        let intent = app.intents_of(id).await.remove(0);
        let pi = intent["id"].as_str().unwrap();
        let r = app
            .http
            .post(format!("{}/v1/payment_intents/{pi}/cancel", app.sim))
            .bearer_auth(PSP_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        app.eventually(id, "voided").await;

        let (_, p) = app.pay(800, "pm_card_visa").await;
        let id = p["id"].as_str().unwrap();
        assert_eq!(
            app.post(&format!("/payments/{id}/capture"), None)
                .await
                .status(),
            200
        );
        assert_eq!(app.refund(id, "ours", Some(300)).await.status(), 201);
        let pi = app.intents_of(id).await.remove(0)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app
            .http
            .post(format!("{}/v1/refunds", app.sim))
            .bearer_auth(PSP_KEY)
            .form(&[("payment_intent", pi.as_str()), ("amount", "200")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let mut refunded = Value::Null;
        for _ in 0..100 {
            refunded = app.payment(id).await["refunded_amount"].clone();
            if refunded == 500 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(refunded, 500, "our 300 and the gateway's 200, each once");
        // Only 300 is left: more is refused before reaching the gateway.
        assert_eq!(app.refund(id, "more", Some(301)).await.status(), 409);
    }
}

#[tokio::test]
async fn the_webhook_of_an_authorization_already_recorded_is_nothing_new() {
    for app in apps().await {
        let (status, p) = app.pay(600, "pm_card_visa").await;
        assert_eq!(status, 201, "{}: {p}", app.backend);
        let id = p["id"].as_str().unwrap();
        let intent = app.intents_of(id).await.remove(0);
        assert_eq!(intent["status"], "requires_capture");
        // What the simulator sends after the authorization it answered: payments has it already.
        let event = json!({"id": format!("evt_{}", crate::new_id().replace('-', "")),
            "object": "event", "type": "payment_intent.amount_capturable_updated",
            "data": {"object": intent}})
        .to_string();
        let now = chrono::Utc::now().timestamp();
        let answer: Value = app
            .http
            .post(app.url("/webhooks/gateway"))
            .header("Stripe-Signature", signed(&event, WEBHOOK_SECRET, now))
            .header("content-type", "application/json")
            .body(event.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            answer,
            json!({"received": true, "duplicate": true}),
            "{}: nothing new, so nothing written",
            app.backend
        );
        assert_eq!(app.payment(id).await["status"], "authorized");
    }
}
