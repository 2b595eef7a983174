//! The API key, and the endpoints that need none.
use serde_json::json;

use crate::{new_order, ok, spawn_app, stripe_error, KEY};

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_401_and_changes_nothing() {
    let app = spawn_app().await;
    let order = new_order();
    let form = [
        ("amount", "100"),
        ("currency", "eur"),
        ("payment_method", "pm_card_visa"),
        ("confirm", "true"),
        ("metadata[order_id]", order.as_str()),
    ];
    let none = app
        .http
        .post(app.url("/v1/payment_intents"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let error = stripe_error(none, 401).await;
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("did not provide an API key"));

    let wrong_key = "sk_test_not_the_right_key_9876";
    let wrong = app
        .http
        .post(app.url("/v1/payment_intents"))
        .bearer_auth(wrong_key)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(wrong.headers().contains_key("www-authenticate"));
    let error = stripe_error(wrong, 401).await;
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("Invalid API Key provided"), "{message}");
    assert!(message.ends_with("9876"), "{message}");
    assert!(
        !message.contains(wrong_key),
        "the key is redacted: {message}"
    );

    let read = app
        .http
        .get(app.url("/v1/payment_intents/pi_x"))
        .bearer_auth(wrong_key)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 401);
    let admin = app
        .http
        .put(app.url("/admin/faults"))
        .bearer_auth(wrong_key)
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401);

    assert!(app.by_order(&order).await.is_empty());
    let faults = ok(app
        .http
        .get(app.url("/admin/faults"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(faults["error_rate"], 0.0);
}

#[tokio::test]
async fn the_key_may_come_as_the_basic_auth_user_name_as_curl_u_sends_it() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/v1/payment_intents/pi_nope"))
        .basic_auth(KEY, None::<&str>)
        .send()
        .await
        .unwrap();
    // Authenticated: the intent is unknown, not the key.
    assert_eq!(stripe_error(r, 404).await["code"], "resource_missing");
}

#[tokio::test]
async fn health_endpoints_answer_without_a_key() {
    let app = spawn_app().await;
    for (path, status) in [("/health/live", "ok"), ("/health/ready", "ready")] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(ok(r).await["status"], status);
    }
}
