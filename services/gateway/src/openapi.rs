//! `GET /api/openapi.json`: every service's spec merged under the paths the gateway routes, so one
//! document describes the whole public API. Paths the gateway does not route are left out. The
//! merged document is kept for `openapi_cache_ms`, so a burst of readers costs the services one
//! fetch each, and the route is rate limited like every other.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::config::Access;
use crate::Gateway;

/// How long a document missing a service (down, slow, unreadable spec) is kept at most, so it
/// does not stay incomplete for a whole TTL.
const INCOMPLETE_TTL: Duration = Duration::from_secs(5);

/// The merged document and until when it is fresh.
#[derive(Default)]
pub struct SpecCache(Mutex<Option<(Instant, Bytes)>>);

pub async fn merged(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = gateway
        .check_client(&headers, peer.ip(), Access::Public)
        .await
    {
        return refused;
    }
    let document = gateway.spec.get(&gateway).await;
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}

impl SpecCache {
    /// The cached document, merged again once stale. The lock is held across the refresh so
    /// callers arriving meanwhile wait for it instead of fetching every spec again themselves.
    async fn get(&self, gateway: &Gateway) -> Bytes {
        let mut cached = self.0.lock().await;
        if let Some((fresh_until, document)) = cached.as_ref() {
            if Instant::now() < *fresh_until {
                return document.clone();
            }
        }
        let (document, complete) = merge(gateway).await;
        let ttl = Duration::from_millis(gateway.settings.openapi_cache_ms);
        let ttl = if complete {
            ttl
        } else {
            ttl.min(INCOMPLETE_TTL)
        };
        *cached = Some((Instant::now() + ttl, document.clone()));
        document
    }
}

/// The merged document, and whether every service's spec made it in.
async fn merge(gateway: &Gateway) -> (Bytes, bool) {
    let mut fetches = JoinSet::new();
    for (service, upstream) in gateway.upstreams.iter() {
        let Some(replica) = upstream.pick(&[]) else {
            continue;
        };
        let (gateway, service) = (gateway.clone(), service.clone());
        fetches.spawn(async move {
            let spec = fetch(&gateway, &format!("{}/openapi.json", replica.url)).await;
            (service, spec)
        });
    }
    // By service name, so that which schema wins a name clash does not depend on timing.
    let mut specs = BTreeMap::new();
    let mut complete = fetches.len() == gateway.upstreams.len();
    while let Some(joined) = fetches.join_next().await {
        match joined {
            Ok((service, Ok(spec))) => {
                specs.insert(service, spec);
            }
            Ok((service, Err(error))) => {
                tracing::warn!(service, %error, "could not fetch the OpenAPI document");
                complete = false;
            }
            Err(_) => complete = false,
        }
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for (service, spec) in &specs {
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            if let Some(public) = public_path(gateway, service, path) {
                paths.insert(public, item.clone());
            }
        }
        for (name, schema) in spec["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
        {
            schemas.insert(name.clone(), schema.clone());
        }
    }
    let document = json!({
        "openapi": "3.1.0",
        "info": {"title": "Agora API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Every public route of the Agora services, as served by the gateway."},
        "paths": paths,
        "components": {"schemas": schemas},
    });
    (Bytes::from(document.to_string()), complete)
}

/// Where a service's `path` is reachable through the gateway, if it is.
fn public_path(gateway: &Gateway, service: &str, path: &str) -> Option<String> {
    gateway
        .table
        .routes()
        .iter()
        .filter(|r| r.service == service)
        .find_map(|r| {
            let rest = path.strip_prefix(&r.upstream_prefix)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{}{rest}", r.prefix))
        })
        .filter(|public| {
            gateway
                .table
                .resolve(&public.replace(['{', '}'], ""))
                .is_some()
        })
}

async fn fetch(gateway: &Gateway, url: &str) -> anyhow::Result<Value> {
    let request = axum::http::Request::builder()
        .method(Method::GET)
        .uri(url)
        .body(axum::body::Body::empty())?;
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        gateway.client.request(request),
    )
    .await??;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "status {}",
        response.status()
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await?
        .to_bytes();
    Ok(serde_json::from_slice(&bytes)?)
}
