//! Webhooks: signed Stripe events, delivered to a receiver until it acknowledges them.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{new_order, ok, spawn_with, stripe_error, TestApp, WEBHOOK_SECRET};

/// A webhook endpoint that answers 500 to its first `failures` deliveries and keeps every one.
#[derive(Clone)]
struct Receiver {
    deliveries: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    failures: Arc<AtomicUsize>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.deliveries.lock().unwrap().push((headers, body));
    let failing = receiver
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

impl Receiver {
    async fn start(failures: usize) -> (Self, String) {
        let receiver = Self {
            deliveries: Arc::default(),
            failures: Arc::new(AtomicUsize::new(failures)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/webhooks", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    /// Waits (bounded) until at least `n` deliveries have arrived.
    async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, Bytes)> {
        for _ in 0..100 {
            let deliveries = self.deliveries.lock().unwrap().clone();
            if deliveries.len() >= n {
                return deliveries;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "expected {n} deliveries, got {}",
            self.deliveries.lock().unwrap().len()
        );
    }
}

/// Checks `Stripe-Signature` as a Stripe client library does, and returns the event.
fn verified(headers: &HeaderMap, body: &[u8], secret: &str) -> Result<Value, String> {
    let header = headers["stripe-signature"].to_str().unwrap();
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = Some(t.to_owned()),
            Some(("v1", v)) => signatures.push(hex::decode(v).unwrap()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("no timestamp")?;
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    if !(0..300).contains(&age) {
        return Err(format!("stale timestamp {timestamp}"));
    }
    let valid = signatures.iter().any(|signature| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(signature).is_ok()
    });
    if !valid {
        return Err("no valid v1 signature".into());
    }
    Ok(serde_json::from_slice(body).unwrap())
}

async fn sim_posting_to(url: &str) -> TestApp {
    spawn_with(json!({"webhook_url": url})).await
}

#[tokio::test]
async fn an_event_is_signed_and_delivered_again_until_acknowledged() {
    let (receiver, url) = Receiver::start(1).await;
    let app = sim_posting_to(&url).await;
    let intent = app.authorize(1500, &new_order()).await;

    let deliveries = receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.deliveries.lock().unwrap().len(),
        2,
        "acknowledged: not delivered again"
    );
    let mut ids = Vec::new();
    for (headers, body) in &deliveries {
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let event = verified(headers, body, WEBHOOK_SECRET).unwrap();
        assert!(verified(headers, body, "whsec_other").is_err());
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(event["object"], "event");
        assert_eq!(event["type"], "payment_intent.amount_capturable_updated");
        assert_eq!(event["livemode"], false);
        assert!(event["api_version"].is_string());
        assert!(event["created"].as_i64().unwrap() > 0);
        assert_eq!(event["data"]["object"]["id"], intent["id"]);
        assert_eq!(event["data"]["object"]["status"], "requires_capture");
        ids.push(event["id"].clone());
    }
    assert_eq!(ids[0], ids[1], "a retry is the same event");
}

#[tokio::test]
async fn every_change_raises_its_event() {
    let (receiver, url) = Receiver::start(0).await;
    let app = sim_posting_to(&url).await;
    let paid = app.authorize(1000, &new_order()).await;
    let paid_id = paid["id"].as_str().unwrap();
    ok(app.capture(paid_id, Some(900)).await).await;
    ok(app
        .post(
            "/v1/refunds",
            &[("payment_intent", paid_id), ("amount", "400")],
        )
        .await)
    .await;
    let canceled = app.authorize(200, &new_order()).await;
    let canceled_id = canceled["id"].as_str().unwrap();
    ok(app
        .post(&format!("/v1/payment_intents/{canceled_id}/cancel"), &[])
        .await)
    .await;
    let declined = app
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "300"),
                ("currency", "eur"),
                ("payment_method", "pm_card_chargeDeclined"),
                ("confirm", "true"),
            ],
        )
        .await;
    let declined = stripe_error(declined, 402).await;
    let declined_id = declined["payment_intent"]["id"].as_str().unwrap();

    let deliveries = receiver.wait_for(6).await;
    let events: Vec<Value> = deliveries
        .iter()
        .map(|(headers, body)| verified(headers, body, WEBHOOK_SECRET).unwrap())
        .collect();
    let find = |kind: &str, id: &str| {
        events
            .iter()
            .find(|e| {
                e["type"] == kind
                    && (e["data"]["object"]["id"] == id
                        || e["data"]["object"]["payment_intent"] == id)
            })
            .unwrap_or_else(|| panic!("no {kind} for {id}"))
            .clone()
    };
    find("payment_intent.amount_capturable_updated", paid_id);
    let succeeded = find("payment_intent.succeeded", paid_id);
    assert_eq!(succeeded["data"]["object"]["amount_received"], 900);
    let refunded = find("charge.refunded", paid_id);
    let charge = &refunded["data"]["object"];
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["id"], paid["latest_charge"]);
    assert_eq!(charge["amount_captured"], 900);
    assert_eq!(charge["amount_refunded"], 400);
    assert_eq!(charge["refunded"], false);
    let canceled_event = find("payment_intent.canceled", canceled_id);
    assert_eq!(canceled_event["data"]["object"]["status"], "canceled");
    let failed = find("payment_intent.payment_failed", declined_id);
    assert_eq!(
        failed["data"]["object"]["last_payment_error"]["decline_code"],
        "generic_decline"
    );
}

/// A receiver that takes 300 ms per delivery and records how many were in flight at most.
#[derive(Clone, Default)]
struct SlowReceiver {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

async fn receive_slowly(State(r): State<SlowReceiver>) -> StatusCode {
    let now = r.now.fetch_add(1, Ordering::SeqCst) + 1;
    r.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.now.fetch_sub(1, Ordering::SeqCst);
    r.done.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

#[tokio::test]
async fn a_burst_of_events_is_delivered_with_bounded_concurrency() {
    let receiver = SlowReceiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/webhooks", axum::routing::post(receive_slowly))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = sim_posting_to(&url).await;

    let burst = 80;
    for _ in 0..burst {
        app.authorize(100, &new_order()).await;
    }
    for _ in 0..100 {
        if receiver.done.load(Ordering::SeqCst) >= burst {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(receiver.done.load(Ordering::SeqCst), burst, "all delivered");
    let peak = receiver.peak.load(Ordering::SeqCst);
    assert!(
        (2..=32).contains(&peak),
        "deliveries run in parallel but at most 32 at once: peak {peak}"
    );
}
