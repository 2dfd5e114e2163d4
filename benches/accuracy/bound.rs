//! The fixed-sample bound a detection time is held against: the canary requests a one-shot,
//! one-sided test of the canary's rate against stable's known rate needs at α = β = 0.01, and how
//! long the example's schedule takes to send them. For an error-rate regression, also the
//! earliest median time to detect that any judgment with a given false-rollback rate can have.

use bellwether::api::format_duration;
use bellwether::sim::{Behaviour, Row, Scenario, TICK, minute_jitter};
use chrono::Duration;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, DiscreteCDF, Normal, Poisson};

/// Ten-second ticks over which a scenario's canary must behave the same to have a bound: longer
/// than any rollout of the example.
const HORIZON_TICKS: i64 = 6 * 60;

/// z for α = β = 0.01, which is also a standard normal's 99th percentile.
const Z: f64 = 2.326_347_874;

/// The canary's requests a bad scenario needs to show, and when a rollout has sent them.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub requests: f64,
    /// From the start of the rollout; `None` when the schedule ends first.
    pub time: Option<Duration>,
    /// For an error-rate regression, the earliest median time to detect of any judgment that rolls
    /// back at most the goal's share of good canaries (see [`earliest_median`]); `None` when not
    /// computed, or when even that is later than the schedule.
    pub earliest_median: Option<Duration>,
}

impl Bound {
    pub fn describe(&self) -> String {
        let requests = format!("{:.0} req", self.requests);
        let bound = match self.time {
            Some(time) => format!("{requests} ({})", format_duration(time)),
            None => format!("{requests} (beyond the schedule)"),
        };
        match self.earliest_median {
            Some(earliest) => format!("{bound}; best median {}", format_duration(earliest)),
            None => bound,
        }
    }
}

/// The share of requests that are bad under `behaviour`, and under stable, for a scenario whose
/// canary behaves the same all along and differs from stable in one way: failed requests for an
/// error-rate regression; for a latency shift, requests slower than stable's p99, of which stable
/// has 1% by definition.
fn rates(canary: Behaviour, stable: Behaviour) -> Option<(f64, f64)> {
    if canary.error_rate != stable.error_rate {
        return Some((stable.error_rate, canary.error_rate));
    }
    if canary.latency_median != stable.latency_median || canary.latency_sigma != stable.latency_sigma {
        let p99 = stable.latency_median.ln() + Z * stable.latency_sigma;
        let log = Normal::new(canary.latency_median.ln(), canary.latency_sigma).expect("sigma > 0");
        return Some((0.01, 1.0 - log.cdf(p99)));
    }
    None
}

/// n = ((z_α·√(p0·q0) + z_β·√(p1·q1)) / (p1 − p0))², for a canary that fails `p1` of its requests
/// against stable's known `p0`.
pub fn requests(p0: f64, p1: f64) -> f64 {
    let spread = Z * (p0 * (1.0 - p0)).sqrt() + Z * (p1 * (1.0 - p1)).sqrt();
    (spread / (p1 - p0)).powi(2)
}

/// The bound of `scenario` at `rps`, with the canary's weights over time read from `schedule`, the
/// timeline of a good rollout; `None` for a scenario without one constant difference from stable.
/// With `oracle`, also the earliest median of a judgment rolling back at most `oracle.alpha` of good
/// canaries.
pub fn of(scenario: &Scenario, rps: f64, schedule: &[Row], oracle: Option<Oracle>) -> Option<Bound> {
    let canary = scenario.canary(Duration::zero());
    let constant = (1..=HORIZON_TICKS).all(|tick| scenario.canary(Duration::seconds(10 * tick)) == canary);
    if scenario.onset() != Some(Duration::zero()) || !constant {
        return None;
    }
    let stable = scenario.stable();
    let (p0, p1) = rates(canary, stable)?;
    let requests = requests(p0, p1);
    let earliest_median = oracle
        .filter(|_| canary.error_rate != stable.error_rate)
        .and_then(|oracle| earliest_median(p0, p1, rps, schedule, oracle));
    Some(Bound { requests, time: time_to(requests, rps, schedule), earliest_median })
}

/// The settings of [`earliest_median`].
#[derive(Clone, Copy, Debug)]
pub struct Oracle {
    /// The share of good canaries the judgment may roll back.
    pub alpha: f64,
    /// Draws of the minutes' error-rate wobble over which the chances are averaged.
    pub draws: usize,
}

/// The earliest time from the ship by which a judgment that rolls back at most `alpha` of good
/// canaries can have caught half of the runs of a canary failing `p1` of its requests against
/// stable's `p0`, with the canary weighted as in `schedule`.
///
/// No judgment can do better than the most powerful test of p0 against p1 on everything seen by
/// then (Neyman–Pearson), even one told stable's rate and each minute's wobble of it, which a real
/// judgment has to estimate. In the simulation a revision's failed requests in a minute are a
/// Poisson count with mean p · jitter · the requests it was sent (a binomial thinning of Poisson
/// arrivals), so that test rejects when the canary's count C of failures satisfies
/// C·ln(p1/p0) − (p1 − p0)·X ≥ k, where X is its jitter-weighted exposure; k is set for a false
/// rollback rate of exactly `alpha`, averaged over the wobble's draws. The median of any such
/// judgment's time to detect is then no earlier than the first time at which that test's chance of
/// rejecting reaches ½.
pub fn earliest_median(p0: f64, p1: f64, rps: f64, schedule: &[Row], oracle: Oracle) -> Option<Duration> {
    let end = schedule.last()?.at;
    let minutes = (end.num_seconds() / 60 + 1) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let jitters: Vec<Vec<f64>> =
        (0..oracle.draws).map(|_| (0..minutes).map(|_| minute_jitter(&mut rng)).collect()).collect();
    let power_by = |seconds: i64| {
        let exposure = exposure_by_minute(Duration::seconds(seconds), rps, schedule, minutes);
        let weighted: Vec<f64> =
            jitters.iter().map(|draw| draw.iter().zip(&exposure).map(|(j, n)| j * n).sum()).collect();
        best_power(p0, p1, &weighted, oracle.alpha)
    };
    let (mut early, mut late) = (0, end.num_seconds());
    if power_by(late) < 0.5 {
        return None;
    }
    // The test's power only grows as the canary serves more requests.
    while late - early > 1 {
        let middle = (early + late) / 2;
        if power_by(middle) >= 0.5 { late = middle } else { early = middle }
    }
    Some(Duration::seconds(late))
}

/// The canary's requests in each minute from the ship up to `until`, weighted as in `schedule`.
fn exposure_by_minute(until: Duration, rps: f64, schedule: &[Row], minutes: usize) -> Vec<f64> {
    let mut exposure = vec![0.0; minutes];
    for (row, next) in schedule.iter().zip(schedule.iter().skip(1)) {
        let rate = rps * f64::from(row.weight) / 100.0;
        let mut at = row.at;
        while at < next.at.min(until) {
            let step = (next.at.min(until) - at).min(TICK);
            let minute = (at.num_seconds() / 60) as usize;
            exposure[minute.min(minutes - 1)] += rate * step.num_milliseconds() as f64 / 1000.0;
            at += step;
        }
    }
    exposure
}

/// The chance that the most powerful test at false-rollback rate `alpha` rejects p0 for p1, over
/// draws of the canary's jitter-weighted exposure.
fn best_power(p0: f64, p1: f64, exposures: &[f64], alpha: f64) -> f64 {
    let log_ratio = (p1 / p0).ln();
    let chances = |k: f64, p: f64| {
        let total: f64 = exposures
            .iter()
            .filter(|&&x| x > 0.0)
            .map(|&x| {
                let needed = ((k + (p1 - p0) * x) / log_ratio).ceil().max(0.0) as u64;
                let count = Poisson::new(p * x).expect("a positive mean");
                if needed == 0 { 1.0 } else { count.sf(needed - 1) }
            })
            .sum();
        total / exposures.len() as f64
    };
    // The false-rollback rate falls as k rises.
    let (mut low, mut high) = (-50.0, 50.0);
    for _ in 0..60 {
        let k = (low + high) / 2.0;
        if chances(k, p0) > alpha { low = k } else { high = k }
    }
    chances(high, p1)
}

/// When the canary, weighted as in `schedule`, has served `requests` of `rps`.
fn time_to(requests: f64, rps: f64, schedule: &[Row]) -> Option<Duration> {
    let mut served = 0.0;
    for (row, next) in schedule.iter().zip(schedule.iter().skip(1)) {
        let rate = rps * f64::from(row.weight) / 100.0;
        let seconds = (next.at - row.at).num_milliseconds() as f64 / 1000.0;
        if rate > 0.0 && served + rate * seconds >= requests {
            let needed = (requests - served) / rate;
            return Some(row.at + Duration::milliseconds((needed * 1000.0).round() as i64));
        }
        served += rate * seconds;
    }
    None
}
