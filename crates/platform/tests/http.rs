//! The shared HTTP bootstrap, over a real socket: every error a client can cause is problem+json.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use platform::error::Problem;
use platform::extract::Json;
use platform::http::{Readiness, Service};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Greeting {
    #[allow(dead_code)]
    name: String,
}

async fn spawn(readiness: Readiness) -> String {
    spawn_with_spec(readiness, utoipa::openapi::OpenApiBuilder::new().build()).await
}

async fn spawn_with_spec(readiness: Readiness, openapi: utoipa::openapi::OpenApi) -> String {
    let router = Router::new()
        .route("/greetings", post(|Json(_): Json<Greeting>| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/boom", get(|| async { Err::<(), _>(Problem::internal()) }))
        .route(
            "/panic",
            get(|| async {
                if rand_true() {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        );
    let app = platform::http::app(Service {
        name: "test",
        router,
        openapi,
        readiness,
        request_timeout: Duration::from_millis(300),
        body_limit: 1024,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(platform::http::serve(
        listener,
        app,
        platform::shutdown::never(),
    ));
    format!("http://127.0.0.1:{port}")
}

fn rand_true() -> bool {
    std::hint::black_box(true)
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string());
    body
}

#[tokio::test]
async fn client_mistakes_get_problem_json_with_the_right_status() {
    let base = spawn(Readiness::always()).await;
    let http = reqwest::Client::new();
    problem(
        http.get(format!("{base}/nowhere")).send().await.unwrap(),
        404,
    )
    .await;
    let r = http
        .delete(format!("{base}/greetings"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("allow"));
    problem(r, 405).await;
    let r = http
        .post(format!("{base}/greetings"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(r, 400).await;
    let r = http
        .post(format!("{base}/greetings"))
        .header("content-type", "application/json")
        .body(r#"{"name": 42}"#)
        .send()
        .await
        .unwrap();
    problem(r, 422).await;
    let r = http
        .post(format!("{base}/greetings"))
        .header("content-type", "text/plain")
        .body(r#"{"name": "x"}"#)
        .send()
        .await
        .unwrap();
    problem(r, 415).await;
    let r = http
        .post(format!("{base}/greetings"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"name": "{}"}}"#, "x".repeat(4096)))
        .send()
        .await
        .unwrap();
    problem(r, 413).await;
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_a_422() {
    let base = spawn(Readiness::always()).await;
    let http = reqwest::Client::new();
    // serde reads a struct from an array too; every request body here is an object.
    for body in [r#"["x"]"#, "null", "\"x\"", "42"] {
        let r = http
            .post(format!("{base}/greetings"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        problem(r, 422).await;
    }
}

/// A route as services declare them: a body, a path parameter and a token.
#[utoipa::path(put, path = "/greetings/{id}", request_body = String,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Greeted")))]
async fn greet() {}

/// A route only tokens with a scope may call.
#[utoipa::path(delete, path = "/greetings/{id}", params(("id" = String, Path)),
    security(("bearer" = ["greetings:write"])),
    responses((status = 204, description = "Forgotten")))]
async fn forget() {}

#[tokio::test]
async fn the_spec_lists_the_errors_of_the_shared_layers_on_every_operation() {
    let (_, openapi) = utoipa_axum::router::OpenApiRouter::<()>::new()
        .routes(utoipa_axum::routes!(greet, forget))
        .split_for_parts();
    let base = spawn_with_spec(Readiness::always(), openapi).await;
    let spec: Value = reqwest::get(format!("{base}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let responses = &spec["paths"]["/greetings/{id}"]["put"]["responses"];
    assert_eq!(responses["200"]["description"], "Greeted");
    for status in ["400", "401", "413", "415", "422"] {
        let problem = &responses[status]["content"]["application/problem+json"]["schema"];
        assert_eq!(
            problem["$ref"], "#/components/schemas/Problem",
            "{status}: {responses}"
        );
    }
    assert!(responses["403"].is_null(), "no scope, no 403: {responses}");
    let scoped = &spec["paths"]["/greetings/{id}"]["delete"]["responses"];
    for status in ["400", "401", "403"] {
        assert!(scoped[status].is_object(), "{status}: {scoped}");
    }
    assert!(scoped["415"].is_null(), "no body, no 415: {scoped}");
    assert!(spec["components"]["schemas"]["Problem"].is_object());
    // The health routes take no body and no token: nothing is added to them.
    let ready = &spec["paths"]["/health/ready"]["get"]["responses"];
    assert!(ready["401"].is_null() && ready["415"].is_null(), "{ready}");
}

#[tokio::test]
async fn a_slow_request_times_out_and_a_panic_is_a_500_without_internals() {
    let base = spawn(Readiness::always()).await;
    let http = reqwest::Client::new();
    problem(http.get(format!("{base}/slow")).send().await.unwrap(), 503).await;
    let body = problem(http.get(format!("{base}/panic")).send().await.unwrap(), 500).await;
    assert!(!body.to_string().contains("handler bug"));
    problem(http.get(format!("{base}/boom")).send().await.unwrap(), 500).await;
}

#[tokio::test]
async fn a_request_id_is_kept_when_sent_and_made_when_not() {
    let base = spawn(Readiness::always()).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{base}/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(made.len(), 36, "a UUID: {made}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let base = spawn(Readiness::always()).await;
    let http = reqwest::Client::new();
    http.get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/health/live""#), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn readiness_follows_the_check_and_the_spec_lists_the_health_routes() {
    let base = spawn(Readiness::always()).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let spec: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/health/ready"].is_object(), "{spec}");
    let docs = http.get(format!("{base}/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let empty = sqlx::migrate::Migrator::DEFAULT;
    let db = platform::db::Database::connect(&url, 2, &empty, &empty)
        .await
        .unwrap();
    let base = spawn(Readiness::database(db.clone())).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    db.close().await;
    problem(
        http.get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap(),
        503,
    )
    .await;
}
