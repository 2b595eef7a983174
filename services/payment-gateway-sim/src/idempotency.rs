//! Stripe's `Idempotency-Key` on POSTs: the first answer under a key is kept and replayed byte for
//! byte to every repeat with the same parameters; other parameters under the same key are refused;
//! a repeat while the first is still executing is 409. Requests refused before they started
//! executing (bad parameters) and 5xx answers are not kept, as with Stripe.
//!
//! There is one API key per simulator, so keys are scoped to it by construction. Keys are kept
//! 24 hours, then forgotten (checked cheaply, oldest first, whenever a key is used).
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::lock;
use crate::stripe::{ApiError, NotSaved};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

const KEEP_FOR: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_KEY_LENGTH: usize = 255;

/// A kept answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

#[derive(Debug, PartialEq)]
pub enum Begin {
    /// A new key: execute, then [`Store::finish`].
    Run,
    Replay(Saved),
    /// The key was first used with other parameters.
    Mismatch,
    /// The first request under the key is still executing.
    InFlight,
}

struct Entry {
    fingerprint: String,
    started: Instant,
    answer: Option<Saved>,
}

#[derive(Default)]
pub struct Store {
    entries: HashMap<String, Entry>,
    /// Keys by age, so that expired ones are found without scanning everything.
    by_age: VecDeque<(Instant, String)>,
}

impl Store {
    pub fn begin(&mut self, key: &str, fingerprint: &str, now: Instant) -> Begin {
        self.expire(now);
        match self.entries.get(key) {
            Some(entry) if entry.fingerprint != fingerprint => Begin::Mismatch,
            Some(Entry {
                answer: Some(saved),
                ..
            }) => Begin::Replay(saved.clone()),
            Some(_) => Begin::InFlight,
            None => {
                self.entries.insert(
                    key.to_owned(),
                    Entry {
                        fingerprint: fingerprint.to_owned(),
                        started: now,
                        answer: None,
                    },
                );
                self.by_age.push_back((now, key.to_owned()));
                Begin::Run
            }
        }
    }

    /// Keeps the answer of a request begun with [`Begin::Run`], or forgets the key (`None`).
    pub fn finish(&mut self, key: &str, answer: Option<Saved>) {
        match answer {
            Some(saved) => {
                if let Some(entry) = self.entries.get_mut(key) {
                    entry.answer = Some(saved);
                }
            }
            None => {
                if self.entries.get(key).is_some_and(|e| e.answer.is_none()) {
                    self.entries.remove(key);
                }
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((started, _)) = self.by_age.front() {
            if now.duration_since(*started) < KEEP_FOR {
                break;
            }
            if let Some((started, key)) = self.by_age.pop_front() {
                // A key forgotten and used again since has a newer entry: keep that one.
                if self.entries.get(&key).is_some_and(|e| e.started == started) {
                    self.entries.remove(&key);
                }
            }
        }
    }
}

/// What the middleware needs.
#[derive(Clone)]
pub struct Idempotency {
    pub store: Arc<Mutex<Store>>,
    pub body_limit: usize,
}

/// A hash of what makes two requests "the same": method, path and the parameters, sorted so
/// that their order does not matter.
pub fn fingerprint(method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str());
    hasher.update(b" ");
    hasher.update(path);
    let query = query.unwrap_or_default().as_bytes();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in [query, body] {
        match serde_urlencoded::from_bytes::<Vec<(String, String)>>(part) {
            Ok(parsed) => pairs.extend(parsed),
            // Not a form: the bytes themselves are the parameters.
            Err(_) => pairs.push((String::new(), String::from_utf8_lossy(part).into_owned())),
        }
    }
    pairs.sort();
    for (name, value) in pairs {
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Forgets the key if the request is abandoned midway (the client went away while it waited),
/// so that the key does not stay "in flight" for ever.
struct Pending {
    store: Arc<Mutex<Store>>,
    key: String,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.store).finish(&self.key, None);
        }
    }
}

pub async fn middleware(
    State(idempotency): State<Idempotency>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    let key_text = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LENGTH => k.to_owned(),
        _ => {
            return ApiError::bad_request(format!(
                "Keys for idempotent requests must be 1 to {MAX_KEY_LENGTH} visible ASCII \
                 characters long."
            ))
            .into_response()
        }
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, idempotency.body_limit).await else {
        return ApiError::bad_request("The request body is too large or was cut short.")
            .into_response();
    };
    let print = fingerprint(&parts.method, parts.uri.path(), parts.uri.query(), &bytes);
    let begun = lock(&idempotency.store).begin(&key_text, &print, Instant::now());
    match begun {
        Begin::Run => {}
        Begin::Replay(saved) => return replay(saved, key),
        Begin::Mismatch => {
            return ApiError::idempotency(
                StatusCode::BAD_REQUEST,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they \
                     were first used with. Try using a key other than '{key_text}' if you meant \
                     to execute a different request."
                ),
            )
            .into_response()
        }
        Begin::InFlight => {
            return ApiError::idempotency(
                StatusCode::CONFLICT,
                format!(
                    "There is currently another in-progress request using this Idempotent Key \
                     (that probably means you submitted twice, and the other request is still \
                     going through): {key_text}. Please try again later."
                ),
            )
            .into_response()
        }
    }
    let mut pending = Pending {
        store: idempotency.store.clone(),
        key: key_text,
        armed: true,
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (mut parts, body) = response.into_parts();
    // The answers are small JSON documents already in memory.
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    };
    let keep = parts.extensions.get::<NotSaved>().is_none() && !parts.status.is_server_error();
    let saved = keep.then(|| Saved {
        status: parts.status,
        content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
        body: body.clone(),
    });
    pending.armed = false;
    lock(&pending.store).finish(&pending.key, saved);
    parts.headers.insert(IDEMPOTENCY_KEY, key);
    Response::from_parts(parts, Body::from(body))
}

fn replay(saved: Saved, key: HeaderValue) -> Response {
    let mut response = (saved.status, saved.body).into_response();
    let headers = response.headers_mut();
    if let Some(content_type) = saved.content_type {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(IDEMPOTENCY_KEY, key);
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(body: &'static str) -> Saved {
        Saved {
            status: StatusCode::OK,
            content_type: None,
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn a_key_runs_once_then_replays_and_refuses_other_parameters() {
        let mut store = Store::default();
        let now = Instant::now();
        assert_eq!(store.begin("k", "a", now), Begin::Run);
        assert_eq!(store.begin("k", "a", now), Begin::InFlight);
        assert_eq!(store.begin("k", "b", now), Begin::Mismatch);
        store.finish("k", Some(saved("first")));
        assert_eq!(store.begin("k", "a", now), Begin::Replay(saved("first")));
        assert_eq!(store.begin("k", "b", now), Begin::Mismatch);
    }

    #[test]
    fn an_answer_not_kept_frees_the_key() {
        let mut store = Store::default();
        let now = Instant::now();
        assert_eq!(store.begin("k", "a", now), Begin::Run);
        store.finish("k", None);
        assert_eq!(store.begin("k", "b", now), Begin::Run);
    }

    #[test]
    fn keys_are_forgotten_after_a_day() {
        let mut store = Store::default();
        let then = Instant::now();
        assert_eq!(store.begin("old", "a", then), Begin::Run);
        store.finish("old", Some(saved("x")));
        let later = then + KEEP_FOR + Duration::from_secs(1);
        assert_eq!(store.begin("new", "a", later), Begin::Run);
        assert!(!store.entries.contains_key("old"));
        assert_eq!(store.by_age.len(), 1);
    }

    #[test]
    fn the_order_of_parameters_does_not_matter() {
        let post = Method::POST;
        let a = fingerprint(&post, "/v1/refunds", None, b"amount=1&payment_intent=pi_1");
        let b = fingerprint(&post, "/v1/refunds", None, b"payment_intent=pi_1&amount=1");
        let c = fingerprint(&post, "/v1/refunds", None, b"payment_intent=pi_1&amount=2");
        let d = fingerprint(&post, "/v1/other", None, b"amount=1&payment_intent=pi_1");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
