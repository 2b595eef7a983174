//! The gateway's error answers are outside input: any status and body map to an error, never a
//! panic, and Stripe's own message is carried when the body has one.
use proptest::prelude::*;

use super::*;

fn status() -> impl Strategy<Value = StatusCode> {
    (400u16..600).prop_map(|s| StatusCode::from_u16(s).unwrap())
}

proptest! {
    #[test]
    fn any_error_body_maps_to_an_error(status in status(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let error = error_from(status, &body);
        if status == StatusCode::PAYMENT_REQUIRED {
            prop_assert!(matches!(error, GatewayError::Declined(_)), "{:?}", error);
        }
        if status.is_server_error() {
            prop_assert!(matches!(error, GatewayError::Unknown(_)), "{:?}", error);
        }
    }

    #[test]
    fn stripes_message_is_carried(status in status(), message in "\\PC{0,100}", code in proptest::option::of("[a-z_]{1,30}")) {
        let body = serde_json::json!({"error": {"type": "invalid_request_error", "message": message, "code": code}});
        let error = error_from(status, body.to_string().as_bytes());
        let text = match &error {
            GatewayError::Declined(card) => card.message.clone().unwrap_or_default(),
            GatewayError::Unknown(m) | GatewayError::Unavailable(m) | GatewayError::Invalid(m)
            | GatewayError::UnexpectedState(m) => m.clone(),
        };
        prop_assert!(text.contains(&message), "{:?}", error);
    }

    #[test]
    fn form_pairs_round_trip_through_form_encoding(
        pairs in proptest::collection::vec(("\\PC{1,20}", "\\PC{0,40}"), 0..8),
    ) {
        let form: Vec<(String, String)> = pairs.iter().map(|(k, v)| pair(k, v)).collect();
        let encoded = serde_urlencoded::to_string(&form).unwrap();
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(&encoded).unwrap();
        prop_assert_eq!(decoded, form);
    }
}
