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

/// What is sent to the searches waiting for a ranking in the making: `None` until it is made.
type Made = tokio::sync::watch::Receiver<Option<Arc<Ranking>>>;

/// A search's ranking as one process keeps it.
enum Kept {
    /// Made at that instant.
    Ranked(Instant, Arc<Ranking>),
    /// Being made by one search; the others of the same words wait for it.
    Ranking(Made),
}

/// What a search does about its words' ranking ([`Rankings::get`]).
pub enum Lookup {
    /// Use this one.
    Kept(Arc<Ranking>),
    /// Another search is ranking the same words: wait for its ranking ([`Lookup::wait`]).
    Wait(Made),
    /// Rank them, and hand the ranking over with [`Rankings::put`].
    Rank(Ticket),
}

impl Lookup {
    /// The ranking another search was making, or `None` when it gave up (its database read failed
    /// or its client hung up): then ask again, and this search may be the one to rank.
    pub async fn wait(mut made: Made) -> Option<Arc<Ranking>> {
        made.wait_for(Option::is_some).await.ok()?.clone()
    }
}

/// The right to rank some words, held by one search: dropped without [`Rankings::put`], it tells
/// the searches waiting for it to ask again.
pub struct Ticket {
    generation: u64,
    made: tokio::sync::watch::Sender<Option<Arc<Ranking>>>,
}

/// The rankings of one process, keyed by the search's words, with a generation that every change
/// of a product's words bumps, so that a ranking read before a change is not kept after it.
#[derive(Default)]
pub struct Rankings {
    generation: u64,
    by_words: HashMap<String, Kept>,
}

impl Rankings {
    /// What to do about the ranking of `words`. One search ranks, the others of the same words
    /// use what is kept: the first to find the ranking past [`RANKING_TTL`] ranks again while the
    /// others keep the old one for another lifetime, and while words never ranked (or dropped by a
    /// change) are ranked, the others wait for that ranking. Without that, every search arriving
    /// meanwhile ranked too: at 1,000 searches a second of six words, a burst at the start and
    /// every 2 s that set the p99.
    pub fn get(&mut self, words: &str) -> Lookup {
        let generation = self.generation;
        let ticket = || {
            let (sender, made) = tokio::sync::watch::channel(None);
            (
                made,
                Ticket {
                    generation,
                    made: sender,
                },
            )
        };
        match self.by_words.get_mut(words) {
            Some(Kept::Ranked(loaded, ranking)) => {
                if loaded.elapsed() < RANKING_TTL {
                    return Lookup::Kept(ranking.clone());
                }
                *loaded = Instant::now();
                return Lookup::Rank(ticket().1);
            }
            // Its maker is still at it.
            Some(Kept::Ranking(waiting)) if !waiting.is_closed() => {
                return Lookup::Wait(waiting.clone())
            }
            _ => {}
        }
        let (made, ticket) = ticket();
        self.by_words.insert(words.to_owned(), Kept::Ranking(made));
        Lookup::Rank(ticket)
    }

    /// Hands `ranking` to the searches waiting for it, and keeps it unless a product's words
    /// changed since the ticket was taken.
    pub fn put(&mut self, words: String, ticket: Ticket, ranking: Arc<Ranking>) {
        ticket.made.send_replace(Some(ranking.clone()));
        if ticket.generation != self.generation {
            return;
        }
        if self.by_words.len() >= MAX_SEARCHES {
            let now = Instant::now();
            let age = |kept: &Kept| match kept {
                Kept::Ranked(at, _) => *at,
                Kept::Ranking(_) => now,
            };
            let mut ages: Vec<Instant> = self.by_words.values().map(age).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.by_words.retain(|_, kept| age(kept) > cut);
        }
        self.by_words
            .insert(words, Kept::Ranked(Instant::now(), ranking));
    }

    /// Drops every ranking: a product was created, renamed, described anew or deleted. Searches
    /// waiting for a ranking in the making still get it (read before the change, as their own
    /// would have been had they arrived a moment earlier).
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

    fn rank(rankings: &mut Rankings, words: &str) -> Ticket {
        match rankings.get(words) {
            Lookup::Rank(ticket) => ticket,
            _ => panic!("{words} should be this search's to rank"),
        }
    }

    fn kept(rankings: &mut Rankings, words: &str) -> bool {
        matches!(rankings.get(words), Lookup::Kept(_))
    }

    #[test]
    fn a_ranking_read_before_a_change_is_not_kept_after_it() {
        let mut rankings = Rankings::default();
        let before = rank(&mut rankings, "coffee");
        rankings.forget();
        rankings.put("coffee".into(), before, Arc::new(Ranking::new(hits(3))));
        let now = rank(&mut rankings, "coffee");
        rankings.put("coffee".into(), now, Arc::new(Ranking::new(hits(3))));
        assert!(kept(&mut rankings, "coffee"));
        rankings.forget();
        rank(&mut rankings, "coffee");
    }

    #[test]
    fn one_search_ranks_again_past_the_lifetime_while_the_others_keep_the_old_ranking() {
        let mut rankings = Rankings::default();
        let first = rank(&mut rankings, "tea");
        rankings.put("tea".into(), first, Arc::new(Ranking::new(hits(3))));
        if let Some(Kept::Ranked(loaded, _)) = rankings.by_words.get_mut("tea") {
            *loaded -= RANKING_TTL;
        }
        let again = rank(&mut rankings, "tea");
        assert!(kept(&mut rankings, "tea"), "the next keeps the old ranking");
        rankings.put("tea".into(), again, Arc::new(Ranking::new(hits(5))));
        match rankings.get("tea") {
            Lookup::Kept(ranking) => assert_eq!(ranking.hits.len(), 5),
            _ => panic!("the new ranking is kept"),
        }
    }

    #[tokio::test]
    async fn searches_of_words_being_ranked_wait_for_that_ranking() {
        let mut rankings = Rankings::default();
        let ticket = rank(&mut rankings, "mug");
        let waiting = [rankings.get("mug"), rankings.get("mug")].map(|lookup| match lookup {
            Lookup::Wait(made) => tokio::spawn(Lookup::wait(made)),
            _ => panic!("a second search of the same words ranks them too"),
        });
        rank(&mut rankings, "cup");
        rankings.put("mug".into(), ticket, Arc::new(Ranking::new(hits(4))));
        for waiter in waiting {
            let ranking = waiter.await.unwrap().expect("the ranking made");
            assert_eq!(ranking.hits.len(), 4);
        }
        assert!(kept(&mut rankings, "mug"));
    }

    #[tokio::test]
    async fn when_the_ranking_search_gives_up_the_next_one_ranks() {
        let mut rankings = Rankings::default();
        let ticket = rank(&mut rankings, "kettle");
        let Lookup::Wait(made) = rankings.get("kettle") else {
            panic!("the second search waits")
        };
        let waiter = tokio::spawn(Lookup::wait(made));
        // Its database read failed, or its client hung up.
        drop(ticket);
        assert!(waiter.await.unwrap().is_none(), "the waiter is told");
        let next = rank(&mut rankings, "kettle");
        rankings.put("kettle".into(), next, Arc::new(Ranking::new(hits(2))));
        assert!(kept(&mut rankings, "kettle"));
    }

    #[test]
    fn the_oldest_half_goes_when_full() {
        let mut rankings = Rankings::default();
        for i in 0..MAX_SEARCHES + 1 {
            let words = format!("w{i}");
            let ticket = rank(&mut rankings, &words);
            rankings.put(words, ticket, Arc::new(Ranking::new(hits(1))));
        }
        assert!(rankings.by_words.len() <= MAX_SEARCHES);
        assert!(kept(&mut rankings, &format!("w{MAX_SEARCHES}")));
    }
}
