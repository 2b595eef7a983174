//! Write scenarios: an authorization at the gateway simulator alone, the same through payments,
//! and a whole checkout through orders, so that what payments and the saga add is a ratio.
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::Request;

/// `key` in a file of `key: value` or `key = "value"` lines that `agora up` wrote.
fn setting(dir: &Path, file: &str, key: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(dir.join(file))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| {
            v.trim_start_matches([':', ' ', '='])
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .ok_or_else(|| anyhow::anyhow!("{key} not found in {file}"))
}

async fn token(request: reqwest::RequestBuilder) -> anyhow::Result<String> {
    let body: Value = request.send().await?.error_for_status()?.json().await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no access token"))
}

pub async fn scenarios(
    http: &reqwest::Client,
    data: &Path,
    port: u16,
    product_id: &str,
) -> anyhow::Result<Vec<(&'static str, Request)>> {
    let at = |offset: u16| format!("http://127.0.0.1:{}", port + offset);
    let (users, inventory, orders, payments, psp) = (at(1), at(3), at(4), at(5), at(6));
    let admin = token(http.post(format!("{users}/auth/login")).json(&json!({
        "login": "admin",
        "password": setting(data, "admin-credentials", "password")?,
    })))
    .await?;
    // Enough stock that no checkout of the run is short.
    let product: Value = http
        .get(format!("{}/products/{product_id}", at(2)))
        .send()
        .await?
        .json()
        .await?;
    let sku = product["sku"].as_str().unwrap_or_default().to_owned();
    http.put(format!("{inventory}/stock/{sku}"))
        .bearer_auth(&admin)
        .json(&json!({"on_hand": 1_000_000_000, "reason": "load test"}))
        .send()
        .await?
        .error_for_status()?;
    // Orders' own client holds payments:write, as in the checkout.
    let service = token(
        http.post(format!("{users}/oauth/token"))
            .basic_auth(
                "orders",
                Some(setting(data, "config/orders.toml", "client_secret")?),
            )
            .form(&[("grant_type", "client_credentials")]),
    )
    .await?;
    http.post(format!("{users}/users"))
        .json(&json!({"username": "loadtester", "email": "load@example.com", "password": "load test password"}))
        .send()
        .await?;
    let customer = token(http.post(format!("{users}/auth/login")).json(&json!({
        "login": "loadtester", "password": "load test password"
    })))
    .await?;
    let psp_key = setting(data, "config/payment-gateway-sim.toml", "psp_api_key")?;
    let key = || uuid::Uuid::now_v7().to_string();

    let direct: Request = Arc::new(move |client, _| {
        client
            .post(format!("{psp}/v1/payment_intents"))
            .bearer_auth(&psp_key)
            .header("Idempotency-Key", key())
            .form(&[
                ("amount", "1999"),
                ("currency", "eur"),
                ("payment_method", "pm_card_visa"),
                ("capture_method", "manual"),
                ("confirm", "true"),
                ("metadata[order_id]", "load"),
            ])
    });
    let through_payments: Request = Arc::new(move |client, _| {
        client
            .post(format!("{payments}/payments"))
            .bearer_auth(&service)
            .header("Idempotency-Key", key())
            .json(
                &json!({"order_id": key(), "amount": 1999, "currency": "EUR",
                "payment_method": "pm_card_visa", "customer_id": "load"}),
            )
    });
    let product_id = product_id.to_owned();
    let checkout: Request = Arc::new(move |client, _| {
        client
            .post(format!("{orders}/orders"))
            .bearer_auth(&customer)
            .header("Idempotency-Key", key())
            .json(
                &json!({"items": [{"product_id": product_id, "quantity": 1}],
                "payment_method": "pm_card_visa",
                "shipping_address": {"name": "Load", "line1": "1 Test St", "city": "Berlin",
                    "postal_code": "10115", "country": "DE"}}),
            )
    });
    Ok(vec![
        (
            "authorize at the gateway simulator alone (POST /v1/payment_intents)",
            direct,
        ),
        (
            "authorize through payments (POST /payments → simulator)",
            through_payments,
        ),
        (
            "checkout (POST /orders → products, inventory, payments → simulator)",
            checkout,
        ),
    ])
}
