//! SKUs, reasons, notes and reservation lines come from callers: any input keeps its rule or is
//! refused, never a panic.
use proptest::prelude::*;

use super::*;

fn sku() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Z0-9-]{3,40}", ".{0,45}"]
}

proptest! {
    #[test]
    fn any_text_is_a_sku_only_when_it_keeps_the_rule(text in ".{0,50}") {
        if let Ok(sku) = parse_sku(&text) {
            prop_assert_eq!(&sku, &text);
            prop_assert!((3..=40).contains(&sku.len()));
            prop_assert!(sku.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'));
        }
    }

    #[test]
    fn a_well_formed_sku_round_trips(text in "[A-Z0-9-]{3,40}") {
        prop_assert_eq!(parse_sku(&text).unwrap(), text);
    }

    #[test]
    fn reasons_and_notes_keep_their_rules(text in "\\PC{0,220}") {
        if let Ok(reason) = parse_reason(&text) {
            prop_assert!(REASONS.contains(&reason.as_str()));
        }
        if let Ok(note) = parse_note(&text) {
            prop_assert_eq!(note.as_str(), text.trim());
            prop_assert!((1..=200).contains(&note.chars().count()));
        }
    }

    #[test]
    fn any_lines_merge_into_sorted_unique_skus_with_the_same_total(
        items in proptest::collection::vec((sku(), any::<i64>()), 0..110),
    ) {
        match parse_lines(&items) {
            Ok(lines) => {
                prop_assert!((1..=MAX_LINES).contains(&items.len()));
                prop_assert!(lines.windows(2).all(|w| w[0].0 < w[1].0));
                let total: i64 = items.iter().map(|(_, q)| q).sum();
                prop_assert_eq!(lines.iter().map(|(_, q)| q).sum::<i64>(), total);
                prop_assert!(items.iter().all(|(_, q)| (1..=MAX_QUANTITY).contains(q)));
            }
            Err((field, _)) => prop_assert!(field.starts_with("items")),
        }
    }
}
