//! Fault injection: 5xx that did nothing, lost answers and hangs that did something, latency.
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{new_order, ok, rand_suffix, spawn_app, spawn_with, stripe_error, KEY};

fn authorization(order: &str) -> [(&'static str, String); 6] {
    [
        ("amount", "5000".into()),
        ("currency", "eur".into()),
        ("payment_method", "pm_card_visa".into()),
        ("capture_method", "manual".into()),
        ("confirm", "true".into()),
        ("metadata[order_id]", order.into()),
    ]
}

#[tokio::test]
async fn an_injected_error_is_a_5xx_api_error_and_does_nothing() {
    let app = spawn_app().await;
    let faults = app.set_faults(json!({"error_rate": 1.0})).await;
    assert_eq!(faults["error_rate"], 1.0);
    let order = new_order();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = app
            .http
            .post(app.url("/v1/payment_intents"))
            .bearer_auth(KEY)
            .form(&authorization(&order))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let error = stripe_error(r, status).await;
        assert_eq!(error["type"], "api_error");
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| [500, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(app
        .get("/v1/payment_intents/pi_x")
        .await
        .status()
        .is_server_error());
    // Outside /v1, no faults.
    ok(app.http.get(app.url("/health/ready")).send().await.unwrap()).await;

    app.set_faults(json!({"error_rate": 0.0})).await;
    assert!(app.by_order(&order).await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn a_lost_answer_took_effect_and_its_key_replays_it() {
    let app = spawn_app().await;
    app.set_faults(json!({"lost_answer_rate": 1.0})).await;
    let order = new_order();
    let key = format!("key-{}", rand_suffix());
    let request = || {
        app.http
            .post(app.url("/v1/payment_intents"))
            .bearer_auth(KEY)
            .header("Idempotency-Key", &key)
            .form(&authorization(&order))
    };
    let lost = match request().send().await {
        Err(e) => Err(e),
        Ok(response) => response.bytes().await.map(|_| ()),
    };
    let error = lost.expect_err("the answer must be lost");
    assert!(!error.is_timeout(), "{error}");

    // Searching is a GET: lost answers hit POSTs only.
    let found = app.by_order(&order).await;
    assert_eq!(found.len(), 1, "the request took effect");
    assert_eq!(found[0]["status"], "requires_capture");

    app.set_faults(json!({"lost_answer_rate": 0.0})).await;
    let retried = request().send().await.unwrap();
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    let retried = ok(retried).await;
    assert_eq!(retried["id"], found[0]["id"]);
    assert_eq!(app.by_order(&order).await.len(), 1);
}

#[tokio::test]
async fn a_hang_outlasts_the_client_timeout_but_the_request_took_effect() {
    let app = spawn_app().await;
    app.set_faults(json!({"hang_rate": 1.0, "hang_ms": 3000}))
        .await;
    let order = new_order();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let error = impatient
        .post(app.url("/v1/payment_intents"))
        .bearer_auth(KEY)
        .form(&authorization(&order))
        .send()
        .await
        .expect_err("the answer comes too late");
    assert!(error.is_timeout(), "{error}");

    app.set_faults(json!({"hang_rate": 0.0})).await;
    let found = app.by_order(&order).await;
    assert_eq!(found.len(), 1, "the request took effect");
}

#[tokio::test]
async fn latency_is_added_to_every_request() {
    let app = spawn_app().await;
    app.set_faults(json!({"latency_ms": 400})).await;
    let started = Instant::now();
    let r = app.get("/v1/payment_intents/pi_x").await;
    assert_eq!(r.status(), 404);
    assert!(started.elapsed() >= Duration::from_millis(400));
    app.set_faults(json!({"latency_ms": 0})).await;
    let started = Instant::now();
    app.get("/v1/payment_intents/pi_x").await;
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn fault_knobs_are_validated_and_changed_one_at_a_time() {
    let app = spawn_app().await;
    app.set_faults(json!({"latency_ms": 5})).await;
    let faults = app.set_faults(json!({"hang_rate": 0.25})).await;
    assert_eq!(
        faults,
        json!({"latency_ms": 5, "error_rate": 0.0, "hang_rate": 0.25, "hang_ms": 30000,
            "lost_answer_rate": 0.0})
    );
    let put = |body: serde_json::Value| {
        app.http
            .put(app.url("/admin/faults"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    let error = stripe_error(put(json!({"error_rate": 2.0})).await.unwrap(), 400).await;
    assert_eq!(error["param"], "error_rate");
    stripe_error(put(json!({"typo_rate": 0.5})).await.unwrap(), 400).await;
    let current = ok(app
        .http
        .get(app.url("/admin/faults"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(current, faults, "refused changes changed nothing");
}

#[tokio::test]
async fn faults_from_the_configuration_apply_from_the_start() {
    let app = spawn_with(json!({"fault_error_rate": 1.0, "fault_hang_ms": 1234})).await;
    let r = app.get("/v1/payment_intents/pi_x").await;
    assert!(r.status().is_server_error());
    let faults = ok(app
        .http
        .get(app.url("/admin/faults"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(faults["error_rate"], 1.0);
    assert_eq!(faults["hang_ms"], 1234);
}
