//! Simulated AnalysisRuns: the engine's AnalysisRun core, driven the way the AnalysisRun
//! controller drives it, with each measurement taken from the simulated traffic instead of
//! Prometheus and each metric judged by a [`Policy`].

use super::policy::Policy;
use super::traffic::Served;
use crate::api::{AnalysisRunSpec, AnalysisRunStatus, Counts, Measurement, Metric};
use crate::engine::{AnalysisRunState, Clock, MetricPlan, assess_with, due, record_with};
use chrono::{DateTime, Duration, Utc};
use regex::Regex;
use std::sync::LazyLock;

/// What a metric's query measures, read from the query's shape. Queries with
/// `histogram_quantile(q, …)` measure a latency quantile; every other query is taken as the
/// share of failed requests. Both use the query's first range (`[2m]`) as their window. A `web`
/// or `job` metric is [`Signal::Unmodelled`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    ErrorRatio {
        window: Duration,
    },
    Latency {
        quantile: f64,
        window: Duration,
        /// Seconds to the query's unit: 1000 for a `_milliseconds` histogram not divided back.
        scale: f64,
    },
    /// Requests slower than `bound` seconds: a histogram's count less its `_bucket{le="…"}`, which
    /// a sequential metric counts as it counts failed requests.
    SlowRequests {
        bound: f64,
        window: Duration,
    },
    /// A `web` metric or a `job` metric, named here: the endpoint's answer, or whether the Job
    /// succeeds, has no model in the simulated traffic, so every measurement is no data and the
    /// metric's `noData` policy decides, rather than a guess passing or failing the canary.
    Unmodelled(&'static str),
}

/// The time between a metric's measurements, as its plan resolves it.
fn interval_of(metric: &Metric) -> Duration {
    MetricPlan::new(metric, None).map_or(crate::api::DEFAULT_INTERVAL, |plan| plan.interval)
}

static QUANTILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"histogram_quantile\s*\(\s*([0-9.]+)").expect("valid regex"));
static RANGE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[(\d+)([smh])\]").expect("valid regex"));
static PER_THOUSAND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/\s*1000\b").expect("valid regex"));
static BUCKET_BOUND: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?s)_bucket\{.*?\ble\s*=\s*"([0-9.]+)""#).expect("valid regex"));

impl Signal {
    pub fn of(metric: &Metric) -> Self {
        if metric.provider.web.is_some() {
            return Self::Unmodelled("a web endpoint");
        }
        if metric.provider.job.is_some() {
            return Self::Unmodelled("a Job");
        }
        let query = metric.provider.prometheus.as_ref().map_or("", |p| p.query.as_str());
        let window = RANGE
            .captures(query)
            .and_then(|c| {
                let n: i64 = c[1].parse().ok()?;
                Some(match &c[2] {
                    "s" => Duration::seconds(n),
                    "m" => Duration::minutes(n),
                    _ => Duration::hours(n),
                })
            })
            .unwrap_or_else(|| interval_of(metric));
        let in_ms = query.contains("milliseconds");
        if let Some(quantile) = QUANTILE.captures(query).and_then(|c| c[1].parse::<f64>().ok()) {
            let scale = if in_ms && !PER_THOUSAND.is_match(query) { 1000.0 } else { 1.0 };
            return Self::Latency { quantile, window, scale };
        }
        match BUCKET_BOUND.captures(query).and_then(|c| c[1].parse::<f64>().ok()) {
            Some(bound) => Self::SlowRequests { bound: if in_ms { bound / 1000.0 } else { bound }, window },
            None => Self::ErrorRatio { window },
        }
    }

    /// `error ratio over 2m`, `p99 latency over 2m (ms)`, `requests slower than 0.25s over 30s`.
    pub fn describe(&self) -> String {
        match *self {
            Self::ErrorRatio { window } => {
                format!("error ratio over {}", crate::api::format_duration(window))
            }
            Self::Latency { quantile, window, scale } => format!(
                "p{} latency over {}{}",
                quantile * 100.0,
                crate::api::format_duration(window),
                if scale == 1.0 { " (s)" } else { " (ms)" }
            ),
            Self::SlowRequests { bound, window } => {
                format!("requests slower than {bound}s over {}", crate::api::format_duration(window))
            }
            Self::Unmodelled(what) => format!("{what}, not simulated: no data"),
        }
    }

    /// The requests of a revision the metric counts as bad, and all of them, over `interval`:
    /// failed requests, or slow ones for [`Signal::SlowRequests`].
    fn counts(&self, served: &Served, now: DateTime<Utc>, interval: Duration) -> (f64, f64) {
        match *self {
            Self::SlowRequests { bound, .. } => served.slow_counts(now, interval, bound),
            Self::ErrorRatio { .. } | Self::Latency { .. } => served.counts(now, interval),
            Self::Unmodelled(_) => (0.0, 0.0),
        }
    }

    fn value(&self, served: &Served, now: DateTime<Utc>) -> Option<f64> {
        match *self {
            Self::Latency { quantile, window, scale } => {
                served.latency_quantile(now, window, quantile).map(|v| v * scale)
            }
            Self::ErrorRatio { window } | Self::SlowRequests { window, .. } => {
                let (bad, requests) = self.counts(served, now, window);
                (requests > 0.0).then(|| bad / requests)
            }
            Self::Unmodelled(_) => None,
        }
    }

    /// What the metric's queries return at `now`: the canary's value, stable's as the baseline, and
    /// both revisions' requests and failures over the last `interval`, which sequential metrics read.
    fn measure(
        &self,
        canary: &Served,
        stable: &Served,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> Measurement {
        if let Self::Unmodelled(_) = self {
            return Measurement { at: now, ..Measurement::default() };
        }
        let (canary_errors, canary_requests) = self.counts(canary, now, interval);
        let (stable_errors, stable_requests) = self.counts(stable, now, interval);
        Measurement {
            at: now,
            value: self.value(canary, now),
            error: None,
            baseline: self.value(stable, now),
            counts: Some(Counts { canary_errors, canary_requests, stable_errors, stable_requests }),
        }
    }
}

/// A simulated AnalysisRun.
#[derive(Clone, Debug)]
pub struct AnalysisRun {
    pub name: String,
    pub spec: AnalysisRunSpec,
    pub status: AnalysisRunStatus,
    /// What each metric of the spec measures, in spec order.
    signals: Vec<Signal>,
    created_at: DateTime<Utc>,
}

/// The error a measurement records while the metric source is down, as the provider words it.
pub const SOURCE_DOWN: &str = "Prometheus is unreachable: connection refused";

impl AnalysisRun {
    /// A run created at `now`, recorded as the AnalysisRun controller first records it.
    pub fn new(name: &str, spec: AnalysisRunSpec, now: DateTime<Utc>, policy: &dyn Policy) -> Self {
        let status = record_with(policy, &spec, None, Vec::new(), Clock::at(now));
        let signals = spec.metrics.iter().map(Signal::of).collect();
        Self { name: name.to_string(), spec, status, signals, created_at: now }
    }

    /// Takes every measurement due at `now` and records them. Returns whether anything was measured.
    pub fn measure(
        &mut self,
        now: DateTime<Utc>,
        canary: &Served,
        stable: &Served,
        source_up: bool,
        policy: &dyn Policy,
    ) -> bool {
        let taken: Vec<(String, Measurement)> = due(&self.spec, Some(&self.status), now)
            .into_iter()
            .map(|name| {
                let measurement = if source_up {
                    let (metric, signal) = self.metric(&name);
                    signal.measure(canary, stable, now, interval_of(metric))
                } else {
                    Measurement { at: now, error: Some(SOURCE_DOWN.into()), ..Measurement::default() }
                };
                (name, measurement)
            })
            .collect();
        if taken.is_empty() {
            return false;
        }
        self.status = record_with(policy, &self.spec, Some(&self.status), taken, Clock::at(now));
        true
    }

    /// Terminates the run, as the controller does when the Rollout no longer wants it.
    pub fn terminate(&mut self, now: DateTime<Utc>, policy: &dyn Policy) {
        self.spec.terminate = true;
        self.status = record_with(policy, &self.spec, Some(&self.status), Vec::new(), Clock::at(now));
    }

    /// What the Rollout engine believes of the run at `now`, as the controller's fetch phase
    /// assesses it.
    pub fn assess(&self, now: DateTime<Utc>, policy: &dyn Policy) -> AnalysisRunState {
        assess_with(
            policy,
            &self.name,
            true,
            &self.spec,
            Some(&self.status),
            Some(self.created_at),
            Clock::at(now),
        )
    }

    fn metric(&self, name: &str) -> (&Metric, &Signal) {
        let index =
            self.spec.metrics.iter().position(|m| m.name == name).expect("due names a metric of the spec");
        (&self.spec.metrics[index], &self.signals[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A web endpoint's answer, or a Job's success, has no model in the simulated traffic: the
    /// simulation says so and measures no data, leaving the verdict to the metric's `noData` policy
    /// instead of guessing.
    #[test]
    fn web_and_job_metrics_are_not_simulated_and_measure_no_data() {
        let metric = |provider: serde_json::Value| -> Metric {
            serde_json::from_value(serde_json::json!({
                "name": "probe",
                "provider": provider,
                "threshold": {"max": 1},
            }))
            .unwrap()
        };
        let web = metric(
            serde_json::json!({"web": {"url": "http://slo/api?rev={{revision}}", "jsonPath": "$.burn"}}),
        );
        let job = metric(
            serde_json::json!({"job": {"spec": {"template": {"spec": {"containers": [{"name": "t"}]}}}}}),
        );
        for (metric, described) in
            [(web, "a web endpoint, not simulated: no data"), (job, "a Job, not simulated: no data")]
        {
            let signal = Signal::of(&metric);
            assert!(matches!(signal, Signal::Unmodelled(_)), "{signal:?}");
            assert_eq!(signal.describe(), described);
            let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
            let served = Served::default();
            let measurement = signal.measure(&served, &served, now, Duration::minutes(1));
            assert_eq!(measurement, Measurement { at: now, ..Measurement::default() });
        }
    }
}
