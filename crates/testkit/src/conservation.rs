//! The conservation check every end-to-end test ends with: nothing was created or lost between
//! the services. It reads only public (admin) APIs, so it works against in-process services and
//! against `agora up` alike.
//!
//! * per SKU: `on_hand = available + reserved`, and the ledger sums to `on_hand`;
//! * units sold (ledger `sale` minus `return`) equal the units of confirmed, shipped and delivered
//!   orders;
//! * per order, what the gateway captured minus what was refunded equals what the order owes (its
//!   total once shipped or delivered, less refunds; nothing otherwise: confirmed orders are
//!   authorized, not captured, and cancelled ones are voided or refunded in full); no order that is
//!   not confirmed holds an authorization.
use std::collections::BTreeMap;

use serde_json::Value;

/// Where to look, and with what.
pub struct Platform<'a> {
    pub http: &'a reqwest::Client,
    pub inventory: &'a str,
    pub orders: &'a str,
    pub payments: &'a str,
    /// The gateway simulator's base URL and API key.
    pub psp: &'a str,
    pub psp_key: &'a str,
    pub admin_token: &'a str,
}

async fn get(p: &Platform<'_>, url: String) -> Value {
    let r = p
        .http
        .get(&url)
        .bearer_auth(p.admin_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.unwrap()
}

/// Every order, following the pages.
pub async fn all_orders(p: &Platform<'_>) -> Vec<Value> {
    let mut orders = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/orders?limit=100", p.orders);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = get(p, url).await;
        orders.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return orders,
        }
    }
}

/// Checks everything above for the SKUs given; panics naming what does not add up.
pub async fn check(p: &Platform<'_>, skus: &[&str]) {
    let orders = all_orders(p).await;
    let settled = ["confirmed", "shipped", "delivered"];
    for sku in skus {
        let stock = get(p, format!("{}/stock/{sku}", p.inventory)).await;
        let (on_hand, reserved, available) = (
            stock["on_hand"].as_i64().unwrap(),
            stock["reserved"].as_i64().unwrap(),
            stock["available"].as_i64().unwrap(),
        );
        assert_eq!(on_hand, available + reserved, "{sku}: {stock}");
        let mut ledger = 0;
        let mut sold = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/stock/{sku}/movements?limit=100", p.inventory);
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = get(p, url).await;
            for m in page["items"].as_array().unwrap() {
                let delta = m["delta"].as_i64().unwrap();
                ledger += delta;
                if m["kind"] == "sale" || m["kind"] == "return" {
                    sold -= delta;
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(ledger, on_hand, "{sku}: the ledger does not sum to on_hand");
        let ordered: i64 = orders
            .iter()
            .filter(|o| settled.contains(&o["status"].as_str().unwrap()))
            .flat_map(|o| o["items"].as_array().unwrap().clone())
            .filter(|l| l["sku"] == *sku)
            .map(|l| l["quantity"].as_i64().unwrap())
            .sum();
        assert_eq!(
            sold, ordered,
            "{sku}: units sold differ from units in settled orders"
        );
    }

    // Money, per order: what the gateway captured, less what was refunded, is what the order owes
    // (its total once shipped or delivered, nothing before or after a cancellation), and only a
    // confirmed order holds an authorization.
    for order in &orders {
        let id = order["id"].as_str().unwrap();
        let status = order["status"].as_str().unwrap();
        let found = p
            .http
            .get(format!("{}/v1/payment_intents/search", p.psp))
            .bearer_auth(p.psp_key)
            .query(&[("query", format!("metadata['order_id']:'{id}'"))])
            .send()
            .await
            .unwrap();
        let found: Value = found.json().await.unwrap();
        let intents = found["data"].as_array().unwrap();
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        let mut received = 0;
        let mut refunded = 0;
        for intent in intents {
            *by_status
                .entry(intent["status"].as_str().unwrap())
                .or_default() += 1;
            received += intent["amount_received"].as_i64().unwrap();
            refunded += get_refunded(p, intent).await;
        }
        let authorized = by_status.get("requires_capture").copied().unwrap_or(0);
        if status == "confirmed" {
            assert_eq!(
                authorized, 1,
                "order {id} is confirmed: one authorization: {by_status:?}"
            );
        } else {
            assert_eq!(
                authorized, 0,
                "order {id} is {status}: no authorization may be left: {by_status:?}"
            );
        }
        let owed = if status == "shipped" || status == "delivered" {
            order["total"]["amount"].as_i64().unwrap() - refunded
        } else {
            0
        };
        assert_eq!(
            received - refunded,
            owed,
            "order {id} ({status}): captured {received} - refunded {refunded} at the gateway"
        );
    }
}

/// What was refunded of an intent, as the payments service recorded it (each refund it records is
/// one the gateway confirmed, or one the gateway told it about by webhook).
async fn get_refunded(p: &Platform<'_>, intent: &Value) -> i64 {
    let Some(payment_id) = intent["metadata"]["payment_id"].as_str() else {
        return 0;
    };
    let payment = get(p, format!("{}/payments/{payment_id}", p.payments)).await;
    payment["refunded_amount"].as_i64().unwrap_or(0)
}
