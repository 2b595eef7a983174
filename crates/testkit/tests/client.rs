//! `platform::client::ServiceClient` against a real server: what it retries and what it never does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use platform::client::{CallError, ClientCredentials, ServiceClient};
use reqwest::Method;
use testkit::TestIssuer;

/// A server whose every route fails with 503 for the first `failures` calls.
async fn flaky(failures: usize) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/thing",
        get({
            let counter = counter.clone();
            move |headers: HeaderMap| {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < failures {
                        (StatusCode::SERVICE_UNAVAILABLE, String::new())
                    } else {
                        let auth = headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        let id = headers
                            .get("x-request-id")
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        (StatusCode::OK, format!("{auth}|{id}"))
                    }
                }
            }
        })
        .post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::SERVICE_UNAVAILABLE }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test]
async fn an_idempotent_call_is_retried_through_passing_failures_with_token_and_request_id() {
    let issuer = TestIssuer::start().await;
    let (url, calls) = flaky(2).await;
    let client = ServiceClient::new("flaky", &url, Duration::from_secs(2)).with_credentials(
        ClientCredentials::new(&issuer.users_url, "svc".into(), "secret".to_owned().into()),
    );
    let response = client
        .send(Method::GET, "/thing", Some("req-42"), |r| r)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with("Bearer ey"), "{body}");
    assert!(body.ends_with("|req-42"), "{body}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_post_is_sent_once_whatever_the_answer() {
    let (url, calls) = flaky(100).await;
    let client = ServiceClient::new("flaky", &url, Duration::from_secs(2));
    let result = client.send(Method::POST, "/thing", None, |r| r).await;
    assert!(matches!(result, Err(CallError::Status { status, .. }) if status == 503));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_service_is_a_clear_error_after_bounded_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = ServiceClient::new(
        "ghost",
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(1),
    );
    let started = std::time::Instant::now();
    let result = client.send(Method::GET, "/thing", None, |r| r).await;
    assert!(
        matches!(result, Err(CallError::Unreachable { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
