//! Rate limits at the edge: their memory stays bounded, and they cover the merged spec too.
use std::net::IpAddr;

use super::*;

#[tokio::test]
async fn idle_clients_are_evicted_from_the_rate_limiters() {
    let products = Replica::start("products").await;
    // At one request a second a user's bucket is full again two seconds after their only request.
    let gw = spawn_gateway(
        json!({"products": [products.url()]}),
        json!({"rate_limit_sweep_ms": 100, "rate_limit_user_per_second": 1}),
    )
    .await;
    let tokens: Vec<String> = (0..50)
        .map(|user| {
            gw.issuer
                .sign(&gw.issuer.claims(&format!("user-{user}"), &["customer"], ""))
        })
        .collect();
    for token in &tokens {
        let response = gw
            .http
            .get(format!("{}/api/products", gw.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(gw.state.user_limiter.len(), 50, "one entry per user");
    // Distinct client addresses: all of 127.0.0.0/8 is loopback.
    for last in 2..52u8 {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap();
        let response = client
            .get(format!("{}/api/products", gw.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let gw = &gw;
    eventually(
        Duration::from_secs(10),
        "idle clients were evicted",
        move || async move {
            (gw.state.ip_limiter.is_empty() && gw.state.user_limiter.is_empty()).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_merged_spec_is_fetched_from_each_service_once_per_ttl() {
    let products = Replica::start("products").await;
    let gw = spawn_gateway(
        json!({"products": [products.url()]}),
        json!({"openapi_cache_ms": 2000}),
    )
    .await;
    for _ in 0..10 {
        assert_eq!(gw.get("/api/openapi.json").await.status(), 200);
    }
    assert_eq!(products.hits(), 1, "one fetch for ten calls");
    // Past the TTL the next call fetches the spec again.
    let gw = &gw;
    let products = &products;
    eventually(
        Duration::from_secs(10),
        "the spec was fetched again",
        move || async move {
            assert_eq!(gw.get("/api/openapi.json").await.status(), 200);
            (products.hits() == 2).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_flood_of_merged_spec_requests_is_rate_limited() {
    let products = Replica::start("products").await;
    let gw = spawn_gateway(
        json!({"products": [products.url()]}),
        json!({"rate_limit_ip_per_second": 5, "rate_limit_ip_burst": 5}),
    )
    .await;
    let mut limited = None;
    for _ in 0..20 {
        let response = gw.get("/api/openapi.json").await;
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the limit was hit");
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
}
