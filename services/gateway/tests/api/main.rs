//! The gateway over real sockets, in front of stand-in replicas that count what reaches them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::Uri;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use testkit::TestIssuer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// A stand-in service replica: answers every path with its own name and the path it saw.
struct Replica {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

impl Replica {
    async fn start(name: &'static str) -> Self {
        Self::start_on(name, 0).await
    }

    async fn start_on(name: &'static str, port: u16) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/health/ready", get(|| async { "ready" }))
            .fallback(
                move |State(hits): State<Arc<AtomicUsize>>, uri: Uri, headers: axum::http::HeaderMap| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({
                        "replica": name,
                        "path": uri.to_string(),
                        "forwarded_for": headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
                        "request_id": headers.get("x-request-id").and_then(|v| v.to_str().ok()),
                        "connection": headers.get("connection").is_some(),
                    }))
                },
            )
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            addr,
            hits,
            stop: Some(stop),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

mod limits;
mod resilience;
mod session;

struct TestGateway {
    base: String,
    addr: SocketAddr,
    issuer: Arc<TestIssuer>,
    http: reqwest::Client,
    state: gateway::Gateway,
}

async fn spawn_gateway(upstreams: Value, extra: Value) -> TestGateway {
    let issuer = TestIssuer::start().await;
    let mut overrides = Map::new();
    overrides.insert("port".into(), json!(0));
    overrides.insert("users_url".into(), json!(issuer.users_url));
    overrides.insert("upstreams".into(), upstreams);
    overrides.insert("health_interval_ms".into(), json!(200));
    for (key, value) in extra.as_object().unwrap() {
        overrides.insert(key.clone(), value.clone());
    }
    let config = gateway::Config::load(overrides).unwrap();
    let app = gateway::Application::build(config).await.unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let state = app.gateway();
    tokio::spawn(app.run(platform::shutdown::never()));
    TestGateway {
        base: format!("http://{addr}"),
        addr,
        issuer,
        http: reqwest::Client::new(),
        state,
    }
}

/// Repeats `attempt` until it gives a value, for at most `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestGateway {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn public_routes_reach_the_owning_service_without_the_api_prefix() {
    let users = Replica::start("users").await;
    let products = Replica::start("products").await;
    let gw = spawn_gateway(
        json!({"users": [users.url()], "products": [products.url()]}),
        json!({}),
    )
    .await;
    for (path, service, upstream_path) in [
        ("/api/products?q=mug", "products", "/products?q=mug"),
        ("/api/products/42", "products", "/products/42"),
        ("/api/categories", "products", "/categories"),
        ("/api/users", "users", "/users"),
        ("/api/auth/login", "users", "/auth/login"),
        ("/api/oauth/token", "users", "/oauth/token"),
        ("/.well-known/jwks.json", "users", "/.well-known/jwks.json"),
    ] {
        let response = gw.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["replica"], service, "{path}");
        assert_eq!(body["path"], upstream_path, "{path}");
        assert_eq!(body["forwarded_for"], "127.0.0.1");
        assert!(
            body["request_id"].is_string(),
            "a request id is passed upstream"
        );
    }
    let token = gw.issuer.customer();
    let me: Value = gw
        .http
        .get(format!("{}/api/users/me", gw.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["path"], "/users/me");
}

#[tokio::test]
async fn internal_and_unknown_paths_are_404_at_the_edge() {
    let products = Replica::start("products").await;
    let gw = spawn_gateway(json!({"products": [products.url()]}), json!({})).await;
    for path in [
        "/events",
        "/api/events",
        "/api/products/../events",
        "/api/reservations",
        "/api/orders",
        "/products",
        "/api/productsX",
        "/api/health/ready",
        "/api/metrics",
    ] {
        let response = gw.get(path).await;
        assert!(
            response.status() == 404 || response.status() == 401,
            "{path}: {}",
            response.status()
        );
    }
    assert_eq!(gw.get("/api/events").await.status(), 404);
    assert_eq!(products.hits(), 0, "nothing reached the service");
}

#[tokio::test]
async fn bad_tokens_are_refused_before_any_upstream_call() {
    let users = Replica::start("users").await;
    let products = Replica::start("products").await;
    let gw = spawn_gateway(
        json!({"users": [users.url()], "products": [products.url()]}),
        json!({}),
    )
    .await;
    let mut expired = gw.issuer.claims("u", &["customer"], "");
    expired.exp = 1_000;
    let expired = gw.issuer.sign(&expired);
    let foreign = TestIssuer::start().await.admin();
    for token in ["garbage", "a.b.c", expired.as_str(), foreign.as_str()] {
        let response = gw
            .http
            .get(format!("{}/api/products", gw.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    // A route that needs a user, with no token at all.
    assert_eq!(gw.get("/api/users/me").await.status(), 401);
    assert_eq!(products.hits() + users.hits(), 0);
}

#[tokio::test]
async fn three_replicas_share_the_load_evenly() {
    let replicas = [
        Replica::start("products").await,
        Replica::start("products").await,
        Replica::start("products").await,
    ];
    let urls: Vec<String> = replicas.iter().map(Replica::url).collect();
    let gw = spawn_gateway(json!({"products": urls}), json!({"balance": "round_robin", "rate_limit_ip_per_second": 100000, "rate_limit_ip_burst": 100000})).await;
    for _ in 0..3000 {
        assert_eq!(gw.get("/api/products/1").await.status(), 200);
    }
    for replica in &replicas {
        let share = replica.hits() as f64 / 3000.0;
        assert!((share - 1.0 / 3.0).abs() <= 0.15 / 3.0, "share {share}");
    }
}

#[tokio::test]
async fn power_of_two_choices_also_spreads_the_load() {
    let replicas = [
        Replica::start("products").await,
        Replica::start("products").await,
        Replica::start("products").await,
    ];
    let urls: Vec<String> = replicas.iter().map(Replica::url).collect();
    let gw = spawn_gateway(json!({"products": urls}), json!({"balance": "p2c"})).await;
    for _ in 0..600 {
        assert_eq!(gw.get("/api/products/1").await.status(), 200);
    }
    for replica in &replicas {
        assert!(
            replica.hits() > 100,
            "every replica gets a share: {}",
            replica.hits()
        );
    }
}

#[tokio::test]
async fn a_killed_replica_is_ejected_without_failed_requests_and_rejoins_when_back() {
    let mut replicas = [
        Replica::start("products").await,
        Replica::start("products").await,
        Replica::start("products").await,
    ];
    let urls: Vec<String> = replicas.iter().map(Replica::url).collect();
    let gw = spawn_gateway(json!({"products": urls}), json!({"balance": "round_robin"})).await;
    for _ in 0..30 {
        assert_eq!(gw.get("/api/products/1").await.status(), 200);
    }
    let port = replicas[1].addr.port();
    replicas[1].kill();
    let gone = replicas[1].addr;
    eventually(
        Duration::from_secs(5),
        "the replica stopped listening",
        move || async move { tokio::net::TcpStream::connect(gone).await.err() },
    )
    .await;
    // Steady GET load while one replica is gone: GETs are retried on another replica.
    let mut failures = 0;
    for _ in 0..300 {
        if gw.get("/api/products/1").await.status() != 200 {
            failures += 1;
        }
    }
    assert_eq!(failures, 0);
    let before = replicas[0].hits() + replicas[2].hits();
    assert!(before >= 300);

    // Back on the same port: the health check brings it back into rotation.
    replicas[1] = Replica::start_on("products", port).await;
    let (gw, rejoined) = (&gw, &replicas[1]);
    eventually(
        Duration::from_secs(5),
        "the replica rejoined",
        move || async move {
            gw.get("/api/products/1").await;
            (rejoined.hits() > 0).then_some(())
        },
    )
    .await;
}

/// A stand-in replica whose health check passes but which drops every other request unanswered;
/// its URL, and how many requests it dropped.
async fn dropping_replica() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                if head.starts_with(b"GET /health/ready ") {
                    let ready =
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nready";
                    let _ = stream.write_all(ready).await;
                } else {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (url, dropped)
}

#[tokio::test]
async fn the_breaker_opens_on_a_failing_service_and_answers_503_without_calling_it() {
    let (url, dropped) = dropping_replica().await;
    // Each failed call ejects the only replica until its next health check, so the failures that
    // open the breaker come with health checks in between.
    let gw = spawn_gateway(
        json!({"products": [url]}),
        json!({"breaker_failures": 3, "breaker_open_ms": 60000, "health_interval_ms": 100}),
    )
    .await;
    let gw = &gw;
    eventually(
        Duration::from_secs(10),
        "the breaker opened",
        move || async move {
            let status = gw.get("/api/products").await.status();
            assert!(status == 502 || status == 503, "{status}");
            gw.state.upstreams["products"]
                .breaker
                .is_open()
                .then_some(())
        },
    )
    .await;
    let calls = dropped.load(Ordering::SeqCst);
    assert!(calls >= 3, "{calls}");
    let response = gw.get("/api/products").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not sending it requests"),
        "{problem}"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        calls,
        "nothing reached the service"
    );
    let metrics = gw.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gateway_upstream_failures_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_upstream_gets_a_504() {
    let slow = Router::new()
        .route("/health/ready", get(|| async { "ready" }))
        .fallback(std::future::pending::<&str>);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, slow).await });
    let gw = spawn_gateway(
        json!({"products": [url]}),
        json!({"upstream_timeout_ms": 300}),
    )
    .await;
    let response = gw.get("/api/products").await;
    assert_eq!(response.status(), 504);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_and_recovers() {
    let products = Replica::start("products").await;
    let gw = spawn_gateway(
        json!({"products": [products.url()]}),
        json!({"rate_limit_ip_per_second": 5, "rate_limit_ip_burst": 5}),
    )
    .await;
    let mut limited = None;
    for _ in 0..20 {
        let response = gw.get("/api/products").await;
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the limit was hit");
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.headers().contains_key("ratelimit"));
    assert!(limited.headers().contains_key("ratelimit-policy"));
    let gw = &gw;
    eventually(
        Duration::from_secs(5),
        "the bucket refilled",
        move || async move { (gw.get("/api/products").await.status() == 200).then_some(()) },
    )
    .await;
}
