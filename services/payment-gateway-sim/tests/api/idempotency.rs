//! Idempotency keys: one effect per key, the first answer replayed byte for byte.
use serde_json::{json, Value};

use crate::{new_order, rand_suffix, spawn_app, stripe_error, TestApp};

fn authorization(order: &str) -> Vec<(&'static str, String)> {
    vec![
        ("amount", "4200".into()),
        ("currency", "eur".into()),
        ("payment_method", "pm_card_visa".into()),
        ("capture_method", "manual".into()),
        ("confirm", "true".into()),
        ("metadata[order_id]", order.into()),
    ]
}

async fn send(
    app: &TestApp,
    path: &str,
    form: &[(&'static str, String)],
    key: &str,
) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .bearer_auth(crate::KEY)
        .header("Idempotency-Key", key)
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeat_with_the_same_key_replays_the_first_answer_byte_for_byte() {
    let app = spawn_app().await;
    let order = new_order();
    let key = format!("key-{}", rand_suffix());
    let form = authorization(&order);

    let first = send(&app, "/v1/payment_intents", &form, &key).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.unwrap();

    // The same parameters in another order are the same request.
    let mut reordered = form.clone();
    reordered.reverse();
    let again = send(&app, "/v1/payment_intents", &reordered, &key).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.bytes().await.unwrap(), first_body);

    assert_eq!(app.by_order(&order).await.len(), 1);

    // A capture under its own key happens once too.
    let intent: Value = serde_json::from_slice(&first_body).unwrap();
    let path = format!(
        "/v1/payment_intents/{}/capture",
        intent["id"].as_str().unwrap()
    );
    let capture_key = format!("capture-{}", rand_suffix());
    let amount = [("amount_to_capture", "1000".to_owned())];
    let captured = send(&app, &path, &amount, &capture_key).await;
    assert_eq!(captured.status(), 200);
    let captured = captured.bytes().await.unwrap();
    let replayed = send(&app, &path, &amount, &capture_key).await;
    assert_eq!(replayed.status(), 200, "not 400 for capturing twice");
    assert_eq!(replayed.bytes().await.unwrap(), captured);
}

#[tokio::test]
async fn a_declined_answer_is_replayed_too() {
    let app = spawn_app().await;
    let order = new_order();
    let key = format!("key-{}", rand_suffix());
    let mut form = authorization(&order);
    form[2].1 = "pm_card_chargeDeclinedInsufficientFunds".into();

    let first = send(&app, "/v1/payment_intents", &form, &key).await;
    assert_eq!(first.status(), 402);
    let first_body = first.bytes().await.unwrap();
    let again = send(&app, "/v1/payment_intents", &form, &key).await;
    assert_eq!(again.status(), 402);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.bytes().await.unwrap(), first_body);
    assert_eq!(app.by_order(&order).await.len(), 1);
}

#[tokio::test]
async fn the_same_key_with_other_parameters_is_an_idempotency_error() {
    let app = spawn_app().await;
    let order = new_order();
    let key = format!("key-{}", rand_suffix());
    let form = authorization(&order);
    assert_eq!(
        send(&app, "/v1/payment_intents", &form, &key)
            .await
            .status(),
        200
    );
    let mut other = form.clone();
    other[0].1 = "4300".into();
    let error = stripe_error(send(&app, "/v1/payment_intents", &other, &key).await, 400).await;
    assert_eq!(error["type"], "idempotency_error");
    assert!(error["message"].as_str().unwrap().contains(&key));
    // Another endpoint under the same key is other parameters too.
    let refund = [("payment_intent", "pi_x".to_owned())];
    let error = stripe_error(send(&app, "/v1/refunds", &refund, &key).await, 400).await;
    assert_eq!(error["type"], "idempotency_error");
    assert_eq!(app.by_order(&order).await.len(), 1);
}

#[tokio::test]
async fn a_request_refused_for_its_parameters_does_not_use_up_its_key() {
    let app = spawn_app().await;
    let order = new_order();
    let key = format!("key-{}", rand_suffix());
    let mut bad = authorization(&order);
    bad[0].1 = "-1".into();
    let error = stripe_error(send(&app, "/v1/payment_intents", &bad, &key).await, 400).await;
    assert_eq!(error["param"], "amount");
    let corrected = send(&app, "/v1/payment_intents", &authorization(&order), &key).await;
    assert_eq!(corrected.status(), 200);
    assert!(corrected.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.by_order(&order).await.len(), 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_exactly_one_intent() {
    let app = spawn_app().await;
    // Latency keeps the first request in flight long enough for the others to meet it.
    app.set_faults(json!({"latency_ms": 1500})).await;
    let order = new_order();
    let key = format!("key-{}", rand_suffix());
    let form = authorization(&order);
    let answers =
        futures::future::join_all((0..6).map(|_| send(&app, "/v1/payment_intents", &form, &key)))
            .await;
    let mut created = Vec::new();
    let mut conflicts = 0;
    for answer in answers {
        match answer.status().as_u16() {
            200 => created.push(answer.bytes().await.unwrap()),
            409 => {
                let error = stripe_error(answer, 409).await;
                assert_eq!(error["type"], "idempotency_error");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text().await.unwrap()),
        }
    }
    assert!(conflicts >= 1, "the requests did not overlap");
    assert!(!created.is_empty());
    assert!(created.iter().all(|body| *body == created[0]));
    app.set_faults(json!({"latency_ms": 0})).await;

    let found = app.by_order(&order).await;
    assert_eq!(found.len(), 1, "exactly one intent");
    let first: Value = serde_json::from_slice(&created[0]).unwrap();
    assert_eq!(found[0]["id"], first["id"]);
    // Once the first has finished, the key replays it.
    let later = send(&app, "/v1/payment_intents", &form, &key).await;
    assert_eq!(later.headers()["idempotent-replayed"], "true");
    assert_eq!(later.bytes().await.unwrap(), created[0]);
}
