//! The circuit breaker in front of each service: what opens it, and that it closes again.
use std::sync::atomic::AtomicBool;

use axum::http::StatusCode;

use super::*;

/// How a [`Flaky`] replica fails.
#[derive(Clone, Copy)]
enum Failure {
    Answers500,
    /// A service that says it cannot do this now (a dependency of its is down).
    Answers503,
    /// Never answers.
    Hangs,
}

/// A stand-in replica that fails while `failing` is set; its health check always passes.
struct Flaky {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Flaky {
    async fn start(failure: Failure) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(AtomicBool::new(true));
        let (counted, flag) = (hits.clone(), failing.clone());
        let app = Router::new()
            .route("/health/ready", get(|| async { "ready" }))
            .fallback(move || {
                let (counted, flag) = (counted.clone(), flag.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    match (flag.load(Ordering::SeqCst), failure) {
                        (false, _) => (StatusCode::OK, "up"),
                        (true, Failure::Answers500) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, "broken")
                        }
                        (true, Failure::Answers503) => (StatusCode::SERVICE_UNAVAILABLE, "down"),
                        (true, Failure::Hangs) => std::future::pending().await,
                    }
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            hits,
            failing,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A chunked POST whose body is over the gateway's limit, sent in one write (so the gateway only
/// finds out while reading it); the status code of the answer.
async fn oversized_post(addr: SocketAddr, path: &str, size: usize) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: gateway\r\ntransfer-encoding: chunked\r\n\r\n{size:x}\r\n{}\r\n0\r\n\r\n",
        "x".repeat(size)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while answer.len() < 12 {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("the gateway answered")
            .unwrap();
        assert!(
            read > 0,
            "the gateway closed the connection without answering"
        );
        answer.extend_from_slice(&buffer[..read]);
    }
    // "HTTP/1.1 413 ..."
    String::from_utf8_lossy(&answer[9..12]).parse().unwrap()
}

#[tokio::test]
async fn a_probe_dropped_before_its_outcome_does_not_keep_the_breaker_open() {
    let products = Flaky::start(Failure::Hangs).await;
    let gw = spawn_gateway(
        json!({"products": [products.url()]}),
        json!({"breaker_failures": 1, "breaker_open_ms": 300, "upstream_timeout_ms": 200,
               "health_interval_ms": 60000, "body_limit_bytes": 1024}),
    )
    .await;
    assert_eq!(gw.get("/api/products").await.status(), 504);
    products.failing.store(false, Ordering::SeqCst);
    // Once the breaker is half-open, the probe it admits is a request the gateway gives up on while
    // reading its body: it never reaches the service and has no outcome.
    let gw = &gw;
    eventually(
        Duration::from_secs(10),
        "the breaker admitted a probe",
        move || async move {
            (oversized_post(gw.addr, "/api/products", 2048).await == 413).then_some(())
        },
    )
    .await;
    let hits = products.hits();
    assert_eq!(gw.get("/api/products").await.status(), 200);
    assert_eq!(products.hits(), hits + 1);
}

#[tokio::test]
async fn upstream_5xx_answers_open_the_breaker_and_a_recovered_upstream_closes_it() {
    let flaky = Flaky::start(Failure::Answers500).await;
    let gw = spawn_gateway(
        json!({"products": [flaky.url()]}),
        json!({"breaker_failures": 3, "breaker_open_ms": 2000, "health_interval_ms": 60000}),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(gw.get("/api/products").await.status(), 500);
    }
    assert_eq!(flaky.hits(), 3);
    let refused = gw.get("/api/products").await;
    assert_eq!(flaky.hits(), 3, "the open breaker answered for the service");
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert!(refused.headers().contains_key("retry-after"));

    flaky.failing.store(false, Ordering::SeqCst);
    let gw = &gw;
    eventually(
        Duration::from_secs(10),
        "the breaker closed",
        move || async move { (gw.get("/api/products").await.status() == 200).then_some(()) },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(gw.get("/api/products").await.status(), 200);
    }
}

/// A 503 is a service saying it cannot do this now (orders while inventory is down): passed on,
/// but it leaves the breaker closed, so the service's other routes keep being served.
#[tokio::test]
async fn upstream_503_answers_are_passed_on_and_leave_the_breaker_closed() {
    let flaky = Flaky::start(Failure::Answers503).await;
    let gw = spawn_gateway(
        json!({"products": [flaky.url()]}),
        json!({"breaker_failures": 3, "breaker_open_ms": 60000, "health_interval_ms": 60000}),
    )
    .await;
    for _ in 0..6 {
        assert_eq!(gw.get("/api/products").await.status(), 503);
    }
    assert_eq!(flaky.hits(), 6, "every call reached the service");
    flaky.failing.store(false, Ordering::SeqCst);
    assert_eq!(gw.get("/api/products").await.status(), 200);
    assert_eq!(flaky.hits(), 7);
}
