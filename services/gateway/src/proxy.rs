//! Forwarding one request: route, client checks (rate limits, token; `edge.rs`), circuit breaker,
//! replica choice, the upstream call with its timeout, and a retry on another replica where that is
//! safe. A browser's cookies are turned into headers here (`session.rs`) and never forwarded.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use platform::breaker::{Permit, Rejected};
use platform::error::Problem;
use platform::telemetry::{TraceContext, TRACEPARENT};

use crate::balancer::{Replica, Upstream};
use crate::routes::Route;
use crate::Gateway;

/// Headers that describe one connection, not the message: never forwarded (RFC 9110 §7.6.1).
/// Named, not spelled: a `&str` name is parsed again on every removal.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

pub async fn forward(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some(target) = gateway.table.resolve(parts.uri.path()) else {
        return Problem::not_found("No such resource.").into_response();
    };
    let Some(upstream) = gateway.upstreams.get(&target.route.service).cloned() else {
        return Problem::not_found("No such resource.").into_response();
    };

    // A browser's cookies become the headers the services expect, and go no further.
    let browser = crate::session::Browser::of(&parts.headers);
    let mut headers = parts.headers;
    if let Err(refused) = gateway
        .check_browser(
            &mut headers,
            browser.access.as_deref(),
            peer.ip(),
            target.route.access,
        )
        .await
    {
        return refused;
    }
    crate::session::prepare_proxied(&mut headers, &browser, &target.path);

    // Held until the call's outcome is known; dropped early (413 below, the client hanging up, the
    // request timeout) it frees the breaker's probe slot.
    let permit = match upstream.breaker.admit() {
        Ok(permit) => permit,
        Err(Rejected { retry_after }) => {
            return Problem::unavailable(format!(
                "{} is failing; the gateway is not sending it requests for now.",
                upstream.service
            ))
            .retry_after(retry_after.as_secs().max(1))
            .into_response()
        }
    };
    // A request without a body (every GET) has nothing to read.
    let body = match body_bytes(body, gateway.body_limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            )
            .into_response()
        }
    };
    let timeout = Duration::from_millis(
        target
            .route
            .timeout_ms
            .unwrap_or(gateway.settings.upstream_timeout_ms),
    );
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{}?{query}", target.path),
        None => target.path.clone(),
    };
    let call = Call {
        method: parts.method,
        path_and_query,
        headers: forwarded_headers(headers, peer.ip()),
        body,
        timeout,
        route: target.route,
    };
    let response = gateway.call(&upstream, &call, &permit).await;
    let mut response = response.unwrap_or_else(IntoResponse::into_response);
    strip_hop_by_hop(response.headers_mut());
    crate::session::keep_tokens_of(&browser, &target.path, response).await
}

/// The whole body, up to `limit` bytes; nothing to collect when the request has no body.
async fn body_bytes(body: Body, limit: usize) -> Result<Bytes, axum::Error> {
    if HttpBody::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    axum::body::to_bytes(body, limit).await
}

/// What is sent upstream, kept so that a retry sends the same again.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) timeout: Duration,
    pub(crate) route: &'a Route,
}

impl Gateway {
    /// Sends `call` to a healthy replica. A replica that cannot be reached is ejected until its
    /// health check passes again; the call then goes to another replica when repeating it is safe:
    /// always for idempotent methods, and for any method when the connection failed before anything
    /// was sent.
    pub(crate) async fn call(
        &self,
        upstream: &Upstream,
        call: &Call<'_>,
        permit: &Permit<'_>,
    ) -> Result<Response, Problem> {
        let idempotent = matches!(
            call.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        );
        let mut tried: Vec<Arc<Replica>> = Vec::new();
        let attempts = upstream.replicas.len().clamp(1, 3);
        // This hop of the trace, sent in place of the client's `traceparent` (the request's
        // context already continues the client's trace): with exported spans, the upstream's
        // span is then a child of this call's.
        let context = TraceContext::current();
        // Only when spans are exported: otherwise the request's own span is enough, and this
        // path is taken for every proxied request.
        let span = match &context {
            Some(_) if platform::telemetry::otel::exporting() => tracing::info_span!(
                "proxy",
                otel.name = %format!("{} {}", call.method, upstream.service),
                otel.kind = "client",
                upstream = %upstream.service,
            ),
            _ => tracing::Span::none(),
        };
        let traceparent = context.as_ref().and_then(|c| {
            if !span.is_none() {
                c.parent(&span);
            }
            HeaderValue::from_str(&c.traceparent_in(&span)).ok()
        });
        let mut last = Problem::unavailable(format!("No healthy replica of {}.", upstream.service))
            .retry_after(1);
        for _ in 0..attempts {
            let Some(replica) = upstream.pick(&tried) else {
                break;
            };
            tried.push(replica.clone());
            let mut request = match build_request(&replica.url, call) {
                Ok(request) => request,
                Err(problem) => return Err(problem),
            };
            if let Some(traceparent) = &traceparent {
                request
                    .headers_mut()
                    .insert(TRACEPARENT, traceparent.clone());
            }
            let started = Instant::now();
            let in_flight = replica.start();
            let outcome = tokio::time::timeout(call.timeout, self.client.request(request)).await;
            drop(in_flight);
            let labels = || {
                [
                    ("service", upstream.service.clone()),
                    ("replica", replica.url.clone()),
                    ("route", call.route.prefix.clone()),
                ]
            };
            let route = call.route.index;
            replica
                .durations
                .get(&route, || {
                    let histogram =
                        metrics::histogram!("gateway_upstream_duration_seconds", &labels());
                    (route, histogram)
                })
                .record(started.elapsed().as_secs_f64());
            match outcome {
                Ok(Ok(response)) => {
                    // A 5xx is the service failing as surely as a refused connection (it is still
                    // passed on to the client as it is), except a 503: that is the service
                    // answering, fast, that it cannot do this now, mostly because something it
                    // depends on is down (orders while inventory is). It guards that dependency
                    // with its own breaker; opening this one would take its other routes down
                    // too (order history while inventory is down).
                    let status = response.status();
                    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                        permit.failure();
                    } else {
                        permit.success();
                    }
                    let status = status.as_u16();
                    let key = (route, status);
                    let calls = replica.calls.get(&key, || {
                        let mut labels = labels().to_vec();
                        labels.push(("status", status.to_string()));
                        (
                            key,
                            metrics::counter!("gateway_upstream_requests_total", &labels),
                        )
                    });
                    calls.increment(1);
                    return Ok(response.map(Body::new));
                }
                Ok(Err(error)) => {
                    tracing::warn!(replica = %replica.url, %error, "upstream call failed");
                    replica.set_healthy(false);
                    permit.failure();
                    last = Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway")
                        .detail(format!("{} could not be reached.", upstream.service));
                    if !(idempotent || error.is_connect()) || permit.is_probe() {
                        break;
                    }
                }
                Err(_) => {
                    permit.failure();
                    last = Problem::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "gateway-timeout",
                        "Gateway timeout",
                    )
                    .detail(format!(
                        "{} did not answer within {} ms.",
                        upstream.service,
                        call.timeout.as_millis()
                    ));
                    break;
                }
            }
        }
        metrics::counter!("gateway_upstream_failures_total", "service" => upstream.service.clone())
            .increment(1);
        Err(last)
    }
}

fn build_request(base: &str, call: &Call<'_>) -> Result<axum::http::Request<Body>, Problem> {
    let uri: Uri = format!("{base}{}", call.path_and_query)
        .parse()
        .map_err(|_| Problem::bad_request("The request path is not valid."))?;
    let mut request = axum::http::Request::builder()
        .method(call.method.clone())
        .uri(uri)
        .body(Body::from(call.body.clone()))
        .map_err(|_| Problem::bad_request("The request is not valid."))?;
    *request.headers_mut() = call.headers.clone();
    Ok(request)
}

/// The client's headers minus hop-by-hop ones and `Host`, plus `X-Forwarded-*`.
pub(crate) fn forwarded_headers(mut headers: HeaderMap, client: IpAddr) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    let host = headers.remove(header::HOST);
    let forwarded_for = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {client}"),
        None => client.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    headers
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too (rare: no list is made without one).
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}
