//! The open model: a shopper session mix sent at a fixed arrival rate whatever the platform's
//! answers, stepped up until a service-level objective breaks.
//!
//! A closed loop (every connection waits for its answer before sending again) slows down with the
//! system it measures and so hides a stall: while a request hangs, the requests that should have
//! been sent meanwhile are not, and never count as slow ("coordinated omission"). Here the `i`-th
//! request of a step is due at `start + i / rate`; it is sent then (or as soon as the sender gets
//! the CPU), and its latency is counted **from the time it was due**, so a stall shows in the
//! latency of every request it delayed.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::stats::Outcome;
use crate::Request;

/// One kind of request in the mix.
pub struct Scenario {
    pub name: &'static str,
    /// Its share of the mix before renormalisation, in percent.
    pub weight: f64,
    /// p99 latency it must stay within, if it has an objective.
    pub slo: Option<Duration>,
    /// `None` when the platform has no such service (then the mix is renormalised without it).
    pub request: Option<Request>,
}

/// Each scenario's share of the mix (summing to 1): its weight over the weights of the scenarios
/// that are available; 0 for the others.
pub fn shares(weights: &[(f64, bool)]) -> Vec<f64> {
    let total: f64 = weights
        .iter()
        .filter(|(_, available)| *available)
        .map(|(w, _)| w.max(0.0))
        .sum();
    weights
        .iter()
        .map(|(w, available)| match (*available, total > 0.0) {
            (true, true) => w.max(0.0) / total,
            _ => 0.0,
        })
        .collect()
}

/// Picks the scenario of each arrival in turn so that every prefix of the sequence is as close
/// to the shares as whole requests allow (smooth weighted round-robin): a step of a few seconds
/// then carries exactly the mix, which a random draw would only approach.
pub struct Mixer {
    shares: Vec<f64>,
    credit: Vec<f64>,
}

impl Mixer {
    pub fn new(shares: Vec<f64>) -> Self {
        let credit = vec![0.0; shares.len()];
        Self { shares, credit }
    }

    /// The index of the next arrival's scenario.
    pub fn next(&mut self) -> usize {
        for (credit, share) in self.credit.iter_mut().zip(&self.shares) {
            *credit += share;
        }
        let chosen = self
            .credit
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map_or(0, |(i, _)| i);
        let total: f64 = self.shares.iter().sum();
        if let Some(credit) = self.credit.get_mut(chosen) {
            *credit -= total;
        }
        chosen
    }
}

/// When the `i`-th arrival of a step at `rate` per second is due, from the step's start.
pub fn due(i: usize, rate: f64) -> Duration {
    Duration::from_secs_f64(i as f64 / rate)
}

/// Arrivals in a step of `duration` at `rate` per second.
pub fn arrivals(rate: f64, duration: Duration) -> usize {
    (rate * duration.as_secs_f64()).round() as usize
}

/// What one step at one offered rate measured.
pub struct Step {
    pub rate: f64,
    /// Per scenario, in the mix's order.
    pub outcomes: Vec<Outcome>,
    /// CPU seconds each process spent during the step.
    pub cpu: BTreeMap<String, f64>,
}

impl Step {
    /// All scenarios together.
    pub fn total(&self) -> Outcome {
        let mut total = Outcome::default();
        for outcome in &self.outcomes {
            total.requests += outcome.requests;
            total.errors += outcome.errors;
            total.elapsed = total.elapsed.max(outcome.elapsed);
        }
        total
    }
}

/// The most errors a step may have: fewer than 0.1% of its requests.
pub const MAX_ERROR_RATIO: f64 = 0.001;

/// Every objective `step` misses, as text; empty when it meets them all. A scenario with no
/// answered request cannot show it meets its latency objective, so that counts as a miss too.
pub fn breaches(step: &Step, scenarios: &[(&str, Option<Duration>)]) -> Vec<String> {
    let mut missed = Vec::new();
    for ((name, slo), outcome) in scenarios.iter().zip(&step.outcomes) {
        let Some(slo) = slo else { continue };
        if outcome.requests + outcome.errors == 0 {
            continue;
        }
        if outcome.requests == 0 {
            missed.push(format!("{name}: none of {} answered", outcome.errors));
            continue;
        }
        let p99 = outcome.percentile(0.99);
        if p99 > *slo {
            missed.push(format!(
                "{name} p99 {:.1} ms > {:.0} ms",
                crate::stats::ms(p99),
                crate::stats::ms(*slo)
            ));
        }
    }
    let total = step.total();
    if total.error_ratio() >= MAX_ERROR_RATIO {
        missed.push(format!(
            "errors {:.2}% ≥ {:.1}%",
            100.0 * total.error_ratio(),
            100.0 * MAX_ERROR_RATIO
        ));
    }
    missed
}

/// Sends `arrivals(rate, duration)` requests of the mix at `rate` per second and records each
/// one's latency from the time it was due. At most `max_in_flight` requests are outstanding: an
/// arrival beyond that is not sent and counts as an error (the platform is past saturation and
/// the step fails its objectives anyway), which bounds the client's memory and sockets.
pub async fn drive(
    client: &reqwest::Client,
    requests: &[Option<Request>],
    shares: &[f64],
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
) -> Vec<Outcome> {
    let count = arrivals(rate, duration);
    let mut mixer = Mixer::new(shares.to_vec());
    let mut sent_of = vec![0usize; requests.len()];
    let mut outcomes: Vec<Outcome> = (0..requests.len())
        .map(|_| Outcome {
            elapsed: duration,
            ..Outcome::default()
        })
        .collect();
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Option<Duration>)>();
    // A short lead so the first arrivals are not already late when the loop starts.
    let start = Instant::now() + Duration::from_millis(20);
    for i in 0..count {
        let scenario = mixer.next();
        let Some(Some(request)) = requests.get(scenario) else {
            continue;
        };
        let due_at = start + due(i, rate);
        tokio::time::sleep_until(due_at).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            if let Some(outcome) = outcomes.get_mut(scenario) {
                outcome.errors += 1;
            }
            continue;
        };
        let n = sent_of[scenario];
        sent_of[scenario] += 1;
        let built = request(client, n);
        let tx = tx.clone();
        tokio::spawn(async move {
            let latency = match built.send().await {
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(_) => Some(due_at.elapsed()),
                    Err(_) => None,
                },
                _ => None,
            };
            drop(permit);
            let _ = tx.send((scenario, latency));
        });
    }
    drop(tx);
    while let Some((scenario, latency)) = rx.recv().await {
        if let Some(outcome) = outcomes.get_mut(scenario) {
            match latency {
                Some(latency) => {
                    outcome.requests += 1;
                    outcome.latencies.push(latency);
                }
                None => outcome.errors += 1,
            }
        }
    }
    for outcome in &mut outcomes {
        outcome.latencies.sort_unstable();
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mix: browse 25, product 30, search 12, cart 22, login 3.5, checkout 2.5,
    /// orders 5.
    const MIX: [f64; 7] = [25.0, 30.0, 12.0, 22.0, 3.5, 2.5, 5.0];

    #[test]
    fn without_carts_the_mix_is_renormalised_over_the_rest() {
        let available: Vec<(f64, bool)> =
            MIX.iter().enumerate().map(|(i, w)| (*w, i != 3)).collect();
        let shares = shares(&available);
        assert_eq!(shares[3], 0.0);
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // 30 of the remaining 78: product reads are 38.5% of the mix.
        assert!((shares[1] - 30.0 / 78.0).abs() < 1e-12);
        assert!((shares[5] - 2.5 / 78.0).abs() < 1e-12);
        let all: Vec<(f64, bool)> = MIX.iter().map(|w| (*w, true)).collect();
        assert!((super::shares(&all)[3] - 0.22).abs() < 1e-12);
        assert_eq!(super::shares(&[(1.0, false)]), [0.0]);
    }

    #[test]
    fn the_mixer_follows_the_shares_exactly_at_every_prefix() {
        let available: Vec<(f64, bool)> =
            MIX.iter().enumerate().map(|(i, w)| (*w, i != 3)).collect();
        let shares = shares(&available);
        let mut mixer = Mixer::new(shares.clone());
        let mut counts = [0usize; 7];
        for n in 1..=7_800 {
            counts[mixer.next()] += 1;
            for (count, share) in counts.iter().zip(&shares) {
                let expected = share * n as f64;
                assert!(
                    (*count as f64 - expected).abs() <= 1.0,
                    "after {n}: {counts:?}"
                );
            }
        }
        // 7,800 arrivals are 100 whole cycles of the 78 remaining percent.
        assert_eq!(counts, [2_500, 3_000, 1_200, 0, 350, 250, 500]);
    }

    #[test]
    fn arrivals_are_evenly_spaced_at_the_offered_rate() {
        assert_eq!(arrivals(250.0, Duration::from_secs(4)), 1_000);
        assert_eq!(due(0, 250.0), Duration::ZERO);
        assert_eq!(due(1, 250.0), Duration::from_millis(4));
        assert_eq!(due(1_000, 250.0), Duration::from_secs(4));
    }

    fn outcome(latencies_ms: &[u64], errors: usize) -> Outcome {
        Outcome {
            requests: latencies_ms.len(),
            errors,
            elapsed: Duration::from_secs(10),
            latencies: latencies_ms
                .iter()
                .map(|m| Duration::from_millis(*m))
                .collect(),
        }
    }

    #[test]
    fn a_step_breaks_on_a_p99_above_its_objective_or_too_many_errors() {
        let scenarios = [
            ("product", Some(Duration::from_millis(50))),
            ("checkout", Some(Duration::from_millis(500))),
            ("login", None),
        ];
        let fast: Vec<u64> = vec![5; 1_000];
        let mut slow_tail = vec![5; 980];
        slow_tail.extend([90; 20]);
        let ok = Step {
            rate: 100.0,
            outcomes: vec![
                outcome(&fast, 0),
                outcome(&[300; 50], 0),
                outcome(&[2_000; 10], 0),
            ],
            cpu: BTreeMap::new(),
        };
        assert!(
            breaches(&ok, &scenarios).is_empty(),
            "{:?}",
            breaches(&ok, &scenarios)
        );
        let tail = Step {
            outcomes: vec![
                outcome(&slow_tail, 0),
                outcome(&[300; 50], 0),
                outcome(&[], 0),
            ],
            ..ok
        };
        assert_eq!(breaches(&tail, &scenarios), ["product p99 90.0 ms > 50 ms"]);
        // 2 errors in 1,062 requests: 0.19%.
        let errors = Step {
            outcomes: vec![
                outcome(&fast, 2),
                outcome(&[300; 50], 0),
                outcome(&[1; 10], 0),
            ],
            ..tail
        };
        assert_eq!(breaches(&errors, &scenarios), ["errors 0.19% ≥ 0.1%"]);
        // 1 error in 1,061: 0.094%, within the objective.
        let one = Step {
            outcomes: vec![
                outcome(&fast, 1),
                outcome(&[300; 50], 0),
                outcome(&[1; 10], 0),
            ],
            ..errors
        };
        assert!(breaches(&one, &scenarios).is_empty());
        let all_failed = Step {
            outcomes: vec![outcome(&fast, 0), outcome(&[], 40), outcome(&[], 0)],
            ..one
        };
        assert_eq!(
            breaches(&all_failed, &scenarios),
            ["checkout: none of 40 answered", "errors 3.85% ≥ 0.1%"]
        );
    }
}
