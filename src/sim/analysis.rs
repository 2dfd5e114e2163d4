//! Simulated AnalysisRuns: each metric is measured on its interval from the simulated traffic
//! and judged by a [`Policy`], the way the AnalysisRun controller measures through Prometheus and
//! judges with the engine.

use super::policy::Policy;
use super::traffic::Served;
use crate::api::{AnalysisPhase, Counts, Measurement, Metric};
use crate::engine::{MetricVerdict, first_counted_at, format_value, metric_interval, run_phase};
use chrono::{DateTime, Duration, Utc};
use regex::Regex;
use std::sync::LazyLock;

/// What a metric's query measures, read from the query's shape. Queries with
/// `histogram_quantile(q, …)` measure a latency quantile; every other query is taken as the
/// share of failed requests. Both use the query's first range (`[2m]`) as their window.
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
}

static QUANTILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"histogram_quantile\s*\(\s*([0-9.]+)").expect("valid regex"));
static RANGE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[(\d+)([smh])\]").expect("valid regex"));
static PER_THOUSAND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/\s*1000\b").expect("valid regex"));

impl Signal {
    pub fn of(metric: &Metric) -> Self {
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
            .unwrap_or_else(|| metric_interval(metric));
        match QUANTILE.captures(query).and_then(|c| c[1].parse::<f64>().ok()) {
            Some(quantile) => {
                let in_ms = query.contains("milliseconds") && !PER_THOUSAND.is_match(query);
                Self::Latency { quantile, window, scale: if in_ms { 1000.0 } else { 1.0 } }
            }
            None => Self::ErrorRatio { window },
        }
    }

    /// `error ratio over 2m`, `p99 latency over 2m (ms)`.
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
        }
    }

    fn value(&self, served: &Served, now: DateTime<Utc>) -> Option<f64> {
        match *self {
            Self::ErrorRatio { window } => served.error_ratio(now, window),
            Self::Latency { quantile, window, scale } => {
                served.latency_quantile(now, window, quantile).map(|v| v * scale)
            }
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
        let (canary_errors, canary_requests) = canary.counts(now, interval);
        let (stable_errors, stable_requests) = stable.counts(now, interval);
        Measurement {
            at: now,
            value: self.value(canary, now),
            error: None,
            baseline: self.value(stable, now),
            counts: Some(Counts { canary_errors, canary_requests, stable_errors, stable_requests }),
        }
    }
}

/// One metric of a simulated run.
#[derive(Clone, Debug)]
pub struct MetricRun {
    pub metric: Metric,
    pub signal: Signal,
    interval: Duration,
    next_at: DateTime<Utc>,
    pub measurements: Vec<Measurement>,
    pub verdict: Option<MetricVerdict>,
}

/// A simulated AnalysisRun.
#[derive(Clone, Debug)]
pub struct AnalysisRun {
    pub name: String,
    started_at: DateTime<Utc>,
    run_duration: Option<Duration>,
    pub metrics: Vec<MetricRun>,
    pub phase: AnalysisPhase,
    stopped: bool,
}

/// The error a measurement records while the metric source is down, as the provider words it.
pub const SOURCE_DOWN: &str = "Prometheus is unreachable: connection refused";

impl AnalysisRun {
    pub fn new(
        name: &str,
        metrics: Vec<Metric>,
        started_at: DateTime<Utc>,
        run_duration: Option<Duration>,
    ) -> Self {
        let metrics = metrics
            .into_iter()
            .map(|metric| {
                let interval = metric_interval(&metric).max(Duration::seconds(1));
                MetricRun {
                    signal: Signal::of(&metric),
                    interval,
                    // Like the controller, measure nothing before `initialDelay`.
                    next_at: first_counted_at(&metric, started_at),
                    measurements: Vec::new(),
                    verdict: None,
                    metric,
                }
            })
            .collect();
        Self {
            name: name.to_string(),
            started_at,
            run_duration,
            metrics,
            phase: AnalysisPhase::Running,
            stopped: false,
        }
    }

    /// Takes every measurement due by `now` and judges again. Returns whether anything was measured.
    pub fn measure(
        &mut self,
        now: DateTime<Utc>,
        canary: &Served,
        stable: &Served,
        source_up: bool,
        policy: &dyn Policy,
    ) -> bool {
        if self.stopped || self.phase.is_terminal() {
            return false;
        }
        let mut measured = false;
        for metric in
            self.metrics.iter_mut().filter(|m| m.verdict.as_ref().is_none_or(|v| !v.phase.is_terminal()))
        {
            let mut this = false;
            while metric.next_at <= now {
                let measurement = if source_up {
                    metric.signal.measure(canary, stable, now, metric.interval)
                } else {
                    Measurement { at: now, error: Some(SOURCE_DOWN.into()), ..Measurement::default() }
                };
                metric.measurements.push(measurement);
                metric.next_at += metric.interval;
                this = true;
            }
            if this {
                measured = true;
                metric.verdict = Some(policy.judge(
                    &metric.metric,
                    &metric.measurements,
                    self.started_at,
                    self.run_duration,
                ));
            }
        }
        let verdicts: Vec<MetricVerdict> = self.metrics.iter().filter_map(|m| m.verdict.clone()).collect();
        if verdicts.len() == self.metrics.len() {
            self.phase = run_phase(&verdicts);
        }
        measured
    }

    /// Stops measuring, as the controller does for a terminated run.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// The message and, for a failed run, the metric and value that decided it.
    pub fn outcome(&self) -> (String, Option<String>, Option<String>) {
        let deciding = self
            .metrics
            .iter()
            .filter_map(|m| Some((m, m.verdict.as_ref()?)))
            .find(|(_, v)| !v.dry_run && v.phase == self.phase);
        let message = deciding.map(|(_, v)| v.message.clone()).unwrap_or_else(|| {
            self.metrics
                .iter()
                .filter_map(|m| m.verdict.as_ref().map(|v| v.message.clone()))
                .collect::<Vec<_>>()
                .join("; ")
        });
        match deciding {
            Some((metric, verdict)) if verdict.phase == AnalysisPhase::Failed => {
                let value = metric.measurements.last().and_then(|m| m.value).map(format_value);
                (message, Some(metric.metric.name.clone()), value)
            }
            _ => (message, None, None),
        }
    }
}
