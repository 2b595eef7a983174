//! Refunds: partial, several, never more than was received, only of a paid intent.
use crate::{new_order, ok, spawn_app, stripe_error};

#[tokio::test]
async fn partial_refunds_add_up_to_at_most_what_was_received() {
    let app = spawn_app().await;
    let intent = app.authorize(1000, &new_order()).await;
    let id = intent["id"].as_str().unwrap();
    ok(app.capture(id, Some(800)).await).await;

    let first = ok(app
        .post(
            "/v1/refunds",
            &[
                ("payment_intent", id),
                ("amount", "300"),
                ("reason", "requested_by_customer"),
                ("metadata[refund_id]", "R-1"),
            ],
        )
        .await)
    .await;
    assert!(first["id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(first["object"], "refund");
    assert_eq!(first["amount"], 300);
    assert_eq!(first["currency"], "eur");
    assert_eq!(first["payment_intent"], id);
    assert_eq!(first["charge"], intent["latest_charge"]);
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["reason"], "requested_by_customer");
    assert_eq!(first["metadata"]["refund_id"], "R-1");
    assert!(first["created"].as_i64().unwrap() > 0);

    // 800 received, 300 refunded: 501 is one too many.
    let over = stripe_error(
        app.post("/v1/refunds", &[("payment_intent", id), ("amount", "501")])
            .await,
        400,
    )
    .await;
    assert_eq!(over["type"], "invalid_request_error");
    assert_eq!(over["code"], "amount_too_large");
    assert_eq!(over["param"], "amount");

    let second = ok(app
        .post("/v1/refunds", &[("payment_intent", id), ("amount", "200")])
        .await)
    .await;
    assert_eq!(second["amount"], 200);
    // Without an amount: all that remains.
    let rest = ok(app.post("/v1/refunds", &[("payment_intent", id)]).await).await;
    assert_eq!(rest["amount"], 300);

    let none_left = stripe_error(
        app.post("/v1/refunds", &[("payment_intent", id), ("amount", "1")])
            .await,
        400,
    )
    .await;
    assert_eq!(none_left["code"], "charge_already_refunded");

    let fetched = ok(app
        .get(&format!("/v1/refunds/{}", first["id"].as_str().unwrap()))
        .await)
    .await;
    assert_eq!(fetched, first);
}

#[tokio::test]
async fn a_refund_needs_a_paid_intent() {
    let app = spawn_app().await;
    let intent = app.authorize(1000, &new_order()).await;
    let id = intent["id"].as_str().unwrap();
    let uncaptured = stripe_error(
        app.post("/v1/refunds", &[("payment_intent", id)]).await,
        400,
    )
    .await;
    assert_eq!(uncaptured["code"], "payment_intent_unexpected_state");

    let unknown = stripe_error(
        app.post("/v1/refunds", &[("payment_intent", "pi_nope")])
            .await,
        400,
    )
    .await;
    assert_eq!(unknown["code"], "resource_missing");
    assert_eq!(unknown["param"], "payment_intent");

    let missing = stripe_error(app.post("/v1/refunds", &[]).await, 400).await;
    assert_eq!(missing["param"], "payment_intent");

    ok(app.capture(id, None).await).await;
    let zero = stripe_error(
        app.post("/v1/refunds", &[("payment_intent", id), ("amount", "0")])
            .await,
        400,
    )
    .await;
    assert_eq!(zero["param"], "amount");
    let bad_reason = stripe_error(
        app.post(
            "/v1/refunds",
            &[("payment_intent", id), ("reason", "changed_my_mind")],
        )
        .await,
        400,
    )
    .await;
    assert_eq!(bad_reason["param"], "reason");
    // None of the refused refunds took anything: the whole amount is still refundable.
    let all = ok(app.post("/v1/refunds", &[("payment_intent", id)]).await).await;
    assert_eq!(all["amount"], 1000);
}
