//! Login throttling: failures are counted per account and per client address over a sliding
//! window, in memory (so per process; a restart forgets them, which errs on the side of users).
//! The address is the TCP peer: behind the gateway it is the gateway's, so there the per-address
//! limit applies to all of its traffic together.
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `key` has used up its failures in the window.
    pub fn blocked(&self, key: &str) -> Option<Duration> {
        let mut failures = self.failures.lock().ok()?;
        let entries = failures.get_mut(key)?;
        let now = Instant::now();
        while entries
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            entries.pop_front();
        }
        if entries.len() >= self.limit {
            entries
                .front()
                .map(|oldest| self.window.saturating_sub(now.duration_since(*oldest)))
        } else {
            None
        }
    }

    pub fn fail(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            // Bound memory under a flood of distinct keys.
            if failures.len() > 100_000 {
                failures.clear();
            }
            failures
                .entry(key.to_owned())
                .or_default()
                .push_back(Instant::now());
        }
    }

    pub fn clear(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}
