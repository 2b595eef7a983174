//! Catalog values arrive as JSON and query text: any input parses to a value that keeps its rule
//! or is refused, never a panic.
use proptest::prelude::*;

use super::*;

fn sku_rule(text: &str) -> bool {
    (3..=40).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

proptest! {
    #[test]
    fn any_text_is_a_sku_exactly_when_it_keeps_the_rule(text in ".{0,50}") {
        match Sku::parse(&text) {
            Ok(sku) => {
                prop_assert!(sku_rule(&text));
                prop_assert_eq!(sku.as_str(), text.as_str());
            }
            Err(_) => prop_assert!(!sku_rule(&text)),
        }
    }

    #[test]
    fn a_well_formed_sku_round_trips(text in "[A-Z0-9-]{3,40}") {
        let sku = Sku::parse(&text).unwrap();
        prop_assert_eq!(sku.as_str(), text.as_str());
    }

    #[test]
    fn a_slug_never_starts_or_ends_with_a_dash(text in ".{0,70}") {
        if let Ok(slug) = Slug::parse(&text) {
            prop_assert_eq!(slug.as_str(), text.as_str());
            prop_assert!(!slug.as_str().starts_with('-') && !slug.as_str().ends_with('-'));
            prop_assert!((1..=64).contains(&slug.as_str().len()));
        }
    }

    #[test]
    fn money_is_accepted_exactly_for_non_negative_amounts_in_a_listed_currency(
        amount in any::<i64>(),
        currency in prop_oneof![".{0,4}", proptest::sample::select(CURRENCIES.to_vec()).prop_map(String::from)],
    ) {
        let listed = CURRENCIES.contains(&currency.as_str());
        match Money::parse(amount, &currency) {
            Ok(money) => {
                prop_assert!(amount >= 0 && listed);
                prop_assert_eq!(money, Money { amount, currency });
            }
            Err(errors) => {
                prop_assert_eq!(errors.iter().any(|(f, _)| *f == "price.amount"), amount < 0);
                prop_assert_eq!(errors.iter().any(|(f, _)| *f == "price.currency"), !listed);
            }
        }
    }

    #[test]
    fn money_round_trips_through_json(
        amount in 0i64..=i64::MAX,
        currency in proptest::sample::select(CURRENCIES.to_vec()),
    ) {
        let money = Money::parse(amount, currency).unwrap();
        let back: Money = serde_json::from_str(&serde_json::to_string(&money).unwrap()).unwrap();
        prop_assert_eq!(back, money);
    }

    #[test]
    fn names_and_descriptions_are_trimmed_and_bounded(text in "\\PC{0,220}") {
        if let Ok(ProductName(name)) = ProductName::parse(&text) {
            prop_assert_eq!(name.as_str(), text.trim());
            prop_assert!((1..=200).contains(&name.chars().count()));
        }
        if let Ok(Description(description)) = Description::parse(&text, 100) {
            prop_assert!(description.chars().count() <= 100);
        }
    }

    #[test]
    fn attributes_keep_their_limits(
        map in proptest::collection::btree_map(".{0,45}", ".{0,210}", 0..25),
    ) {
        if let Ok(Attributes(kept)) = Attributes::parse(map.clone()) {
            prop_assert!(kept.len() <= 20);
            for (key, value) in &kept {
                prop_assert!((1..=40).contains(&key.chars().count()));
                prop_assert!(value.chars().count() <= 200);
            }
            prop_assert_eq!(kept, map);
        }
    }

    #[test]
    fn search_words_are_at_most_ten_lower_case_alphanumeric_words(q in "\\PC{0,300}") {
        let words = search_words(&q);
        prop_assert!(words.len() <= 10);
        for word in &words {
            prop_assert!(!word.is_empty());
            prop_assert!(word.chars().all(char::is_alphanumeric));
            prop_assert_eq!(word, &word.to_lowercase());
        }
    }
}
