//! Stripe's search syntax is outside input: any query parses or is refused, never a panic, and a
//! clause written with its quotes escaped reads back as written.
use proptest::prelude::*;

use super::*;

/// A value in single quotes, its quotes and backslashes escaped.
fn quoted(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

proptest! {
    #[test]
    fn any_search_text_parses_or_is_refused(query in "\\PC{0,120}") {
        let _ = SearchQuery::parse(&query);
    }

    #[test]
    fn search_shaped_text_parses_or_is_refused(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("metadata[".to_owned()), Just("]".to_owned()), Just(":".to_owned()),
                Just("status:".to_owned()), Just(" AND ".to_owned()), Just("'".to_owned()),
                Just("\"".to_owned()), Just("\\".to_owned()), "\\PC{0,5}",
            ],
            0..12,
        ),
    ) {
        let _ = SearchQuery::parse(&parts.concat());
    }

    #[test]
    fn metadata_clauses_read_back_as_written(
        clauses in proptest::collection::vec(("\\PC{0,20}", "\\PC{0,20}"), 1..4),
    ) {
        let text = clauses
            .iter()
            .map(|(k, v)| format!("metadata[{}]:{}", quoted(k), quoted(v)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let expected = clauses
            .into_iter()
            .map(|(k, v)| Clause::Metadata(k, v))
            .collect();
        prop_assert_eq!(SearchQuery::parse(&text), Ok(SearchQuery(expected)));
    }
}
