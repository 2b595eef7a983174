//! Full-text rankings kept in memory for a short time. Ranking a common word scores every product
//! that has it (bm25 on SQLite, `ts_rank` on PostgreSQL): 1.7 ms of CPU a search on 10,000
//! products, when reading a page of products by key costs a tenth of that. Shoppers repeat the
//! same few searches, so a process keeps the order of a search's hits (rank and id, no product
//! data) and reads only the page's products, fresh, by key: prices, stock and deletions show at
//! once, and only the order can be older, by about [`RANKING_TTL`].
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a process trusts a ranking. It drops every ranking when it changes a product's words
/// itself; a product created, renamed or deleted through another replica changes that replica's
/// rankings at once and this one's within this time (a deleted product never shows: pages are read
/// with `deleted_at IS NULL`). Search engines call this the refresh interval (Elasticsearch: 1 s).
pub const RANKING_TTL: Duration = Duration::from_secs(2);

/// The most hits of one search kept, in rank order; a page past them is read from the database.
pub const MAX_RANKED: usize = 1_000;

/// The most searches kept; when full, the oldest half goes.
const MAX_SEARCHES: usize = 256;

/// A search's hits in rank order (lower first, then id), at most [`MAX_RANKED`] of them.
pub struct Ranking {
    hits: Vec<(f64, String)>,
    /// Every hit is in `hits` (there were no more than [`MAX_RANKED`]).
    complete: bool,
}

impl Ranking {
    /// From the first `MAX_RANKED + 1` hits as the database ranked them.
    pub fn new(mut hits: Vec<(f64, String)>) -> Self {
        hits.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let complete = hits.len() <= MAX_RANKED;
        hits.truncate(MAX_RANKED);
        Self { hits, complete }
    }

    /// Every hit is kept: a page that runs out of them is the last.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// The hits after `after` (a page's last rank and id), or `None` when the page would run past
    /// what is kept of a longer ranking: then the database ranks that page.
    pub fn after(&self, after: Option<(f64, &str)>, wanted: usize) -> Option<&[(f64, String)]> {
        let start = match after {
            None => 0,
            Some((rank, id)) => self.hits.partition_point(|(r, i)| {
                r.total_cmp(&rank).then_with(|| i.as_str().cmp(id)).is_le()
            }),
        };
        let rest = &self.hits[start..];
        (self.complete || rest.len() >= wanted).then_some(rest)
    }
}

/// The rankings of one process, keyed by the search's words, with a generation that every change
/// of a product's words bumps, so that a ranking read before a change is not kept after it.
#[derive(Default)]
pub struct Rankings {
    generation: u64,
    by_words: HashMap<String, (Instant, Arc<Ranking>)>,
}

impl Rankings {
    /// The ranking of `words` if one is kept, or the generation to rank them under. The first
    /// search to find its ranking past [`RANKING_TTL`] ranks again, and meanwhile the others keep
    /// the old one for another lifetime: without that, every search of those words arriving while
    /// it was ranked again ranked too (at 1,000 searches a second of six words, a burst every
    /// 2 s that set the p99).
    pub fn get(&mut self, words: &str) -> Result<Arc<Ranking>, u64> {
        match self.by_words.get_mut(words) {
            Some((loaded, ranking)) => {
                if loaded.elapsed() < RANKING_TTL {
                    return Ok(ranking.clone());
                }
                *loaded = Instant::now();
                Err(self.generation)
            }
            None => Err(self.generation),
        }
    }

    /// Keeps `ranking`, read at `generation`, unless a product's words changed since.
    pub fn put(&mut self, words: String, generation: u64, ranking: Arc<Ranking>) {
        if generation != self.generation {
            return;
        }
        if self.by_words.len() >= MAX_SEARCHES {
            let mut ages: Vec<Instant> = self.by_words.values().map(|(at, _)| *at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.by_words.retain(|_, (at, _)| *at > cut);
        }
        self.by_words.insert(words, (Instant::now(), ranking));
    }

    /// Drops every ranking: a product was created, renamed, described anew or deleted.
    pub fn forget(&mut self) {
        self.generation += 1;
        self.by_words.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(n: usize) -> Vec<(f64, String)> {
        // Ties on rank are ordered by id, as the database orders them.
        (0..n)
            .rev()
            .map(|i| ((i / 2) as f64, format!("id-{i:05}")))
            .collect()
    }

    #[test]
    fn a_page_starts_after_the_cursor_in_rank_then_id_order() {
        let ranking = Ranking::new(hits(10));
        let all = ranking.after(None, 3).unwrap();
        assert_eq!(all.len(), 10);
        assert!(all
            .windows(2)
            .all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)));
        let (rank, id) = (all[4].0, all[4].1.clone());
        let rest = ranking.after(Some((rank, &id)), 3).unwrap();
        assert_eq!(rest, &all[5..]);
        let past_the_end = ranking.after(Some((99.0, "z")), 3).unwrap();
        assert!(past_the_end.is_empty());
    }

    #[test]
    fn a_long_ranking_hands_a_page_past_what_it_keeps_to_the_database() {
        let ranking = Ranking::new(hits(MAX_RANKED + 1));
        let kept = ranking.after(None, 20).unwrap();
        assert_eq!(kept.len(), MAX_RANKED);
        let near_end = kept[MAX_RANKED - 5].clone();
        assert!(ranking.after(Some((near_end.0, &near_end.1)), 20).is_none());
        let short = Ranking::new(hits(30));
        let last = short.after(None, 20).unwrap()[29].clone();
        assert_eq!(
            short.after(Some((last.0, &last.1)), 20).map(<[_]>::len),
            Some(0)
        );
    }

    #[test]
    fn a_ranking_read_before_a_change_is_not_kept_after_it() {
        let mut rankings = Rankings::default();
        let Err(generation) = rankings.get("coffee") else {
            panic!("nothing is kept yet")
        };
        rankings.forget();
        rankings.put("coffee".into(), generation, Arc::new(Ranking::new(hits(3))));
        let Err(now) = rankings.get("coffee") else {
            panic!("a stale ranking was kept")
        };
        rankings.put("coffee".into(), now, Arc::new(Ranking::new(hits(3))));
        assert!(rankings.get("coffee").is_ok());
        rankings.forget();
        assert!(rankings.get("coffee").is_err());
    }

    #[test]
    fn one_search_ranks_again_past_the_lifetime_while_the_others_keep_the_old_ranking() {
        let mut rankings = Rankings::default();
        rankings.put("tea".into(), 0, Arc::new(Ranking::new(hits(3))));
        if let Some((loaded, _)) = rankings.by_words.get_mut("tea") {
            *loaded -= RANKING_TTL;
        }
        assert_eq!(rankings.get("tea").err(), Some(0), "the first ranks again");
        assert!(
            rankings.get("tea").is_ok(),
            "the next keeps the old ranking"
        );
    }

    #[test]
    fn the_oldest_half_goes_when_full() {
        let mut rankings = Rankings::default();
        for i in 0..MAX_SEARCHES + 1 {
            rankings.put(format!("w{i}"), 0, Arc::new(Ranking::new(hits(1))));
        }
        assert!(rankings.by_words.len() <= MAX_SEARCHES);
        assert!(rankings.get(&format!("w{MAX_SEARCHES}")).is_ok());
    }
}
