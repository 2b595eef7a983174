//! A circuit breaker for calls to something remote (an upstream service, the payment gateway): it
//! fails fast while the other side is down instead of stacking up timeouts.
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// After `threshold` consecutive failures it opens and callers are refused at once for `open_for`; then one probe goes through (half-open), and its outcome
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
}
