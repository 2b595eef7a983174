//! Idempotency: a repeated request never makes a second payment at the gateway, and answers the
//! first answer byte for byte.
use futures::StreamExt;
use serde_json::json;

use crate::{apps, new_id};

#[tokio::test]
async fn a_thousand_keys_sent_five_times_make_a_thousand_intents() {
    const KEYS: usize = 1000;
    for app in apps().await {
        let requests: Vec<(String, serde_json::Value)> = (0..KEYS)
            .map(|i| {
                let method = if i % 10 == 0 {
                    "pm_card_chargeDeclined"
                } else {
                    "pm_card_visa"
                };
                (
                    new_id(),
                    json!({"order_id": new_id(), "amount": 100 + i as i64, "currency": "EUR",
                        "payment_method": method, "customer_id": new_id()}),
                )
            })
            .collect();
        // Each key five times: two sends at once, then three one after the other, all keys
        // interleaved 32 at a time.
        let app = &app;
        let answers: Vec<Vec<(u16, Vec<u8>)>> = futures::stream::iter(requests.iter())
            .map(|(key, body)| async move {
                let send = || async {
                    let r = app.authorize(key, body).await;
                    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
                };
                let (a, b) = tokio::join!(send(), send());
                let mut all = vec![a, b];
                for _ in 0..3 {
                    all.push(send().await);
                }
                all
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for sends in &answers {
            let first = &sends[0];
            assert!(
                first.0 == 201 || first.0 == 402,
                "{}: {first:?}",
                app.backend
            );
            for other in sends {
                assert_eq!(other, first, "{}: a replay differs", app.backend);
            }
        }
        let declined = answers.iter().filter(|a| a[0].0 == 402).count();
        assert_eq!(declined, KEYS / 10);

        // Exactly one intent at the gateway per key.
        let ids: Vec<String> = answers
            .iter()
            .map(|a| {
                let v: serde_json::Value = serde_json::from_slice(&a[0].1).unwrap();
                v.get("payment_id")
                    .or_else(|| v.get("id"))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let counts: Vec<usize> = futures::stream::iter(ids.iter())
            .map(|id| async move { app.intents_of(id).await.len() })
            .buffer_unordered(32)
            .collect()
            .await;
        assert!(
            counts.iter().all(|&c| c == 1),
            "{}: {counts:?}",
            app.backend
        );
    }
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_changes_nothing() {
    for app in apps().await {
        let key = new_id();
        let body = json!({"order_id": new_id(), "amount": 100, "currency": "EUR",
            "payment_method": "pm_card_visa", "customer_id": new_id()});
        let first = app.authorize(&key, &body).await;
        assert_eq!(first.status(), 201);
        let first: serde_json::Value = first.json().await.unwrap();
        let mut other = body.clone();
        other["amount"] = json!(101);
        let r = app.authorize(&key, &other).await;
        assert_eq!(r.status(), 422);
        let problem: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            problem["type"],
            "https://agora.dev/problems/idempotency-mismatch"
        );
        let p = app.payment(first["id"].as_str().unwrap()).await;
        assert_eq!(p["amount"], 100);
        assert_eq!(app.intents_of(first["id"].as_str().unwrap()).await.len(), 1);
    }
}
