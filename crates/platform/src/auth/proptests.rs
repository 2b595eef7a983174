//! The `Authorization` header and the token in it are outside input: whatever they hold, parsing
//! answers "no token" or "refused", never a panic and never a pass.
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;

use super::*;

fn headers(value: HeaderValue) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    headers
}

/// A verifier that knows no key: every token must be refused.
fn verifier() -> JwtVerifier {
    JwtVerifier::new(
        KeySource::Local(Arc::new(|| JwkSet { keys: Vec::new() })),
        "agora",
        "agora",
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #[test]
    fn any_authorization_header_yields_a_trimmed_bearer_token_or_none(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let Ok(value) = HeaderValue::from_bytes(&bytes) else {
            return Ok(());
        };
        if let Some(token) = bearer_from_headers(&headers(value.clone())) {
            let text = value.to_str().unwrap();
            prop_assert!(!token.is_empty());
            prop_assert_eq!(token, token.trim());
            prop_assert!(text.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("bearer ")));
        }
    }

    #[test]
    fn a_bearer_header_gives_back_its_token(
        scheme in "(?i)bearer",
        token in "[A-Za-z0-9._~+/=-]{1,200}",
    ) {
        let value = HeaderValue::from_str(&format!("{scheme} {token}")).unwrap();
        let headers = headers(value);
        prop_assert_eq!(bearer_from_headers(&headers), Some(token.as_str()));
    }
}

#[test]
fn any_text_as_a_token_is_refused() {
    let runtime = runtime();
    let verifier = verifier();
    proptest!(|(token in ".{0,300}")| {
        let verdict = runtime.block_on(verifier.verify(&token));
        prop_assert!(matches!(verdict, Err(TokenError::Invalid(_))));
    });
}

#[test]
fn a_token_with_any_header_and_claims_is_refused_without_a_known_key() {
    let runtime = runtime();
    let verifier = verifier();
    let algs = prop_oneof![
        Just(serde_json::json!("EdDSA")),
        Just(serde_json::json!("none")),
        Just(serde_json::json!("HS256")),
        Just(serde_json::json!("RS256")),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    let kids = proptest::option::of(".{0,40}");
    let payloads = proptest::collection::vec(any::<u8>(), 0..200);
    let signatures = proptest::collection::vec(any::<u8>(), 0..80);
    proptest!(|(alg in algs, kid in kids, claims in payloads, signature in signatures)| {
        let mut header = serde_json::json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = kid.into();
        }
        let token = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(&claims),
            b64(&signature)
        );
        let verdict = runtime.block_on(verifier.verify(&token));
        prop_assert!(matches!(verdict, Err(TokenError::Invalid(_))));
    });
}
