//! Active health checks: every replica's `/health/ready`, on a fixed interval. A replica ejected
//! by a failed call (passive) comes back here once it answers again.
use std::time::Duration;

use axum::body::Body;

use crate::Gateway;

pub async fn check_forever(gateway: Gateway) {
    let interval = Duration::from_millis(gateway.settings.health_interval_ms.max(100));
    loop {
        for upstream in gateway.upstreams.values() {
            for replica in &upstream.replicas {
                let healthy = probe(&gateway, &replica.url).await;
                replica.set_healthy(healthy);
            }
            metrics::gauge!("gateway_healthy_replicas", "service" => upstream.service.clone())
                .set(upstream.healthy_count() as f64);
            metrics::gauge!("gateway_breaker_open", "service" => upstream.service.clone())
                .set(if upstream.breaker.is_open() { 1.0 } else { 0.0 });
        }
        tokio::time::sleep(interval).await;
    }
}

async fn probe(gateway: &Gateway, base: &str) -> bool {
    let Ok(request) = axum::http::Request::get(format!("{base}/health/ready")).body(Body::empty())
    else {
        return false;
    };
    match tokio::time::timeout(Duration::from_secs(1), gateway.client.request(request)).await {
        Ok(Ok(response)) => response.status().is_success(),
        _ => false,
    }
}
