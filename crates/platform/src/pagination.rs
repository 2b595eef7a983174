//! Cursor pagination (docs/conventions.md, API conventions): `?limit=` (default 20, at most 100) and an opaque `?cursor=`;
//! answers are `{"items": [...], "next_cursor": ...}`.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::Problem;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// The paging part of a list request's query string.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A validated page request; `C` is the keyset position the service encodes in its cursors.
#[derive(Debug, Clone)]
pub struct Page<C> {
    pub limit: u32,
    pub after: Option<C>,
}

impl PageQuery {
    pub fn parse<C: DeserializeOwned>(&self) -> Result<Page<C>, Problem> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Problem::bad_request(format!(
                "`limit` must be between 1 and {MAX_LIMIT}"
            )));
        }
        let after = match &self.cursor {
            None => None,
            Some(text) => Some(decode_cursor(text).ok_or_else(|| {
                Problem::bad_request("`cursor` is not a cursor this list gave out")
            })?),
        };
        Ok(Page { limit, after })
    }
}

impl<C> Page<C> {
    /// How many rows to fetch: one more than a page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

fn decode_cursor<C: DeserializeOwned>(text: &str) -> Option<C> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    // PostgreSQL text cannot hold NUL: a forged cursor carrying one would fail the query (500).
    if has_escaped_nul(&bytes) {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// JSON has no raw NUL in strings; it can only arrive escaped.
fn has_escaped_nul(json: &[u8]) -> bool {
    json.windows(6).any(|w| w == b"\\u0000")
}

pub fn encode_cursor<C: Serialize>(position: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Paginated<T> {
    /// Builds a page from rows fetched with [`Page::fetch_limit`]: the extra row, if present, is
    /// dropped and the cursor points after the last row kept.
    pub fn from_rows<C: Serialize>(
        mut rows: Vec<T>,
        limit: u32,
        position: impl Fn(&T) -> C,
    ) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(&position(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paginated<U> {
        Paginated {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_over_one_hundred_is_rejected() {
        let query = PageQuery {
            limit: Some(101),
            cursor: None,
        };
        assert_eq!(query.parse::<String>().unwrap_err().status, 400);
    }

    #[test]
    fn a_forged_cursor_is_rejected() {
        let query = PageQuery {
            limit: None,
            cursor: Some("not a cursor!".into()),
        };
        assert_eq!(query.parse::<(String, i64)>().unwrap_err().status, 400);
    }

    #[test]
    fn the_extra_row_becomes_the_next_cursor() {
        let page = Paginated::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        let query = PageQuery {
            limit: Some(2),
            cursor: page.next_cursor,
        };
        assert_eq!(query.parse::<i32>().unwrap().after, Some(2));
        let last = Paginated::from_rows(vec![1, 2], 2, |n| *n);
        assert!(last.next_cursor.is_none());
    }
}
