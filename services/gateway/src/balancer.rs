//! The replicas of each service: which are healthy, how busy each is, which to use next, and the
//! service's circuit breaker.
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Balance;

/// One instance of a service.
#[derive(Debug)]
pub struct Replica {
    pub url: String,
    healthy: AtomicBool,
    outstanding: AtomicUsize,
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
#[derive(Debug)]
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

/// A circuit breaker per service: after `threshold` consecutive failures it opens and the gateway
/// answers 503 at once for `open_for`; then one probe goes through (half-open), and its outcome
/// closes or reopens the breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the breaker is open; 0 when closed.
    open_until: AtomicU64,
    probing: AtomicBool,
    epoch: Instant,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Probe,
    Rejected { retry_after: Duration },
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Relaxed) != 0
    }

    pub fn admit(&self) -> Admission {
        let until = self.open_until.load(Ordering::Relaxed);
        if until == 0 {
            return Admission::Allowed;
        }
        let now = self.now_ms();
        if now < until {
            return Admission::Rejected {
                retry_after: Duration::from_millis(until - now),
            };
        }
        // Half-open: exactly one request probes the service.
        if self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            Admission::Probe
        } else {
            Admission::Rejected {
                retry_after: Duration::from_secs(1),
            }
        }
    }

    pub fn record_success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        if self.open_until.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!("circuit breaker closed");
        }
        self.probing.store(false, Ordering::Release);
    }

    pub fn record_failure(&self) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let probing = self.probing.swap(false, Ordering::AcqRel);
        if failures >= self.threshold || probing {
            let until = self.now_ms() + self.open_for.as_millis() as u64;
            if self.open_until.swap(until.max(1), Ordering::Relaxed) == 0 {
                tracing::warn!(failures, "circuit breaker opened");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_a_good_probe_closes_it() {
        let breaker = Breaker::new(3, Duration::from_millis(30));
        for _ in 0..2 {
            breaker.record_failure();
        }
        assert_eq!(breaker.admit(), Admission::Allowed);
        breaker.record_failure();
        assert!(matches!(breaker.admit(), Admission::Rejected { .. }));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(breaker.admit(), Admission::Probe);
        assert!(
            matches!(breaker.admit(), Admission::Rejected { .. }),
            "one probe at a time"
        );
        breaker.record_success();
        assert_eq!(breaker.admit(), Admission::Allowed);
    }

    #[test]
    fn a_failed_probe_reopens_the_breaker() {
        let breaker = Breaker::new(1, Duration::from_millis(20));
        breaker.record_failure();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(breaker.admit(), Admission::Probe);
        breaker.record_failure();
        assert!(matches!(breaker.admit(), Admission::Rejected { .. }));
    }

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
