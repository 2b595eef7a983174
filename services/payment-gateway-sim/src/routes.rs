//! The HTTP surface: Stripe's `/v1` PaymentIntents and Refunds endpoints, the admin fault knobs,
//! and the API-key check. Handlers parse the form, apply one ledger operation, hand the events it
//! raised to the webhook dispatcher, and answer.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::faults::{FaultsPatch, Injector};
use crate::state::{NewIntent, NewRefund, SearchQuery, TestCard};
use crate::stripe::{json, ApiError, CaptureMethod, Metadata, PaymentIntent};
use crate::AppState;

pub fn v1() -> Router<AppState> {
    Router::new()
        .route("/v1/payment_intents", post(create_intent))
        .route("/v1/payment_intents/search", get(search_intents))
        .route("/v1/payment_intents/{id}", get(get_intent))
        .route("/v1/payment_intents/{id}/confirm", post(confirm_intent))
        .route("/v1/payment_intents/{id}/capture", post(capture_intent))
        .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/refunds/{id}", get(get_refund))
        .method_not_allowed_fallback(unrecognized)
}

pub fn admin() -> Router<Arc<Injector>> {
    Router::new()
        .route("/admin/faults", get(get_faults).put(put_faults))
        .method_not_allowed_fallback(unrecognized)
}

/// Stripe answers an unknown URL, or a known one with the wrong method, with a 404.
pub async fn unrecognized(method: Method, uri: Uri) -> ApiError {
    ApiError::unrecognized_url(method.as_str(), uri.path())
}

/// Requires the configured API key, as `Authorization: Bearer <key>` or as the user name of
/// Basic auth (what `curl -u sk_test_...:` sends), as Stripe accepts both.
pub async fn authenticate(
    State(api_key): State<Arc<SecretString>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(presented_key);
    match given {
        None => ApiError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY').",
        )
        .into_response(),
        Some(key) if bool::from(key.as_bytes().ct_eq(api_key.expose_secret().as_bytes())) => {
            next.run(request).await
        }
        Some(key) => ApiError::unauthorized(format!("Invalid API Key provided: {}", redact(&key)))
            .into_response(),
    }
}

fn presented_key(authorization: &str) -> Option<String> {
    if let Some(key) = authorization.strip_prefix("Bearer ") {
        return Some(key.trim().to_owned());
    }
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or_default().to_owned())
}

/// A key as Stripe echoes a wrong one: its last four characters at most.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len());
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{}{tail}", "*".repeat(chars.len() - 4))
}

/// The request's parameters in Stripe's form encoding (`metadata[order_id]=...`), from the
/// query string and, for POSTs, the body.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let malformed =
            |e: serde_urlencoded::de::Error| ApiError::bad_request(format!("Invalid request: {e}"));
        let mut pairs: Vec<(String, String)> = match request.uri().query() {
            Some(query) => serde_urlencoded::from_str(query)
                .map_err(malformed)
                .map_err(ApiError::not_saved)?,
            None => Vec::new(),
        };
        if request.method() != Method::GET {
            let content_type = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/x-www-form-urlencoded")
                .to_owned();
            let body = Bytes::from_request(request, state)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()).not_saved())?;
            if !body.is_empty() {
                if !content_type.starts_with("application/x-www-form-urlencoded") {
                    return Err(ApiError::bad_request(format!(
                        "Invalid request: unsupported Content-Type {content_type}. \
                         Use application/x-www-form-urlencoded."
                    ))
                    .not_saved());
                }
                pairs.extend(
                    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                        .map_err(malformed)
                        .map_err(ApiError::not_saved)?,
                );
            }
        }
        Ok(Self(pairs))
    }
}

impl Params {
    /// Refuses parameters this endpoint does not know (`expand[]` is accepted and ignored),
    /// as Stripe does: a typo must not pass silently.
    fn allow(&self, names: &[&str], metadata: bool) -> Result<(), ApiError> {
        for (name, _) in &self.0 {
            let known = names.contains(&name.as_str())
                || name.starts_with("expand[")
                || (metadata && name.starts_with("metadata[") && name.ends_with(']'));
            if !known {
                return Err(
                    ApiError::invalid(name, format!("Received unknown parameter: {name}"))
                        .not_saved(),
                );
            }
        }
        Ok(())
    }

    /// The last value given for `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            ApiError::invalid_code(
                name,
                "parameter_missing",
                format!("Missing required param: {name}."),
            )
            .not_saved()
        })
    }

    /// A positive amount in minor units, at most Stripe's eight digits.
    fn amount(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let amount: i64 = value.parse().map_err(|_| {
            ApiError::invalid_code(
                name,
                "parameter_invalid_integer",
                format!("Invalid integer: {value}"),
            )
            .not_saved()
        })?;
        if amount < 1 {
            return Err(
                ApiError::invalid(name, "This value must be greater than or equal to 1.")
                    .not_saved(),
            );
        }
        if amount > 99_999_999 {
            return Err(ApiError::invalid_code(
                name,
                "amount_too_large",
                "Amount must be no more than 99999999.",
            )
            .not_saved());
        }
        Ok(Some(amount))
    }

    fn boolean(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => {
                Err(ApiError::invalid(name, format!("Invalid boolean: {other}")).not_saved())
            }
        }
    }

    /// One of `allowed`, or none.
    fn choice(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(value) if allowed.contains(&value) => Ok(Some(value.to_owned())),
            Some(value) => Err(ApiError::invalid(
                name,
                format!(
                    "Invalid {name}: must be one of {} (got '{value}').",
                    allowed.join(", ")
                ),
            )
            .not_saved()),
        }
    }

    /// `metadata[key]=value` pairs, within Stripe's limits. An empty value sets nothing.
    fn metadata(&self) -> Result<Metadata, ApiError> {
        let mut metadata = Metadata::new();
        for (name, value) in &self.0 {
            let Some(key) = name
                .strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
            else {
                continue;
            };
            let invalid = |message: String| Err(ApiError::invalid(name, message).not_saved());
            if key.is_empty() || key.chars().count() > 40 {
                return invalid("Metadata keys must be 1 to 40 characters long.".into());
            }
            if value.chars().count() > 500 {
                return invalid(format!(
                    "Metadata values can have up to 500 characters, but you passed in a value \
                     that is {} characters.",
                    value.chars().count()
                ));
            }
            if value.is_empty() {
                metadata.remove(key);
            } else {
                metadata.insert(key.to_owned(), value.clone());
            }
        }
        if metadata.len() > 50 {
            return Err(
                ApiError::invalid("metadata", "Metadata can have at most 50 keys.").not_saved(),
            );
        }
        Ok(metadata)
    }

    /// A test payment method; any other is `resource_missing`, as an unknown one is on Stripe.
    fn payment_method(&self) -> Result<Option<String>, ApiError> {
        match self.get("payment_method") {
            None | Some("") => Ok(None),
            Some(pm) if TestCard::lookup(pm).is_some() => Ok(Some(pm.to_owned())),
            Some(pm) => {
                Err(ApiError::missing_param("payment_method", "PaymentMethod", pm).not_saved())
            }
        }
    }
}

fn answer<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(object) => json(&object),
        Err(error) => error.into_response(),
    }
}

async fn create_intent(State(state): State<AppState>, params: Params) -> Response {
    let parsed = new_intent(&params);
    answer(parsed.and_then(|new| state.apply(|ledger, now| ledger.create(new, now))))
}

fn new_intent(params: &Params) -> Result<NewIntent, ApiError> {
    params.allow(
        &[
            "amount",
            "currency",
            "payment_method",
            "capture_method",
            "confirm",
            "description",
        ],
        true,
    )?;
    params.required("amount")?;
    let currency = params.required("currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(ApiError::invalid(
            "currency",
            format!("Invalid currency: {currency}. Use a three-letter ISO currency code."),
        )
        .not_saved());
    }
    let capture_method = match params
        .choice("capture_method", &["automatic", "manual"])?
        .as_deref()
    {
        Some("manual") => CaptureMethod::Manual,
        _ => CaptureMethod::Automatic,
    };
    Ok(NewIntent {
        amount: params.amount("amount")?.unwrap_or_default(),
        currency: currency.to_ascii_lowercase(),
        payment_method: params.payment_method()?,
        capture_method,
        confirm: params.boolean("confirm")?,
        description: params.get("description").map(str::to_owned),
        metadata: params.metadata()?,
    })
}

async fn confirm_intent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let parsed = params
        .allow(&["payment_method"], false)
        .and_then(|()| params.payment_method());
    answer(parsed.and_then(|pm| state.apply(|ledger, now| ledger.confirm(&id, pm, now))))
}

async fn capture_intent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let parsed = params
        .allow(&["amount_to_capture"], false)
        .and_then(|()| params.amount("amount_to_capture"));
    answer(parsed.and_then(|amount| state.apply(|ledger, now| ledger.capture(&id, amount, now))))
}

async fn cancel_intent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let parsed = params
        .allow(&["cancellation_reason"], false)
        .and_then(|()| {
            params.choice(
                "cancellation_reason",
                &[
                    "duplicate",
                    "fraudulent",
                    "requested_by_customer",
                    "abandoned",
                ],
            )
        });
    answer(parsed.and_then(|reason| state.apply(|ledger, now| ledger.cancel(&id, reason, now))))
}

async fn get_intent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    answer(
        params
            .allow(&[], false)
            .and_then(|()| crate::lock(&state.ledger).intent(&id)),
    )
}

#[derive(Serialize)]
struct SearchResult {
    object: &'static str,
    data: Vec<PaymentIntent>,
    has_more: bool,
    next_page: Option<String>,
    url: &'static str,
}

async fn search_intents(State(state): State<AppState>, params: Params) -> Response {
    answer(search(&state, &params))
}

fn search(state: &AppState, params: &Params) -> Result<SearchResult, ApiError> {
    params.allow(&["query", "limit", "page"], false)?;
    let query = SearchQuery::parse(params.required("query")?)
        .map_err(|message| ApiError::invalid("query", message))?;
    let limit = match params.get("limit") {
        None => 10,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "limit must be an integer from 1 to 100."))?,
    };
    // The page token is the offset of the page's first result.
    let offset = match params.get("page") {
        None => 0,
        Some(p) => p
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("page", format!("Invalid page token: {p}")))?,
    };
    let (data, has_more) = crate::lock(&state.ledger).search(&query, limit, offset);
    Ok(SearchResult {
        object: "search_result",
        next_page: has_more.then(|| (offset + data.len()).to_string()),
        data,
        has_more,
        url: "/v1/payment_intents/search",
    })
}

async fn create_refund(State(state): State<AppState>, params: Params) -> Response {
    let parsed = new_refund(&params);
    answer(parsed.and_then(|new| state.apply(|ledger, now| ledger.create_refund(new, now))))
}

fn new_refund(params: &Params) -> Result<NewRefund, ApiError> {
    params.allow(&["payment_intent", "amount", "reason"], true)?;
    Ok(NewRefund {
        payment_intent: params.required("payment_intent")?.to_owned(),
        amount: params.amount("amount")?,
        reason: params.choice(
            "reason",
            &["duplicate", "fraudulent", "requested_by_customer"],
        )?,
        metadata: params.metadata()?,
    })
}

async fn get_refund(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    answer(
        params
            .allow(&[], false)
            .and_then(|()| crate::lock(&state.ledger).refund(&id)),
    )
}

async fn get_faults(State(injector): State<Arc<Injector>>) -> Response {
    json(&injector.get())
}

/// Changes the knobs the JSON body names; answers with all of them.
async fn put_faults(State(injector): State<Arc<Injector>>, body: Bytes) -> Response {
    let patch: FaultsPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(e) => return ApiError::bad_request(format!("Invalid faults: {e}")).into_response(),
    };
    let faults = injector.get().patched(patch);
    if let Err((param, message)) = faults.check() {
        return ApiError::invalid(param, message).into_response();
    }
    injector.set(faults);
    tracing::info!(?faults, "fault injection changed");
    json(&faults)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_bearer_or_basic_auth() {
        assert_eq!(
            presented_key("Bearer sk_test_1").as_deref(),
            Some("sk_test_1")
        );
        // base64("sk_test_1:")
        assert_eq!(
            presented_key("Basic c2tfdGVzdF8xOg==").as_deref(),
            Some("sk_test_1")
        );
        assert_eq!(presented_key("Token x"), None);
    }

    #[test]
    fn a_wrong_key_is_echoed_redacted() {
        assert_eq!(redact("sk_test_abcdefgh1234"), "****************1234");
        assert_eq!(redact("short"), "*****");
    }

    #[test]
    fn metadata_comes_from_bracket_notation() {
        let params = Params(vec![
            ("metadata[order_id]".into(), "ORD-1".into()),
            ("metadata[note]".into(), "x".into()),
            ("metadata[note]".into(), String::new()),
            ("amount".into(), "5".into()),
        ]);
        let metadata = params.metadata().unwrap();
        assert_eq!(metadata.len(), 1);
        assert_eq!(metadata["order_id"], "ORD-1");
        assert!(params.allow(&["amount"], true).is_ok());
        let unknown = params.allow(&["amount"], false).unwrap_err();
        assert_eq!(unknown.error.param.as_deref(), Some("metadata[order_id]"));
    }
}
