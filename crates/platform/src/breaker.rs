//! A circuit breaker for calls to something remote (an upstream service, the payment gateway): it
//! fails fast while the other side is down instead of stacking up timeouts.
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// After `threshold` consecutive failures it opens and callers are refused at once for `open_for`;
/// then one probe goes through (half-open), and its outcome closes or reopens the breaker.
///
/// Every admitted call holds a [`Permit`] and reports its outcome on it. A probe whose permit is
/// dropped without an outcome frees the half-open slot, so the breaker cannot stay stuck behind a
/// caller that went away.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the breaker is open; 0 when closed.
    open_until: AtomicU64,
    /// The id of the probe in flight; 0 when none is.
    probe: AtomicU64,
    probes: AtomicU64,
    epoch: Instant,
}

/// The breaker is open: try again after `retry_after`.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    pub retry_after: Duration,
}

/// Leave to make one call; report its outcome with [`Permit::success`] or [`Permit::failure`].
#[derive(Debug)]
#[must_use = "a call's outcome is reported on its permit"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    /// The probe id when this call is the half-open probe; 0 otherwise.
    probe: u64,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probe: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Relaxed) != 0
    }

    pub fn admit(&self) -> Result<Permit<'_>, Rejected> {
        let until = self.open_until.load(Ordering::Relaxed);
        if until == 0 {
            return Ok(Permit {
                breaker: self,
                probe: 0,
            });
        }
        let now = self.now_ms();
        if now < until {
            return Err(Rejected {
                retry_after: Duration::from_millis(until - now),
            });
        }
        // Half-open: exactly one request probes the service.
        let id = self.probes.fetch_add(1, Ordering::Relaxed) + 1;
        match self
            .probe
            .compare_exchange(0, id, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => Ok(Permit {
                breaker: self,
                probe: id,
            }),
            Err(_) => Err(Rejected {
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// Frees the half-open slot if `id` still holds it; true if it did.
    fn release(&self, id: u64) -> bool {
        id != 0
            && self
                .probe
                .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }
}

impl Permit<'_> {
    pub fn is_probe(&self) -> bool {
        self.probe != 0
    }

    /// The call worked: the breaker closes.
    pub fn success(&self) {
        let breaker = self.breaker;
        breaker.failures.store(0, Ordering::Relaxed);
        if breaker.open_until.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!("circuit breaker closed");
        }
        breaker.release(self.probe);
    }

    /// The call failed: one more consecutive failure, and a failed probe reopens the breaker.
    pub fn failure(&self) {
        let breaker = self.breaker;
        let failures = breaker.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let probed = breaker.release(self.probe);
        if failures >= breaker.threshold || probed {
            let until = breaker.now_ms() + breaker.open_for.as_millis() as u64;
            if breaker.open_until.swap(until.max(1), Ordering::Relaxed) == 0 {
                tracing::warn!(failures, "circuit breaker opened");
            }
        }
    }
}

/// A probe dropped without an outcome (its caller hung up, a timeout further out fired, the
/// request was never sent) frees the slot and counts as nothing: it says nothing about the other
/// side, and counting it as a failure would shut a recovered service out for another open period
/// because of a client. The next request probes instead, so still one probe at a time.
impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.release(self.probe);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admits calls until the open period is over and a probe is let through.
    fn probe(breaker: &Breaker) -> Permit<'_> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match breaker.admit() {
                Ok(permit) => {
                    assert!(
                        permit.is_probe(),
                        "an open breaker lets only a probe through"
                    );
                    return permit;
                }
                Err(_) => assert!(Instant::now() < deadline, "no probe within 5 s"),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_a_good_probe_closes_it() {
        let breaker = Breaker::new(3, Duration::from_millis(30));
        for _ in 0..2 {
            breaker.admit().unwrap().failure();
        }
        let permit = breaker.admit().unwrap();
        assert!(!permit.is_probe());
        permit.failure();
        assert!(breaker.admit().is_err());
        let probe = probe(&breaker);
        assert!(breaker.admit().is_err(), "one probe at a time");
        probe.success();
        assert!(!breaker.admit().unwrap().is_probe());
        assert!(!breaker.is_open());
    }

    #[test]
    fn a_failed_probe_reopens_the_breaker() {
        let breaker = Breaker::new(1, Duration::from_millis(20));
        breaker.admit().unwrap().failure();
        probe(&breaker).failure();
        assert!(breaker.admit().is_err());
    }

    #[test]
    fn a_probe_dropped_without_an_outcome_lets_the_next_call_probe() {
        let breaker = Breaker::new(1, Duration::from_millis(20));
        breaker.admit().unwrap().failure();
        drop(probe(&breaker));
        let next = breaker.admit().unwrap();
        assert!(next.is_probe(), "the next call probes at once");
        next.success();
        assert!(!breaker.admit().unwrap().is_probe());
    }

    #[test]
    fn an_old_probe_dropped_late_does_not_free_a_newer_probes_slot() {
        let breaker = Breaker::new(1, Duration::from_millis(20));
        breaker.admit().unwrap().failure();
        let old = probe(&breaker);
        old.failure();
        let newer = probe(&breaker);
        drop(old);
        assert!(
            breaker.admit().is_err(),
            "the newer probe still holds the slot"
        );
        newer.success();
        assert!(!breaker.is_open());
    }
}
