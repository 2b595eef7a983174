//! The figures of a run, as pure functions of what was recorded, so they can be checked on known
//! inputs (`cargo test -p agora-load`).
use std::time::Duration;

/// What one scenario (or one scenario of one step) recorded.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Requests answered with a 2xx.
    pub requests: usize,
    /// Requests that failed: a transport error, a timeout, or a status other than 2xx.
    pub errors: usize,
    /// Time over which the requests were sent.
    pub elapsed: Duration,
    /// Latency of every successful request, sorted once recording ends.
    pub latencies: Vec<Duration>,
}

impl Outcome {
    /// Adds another run of the same scenario: counts and times add up, latencies pool.
    pub fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
    }

    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        rate(self.requests, self.elapsed)
    }

    /// Latency at quantile `p` (0.0–1.0) of the successful requests.
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    /// Errors over all requests sent, 0.0–1.0.
    pub fn error_ratio(&self) -> f64 {
        let sent = self.requests + self.errors;
        if sent == 0 {
            0.0
        } else {
            self.errors as f64 / sent as f64
        }
    }
}

/// `count` per second over `elapsed`; 0 for no time at all.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// The nearest-rank value at quantile `p` of `sorted` (ascending): the element at
/// `round((n - 1) × p)`, so p = 0 is the minimum and p = 1 the maximum; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Milliseconds, for tables and charts.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_are_the_nearest_ranks() {
        let sorted = millis(1..=100);
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        // (100 - 1) × 0.5 = 49.5 rounds to index 50: the 51st value.
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(51));
        // 99 × 0.99 = 98.01: index 98, the 99th value.
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 1.0), Duration::from_millis(100));
    }

    #[test]
    fn a_tail_of_one_percent_shows_at_p99_and_not_at_p50() {
        // 990 fast requests and 10 stalled ones, as a closed loop would hide and an open model
        // must show.
        let mut latencies = millis(std::iter::repeat_n(2, 990));
        latencies.extend(millis(std::iter::repeat_n(800, 10)));
        latencies.sort_unstable();
        assert_eq!(percentile(&latencies, 0.5), Duration::from_millis(2));
        assert_eq!(percentile(&latencies, 0.995), Duration::from_millis(800));
        assert_eq!(percentile(&latencies, 0.98), Duration::from_millis(2));
    }

    #[test]
    fn percentiles_of_nothing_or_one_value_and_out_of_range_quantiles() {
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
        let one = millis([7]);
        assert_eq!(percentile(&one, 0.0), Duration::from_millis(7));
        assert_eq!(percentile(&one, 0.99), Duration::from_millis(7));
        let sorted = millis(1..=10);
        assert_eq!(percentile(&sorted, 1.5), Duration::from_millis(10));
        assert_eq!(percentile(&sorted, -1.0), Duration::from_millis(1));
    }

    #[test]
    fn rates_count_per_second_and_are_zero_over_no_time() {
        assert_eq!(rate(5_000, Duration::from_secs(2)), 2_500.0);
        assert_eq!(rate(3, Duration::from_millis(500)), 6.0);
        assert_eq!(rate(10, Duration::ZERO), 0.0);
    }

    #[test]
    fn merged_rounds_add_up_and_pool_their_latencies() {
        let mut total = Outcome {
            requests: 3,
            errors: 1,
            elapsed: Duration::from_secs(1),
            latencies: millis([1, 5, 9]),
        };
        total.merge(Outcome {
            requests: 3,
            errors: 0,
            elapsed: Duration::from_secs(2),
            latencies: millis([2, 3, 4]),
        });
        assert_eq!(total.requests, 6);
        assert_eq!(total.errors, 1);
        assert_eq!(total.throughput(), 2.0);
        assert_eq!(total.latencies, millis([1, 2, 3, 4, 5, 9]));
        assert_eq!(total.percentile(1.0), Duration::from_millis(9));
        assert!((total.error_ratio() - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(Outcome::default().error_ratio(), 0.0);
    }
}
