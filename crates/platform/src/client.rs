//! The client services use to call each other: timeouts, request-id and trace-context propagation
//! (from the [`TraceContext`] of the work making the call), a bearer token
//! from the client-credentials grant, and bounded retries with backoff for idempotent requests only.
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::http::REQUEST_ID;
use crate::telemetry::{TraceContext, TRACEPARENT};

/// Why a call to another service failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{service} did not answer in time")]
    Timeout { service: String },
    #[error("{service} is unreachable: {message}")]
    Unreachable { service: String, message: String },
    #[error("{service} answered {status}")]
    Status {
        service: String,
        status: StatusCode,
        body: String,
    },
    #[error("getting a service token failed: {0}")]
    Token(String),
}

/// Credentials for the client-credentials grant, and the token they last bought.
pub struct ClientCredentials {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    cached: Mutex<Option<(String, std::time::Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl ClientCredentials {
    pub fn new(users_url: &str, client_id: String, client_secret: SecretString) -> Self {
        Self {
            token_url: format!("{}/oauth/token", users_url.trim_end_matches('/')),
            client_id,
            client_secret,
            cached: Mutex::new(None),
        }
    }

    /// A valid access token, fetched again a minute before the cached one expires.
    async fn token(&self, http: &reqwest::Client) -> Result<String, CallError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if std::time::Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let response = http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| CallError::Token(e.to_string()))?;
        if !response.status().is_success() {
            return Err(CallError::Token(format!(
                "token endpoint answered {}",
                response.status()
            )));
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|e| CallError::Token(e.to_string()))?;
        let lifetime = Duration::from_secs(body.expires_in.saturating_sub(60).max(1));
        *cached = Some((
            body.access_token.clone(),
            std::time::Instant::now() + lifetime,
        ));
        Ok(body.access_token)
    }
}

/// `request` with the request id and `traceparent` of the work now running, if any: for calls
/// made without a [`ServiceClient`].
pub fn with_context(request: RequestBuilder) -> RequestBuilder {
    match TraceContext::current() {
        Some(context) => {
            let traceparent = context.traceparent_in(&tracing::Span::current());
            request
                .header(REQUEST_ID.as_str(), &context.request_id)
                .header(TRACEPARENT, traceparent)
        }
        None => request,
    }
}

/// A client for one other service.
pub struct ServiceClient {
    service: String,
    base_url: String,
    http: reqwest::Client,
    credentials: Option<ClientCredentials>,
    retries: usize,
}

impl ServiceClient {
    pub fn new(service: &str, base_url: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(32)
            .build()
            .unwrap_or_default();
        Self {
            service: service.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
            credentials: None,
            retries: 3,
        }
    }

    /// Sends a bearer token from the client-credentials grant with every call.
    pub fn with_credentials(mut self, credentials: ClientCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends a request built by `build` (called again for each attempt). GET, HEAD, PUT and DELETE
    /// are retried on connection failures, timeouts and 502/503/504; other methods are sent once,
    /// since repeating them could repeat their effect. The request id is `request_id`, or else the
    /// current context's, which also gives the `traceparent`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        request_id: Option<&str>,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, CallError> {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        let context = TraceContext::current();
        let request_id = request_id.or(context.as_ref().map(|c| c.request_id.as_str()));
        // A span per call made for some work (a request, a saga, an event) when spans are
        // exported; the event feed's own polls are housekeeping and get none.
        let span = match &context {
            Some(context) if crate::telemetry::otel::exporting() => tracing::info_span!(
                "call",
                otel.name = %format!("{method} {}", self.service),
                otel.kind = "client",
                peer = %self.service,
                path,
                request_id = %context.request_id,
                trace_id = %context.trace_id,
            ),
            _ => tracing::Span::none(),
        };
        let traceparent = context.as_ref().map(|c| {
            c.parent(&span);
            c.traceparent_in(&span)
        });
        let attempt = || async {
            let mut request = self.http.request(method.clone(), self.url(path));
            if let Some(id) = request_id {
                request = request.header(REQUEST_ID.as_str(), id);
            }
            if let Some(traceparent) = &traceparent {
                request = request.header(TRACEPARENT, traceparent);
            }
            if let Some(credentials) = &self.credentials {
                request = request.bearer_auth(credentials.token(&self.http).await?);
            }
            let response = build(request).send().await.map_err(|e| self.transport(e))?;
            if matches!(
                response.status(),
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ) {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                return Err(CallError::Status {
                    service: self.service.clone(),
                    status,
                    body,
                });
            }
            Ok(response)
        };
        let retries = if idempotent { self.retries } else { 0 };
        let call = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_delay(Duration::from_secs(1))
                    .with_max_times(retries)
                    .with_jitter(),
            )
            .when(|e| !matches!(e, CallError::Token(_)));
        tracing::Instrument::instrument(call, span).await
    }

    fn transport(&self, error: reqwest::Error) -> CallError {
        if error.is_timeout() {
            CallError::Timeout {
                service: self.service.clone(),
            }
        } else {
            CallError::Unreachable {
                service: self.service.clone(),
                message: error.to_string(),
            }
        }
    }
}
