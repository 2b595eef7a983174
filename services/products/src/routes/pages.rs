//! Rendered pages of `GET /products` (listings and searches), kept for a moment.
//!
//! A page of 20 products costs products 0.4–0.7 ms of CPU (rows from the database, each sent
//! from sqlx's database thread, then JSON), against ~0.07 ms for one product by id; and shoppers
//! ask for the same few pages over and over: a category's first page, a popular search. A page is
//! kept as the bytes sent, by its query string, and sent again while both hold:
//! * this process has committed no catalog change since the page was read
//!   ([`crate::storage::Store::changes`]: products, categories), so an admin's change made
//!   through this process shows at once;
//! * it is younger than [`PAGE_TTL`], so a change committed by another replica over the same
//!   database, and a stock level from inventory's events, show within that time. Stock levels do
//!   not drop the pages: a shop selling steadily moves one every few milliseconds, and pages
//!   dropped that often would never be sent twice (measured: the shopper mix's products CPU did
//!   not move while they did).
//!
//! A product by id is never kept: its page, its `ETag` and its availability, which carts and
//! orders read, stay exact; a reservation in inventory decides whether stock is there.
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// How old a kept page may be. One second is what a shopper cannot tell from "at once", what a
/// search engine's refresh interval is (Elasticsearch: 1 s), and long enough that a page asked
/// for a few times a second is read once a second.
pub const PAGE_TTL: Duration = Duration::from_secs(1);

/// What all kept pages (query strings and bodies) may hold together. A page of the largest
/// allowed limit is ~100 KB, a usual one ~15 KB: a few hundred pages.
const MAX_BYTES: usize = 8 << 20;

/// The kept pages of one process.
#[derive(Default)]
pub struct Pages {
    kept: Mutex<Kept>,
    /// `products_pages_total{outcome="kept"}` and `{outcome="read"}`, made on the first count
    /// (after the recorder is installed) rather than looked up by name on every request.
    counters: OnceLock<[metrics::Counter; 2]>,
}

#[derive(Default)]
struct Kept {
    pages: HashMap<String, Page>,
    /// Sum of every kept page's [`Page::size`].
    bytes: usize,
}

struct Page {
    /// When the read that made it began: its age counts from before the database answered.
    read_at: Instant,
    /// The store's change count when that read began.
    changes: u64,
    body: Bytes,
}

impl Page {
    fn fresh(&self, changes: u64, now: Instant) -> bool {
        self.changes == changes && now.saturating_duration_since(self.read_at) < PAGE_TTL
    }

    fn size(&self, query: &str) -> usize {
        query.len() + self.body.len()
    }
}

impl Pages {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // Every change to `Kept` is a single insert or a rebuild: nothing a panicking holder
        // could leave half-done.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The page kept for `query` if it is still good while the store's change count is
    /// `changes`.
    pub fn get(&self, query: &str, changes: u64) -> Option<Bytes> {
        let kept = self.kept();
        let page = kept.pages.get(query)?;
        page.fresh(changes, Instant::now())
            .then(|| page.body.clone())
    }

    /// Counts a page sent again (`kept`) or read from the database: the share that tells an
    /// operator whether keeping pages pays.
    pub fn count(&self, kept: bool) {
        let [sent_again, read] = self.counters.get_or_init(|| {
            ["kept", "read"]
                .map(|outcome| metrics::counter!("products_pages_total", "outcome" => outcome))
        });
        if kept { sent_again } else { read }.increment(1);
    }

    /// Keeps `body` as the page of `query`, read from `read_at` on with the store's change count
    /// at `changes` (both taken before the read, so that a change committed during it makes the
    /// page stale rather than kept; the caller keeps only a page whose count is still the
    /// store's). When the pages would outgrow [`MAX_BYTES`], the stale ones go, then all of them.
    pub fn put(&self, query: String, changes: u64, read_at: Instant, body: Bytes) {
        let page = Page {
            read_at,
            changes,
            body,
        };
        let size = page.size(&query);
        if size > MAX_BYTES / 4 {
            return;
        }
        let mut kept = self.kept();
        let kept = &mut *kept;
        if kept.bytes + size > MAX_BYTES {
            let now = Instant::now();
            kept.pages.retain(|_, p| p.fresh(changes, now));
            kept.bytes = kept.pages.iter().map(|(q, p)| p.size(q)).sum();
            if kept.bytes + size > MAX_BYTES {
                kept.pages.clear();
                kept.bytes = 0;
            }
        }
        if let Some(old) = kept.pages.get(&query) {
            kept.bytes -= old.size(&query);
        }
        kept.bytes += size;
        kept.pages.insert(query, page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Bytes {
        Bytes::from(text.to_owned())
    }

    #[test]
    fn a_page_is_sent_again_until_this_process_changes_the_catalog() {
        let pages = Pages::default();
        pages.put("category=a".into(), 7, Instant::now(), body("one"));
        assert_eq!(pages.get("category=a", 7), Some(body("one")));
        assert_eq!(pages.get("category=b", 7), None, "another query");
        assert_eq!(pages.get("category=a", 8), None, "a change since");
    }

    #[test]
    fn a_page_older_than_its_lifetime_is_read_again() {
        let pages = Pages::default();
        let Some(long_ago) = Instant::now().checked_sub(PAGE_TTL) else {
            return; // a clock this young cannot express the past; nothing to check
        };
        pages.put("q=mug".into(), 1, long_ago, body("old"));
        assert_eq!(pages.get("q=mug", 1), None);
        pages.put("q=mug".into(), 1, Instant::now(), body("new"));
        assert_eq!(pages.get("q=mug", 1), Some(body("new")));
    }

    #[test]
    fn the_pages_stay_within_their_bytes_stale_ones_going_first() {
        let pages = Pages::default();
        let big = Bytes::from(vec![b'x'; MAX_BYTES / 5]);
        pages.put("stale".into(), 1, Instant::now(), big.clone());
        for i in 0..3 {
            pages.put(format!("fresh{i}"), 2, Instant::now(), big.clone());
        }
        // A fifth page does not fit beside four: the stale one goes, the fresh ones stay.
        pages.put("fresh3".into(), 2, Instant::now(), big.clone());
        assert!(pages.kept().bytes <= MAX_BYTES);
        assert!(!pages.kept().pages.contains_key("stale"));
        assert_eq!(pages.get("fresh0", 2), Some(big.clone()));
        // A sixth among five fresh ones: everything goes but the newest.
        pages.put("fresh4".into(), 2, Instant::now(), big.clone());
        assert!(pages.kept().bytes <= MAX_BYTES);
        assert_eq!(pages.get("fresh4", 2), Some(big.clone()));
        // Replacing a page counts its bytes once.
        pages.put("fresh4".into(), 2, Instant::now(), body("small"));
        let expected = "fresh4".len() + "small".len();
        assert_eq!(pages.kept().bytes, expected);
        // A page larger than a quarter of the room is not kept at all.
        pages.put(
            "huge".into(),
            2,
            Instant::now(),
            Bytes::from(vec![b'x'; MAX_BYTES / 3]),
        );
        assert_eq!(pages.get("huge", 2), None);
    }
}
