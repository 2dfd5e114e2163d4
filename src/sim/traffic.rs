//! The traffic model: requests per revision follow the route weights, errors are binomial, and
//! latencies fall into Prometheus histogram buckets. Windows over the recorded ticks answer the
//! two questions analysis templates ask: "what share of requests failed?" and "what is the q-th
//! latency quantile, as `histogram_quantile` computes it?".

use chrono::{DateTime, Duration, Utc};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use statrs::distribution::{ContinuousCDF, Normal};
use std::collections::VecDeque;

/// Upper bounds of the latency histogram's buckets, in seconds: the Prometheus client default.
pub const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How a revision behaves at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Behaviour {
    /// Probability that a request fails.
    pub error_rate: f64,
    /// Median latency, in seconds.
    pub latency_median: f64,
    /// Spread of the log-normal latency distribution (σ of the log).
    pub latency_sigma: f64,
}

impl Behaviour {
    /// A healthy service: 0.1% errors, 50ms median, p99 about 160ms.
    pub const BASELINE: Self = Self { error_rate: 0.001, latency_median: 0.05, latency_sigma: 0.5 };

    /// The probability that a request lands in each bucket (the last is `+Inf`).
    fn bucket_probabilities(&self) -> [f64; BUCKETS.len() + 1] {
        let log = Normal::new(self.latency_median.ln(), self.latency_sigma.max(1e-9)).expect("sigma > 0");
        let mut probabilities = [0.0; BUCKETS.len() + 1];
        let mut below = 0.0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            let cdf = log.cdf(bound.ln());
            probabilities[i] = (cdf - below).max(0.0);
            below = cdf;
        }
        probabilities[BUCKETS.len()] = (1.0 - below).max(0.0);
        probabilities
    }
}

/// What one revision served during one tick.
#[derive(Clone, Debug, PartialEq)]
struct Tick {
    at: DateTime<Utc>,
    requests: u64,
    errors: u64,
    /// Non-cumulative counts per bucket; the last is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
}

/// The recent traffic of one revision.
#[derive(Clone, Debug, Default)]
pub struct Served {
    ticks: VecDeque<Tick>,
}

/// How long served traffic is kept: more than any rate window a template uses.
const KEPT: Duration = Duration::hours(1);

/// Day-to-day wobble of a real service's error rate: each minute's rate is the behaviour's rate
/// times a log-normal factor with this σ, so a good canary is noisier than pure binomial counts.
const MINUTE_JITTER: f64 = 0.3;

impl Served {
    /// Records `seconds` of traffic at `rps` requests per second behaving as `behaviour`.
    /// `jitter` is this minute's error-rate factor.
    pub fn serve(
        &mut self,
        rng: &mut ChaCha8Rng,
        at: DateTime<Utc>,
        rps: f64,
        seconds: f64,
        behaviour: Behaviour,
        jitter: f64,
    ) {
        let mean = rps * seconds;
        let requests = if mean > 0.0 { Poisson::new(mean).expect("mean > 0").sample(rng) as u64 } else { 0 };
        let error_rate = (behaviour.error_rate * jitter).clamp(0.0, 1.0);
        let errors = binomial(rng, requests, error_rate);
        let mut buckets = [0; BUCKETS.len() + 1];
        let mut left = requests;
        let mut mass_left = 1.0;
        for (bucket, p) in buckets.iter_mut().zip(behaviour.bucket_probabilities()) {
            // A multinomial draw as a chain of binomials over what is left.
            let share = if mass_left > 0.0 { (p / mass_left).clamp(0.0, 1.0) } else { 1.0 };
            *bucket = binomial(rng, left, share);
            left -= *bucket;
            mass_left -= p;
        }
        buckets[BUCKETS.len()] += left;
        self.ticks.push_back(Tick { at, requests, errors, buckets });
        while self.ticks.front().is_some_and(|t| at - t.at > KEPT) {
            self.ticks.pop_front();
        }
    }

    fn window(&self, now: DateTime<Utc>, window: Duration) -> impl Iterator<Item = &Tick> {
        self.ticks.iter().filter(move |t| t.at <= now && now - t.at < window)
    }

    /// Failed requests and all requests in the window, as `increase()` over counters reads them.
    pub fn counts(&self, now: DateTime<Utc>, window: Duration) -> (f64, f64) {
        let (errors, requests) =
            self.window(now, window).fold((0, 0), |(e, r), t| (e + t.errors, r + t.requests));
        (errors as f64, requests as f64)
    }

    /// Requests slower than `bound` seconds and all requests in the window, as the histogram's
    /// `_count` less its `_bucket{le="bound"}` reads them: every bucket above `bound` is slow.
    pub fn slow_counts(&self, now: DateTime<Utc>, window: Duration, bound: f64) -> (f64, f64) {
        let fast = BUCKETS.iter().take_while(|&&upper| upper <= bound).count();
        let (slow, requests) = self
            .window(now, window)
            .fold((0, 0), |(s, r), t| (s + t.buckets[fast..].iter().sum::<u64>(), r + t.requests));
        (slow as f64, requests as f64)
    }

    /// Failed requests over all requests in the window; `None` without requests, as Prometheus
    /// returns nothing for a ratio of rates of series that never moved.
    pub fn error_ratio(&self, now: DateTime<Utc>, window: Duration) -> Option<f64> {
        let (errors, requests) = self.counts(now, window);
        (requests > 0.0).then(|| errors / requests)
    }

    /// The q-quantile of latency in the window, interpolated within its bucket exactly as
    /// Prometheus's `histogram_quantile` does; `None` without requests.
    pub fn latency_quantile(&self, now: DateTime<Utc>, window: Duration, q: f64) -> Option<f64> {
        let mut counts = [0u64; BUCKETS.len() + 1];
        for tick in self.window(now, window) {
            for (total, n) in counts.iter_mut().zip(tick.buckets) {
                *total += n;
            }
        }
        histogram_quantile(q, &counts)
    }
}

/// `histogram_quantile` over non-cumulative bucket counts whose upper bounds are [`BUCKETS`] and
/// then `+Inf`: the rank's bucket is found on the cumulative counts and the value interpolated
/// linearly inside it, from 0 for the first bucket; a rank in `+Inf` gives the highest finite bound.
pub fn histogram_quantile(q: f64, counts: &[u64; BUCKETS.len() + 1]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        if (below + count) as f64 >= rank && count > 0 {
            let Some(&upper) = BUCKETS.get(i) else {
                return Some(BUCKETS[BUCKETS.len() - 1]);
            };
            let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
            return Some(lower + (upper - lower) * (rank - below as f64) / count as f64);
        }
        below += count;
    }
    Some(BUCKETS[BUCKETS.len() - 1])
}

fn binomial(rng: &mut ChaCha8Rng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).expect("0 < p < 1").sample(rng)
}

/// A fresh error-rate factor for a new minute.
pub fn minute_jitter(rng: &mut ChaCha8Rng) -> f64 {
    // The mean of the factor is 1, so jitter adds noise without changing the average rate.
    LogNormal::new(-MINUTE_JITTER * MINUTE_JITTER / 2.0, MINUTE_JITTER).expect("sigma > 0").sample(rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // 100 requests: 50 in (0.025, 0.05], 50 in (0.05, 0.1]; the median is the top of the first.
        let mut counts = [0; BUCKETS.len() + 1];
        counts[3] = 50;
        counts[4] = 50;
        assert_eq!(histogram_quantile(0.5, &counts), Some(0.05));
        let p99 = histogram_quantile(0.99, &counts).unwrap();
        assert!((p99 - (0.05 + 0.05 * 49.0 / 50.0)).abs() < 1e-12, "{p99}");
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_highest_bound_and_empty_is_none() {
        let mut counts = [0; BUCKETS.len() + 1];
        counts[BUCKETS.len()] = 3;
        assert_eq!(histogram_quantile(0.99, &counts), Some(10.0));
        assert_eq!(histogram_quantile(0.99, &[0; BUCKETS.len() + 1]), None);
    }

    #[test]
    fn slow_requests_are_those_in_buckets_above_the_bound() {
        let mut served = Served::default();
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
        let at = DateTime::UNIX_EPOCH;
        let slow = Behaviour { latency_median: 0.25, ..Behaviour::BASELINE };
        served.serve(&mut rng, at, 1000.0, 10.0, slow, 1.0);
        let (above, requests) = served.slow_counts(at, Duration::minutes(1), 0.25);
        assert!(requests > 9000.0, "{requests}");
        // Half the requests are slower than their median, give or take the draw.
        assert!((above / requests - 0.5).abs() < 0.03, "{above} of {requests}");
        let (none, _) = served.slow_counts(at, Duration::minutes(1), 10.0);
        let tail = served.ticks[0].buckets[BUCKETS.len()] as f64;
        assert_eq!(none, tail, "only +Inf is above the highest bound");
    }
}
