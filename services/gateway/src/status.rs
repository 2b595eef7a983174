//! `GET /status`, for the admin status page: each upstream service's replicas as the gateway
//! sees them (health checks, circuit breaker) and a few figures read from each replica's own
//! `/metrics` at the time of the request. Admins only, by bearer token or session cookie.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::auth::bearer_from_headers;
use platform::error::Problem;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::config::Access;
use crate::session::Browser;
use crate::Gateway;

/// How long a replica's `/metrics` is waited for: the page must not hang on one slow service.
const METRICS_TIMEOUT: Duration = Duration::from_secs(1);
/// The most of a `/metrics` document read.
const METRICS_LIMIT: usize = 4 << 20;

/// The status document: `{gateway: {version}, services: [{service, breaker, healthy_replicas,
/// replicas: [{url, healthy, metrics, metrics_error}]}]}`.
// Only named in the OpenAPI document.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct StatusDocument {}

/// `GET /status`: the upstream services as the gateway sees them, for admins.
#[utoipa::path(get, path = "/status", tag = "gateway", security(("bearer" = [])),
    responses(
        (status = 200, body = StatusDocument, description = "Each service's replicas (health, \
            breaker) and figures read from their `/metrics`"),
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "No access token or access cookie, or an invalid one"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "Not an admin"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
pub async fn status(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = gateway.limit_ip(peer.ip()) {
        return refused;
    }
    let cookie = Browser::of(&headers).access;
    let token = bearer_from_headers(&headers).or(cookie.as_deref());
    let claims = match gateway.check_token(token, Access::Authenticated).await {
        Ok(Some(claims)) => claims,
        Ok(None) => return Problem::unauthorized("Sign in as an admin.").into_response(),
        Err(refused) => return refused,
    };
    if !claims.is_admin() {
        return Problem::forbidden("The status page is for admins.").into_response();
    }
    let mut fetches = JoinSet::new();
    for upstream in gateway.upstreams.values() {
        for replica in &upstream.replicas {
            let (gateway, url) = (gateway.clone(), replica.url.clone());
            fetches.spawn(async move {
                let figures = figures(&gateway, &url).await;
                (url, figures)
            });
        }
    }
    let mut figures = BTreeMap::new();
    while let Some(Ok((url, found))) = fetches.join_next().await {
        figures.insert(url, found);
    }
    let services: Vec<Value> = gateway
        .upstreams
        .values()
        .map(|upstream| {
            let replicas: Vec<Value> = upstream
                .replicas
                .iter()
                .map(|replica| {
                    let (metrics, error) = match figures.remove(&replica.url) {
                        Some(Ok(metrics)) => (metrics, Value::Null),
                        Some(Err(error)) => (Value::Null, json!(error)),
                        None => (Value::Null, json!("not read")),
                    };
                    json!({
                        "url": replica.url,
                        "healthy": replica.is_healthy(),
                        "metrics": metrics,
                        "metrics_error": error,
                    })
                })
                .collect();
            json!({
                "service": upstream.service,
                "breaker": if upstream.breaker.is_open() { "open" } else { "closed" },
                "healthy_replicas": upstream.healthy_count(),
                "replicas": replicas,
            })
        })
        .collect();
    let mut response = axum::Json(json!({
        "gateway": {"version": env!("CARGO_PKG_VERSION")},
        "services": services,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The figures of one replica's `/metrics`, or why they could not be read.
async fn figures(gateway: &Gateway, base: &str) -> Result<Value, String> {
    let request = axum::http::Request::get(format!("{base}/metrics"))
        .body(Body::empty())
        .map_err(|_| "bad replica URL".to_owned())?;
    let response = tokio::time::timeout(METRICS_TIMEOUT, gateway.client.request(request))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|_| "unreachable".to_owned())?;
    if response.status() != StatusCode::OK {
        return Err(format!("status {}", response.status().as_u16()));
    }
    let body = axum::body::to_bytes(Body::new(response.into_body()), METRICS_LIMIT)
        .await
        .map_err(|_| "unreadable".to_owned())?;
    Ok(summarize(&String::from_utf8_lossy(&body)))
}

/// A few honest figures from a Prometheus text document, counted since the replica started:
/// requests served and how many were 5xx, and the 95th-percentile latency as the upper bound of
/// its histogram bucket, all without the health checks, scrapes and the event feed (a feed read is
/// a long poll: its latency is the wait); for a service with an event feed, the events its slowest
/// reader has not read yet (as of that reader's last read); for a service that consumes events,
/// how many it dead-lettered. A figure the replica does not publish is null.
pub fn summarize(text: &str) -> Value {
    let mut requests = 0.0;
    let mut errors = 0.0;
    let mut buckets: BTreeMap<u64, f64> = BTreeMap::new();
    let mut pending: Option<f64> = None;
    let mut dead: Option<f64> = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let label = |key: &str| {
            labels
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim_end_matches('}').trim_matches('"').to_owned())
        };
        let own = label("route").is_some_and(|r| {
            r.starts_with("/health")
                || r == "/metrics"
                || r == "/events"
                || r.starts_with("/events/")
        });
        match name {
            "http_requests_total" if !own => {
                requests += value;
                if label("status").is_some_and(|s| s.starts_with('5')) {
                    errors += value;
                }
            }
            "http_request_duration_seconds_bucket" if !own => {
                if let Some(le) = label("le").and_then(|le| le.parse::<f64>().ok()) {
                    // Keyed by microseconds so the bounds sort; +Inf lands last.
                    let key = if le.is_finite() {
                        (le * 1e6) as u64
                    } else {
                        u64::MAX
                    };
                    *buckets.entry(key).or_default() += value;
                }
            }
            "events_feed_reader_lag" => pending = Some(pending.unwrap_or(0.0).max(value)),
            "events_dead_lettered_total" => dead = Some(dead.unwrap_or(0.0) + value),
            // A consumer that never dead-lettered has not created the counter yet.
            "events_consumed_total" => dead = dead.or(Some(0.0)),
            _ => {}
        }
    }
    let total = buckets.get(&u64::MAX).copied().unwrap_or(0.0);
    let p95_ms = (total > 0.0)
        .then(|| {
            buckets
                .iter()
                .find(|(_, count)| **count >= total * 0.95)
                .map(|(le, _)| *le)
        })
        .flatten()
        .map(|le| {
            if le == u64::MAX {
                Value::Null
            } else {
                json!(le as f64 / 1000.0)
            }
        })
        .unwrap_or(Value::Null);
    json!({
        "requests": requests as u64,
        "server_errors": errors as u64,
        "p95_ms_at_most": p95_ms,
        "events_unread": pending.map(|p| p as u64),
        "dead_letters": dead.map(|d| d as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_leave_out_health_checks_and_read_the_p95_bucket() {
        let text = r#"# TYPE http_requests_total counter
http_requests_total{method="GET",route="/products",status="200"} 90
http_requests_total{method="GET",route="/products",status="500"} 10
http_requests_total{method="GET",route="/health/ready",status="200"} 5000
http_request_duration_seconds_bucket{method="GET",route="/products",status="200",le="0.005"} 50
http_request_duration_seconds_bucket{method="GET",route="/products",status="200",le="0.01"} 94
http_request_duration_seconds_bucket{method="GET",route="/products",status="200",le="0.025"} 100
http_request_duration_seconds_bucket{method="GET",route="/products",status="200",le="+Inf"} 100
http_request_duration_seconds_bucket{method="GET",route="/health/ready",status="200",le="+Inf"} 5000
http_requests_total{method="GET",route="/events",status="503"} 7
http_request_duration_seconds_bucket{method="GET",route="/events",status="200",le="+Inf"} 40
events_feed_reader_lag{reader="orders"} 3
events_feed_reader_lag{reader="carts"} 7
"#;
        let figures = summarize(text);
        assert_eq!(figures["requests"], 100);
        assert_eq!(figures["server_errors"], 10);
        assert_eq!(figures["p95_ms_at_most"], 25.0);
        assert_eq!(figures["events_unread"], 7);
        assert_eq!(figures["dead_letters"], Value::Null, "not a consumer");
        let consumer = "events_consumed_total{consumer=\"x\"} 4\n";
        assert_eq!(summarize(consumer)["dead_letters"], 0);
        let failing = "events_dead_lettered_total{consumer=\"x\"} 2\nevents_consumed_total 4\n";
        assert_eq!(summarize(failing)["dead_letters"], 2);
        assert_eq!(summarize("")["p95_ms_at_most"], Value::Null);
    }
}
