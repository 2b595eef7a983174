//! The Stripe adapter: form-encoded requests, bearer API key, `Idempotency-Key` on every write,
//! Stripe's error object mapped to [`GatewayError`]. A timeout and a circuit breaker wrap every
//! call; a call whose outcome is unknown is repeated with the same key, which Stripe makes safe.
use std::time::Duration;

use async_trait::async_trait;
use platform::breaker::Breaker;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{Authorization, CardError, GatewayError, GatewayRefund, Intent, PaymentGateway};

pub struct StripeGateway {
    base_url: String,
    api_key: SecretString,
    http: reqwest::Client,
    retries: u32,
    breaker: Breaker,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Deserialize)]
struct StripeError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct SearchResult {
    data: Vec<Intent>,
}

impl StripeGateway {
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        timeout: Duration,
        retries: u32,
        breaker: Breaker,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            http,
            retries,
            breaker,
        }
    }

    /// One call, repeated (same key) while its outcome is unknown or the gateway is briefly away.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &[(String, String)],
        key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            let result = self.once(method.clone(), path, form, key).await;
            match &result {
                Err(GatewayError::Unknown(_) | GatewayError::Unavailable(_))
                    if attempt < self.retries =>
                {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                _ => return result,
            }
        }
    }

    async fn once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &[(String, String)],
        key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let Ok(permit) = self.breaker.admit() else {
            return Err(GatewayError::Unavailable(
                "the circuit breaker is open".into(),
            ));
        };
        let request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(self.api_key.expose_secret());
        let mut request = platform::client::with_context(request);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if method == Method::GET {
            request = request.query(form);
        } else {
            request = request.form(form);
        }
        let started = std::time::Instant::now();
        let result = match request.send().await {
            Err(e) if e.is_connect() => Err(GatewayError::Unavailable(e.to_string())),
            Err(e) => Err(GatewayError::Unknown(e.to_string())),
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Err(e) => Err(GatewayError::Unknown(e.to_string())),
                    Ok(body) if status.is_success() => serde_json::from_slice(&body)
                        .map_err(|e| GatewayError::Unknown(format!("unreadable answer: {e}"))),
                    Ok(body) => Err(error_from(status, &body)),
                }
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(GatewayError::Unknown(_)) => "unknown",
            Err(GatewayError::Unavailable(_)) => "unavailable",
            Err(_) => "refused",
        };
        metrics::histogram!("gateway_call_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        // Declines and refusals are the gateway working; only silence or 5xx count against it.
        match &result {
            Err(GatewayError::Unknown(_) | GatewayError::Unavailable(_)) => permit.failure(),
            _ => permit.success(),
        }
        result
    }
}

/// Stripe's error object to what it means for payments.
fn error_from(status: StatusCode, body: &[u8]) -> GatewayError {
    let parsed: Option<StripeError> = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let message = parsed
        .as_ref()
        .and_then(|e| e.message.clone())
        .unwrap_or_else(|| format!("the gateway answered {status}"));
    let code = parsed.as_ref().and_then(|e| e.code.clone());
    match status {
        StatusCode::PAYMENT_REQUIRED => GatewayError::Declined(CardError {
            code,
            decline_code: parsed.and_then(|e| e.decline_code),
            message: Some(message),
        }),
        // Another request with the same key is still in flight: its outcome is not known yet.
        StatusCode::CONFLICT => GatewayError::Unknown(message),
        // Rate limited: Stripe did nothing.
        StatusCode::TOO_MANY_REQUESTS => GatewayError::Unavailable(message),
        s if s.is_server_error() => GatewayError::Unknown(message),
        _ if code.as_deref() == Some("payment_intent_unexpected_state") => {
            GatewayError::UnexpectedState(message)
        }
        _ => GatewayError::Invalid(format!(
            "{} ({}): {message}",
            parsed.map(|e| e.kind).unwrap_or_default(),
            code.unwrap_or_default()
        )),
    }
}

fn pair(k: &str, v: impl ToString) -> (String, String) {
    (k.to_owned(), v.to_string())
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn authorize(
        &self,
        request: &Authorization<'_>,
        key: &str,
    ) -> Result<Intent, GatewayError> {
        let form = [
            pair("amount", request.amount),
            pair("currency", request.currency.to_ascii_lowercase()),
            pair("payment_method", request.payment_method),
            pair("capture_method", "manual"),
            pair("confirm", "true"),
            pair("metadata[payment_id]", request.payment_id),
            pair("metadata[order_id]", request.order_id),
        ];
        self.call(Method::POST, "/v1/payment_intents", &form, Some(key))
            .await
    }

    async fn capture(
        &self,
        intent_id: &str,
        amount: i64,
        key: &str,
    ) -> Result<Intent, GatewayError> {
        let path = format!("/v1/payment_intents/{intent_id}/capture");
        self.call(
            Method::POST,
            &path,
            &[pair("amount_to_capture", amount)],
            Some(key),
        )
        .await
    }

    async fn cancel(&self, intent_id: &str, key: &str) -> Result<Intent, GatewayError> {
        let path = format!("/v1/payment_intents/{intent_id}/cancel");
        self.call(
            Method::POST,
            &path,
            &[pair("cancellation_reason", "requested_by_customer")],
            Some(key),
        )
        .await
    }

    async fn refund(
        &self,
        intent_id: &str,
        amount: i64,
        key: &str,
        refund_id: &str,
    ) -> Result<GatewayRefund, GatewayError> {
        let form = [
            pair("payment_intent", intent_id),
            pair("amount", amount),
            pair("metadata[refund_id]", refund_id),
        ];
        self.call(Method::POST, "/v1/refunds", &form, Some(key))
            .await
    }

    async fn intent(&self, intent_id: &str) -> Result<Intent, GatewayError> {
        let path = format!("/v1/payment_intents/{intent_id}");
        self.call(Method::GET, &path, &[], None).await
    }

    async fn find(&self, payment_id: &str) -> Result<Option<Intent>, GatewayError> {
        let query = format!("metadata['payment_id']:'{payment_id}'");
        let found: SearchResult = self
            .call(
                Method::GET,
                "/v1/payment_intents/search",
                &[pair("query", query)],
                None,
            )
            .await?;
        Ok(found.data.into_iter().next())
    }
}

#[cfg(test)]
mod proptests;
