//! `GET /api/openapi.json`: every service's spec merged under the paths the gateway routes, so one
//! document describes the whole public API. Paths the gateway does not route are left out.
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::Gateway;

pub async fn merged(State(gateway): State<Gateway>) -> Response {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for (service, upstream) in gateway.upstreams.iter() {
        let Some(replica) = upstream.pick(&[]) else {
            continue;
        };
        let Ok(spec) = fetch(&gateway, &format!("{}/openapi.json", replica.url)).await else {
            tracing::warn!(service, "could not fetch the OpenAPI document");
            continue;
        };
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            if let Some(public) = public_path(&gateway, service, path) {
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
    axum::Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "Agora API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Every public route of the Agora services, as served by the gateway."},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
    .into_response()
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
