//! Payment fields come from callers: any input keeps its rule or is refused, never a panic.
use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn an_amount_is_accepted_exactly_from_1_to_the_maximum(amount in any::<i64>()) {
        prop_assert_eq!(parse_amount(amount).is_ok(), (1..=MAX_AMOUNT).contains(&amount));
    }

    #[test]
    fn a_currency_is_three_upper_case_letters(text in prop_oneof!["[A-Z]{3}", ".{0,5}"]) {
        let ok = text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase());
        match parse_currency(&text) {
            Ok(currency) => {
                prop_assert!(ok);
                prop_assert_eq!(currency, text);
            }
            Err(_) => prop_assert!(!ok),
        }
    }

    #[test]
    fn tokens_references_and_keys_keep_their_alphabets(text in ".{0,300}") {
        if let Ok(pm) = parse_payment_method(&text) {
            prop_assert!(pm.starts_with("pm_") && pm.len() > 3 && pm.len() <= 100);
        }
        if let Ok(reference) = parse_reference(&text) {
            prop_assert!((1..=64).contains(&reference.len()));
        }
        if let Ok(key) = parse_idempotency_key(&text) {
            prop_assert!(key.bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn a_status_round_trips_and_nothing_else_parses(text in ".{0,20}") {
        for status in Status::ALL {
            prop_assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        if let Some(status) = Status::parse(&text) {
            prop_assert_eq!(status.as_str(), text.as_str());
        }
    }
}
