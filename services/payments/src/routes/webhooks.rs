//! `POST /webhooks/gateway`: the gateway tells what happened to an intent or a charge. Stripe signs
//! each delivery (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`); a bad or old
//! signature is 400 and changes nothing, and an event id seen before changes nothing either: what
//! an event tells is applied by compare-and-set, so a repeat (or the webhook of an authorization
//! whose answer payments recorded already) finds nothing to do, with one read and no write. The ids
//! of events that changed something are kept in `webhook_events`.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use platform::error::Problem;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::Sha256;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::workflow::WebhookObject;
use crate::AppState;

/// Deliveries signed longer ago than this are refused (replays).
pub const TOLERANCE_SECONDS: i64 = 300;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

#[derive(Deserialize)]
struct GatewayEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    /// Left as text until the event's type says what it is, so it is parsed once, into that.
    object: Box<serde_json::value::RawValue>,
}

/// Receives a gateway event (no token: the signature is the authentication).
#[utoipa::path(post, path = "/webhooks/gateway", tag = "webhooks",
    request_body(content = String, content_type = "application/json", description = "A Stripe event object"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256>")),
    responses((status = 200, description = "Applied (`{\"received\": true}`), or nothing new: seen before, or what it tells is recorded already (`\"duplicate\": true`)"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Bad or old signature, or not an event")))]
async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (outcome, result) = apply(&state, &headers, &raw).await;
    metrics::counter!("payments_webhooks_total", "outcome" => outcome).increment(1);
    result
}

/// Verifies and applies one webhook; the outcome names it for `payments_webhooks_total`
/// (anything but `applied` and `duplicate`, nothing new, is a webhook failure).
async fn apply(
    state: &AppState,
    headers: &HeaderMap,
    raw: &Bytes,
) -> (
    &'static str,
    Result<axum::Json<serde_json::Value>, ApiError>,
) {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let verified = verify(
        signature,
        raw,
        state.webhook_secret.expose_secret().as_bytes(),
        chrono::Utc::now().timestamp(),
    );
    if let Err(e) = verified {
        let problem = Problem::bad_request(format!("Webhook signature rejected: {e}."));
        return ("bad_signature", Err(problem.into()));
    }
    let event: GatewayEvent = match serde_json::from_slice(raw) {
        Ok(event) => event,
        Err(e) => {
            let problem = Problem::bad_request(format!("Not a gateway event: {e}"));
            return ("malformed", Err(problem.into()));
        }
    };
    let object = match object_of(&event) {
        Ok(object) => object,
        Err(problem) => return ("malformed", Err(problem.into())),
    };
    let applied = async {
        if !state.payments.on_webhook(object).await? {
            return Ok(false);
        }
        state
            .payments
            .store
            .record_webhook(&event.id, &event.kind)
            .await?;
        Ok::<_, ApiError>(true)
    };
    match applied.await {
        Ok(false) => (
            "duplicate",
            Ok(axum::Json(
                serde_json::json!({"received": true, "duplicate": true}),
            )),
        ),
        Ok(true) => (
            "applied",
            Ok(axum::Json(serde_json::json!({"received": true}))),
        ),
        Err(e) => ("failed", Err(e)),
    }
}

/// The event's object, read as what its type says it is.
fn object_of(event: &GatewayEvent) -> Result<WebhookObject, Problem> {
    let text = event.data.object.get();
    if event.kind.starts_with("payment_intent.") {
        serde_json::from_str(text)
            .map(WebhookObject::Intent)
            .map_err(|_| Problem::bad_request("The event's object is not a payment intent."))
    } else if event.kind == "charge.refunded" {
        serde_json::from_str(text)
            .map(WebhookObject::Charge)
            .map_err(|_| Problem::bad_request("The event's object is not a charge."))
    } else {
        Ok(WebhookObject::Other)
    }
}

/// Checks a `Stripe-Signature` header against the body, in constant time.
pub fn verify(header: &str, body: &[u8], secret: &[u8], now: i64) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("no timestamp")?;
    // `abs_diff`: the timestamp is the sender's, any i64; a subtraction could overflow.
    if now.abs_diff(timestamp) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err("the timestamp is outside the tolerance");
    }
    for signature in signatures {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return Err("unusable secret");
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err("no valid v1 signature")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(t: i64, body: &[u8], secret: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_with_a_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(1000, body, b"whsec");
        assert_eq!(verify(&header, body, b"whsec", 1100), Ok(()));
        assert!(verify(&header, body, b"other", 1100).is_err());
        assert!(verify(&header, b"{}", b"whsec", 1100).is_err());
        assert!(verify(&header, body, b"whsec", 1000 + TOLERANCE_SECONDS + 1).is_err());
        assert!(verify("t=1000", body, b"whsec", 1000).is_err());
        assert!(verify("", body, b"whsec", 1000).is_err());
        // Several v1 values (a secret being rolled): one valid is enough.
        let both = format!("{header},v1=00ff");
        assert_eq!(verify(&both, body, b"whsec", 1000), Ok(()));
    }

    #[test]
    fn extreme_or_garbage_timestamps_are_refused_without_overflow() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_700_000_000;
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, 0, -1] {
            assert!(
                verify(&sign(t, body, b"whsec"), body, b"whsec", now).is_err(),
                "{t}"
            );
        }
        for now in [i64::MIN, i64::MAX] {
            assert!(verify(&sign(1000, body, b"whsec"), body, b"whsec", now).is_err());
        }
        for garbage in [
            "t=abc,v1=00",
            "t=99999999999999999999999,v1=00",
            "t=,v1=",
            "t=-,v1=00",
            "t=1e9,v1=00",
        ] {
            assert!(verify(garbage, body, b"whsec", now).is_err(), "{garbage}");
        }
    }
}

#[cfg(test)]
mod proptests;
