//! The HTTP server bootstrap every service shares: health, metrics, OpenAPI and Swagger UI, request
//! ids and trace context, access logs, timeouts, body limits, compression, panics and every error
//! as problem+json, and graceful shutdown.
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::Database;
use crate::error::{Problem, PROBLEM_JSON};
use crate::shutdown::Shutdown;
use crate::telemetry::{HandleCache, TraceContext, TRACEPARENT};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

type ReadyCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// What `/health/ready` asks: ready only when the service's dependencies answer.
#[derive(Clone)]
pub struct Readiness(ReadyCheck);

impl Readiness {
    /// Ready while the database answers.
    pub fn database(db: Database) -> Self {
        Self(Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { db.ping().await })
        }))
    }

    /// Always ready: for stateless processes.
    pub fn always() -> Self {
        Self(Arc::new(|| Box::pin(async { true })))
    }
}

/// A service's own routes and spec, plus the knobs of the shared layers.
pub struct Service {
    pub name: &'static str,
    pub router: Router,
    pub openapi: OpenApi,
    pub readiness: Readiness,
    pub request_timeout: Duration,
    pub body_limit: usize,
}

/// Wraps a service's routes with everything every Agora service serves and does.
pub fn app(service: Service) -> Router {
    app_with_docs(service, "/openapi.json")
}

/// Like [`app`], with `/docs` showing the spec at `spec_url` (the gateway shows the merged one).
pub fn app_with_docs(service: Service, spec_url: &'static str) -> Router {
    // Install the recorder before the first request, or its metrics would be lost.
    let _ = crate::telemetry::prometheus();
    let (standard, standard_api) = OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .with_state(service.readiness)
        .split_for_parts();
    let mut openapi = service.openapi;
    openapi.merge(standard_api);
    crate::openapi::document_shared_errors(&mut openapi);
    let spec = Arc::new(openapi);
    let docs = swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
        uri_prefix: "/docs",
        api_definition: swagger_ui_dist::OpenApiSource::Uri(spec_url),
        title: Some(service.name),
    });

    // One stack, outermost first. Composed once with `ServiceBuilder` and handed to the router as a
    // single layer: ten separate `Router::layer` calls box and clone each route ten times per
    // request. (`map_response` turns each layer's body type back into axum's where the next layer
    // out needs it.)
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    let request_id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let span = tracing::info_span!(
                        "request",
                        otel.name = %format!("{} {}", req.method(), req.uri().path()),
                        otel.kind = "server",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id,
                        trace_id = tracing::field::Empty,
                        span_id = tracing::field::Empty,
                    );
                    // Exported spans join the caller's trace (before the span is entered).
                    let traceparent = req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok());
                    crate::telemetry::otel::adopt(&span, traceparent);
                    span
                })
                .on_request(())
                .on_response(())
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn::<_, (Request,)>(trace_context))
        .layer(middleware::from_fn::<_, (Request,)>(observe))
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            Problem::internal().into_response()
        }))
        .layer(middleware::from_fn::<_, (Request,)>(
            problem_for_bare_errors,
        ))
        .map_response(IntoResponse::into_response)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            service.request_timeout,
        ))
        .map_response(IntoResponse::into_response)
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(service.body_limit))
        .layer(DefaultBodyLimit::max(service.body_limit));
    service
        .router
        .merge(standard)
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { axum::Json(spec.as_ref().clone()) }
            }),
        )
        .merge(docs)
        .fallback(|| async { Problem::not_found("No such resource.") })
        .layer(layers)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves `app` on `listener` until `shutdown`; when `common` configures TLS (`platform::tls`), also
/// over HTTPS on its TLS port, and the plain port then answers only health and metrics, redirecting
/// everything else to HTTPS.
pub async fn serve_with_tls(
    common: &crate::config::CommonConfig,
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let Some(acceptor) = crate::tls::acceptor(common)? else {
        return Ok(serve(listener, app, shutdown).await?);
    };
    let tls_listener = bind(SocketAddr::new(common.host, common.tls_port)).await?;
    let tls_port = tls_listener.local_addr()?.port();
    tracing::info!(port = tls_port, "serving HTTPS");
    // One shutdown signal, two servers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let on_stop = |mut stopped: tokio::sync::watch::Receiver<bool>| -> Shutdown {
        Box::pin(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
    };
    let plain = app
        .clone()
        .layer(axum::middleware::from_fn(move |request, next| {
            crate::tls::redirect_to_https(tls_port, request, next)
        }));
    let (plain, tls) = tokio::join!(
        serve(listener, plain, on_stop(stopped.clone())),
        crate::tls::serve(tls_listener, acceptor, app, on_stop(stopped)),
    );
    plain?;
    tls?;
    Ok(())
}

/// A service ready to run: its app and its bound listener (so its port is known before it runs).
pub struct Bound {
    pub listener: tokio::net::TcpListener,
    pub app: Router,
    pub port: u16,
}

/// Wraps a service's routes with the platform's layers (timeout and body limit from `common`) and
/// binds `common.host:common.port`: what every service's `Application::build` ends with.
pub async fn bind_service(
    common: &crate::config::CommonConfig,
    name: &'static str,
    (router, openapi): (Router, OpenApi),
    readiness: Readiness,
) -> anyhow::Result<Bound> {
    let app = app(Service {
        name,
        router,
        openapi,
        readiness,
        request_timeout: Duration::from_millis(common.request_timeout_ms),
        body_limit: common.body_limit_bytes,
    });
    let listener = bind(SocketAddr::new(common.host, common.port)).await?;
    let port = listener.local_addr()?.port();
    Ok(Bound {
        listener,
        app,
        port,
    })
}

/// Binds `host:port`, with a message that names the port when it is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {} is already in use on {}: stop what holds it or choose another port",
                addr.port(),
                addr.ip()
            )
        } else {
            anyhow::anyhow!("cannot listen on {addr}: {e}")
        }
    })
}

/// The address of the client that sent a request. Behind a proxy on this machine (the gateway),
/// the peer is the proxy, so the last address the proxy appended to `X-Forwarded-For` is taken;
/// from any other peer the header is ignored, since a client could write anything in it.
pub fn client_ip(peer: SocketAddr, headers: &axum::http::HeaderMap) -> std::net::IpAddr {
    if !peer.ip().is_loopback() {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .next_back()
        .unwrap_or(peer.ip())
}

/// The request metrics of one route: its in-flight gauge, and a counter and a latency histogram per
/// (method, status).
struct RouteMetrics {
    route: String,
    in_flight: metrics::Gauge,
    outcomes: HandleCache<(Method, u16), (metrics::Counter, metrics::Histogram)>,
}

fn route_metrics(route: &str) -> Arc<RouteMetrics> {
    static ROUTES: OnceLock<HandleCache<String, Arc<RouteMetrics>>> = OnceLock::new();
    ROUTES.get_or_init(HandleCache::default).get(route, || {
        let metrics = RouteMetrics {
            route: route.to_owned(),
            in_flight: metrics::gauge!("http_requests_in_flight", "route" => route.to_owned()),
            outcomes: HandleCache::default(),
        };
        (route.to_owned(), Arc::new(metrics))
    })
}

/// Handles the request in its [`TraceContext`]: its request id and the caller's trace (a new one
/// when the caller sent none), so that the calls and events it causes carry both.
async fn trace_context(request: Request, next: Next) -> Response {
    // No borrow of the request may live across the await: its body is not `Sync`.
    let context = {
        let headers = request.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        TraceContext::continuing(header(REQUEST_ID.as_str()), header(TRACEPARENT))
    };
    let span = tracing::Span::current();
    let context = context.joined(&span);
    span.record("trace_id", context.trace_id.as_str());
    span.record("span_id", context.span_id.as_str());
    context.scope(next.run(request)).await
}

/// Request metrics by route template and status, plus one access-log line per request.
async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let metrics = route_metrics(route);
    let method = request.method().clone();
    metrics.in_flight.increment(1.0);
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.in_flight.decrement(1.0);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let (total, duration) = metrics.outcomes.get(&(method.clone(), status), || {
        let labels = [
            ("method", method.as_str().to_owned()),
            ("route", metrics.route.clone()),
            ("status", status.to_string()),
        ];
        let handles = (
            metrics::counter!("http_requests_total", &labels),
            metrics::histogram!("http_request_duration_seconds", &labels),
        );
        ((method.clone(), status), handles)
    });
    total.increment(1);
    duration.record(elapsed.as_secs_f64());
    tracing::info!(
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "handled"
    );
    response
}

/// Error responses made by layers and axum itself (404, 405, 413, timeouts, ...) come without a
/// body; this gives them the same problem+json shape as the services' own errors.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "This resource does not support that method.",
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is larger than this service accepts.",
        StatusCode::SERVICE_UNAVAILABLE => "The request took too long and was abandoned.",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "The request body has an unsupported content type.",
        _ => "The request could not be handled.",
    };
    let mut problem = Problem::status(status).detail(detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// Declares the `bearer` security scheme (JWT) that routes name in `security(("bearer" = ...))`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct HealthStatus {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, body = HealthStatus)))]
async fn live() -> axum::Json<HealthStatus> {
    axum::Json(HealthStatus { status: "ok" })
}

/// The service can do its work: its database answers.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, body = HealthStatus),
    (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn ready(State(readiness): State<Readiness>) -> Response {
    if (readiness.0)().await {
        axum::Json(HealthStatus { status: "ready" }).into_response()
    } else {
        Problem::unavailable("The database does not answer.").into_response()
    }
}

/// Prometheus metrics in text format (public for the processes that do not use [`app`]: the
/// payment gateway simulator).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics() -> Response {
    let body = crate::telemetry::prometheus()
        .map(|handle| handle.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_counts_only_behind_a_local_proxy() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 10.1.2.3"),
        );
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        assert_eq!(client_ip(local, &headers).to_string(), "10.1.2.3");
        assert_eq!(client_ip(remote, &headers).to_string(), "192.0.2.7");
        assert_eq!(
            client_ip(local, &axum::http::HeaderMap::new()).to_string(),
            "127.0.0.1"
        );
    }
}
