//! TLS termination with rustls, for a service that faces clients itself (the gateway under Compose;
//! in Kubernetes the ingress terminates TLS). When `AGORA_TLS_CERT` and `AGORA_TLS_KEY` (PEM, usually
//! given as files with `AGORA_TLS_CERT_FILE`/`AGORA_TLS_KEY_FILE`) are set, HTTPS is served on
//! `AGORA_TLS_PORT` with HSTS, and the plain port only redirects to it, except the health and
//! metrics endpoints, which probes and scrapers inside the deployment call over plain HTTP.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::Service as _;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::CommonConfig;
use crate::shutdown::Shutdown;

/// One year, subdomains included: once a browser has seen HTTPS here it never tries plain HTTP.
const HSTS: &str = "max-age=31536000; includeSubDomains";
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// In-flight requests get this long to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The rustls acceptor for `common`'s certificate and key, or `None` when TLS is not configured.
/// A certificate without a key (or the reverse), or PEM that does not parse, fails at start.
pub fn acceptor(common: &CommonConfig) -> anyhow::Result<Option<TlsAcceptor>> {
    let (cert, key) = match (&common.tls_cert, &common.tls_key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => anyhow::bail!(
            "invalid configuration: AGORA_TLS_CERT and AGORA_TLS_KEY go together (or their _FILE forms)"
        ),
    };
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("invalid configuration: AGORA_TLS_CERT: {e}"))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "invalid configuration: AGORA_TLS_CERT holds no certificate"
    );
    let key = PrivateKeyDer::from_pem_slice(key.expose_secret().as_bytes())
        .map_err(|e| anyhow::anyhow!("invalid configuration: AGORA_TLS_KEY: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("invalid configuration: AGORA_TLS_CERT/KEY: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Serves `app` over HTTPS on `listener` until `shutdown`, then lets requests in flight finish.
/// Every response carries `Strict-Transport-Security`.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let app = app.layer(SetResponseHeaderLayer::if_not_present(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    ));
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let mut shutdown = shutdown;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: pause rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a TLS connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(service) = make_service.call(peer).await;
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A failed or slow handshake is the client's problem: drop the connection quietly.
            let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            else {
                return;
            };
            // No upgrades (WebSocket): nothing in Agora needs them.
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
            let _ = watcher.watch(connection).await;
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("TLS connections still open after the drain period; closing them");
    }
    Ok(())
}

/// For the plain port when TLS is on: everything but health and metrics answers 308 to the same
/// path on the HTTPS port.
pub async fn redirect_to_https(tls_port: u16, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/health/") || path == "/metrics" {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        // Drop the port; an IPv6 literal (`[::1]:8080`) keeps its brackets.
        .map(|h| match h.rsplit_once(':') {
            Some((name, port)) if !port.ends_with(']') => name,
            _ => h,
        })
        .unwrap_or("localhost")
        .to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    match HeaderValue::from_str(&format!("https://{host}:{tls_port}{target}")) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::routing::get;
    use serde_json::{json, Map};

    use super::*;

    const CERT: &str = include_str!("../tests/fixtures/tls-test.crt");
    const KEY: &str = include_str!("../tests/fixtures/tls-test.key");

    fn common(tls_port: u16, cert: Option<&str>, key: Option<&str>) -> CommonConfig {
        let mut overrides = Map::new();
        overrides.insert("tls_port".into(), json!(tls_port));
        if let Some(cert) = cert {
            overrides.insert("tls_cert".into(), json!(cert));
        }
        if let Some(key) = key {
            overrides.insert("tls_key".into(), json!(key));
        }
        crate::config::load(json!({"port": 0}), overrides).unwrap()
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn https_is_served_with_hsts_and_plain_http_redirects_except_health() {
        let tls_port = free_port();
        let config = common(tls_port, Some(CERT), Some(KEY));
        let app = Router::new()
            .route("/hello", get(|| async { "hi" }))
            .route("/health/live", get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            crate::http::serve_with_tls(
                &config,
                listener,
                app,
                Box::pin(async move {
                    let _ = stopped.await;
                }),
            )
            .await
        });

        let https = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(CERT.as_bytes()).unwrap())
            .build()
            .unwrap();
        let url = format!("https://localhost:{tls_port}/hello");
        let mut answer = Err(String::from("not tried"));
        for _ in 0..100 {
            answer = https.get(&url).send().await.map_err(|e| format!("{e:?}"));
            if answer.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let answer = answer.expect("the HTTPS port answers");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["strict-transport-security"], HSTS);
        assert_eq!(answer.text().await.unwrap(), "hi");

        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let redirected = plain
            .get(format!("http://127.0.0.1:{plain_port}/hello?x=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(redirected.status(), 308);
        assert_eq!(
            redirected.headers()["location"],
            format!("https://127.0.0.1:{tls_port}/hello?x=1").as_str()
        );
        let health = plain
            .get(format!("http://127.0.0.1:{plain_port}/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn a_certificate_without_its_key_or_garbage_pem_is_refused_at_start() {
        assert!(acceptor(&common(0, None, None)).unwrap().is_none());
        let half = acceptor(&common(0, Some(CERT), None)).err().unwrap();
        assert!(half.to_string().contains("AGORA_TLS_KEY"), "{half}");
        let garbage = acceptor(&common(0, Some("not pem"), Some(KEY)))
            .err()
            .unwrap();
        assert!(garbage.to_string().contains("AGORA_TLS_CERT"), "{garbage}");
    }
}
