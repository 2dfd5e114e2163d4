//! The fixed-sample bound a detection time is held against: the canary requests a one-shot,
//! one-sided test of the canary's rate against stable's known rate needs at α = β = 0.01, and how
//! long the example's schedule takes to send them.

use bellwether::api::format_duration;
use bellwether::sim::{Behaviour, Row, Scenario};
use chrono::Duration;
use statrs::distribution::{ContinuousCDF, Normal};

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
}

impl Bound {
    pub fn describe(&self) -> String {
        let requests = format!("{:.0} req", self.requests);
        match self.time {
            Some(time) => format!("{requests} ({})", format_duration(time)),
            None => format!("{requests} (beyond the schedule)"),
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
pub fn of(scenario: &Scenario, rps: f64, schedule: &[Row]) -> Option<Bound> {
    let canary = scenario.canary(Duration::zero());
    let constant = (1..=HORIZON_TICKS).all(|tick| scenario.canary(Duration::seconds(10 * tick)) == canary);
    if scenario.onset() != Some(Duration::zero()) || !constant {
        return None;
    }
    let (p0, p1) = rates(canary, scenario.stable())?;
    let requests = requests(p0, p1);
    Some(Bound { requests, time: time_to(requests, rps, schedule) })
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
