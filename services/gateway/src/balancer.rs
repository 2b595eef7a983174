//! The replicas of each service: which are healthy, how busy each is, which to use next (each
//! service also has a circuit breaker, `platform::breaker`).
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use metrics::{Counter, Histogram};
use platform::breaker::Breaker;
use platform::telemetry::HandleCache;

use crate::config::Balance;

/// One instance of a service.
pub struct Replica {
    pub url: String,
    healthy: AtomicBool,
    outstanding: AtomicUsize,
    /// Upstream latency per route (by route index), calls per (route index, status).
    pub durations: HandleCache<usize, Histogram>,
    pub calls: HandleCache<(usize, u16), Counter>,
}

impl Replica {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Passive ejection (a failed call) and active checks both land here.
    pub fn set_healthy(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            tracing::warn!(replica = %self.url, healthy, "replica health changed");
        }
    }

    /// Counts the request as outstanding until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

pub struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All replicas of one service.
pub struct Upstream {
    pub service: String,
    pub replicas: Vec<Arc<Replica>>,
    next: AtomicUsize,
    balance: Balance,
    pub breaker: Breaker,
}

impl Upstream {
    pub fn new(service: &str, urls: &[String], balance: Balance, breaker: Breaker) -> Self {
        Self {
            service: service.to_owned(),
            replicas: urls
                .iter()
                .map(|url| {
                    Arc::new(Replica {
                        url: url.trim_end_matches('/').to_owned(),
                        // Optimistic until the first check says otherwise, so a gateway that
                        // starts alongside its services serves at once.
                        healthy: AtomicBool::new(true),
                        outstanding: AtomicUsize::new(0),
                        durations: HandleCache::default(),
                        calls: HandleCache::default(),
                    })
                })
                .collect(),
            next: AtomicUsize::new(0),
            balance,
            breaker,
        }
    }

    pub fn healthy_count(&self) -> usize {
        self.replicas.iter().filter(|r| r.is_healthy()).count()
    }

    /// A healthy replica other than those in `tried`, chosen by the configured policy.
    pub fn pick(&self, tried: &[Arc<Replica>]) -> Option<Arc<Replica>> {
        let candidates: Vec<&Arc<Replica>> = self
            .replicas
            .iter()
            .filter(|r| r.is_healthy() && !tried.iter().any(|t| Arc::ptr_eq(t, r)))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let chosen = match self.balance {
            Balance::RoundRobin => candidates[turn % candidates.len()],
            Balance::P2c => {
                let a = candidates[turn % candidates.len()];
                let b = candidates[rand::random::<usize>() % candidates.len()];
                if b.outstanding.load(Ordering::Relaxed) < a.outstanding.load(Ordering::Relaxed) {
                    b
                } else {
                    a
                }
            }
        };
        Some(chosen.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_robin_spreads_evenly_and_skips_unhealthy_replicas() {
        let urls: Vec<String> = (0..3).map(|i| format!("http://r{i}")).collect();
        let upstream = Upstream::new(
            "s",
            &urls,
            Balance::RoundRobin,
            Breaker::new(5, Duration::from_secs(1)),
        );
        let mut counts = [0; 3];
        for _ in 0..300 {
            let r = upstream.pick(&[]).unwrap();
            counts[urls.iter().position(|u| *u == r.url).unwrap()] += 1;
        }
        assert_eq!(counts, [100, 100, 100]);
        upstream.replicas[1].set_healthy(false);
        for _ in 0..10 {
            assert_ne!(upstream.pick(&[]).unwrap().url, "http://r1");
        }
        let first = upstream.pick(&[]).unwrap();
        let second = upstream.pick(std::slice::from_ref(&first)).unwrap();
        assert_ne!(first.url, second.url);
        assert!(upstream.pick(&[first, second]).is_none());
    }
}
