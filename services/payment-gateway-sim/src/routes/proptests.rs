//! Stripe's form encoding is outside input: any query string or body is parsed or refused with
//! Stripe's 400, never a panic, and what a client form-encodes is what the simulator reads.
use axum::body::Body;
use axum::http::StatusCode;
use proptest::prelude::*;

use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn request(method: Method, query: &str, content_type: Option<&str>, body: Vec<u8>) -> Request {
    let mut builder = axum::http::Request::builder()
        .method(method)
        .uri(format!("/v1/payment_intents?{query}"));
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body)).unwrap()
}

#[test]
fn any_query_and_body_are_parsed_or_refused_with_a_400() {
    let runtime = runtime();
    let queries = "[!-~]{0,80}".prop_filter("a URI", |q| {
        format!("/v1/payment_intents?{q}").parse::<Uri>().is_ok()
    });
    let content_types = proptest::option::of(prop_oneof![
        Just("application/x-www-form-urlencoded".to_owned()),
        "[ -~]{0,30}",
    ]);
    let bodies = proptest::collection::vec(any::<u8>(), 0..200);
    proptest!(|(query in queries, content_type in content_types, body in bodies, post in any::<bool>())| {
        let method = if post { Method::POST } else { Method::GET };
        let request = request(method, &query, content_type.as_deref(), body);
        if let Err(error) = runtime.block_on(Params::from_request(request, &())) {
            prop_assert_eq!(error.status, StatusCode::BAD_REQUEST);
        }
    });
}

#[test]
fn form_encoded_parameters_and_metadata_are_read_back_as_sent() {
    let runtime = runtime();
    let metadatas = proptest::collection::btree_map("\\PC{1,40}", "\\PC{1,100}", 0..10);
    proptest!(|(amount in 1i64..=99_999_999, metadata in metadatas, description in "\\PC{0,50}")| {
        let mut form = vec![
            ("amount".to_owned(), amount.to_string()),
            ("description".to_owned(), description.clone()),
        ];
        form.extend(metadata.iter().map(|(k, v)| (format!("metadata[{k}]"), v.clone())));
        let body = serde_urlencoded::to_string(&form).unwrap().into_bytes();
        let request = request(Method::POST, "", Some("application/x-www-form-urlencoded"), body);
        let params = runtime.block_on(Params::from_request(request, &())).unwrap();
        prop_assert_eq!(params.amount("amount").unwrap(), Some(amount));
        prop_assert_eq!(params.get("description"), Some(description.as_str()));
        prop_assert_eq!(params.metadata().unwrap(), metadata);
    });
}

proptest! {
    #[test]
    fn any_parameter_value_is_read_or_refused_with_a_400(value in "\\PC{0,30}") {
        let params = Params(vec![
            ("amount".into(), value.clone()),
            ("capture".into(), value.clone()),
            ("reason".into(), value.clone()),
            (format!("metadata[{value}]"), value.clone()),
        ]);
        let errors = [
            params.amount("amount").err(),
            params.boolean("capture").err(),
            params.choice("reason", &["duplicate"]).err(),
            params.metadata().err(),
            params.payment_method().err(),
        ];
        for error in errors.into_iter().flatten() {
            prop_assert_eq!(error.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn any_authorization_header_yields_a_key_or_none(text in "\\PC{0,80}") {
        let _ = presented_key(&text);
        let redacted = redact(&text);
        prop_assert_eq!(redacted.chars().count(), text.chars().count());
    }
}
