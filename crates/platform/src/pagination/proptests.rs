//! Cursors and limits come from the query string: any value must parse or be refused, never panic.
use proptest::prelude::*;

use super::*;

fn query(limit: Option<u32>, cursor: Option<String>) -> PageQuery {
    PageQuery { limit, cursor }
}

proptest! {
    #[test]
    fn any_limit_and_cursor_text_parses_or_is_a_400(
        limit in proptest::option::of(any::<u32>()),
        cursor in proptest::option::of(".*"),
    ) {
        match query(limit, cursor).parse::<(String, i64)>() {
            Ok(page) => prop_assert!((1..=MAX_LIMIT).contains(&page.limit)),
            Err(problem) => prop_assert_eq!(problem.status, 400),
        }
    }

    #[test]
    fn any_base64_of_any_bytes_is_refused_or_decoded_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let cursor = URL_SAFE_NO_PAD.encode(&bytes);
        let parsed = query(None, Some(cursor)).parse::<(String, i64)>();
        let expected: Option<(String, i64)> = if has_escaped_nul(&bytes) {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        prop_assert_eq!(parsed.ok().and_then(|p| p.after), expected);
    }

    #[test]
    fn a_cursor_this_list_gave_out_decodes_to_its_position(
        // Any text a row can hold on both backends: PostgreSQL text has no NUL.
        name in "[^\\x00]*",
        id in any::<i64>(),
        limit in 1..=MAX_LIMIT,
    ) {
        let cursor = encode_cursor(&(name.clone(), id));
        let page = query(Some(limit), Some(cursor)).parse::<(String, i64)>().unwrap();
        prop_assert_eq!(page.limit, limit);
        prop_assert_eq!(page.after, Some((name, id)));
    }

    #[test]
    fn a_cursor_carrying_a_nul_is_refused(before in ".{0,10}", after in ".{0,10}", id in any::<i64>()) {
        let cursor = encode_cursor(&(format!("{before}\0{after}"), id));
        let refused = query(None, Some(cursor)).parse::<(String, i64)>().unwrap_err();
        prop_assert_eq!(refused.status, 400);
    }

    #[test]
    fn a_page_keeps_at_most_limit_rows_and_a_cursor_only_when_more_follow(
        rows in proptest::collection::vec(any::<i64>(), 0..30),
        limit in 1u32..20,
    ) {
        let more = rows.len() > limit as usize;
        let page = Paginated::from_rows(rows.clone(), limit, |n| *n);
        prop_assert_eq!(&page.items[..], &rows[..rows.len().min(limit as usize)]);
        prop_assert_eq!(page.next_cursor.is_some(), more);
    }
}
