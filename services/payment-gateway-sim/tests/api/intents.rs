//! PaymentIntents: authorize, capture, cancel, declines, search, and the transitions refused.
use serde_json::Value;

use crate::{new_order, ok, spawn_app, stripe_error};

#[tokio::test]
async fn a_manual_intent_is_authorized_then_captured_in_full() {
    let app = spawn_app().await;
    let order = new_order();
    let before = chrono::Utc::now().timestamp();
    let intent = app.authorize(1999, &order).await;

    let id = intent["id"].as_str().unwrap();
    let suffix = id.strip_prefix("pi_").unwrap();
    assert_eq!(suffix.len(), 24);
    assert!(suffix.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(intent["object"], "payment_intent");
    assert_eq!(intent["status"], "requires_capture");
    assert_eq!(intent["amount"], 1999);
    assert_eq!(intent["amount_capturable"], 1999);
    assert_eq!(intent["amount_received"], 0);
    assert_eq!(intent["currency"], "eur");
    assert_eq!(intent["capture_method"], "manual");
    assert_eq!(intent["payment_method"], "pm_card_visa");
    assert_eq!(intent["metadata"]["order_id"], order.as_str());
    assert_eq!(intent["livemode"], false);
    assert_eq!(intent["last_payment_error"], Value::Null);
    assert_eq!(intent["canceled_at"], Value::Null);
    assert!(intent["latest_charge"].as_str().unwrap().starts_with("ch_"));
    assert!(intent["created"].as_i64().unwrap() >= before);

    let captured = ok(app.capture(id, None).await).await;
    assert_eq!(captured["status"], "succeeded");
    assert_eq!(captured["amount_received"], 1999);
    assert_eq!(captured["amount_capturable"], 0);
    assert_eq!(captured["latest_charge"], intent["latest_charge"]);
    let fetched = ok(app.get(&format!("/v1/payment_intents/{id}")).await).await;
    assert_eq!(fetched, captured);
}

#[tokio::test]
async fn a_partial_capture_receives_only_what_was_captured_and_releases_the_rest() {
    let app = spawn_app().await;
    let intent = app.authorize(1000, &new_order()).await;
    let id = intent["id"].as_str().unwrap();

    let too_much = stripe_error(app.capture(id, Some(1001)).await, 400).await;
    assert_eq!(too_much["type"], "invalid_request_error");
    assert_eq!(too_much["param"], "amount_to_capture");
    let unchanged = ok(app.get(&format!("/v1/payment_intents/{id}")).await).await;
    assert_eq!(unchanged["status"], "requires_capture");

    let captured = ok(app.capture(id, Some(600)).await).await;
    assert_eq!(captured["status"], "succeeded");
    assert_eq!(captured["amount_received"], 600);
    assert_eq!(captured["amount_capturable"], 0);

    let again = stripe_error(app.capture(id, Some(100)).await, 400).await;
    assert_eq!(again["code"], "payment_intent_unexpected_state");
    assert_eq!(again["payment_intent"]["amount_received"], 600);
}

#[tokio::test]
async fn an_automatic_intent_succeeds_on_confirmation() {
    let app = spawn_app().await;
    for pm in ["pm_card_mastercard", "pm_card_amex", "pm_card_visa"] {
        let intent = ok(app
            .post(
                "/v1/payment_intents",
                &[
                    ("amount", "500"),
                    ("currency", "USD"),
                    ("payment_method", pm),
                    ("confirm", "true"),
                    ("description", "a test"),
                ],
            )
            .await)
        .await;
        assert_eq!(intent["status"], "succeeded", "{pm}");
        assert_eq!(intent["capture_method"], "automatic");
        assert_eq!(intent["amount_received"], 500);
        assert_eq!(intent["amount_capturable"], 0);
        assert_eq!(intent["currency"], "usd");
        assert_eq!(intent["description"], "a test");
        let id = intent["id"].as_str().unwrap();
        let capture = stripe_error(app.capture(id, None).await, 400).await;
        assert_eq!(capture["code"], "payment_intent_unexpected_state");
    }
}

#[tokio::test]
async fn every_test_decline_is_a_402_card_error_and_the_intent_remains() {
    let app = spawn_app().await;
    let declines = [
        (
            "pm_card_chargeDeclined",
            "card_declined",
            "generic_decline",
            "Your card was declined.",
        ),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
        (
            "pm_card_chargeDeclinedExpiredCard",
            "expired_card",
            "expired_card",
            "Your card has expired.",
        ),
        (
            "pm_card_chargeDeclinedProcessingError",
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
    ];
    for (pm, code, decline_code, message) in declines {
        let order = new_order();
        let r = app
            .post(
                "/v1/payment_intents",
                &[
                    ("amount", "2500"),
                    ("currency", "eur"),
                    ("payment_method", pm),
                    ("capture_method", "manual"),
                    ("confirm", "true"),
                    ("metadata[order_id]", &order),
                ],
            )
            .await;
        let error = stripe_error(r, 402).await;
        assert_eq!(error["type"], "card_error", "{pm}");
        assert_eq!(error["code"], code, "{pm}");
        assert_eq!(error["decline_code"], decline_code, "{pm}");
        assert_eq!(error["message"], message, "{pm}");
        let intent = &error["payment_intent"];
        assert_eq!(intent["status"], "requires_payment_method", "{pm}");
        assert_eq!(intent["amount_capturable"], 0);
        assert_eq!(intent["last_payment_error"]["code"], code);
        assert_eq!(intent["last_payment_error"]["type"], "card_error");

        // The intent exists: it can be fetched, found, and canceled.
        let id = intent["id"].as_str().unwrap();
        let fetched = ok(app.get(&format!("/v1/payment_intents/{id}")).await).await;
        assert_eq!(fetched, *intent);
        assert_eq!(app.by_order(&order).await.len(), 1);
        let canceled = ok(app
            .post(&format!("/v1/payment_intents/{id}/cancel"), &[])
            .await)
        .await;
        assert_eq!(canceled["status"], "canceled");
    }
}

#[tokio::test]
async fn a_declined_intent_can_be_confirmed_again_with_another_card() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "700"),
                ("currency", "eur"),
                ("payment_method", "pm_card_chargeDeclined"),
                ("capture_method", "manual"),
                ("confirm", "true"),
            ],
        )
        .await;
    let error = stripe_error(r, 402).await;
    let id = error["payment_intent"]["id"].as_str().unwrap();
    let confirmed = ok(app
        .post(
            &format!("/v1/payment_intents/{id}/confirm"),
            &[("payment_method", "pm_card_visa")],
        )
        .await)
    .await;
    assert_eq!(confirmed["status"], "requires_capture");
    assert_eq!(confirmed["last_payment_error"], Value::Null);
    assert_eq!(confirmed["amount_capturable"], 700);
}

#[tokio::test]
async fn an_unknown_payment_method_is_resource_missing_and_creates_nothing() {
    let app = spawn_app().await;
    let order = new_order();
    let r = app
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "100"),
                ("currency", "eur"),
                ("payment_method", "pm_card_bogus"),
                ("confirm", "true"),
                ("metadata[order_id]", &order),
            ],
        )
        .await;
    let error = stripe_error(r, 400).await;
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["param"], "payment_method");
    assert!(app.by_order(&order).await.is_empty());
}

#[tokio::test]
async fn an_unconfirmed_intent_waits_for_confirmation() {
    let app = spawn_app().await;
    let create = || {
        app.post(
            "/v1/payment_intents",
            &[
                ("amount", "300"),
                ("currency", "eur"),
                ("payment_method", "pm_card_visa"),
                ("capture_method", "manual"),
                ("confirm", "false"),
            ],
        )
    };
    let waiting = ok(create().await).await;
    assert_eq!(waiting["status"], "requires_confirmation");
    assert_eq!(waiting["latest_charge"], Value::Null);
    let id = waiting["id"].as_str().unwrap();
    let confirmed = ok(app
        .post(&format!("/v1/payment_intents/{id}/confirm"), &[])
        .await)
    .await;
    assert_eq!(confirmed["status"], "requires_capture");
    let twice = stripe_error(
        app.post(&format!("/v1/payment_intents/{id}/confirm"), &[])
            .await,
        400,
    )
    .await;
    assert_eq!(twice["code"], "payment_intent_unexpected_state");

    let other = ok(create().await).await;
    let id = other["id"].as_str().unwrap();
    let canceled = ok(app
        .post(
            &format!("/v1/payment_intents/{id}/cancel"),
            &[("cancellation_reason", "abandoned")],
        )
        .await)
    .await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_reason"], "abandoned");
}

#[tokio::test]
async fn cancel_releases_an_authorization_and_is_final() {
    let app = spawn_app().await;
    let intent = app.authorize(1200, &new_order()).await;
    let id = intent["id"].as_str().unwrap();
    let canceled = ok(app
        .post(
            &format!("/v1/payment_intents/{id}/cancel"),
            &[("cancellation_reason", "requested_by_customer")],
        )
        .await)
    .await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_reason"], "requested_by_customer");
    assert_eq!(canceled["amount_capturable"], 0);
    assert!(canceled["canceled_at"].as_i64().unwrap() > 0);

    let capture = stripe_error(app.capture(id, None).await, 400).await;
    assert_eq!(capture["code"], "payment_intent_unexpected_state");
    assert_eq!(capture["payment_intent"]["status"], "canceled");
    let cancel = stripe_error(
        app.post(&format!("/v1/payment_intents/{id}/cancel"), &[])
            .await,
        400,
    )
    .await;
    assert_eq!(cancel["code"], "payment_intent_unexpected_state");
}

#[tokio::test]
async fn a_succeeded_intent_cannot_be_canceled() {
    let app = spawn_app().await;
    let intent = app.authorize(800, &new_order()).await;
    let id = intent["id"].as_str().unwrap();
    ok(app.capture(id, None).await).await;
    let error = stripe_error(
        app.post(&format!("/v1/payment_intents/{id}/cancel"), &[])
            .await,
        400,
    )
    .await;
    assert_eq!(error["code"], "payment_intent_unexpected_state");
    assert!(error["message"].as_str().unwrap().contains("succeeded"));
    let fetched = ok(app.get(&format!("/v1/payment_intents/{id}")).await).await;
    assert_eq!(fetched["status"], "succeeded");
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[("currency", "eur")], "amount"),
        (&[("amount", "0"), ("currency", "eur")], "amount"),
        (&[("amount", "12.5"), ("currency", "eur")], "amount"),
        (&[("amount", "100")], "currency"),
        (&[("amount", "100"), ("currency", "euro")], "currency"),
        (
            &[
                ("amount", "100"),
                ("currency", "eur"),
                ("capture_method", "later"),
            ],
            "capture_method",
        ),
        (
            &[("amount", "100"), ("currency", "eur"), ("colour", "red")],
            "colour",
        ),
    ];
    for (form, param) in cases {
        let error = stripe_error(app.post("/v1/payment_intents", form).await, 400).await;
        assert_eq!(error["type"], "invalid_request_error", "{form:?}");
        assert_eq!(error["param"], param, "{form:?}");
    }
    let json_body = app
        .http
        .post(app.url("/v1/payment_intents"))
        .bearer_auth(crate::KEY)
        .json(&serde_json::json!({"amount": 100, "currency": "eur"}))
        .send()
        .await
        .unwrap();
    let error = stripe_error(json_body, 400).await;
    assert!(error["message"].as_str().unwrap().contains("Content-Type"));
}

#[tokio::test]
async fn search_finds_intents_by_metadata_and_status_newest_first() {
    let app = spawn_app().await;
    let order = new_order();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let intent = app.authorize(100, &order).await;
        ids.push(intent["id"].as_str().unwrap().to_owned());
    }
    app.authorize(100, &new_order()).await;
    ok(app
        .post(&format!("/v1/payment_intents/{}/cancel", ids[0]), &[])
        .await)
    .await;

    let found: Vec<String> = app
        .by_order(&order)
        .await
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(found, newest_first);

    let search = |query: String, extra: Vec<(&'static str, String)>| {
        let mut params = vec![("query", query)];
        params.extend(extra);
        app.http
            .get(app.url("/v1/payment_intents/search"))
            .bearer_auth(crate::KEY)
            .query(&params)
            .send()
    };
    let canceled = ok(search(
        format!("metadata['order_id']:'{order}' AND status:'canceled'"),
        vec![],
    )
    .await
    .unwrap())
    .await;
    assert_eq!(canceled["data"].as_array().unwrap().len(), 1);
    assert_eq!(canceled["data"][0]["id"], ids[0].as_str());
    assert_eq!(canceled["url"], "/v1/payment_intents/search");
    assert_eq!(canceled["has_more"], false);

    let first_page = ok(search(
        format!("metadata['order_id']:'{order}'"),
        vec![("limit", "2".into())],
    )
    .await
    .unwrap())
    .await;
    assert_eq!(first_page["data"].as_array().unwrap().len(), 2);
    assert_eq!(first_page["has_more"], true);
    let page = first_page["next_page"].as_str().unwrap().to_owned();
    let second_page = ok(search(
        format!("metadata['order_id']:'{order}'"),
        vec![("limit", "2".into()), ("page", page)],
    )
    .await
    .unwrap())
    .await;
    assert_eq!(second_page["data"].as_array().unwrap().len(), 1);
    assert_eq!(second_page["data"][0]["id"], ids[0].as_str());
    assert_eq!(second_page["has_more"], false);

    let bad = stripe_error(search("amount>100".into(), vec![]).await.unwrap(), 400).await;
    assert_eq!(bad["param"], "query");
    let bad_limit = stripe_error(
        search(
            format!("metadata['order_id']:'{order}'"),
            vec![("limit", "101".into())],
        )
        .await
        .unwrap(),
        400,
    )
    .await;
    assert_eq!(bad_limit["param"], "limit");
}

#[tokio::test]
async fn unknown_ids_and_urls_are_404() {
    let app = spawn_app().await;
    let missing = stripe_error(app.get("/v1/payment_intents/pi_nope").await, 404).await;
    assert_eq!(missing["type"], "invalid_request_error");
    assert_eq!(missing["code"], "resource_missing");
    assert!(missing["message"].as_str().unwrap().contains("pi_nope"));
    for action in ["capture", "cancel", "confirm"] {
        let r = app
            .post(&format!("/v1/payment_intents/pi_nope/{action}"), &[])
            .await;
        assert_eq!(stripe_error(r, 404).await["code"], "resource_missing");
    }
    let refund = stripe_error(app.get("/v1/refunds/re_nope").await, 404).await;
    assert_eq!(refund["code"], "resource_missing");
    let url = stripe_error(app.get("/v1/customers").await, 404).await;
    assert!(url["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL"));
    let method = stripe_error(
        app.http
            .delete(app.url("/v1/payment_intents"))
            .bearer_auth(crate::KEY)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert!(method["message"].as_str().unwrap().contains("DELETE"));
}
