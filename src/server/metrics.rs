//! A small metrics registry for the controller, rendered in the Prometheus text exposition format
//! (version 0.0.4).
//!
//! Hand-rolled rather than a client library: Bellwether exports a fixed, short list of families,
//! and this keeps the dependency tree small. Output is deterministic: families in a fixed order,
//! series sorted by their label values.

use crate::api::RolloutPhase;
use crate::metrics::prometheus::escape_label_value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The content type of [`Metrics::render`]'s output.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every phase, with the label value it is exported as. Each rollout always has one series per
/// phase, so that a query such as `bellwether_rollout_phase{phase="Degraded"} == 1` sees a phase
/// change as a value change rather than a series appearing.
const PHASES: [(RolloutPhase, &str); 4] = [
    (RolloutPhase::Healthy, "Healthy"),
    (RolloutPhase::Progressing, "Progressing"),
    (RolloutPhase::Paused, "Paused"),
    (RolloutPhase::Degraded, "Degraded"),
];

/// Reconciles usually take milliseconds; seconds mean a slow API server or metric provider.
const RECONCILE_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Canaries take from a few minutes (a short step list) to hours (long pauses and analyses).
const CANARY_BUCKETS: &[f64] =
    &[30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0];

/// A metric family's name, help text, type and label names.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    labels: &'static [&'static str],
}

const ROLLOUT_PHASE: Family = Family {
    name: "bellwether_rollout_phase",
    help: "1 for the rollout's current phase, 0 for the other phases.",
    kind: "gauge",
    labels: &["namespace", "rollout", "phase"],
};
const CANARY_WEIGHT: Family = Family {
    name: "bellwether_rollout_canary_weight",
    help: "Percentage of traffic the rollout's routes send to the canary.",
    kind: "gauge",
    labels: &["namespace", "rollout"],
};
const ANALYSIS_VALUE: Family = Family {
    name: "bellwether_analysis_metric_value",
    help: "Latest measured value of an analysis metric.",
    kind: "gauge",
    labels: &["namespace", "analysis_run", "metric"],
};
const ABORTS: Family = Family {
    name: "bellwether_aborts_total",
    help: "Canaries aborted, by reason.",
    kind: "counter",
    labels: &["namespace", "rollout", "reason"],
};
const PROMOTIONS: Family = Family {
    name: "bellwether_promotions_total",
    help: "Canaries promoted to stable.",
    kind: "counter",
    labels: &["namespace", "rollout"],
};
const RECONCILE_ERRORS: Family = Family {
    name: "bellwether_reconcile_errors_total",
    help: "Reconciles that failed, by kind of error.",
    kind: "counter",
    labels: &["controller", "kind"],
};
const RECONCILE_DURATION: Family = Family {
    name: "bellwether_reconcile_duration_seconds",
    help: "Time one reconcile took.",
    kind: "histogram",
    labels: &["controller"],
};
const CANARY_DURATION: Family = Family {
    name: "bellwether_canary_duration_seconds",
    help: "Time from a canary's start to its promotion or abort.",
    kind: "histogram",
    labels: &["outcome"],
};

const ALERT_WEBHOOKS: Family = Family {
    name: "bellwether_alert_webhooks_total",
    help: "Alertmanager webhook requests received, by how they were answered.",
    kind: "counter",
    labels: &["result"],
};
const ALERT_ABORTS_REQUESTED: Family = Family {
    name: "bellwether_alert_abort_requests_total",
    help: "Aborts that firing alerts asked of rollouts.",
    kind: "counter",
    labels: &["namespace", "rollout"],
};
const NOTIFICATIONS: Family = Family {
    name: "bellwether_notifications_total",
    help: "Notifications by event and result: delivered, failed after every retry, or dropped unsent.",
    kind: "counter",
    labels: &["event", "result"],
};
const NOTIFICATION_RETRIES: Family = Family {
    name: "bellwether_notification_retries_total",
    help: "Notification deliveries attempted again after a failed attempt.",
    kind: "counter",
    labels: &["event"],
};

/// Series of one family: label values (in the family's label order) to value.
type Series = BTreeMap<Vec<String>, f64>;
type Histograms = BTreeMap<Vec<String>, Histogram>;

#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// How many observations were at most each bound.
    cumulative: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, cumulative: vec![0; bounds.len()], count: 0, sum: 0.0 }
    }

    fn observe(&mut self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.cumulative) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += value;
    }
}

#[derive(Debug, Default)]
struct State {
    rollout_phase: Series,
    canary_weight: Series,
    analysis_value: Series,
    aborts: Series,
    promotions: Series,
    reconcile_errors: Series,
    reconcile_duration: Histograms,
    canary_duration: Histograms,
    alert_webhooks: Series,
    alert_aborts_requested: Series,
    notifications: Series,
    notification_retries: Series,
}

/// The controller's metrics. Cheap to clone; every clone updates the same registry.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    state: Arc<Mutex<State>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the rollout's current phase.
    pub fn rollout_phase(&self, namespace: &str, rollout: &str, phase: RolloutPhase) {
        let mut state = self.state();
        for (candidate, name) in PHASES {
            let value = if candidate == phase { 1.0 } else { 0.0 };
            state.rollout_phase.insert(labels(&[namespace, rollout, name]), value);
        }
    }

    /// Sets the percentage of traffic sent to the rollout's canary.
    pub fn canary_weight(&self, namespace: &str, rollout: &str, weight: i32) {
        self.state().canary_weight.insert(labels(&[namespace, rollout]), f64::from(weight));
    }

    /// Removes every series of a deleted rollout, so that the registry holds only live rollouts.
    pub fn forget_rollout(&self, namespace: &str, rollout: &str) {
        let mut guard = self.state();
        let state = &mut *guard;
        let owned = |key: &Vec<String>| key[0] == namespace && key[1] == rollout;
        for series in [
            &mut state.rollout_phase,
            &mut state.canary_weight,
            &mut state.aborts,
            &mut state.promotions,
            &mut state.alert_aborts_requested,
        ] {
            series.retain(|key, _| !owned(key));
        }
    }

    /// Sets the latest value of an analysis metric; `None` (no value yet, or the metric is no
    /// longer measured) removes the series rather than exporting a stale value.
    pub fn analysis_value(&self, namespace: &str, analysis_run: &str, metric: &str, value: Option<f64>) {
        let key = labels(&[namespace, analysis_run, metric]);
        let mut state = self.state();
        match value {
            Some(value) => state.analysis_value.insert(key, value),
            None => state.analysis_value.remove(&key),
        };
    }

    /// Removes every series of a deleted AnalysisRun.
    pub fn forget_analysis_run(&self, namespace: &str, analysis_run: &str) {
        self.state().analysis_value.retain(|key, _| !(key[0] == namespace && key[1] == analysis_run));
    }

    /// Records one reconcile by `controller`: how long it took and, if it failed, the kind of error.
    pub fn reconcile(&self, controller: &str, duration: Duration, error_kind: Option<&str>) {
        let mut state = self.state();
        state
            .reconcile_duration
            .entry(labels(&[controller]))
            .or_insert_with(|| Histogram::new(RECONCILE_BUCKETS))
            .observe(duration.as_secs_f64());
        if let Some(kind) = error_kind {
            *state.reconcile_errors.entry(labels(&[controller, kind])).or_default() += 1.0;
        }
    }

    /// Counts an abort of the rollout's canary.
    pub fn abort(&self, namespace: &str, rollout: &str, reason: &str) {
        *self.state().aborts.entry(labels(&[namespace, rollout, reason])).or_default() += 1.0;
    }

    /// Counts a promotion of the rollout's canary.
    pub fn promotion(&self, namespace: &str, rollout: &str) {
        *self.state().promotions.entry(labels(&[namespace, rollout])).or_default() += 1.0;
    }

    /// Records how long a finished canary took, from its start to its promotion or abort.
    pub fn canary_finished(&self, outcome: &str, duration: Duration) {
        self.state()
            .canary_duration
            .entry(labels(&[outcome]))
            .or_insert_with(|| Histogram::new(CANARY_BUCKETS))
            .observe(duration.as_secs_f64());
    }

    /// Counts an Alertmanager webhook request by its answer: `accepted`, `unauthorized`,
    /// `malformed`, `too_large`, `rate_limited` or `failed`.
    pub fn alert_webhook(&self, result: &str) {
        *self.state().alert_webhooks.entry(labels(&[result])).or_default() += 1.0;
    }

    /// Counts an abort request that a firing alert sent to a rollout.
    pub fn alert_abort_requested(&self, namespace: &str, rollout: &str) {
        *self.state().alert_aborts_requested.entry(labels(&[namespace, rollout])).or_default() += 1.0;
    }

    /// Counts a notification's end: `delivered`, `failed` or `dropped`.
    pub fn notification(&self, event: &str, result: &str) {
        *self.state().notifications.entry(labels(&[event, result])).or_default() += 1.0;
    }

    /// Counts a notification attempted again.
    pub fn notification_retry(&self, event: &str) {
        *self.state().notification_retries.entry(labels(&[event])).or_default() += 1.0;
    }

    /// Every family with at least one series, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let state = self.state();
        let mut out = String::new();
        write_series(&mut out, &ROLLOUT_PHASE, &state.rollout_phase);
        write_series(&mut out, &CANARY_WEIGHT, &state.canary_weight);
        write_series(&mut out, &PROMOTIONS, &state.promotions);
        write_series(&mut out, &ABORTS, &state.aborts);
        write_histograms(&mut out, &CANARY_DURATION, &state.canary_duration);
        write_series(&mut out, &ANALYSIS_VALUE, &state.analysis_value);
        write_histograms(&mut out, &RECONCILE_DURATION, &state.reconcile_duration);
        write_series(&mut out, &RECONCILE_ERRORS, &state.reconcile_errors);
        write_series(&mut out, &ALERT_WEBHOOKS, &state.alert_webhooks);
        write_series(&mut out, &ALERT_ABORTS_REQUESTED, &state.alert_aborts_requested);
        write_series(&mut out, &NOTIFICATIONS, &state.notifications);
        write_series(&mut out, &NOTIFICATION_RETRIES, &state.notification_retries);
        out
    }

    /// Metrics are only ever counted or overwritten, so the registry stays meaningful after a
    /// panic elsewhere and a poisoned lock is used as is.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn labels(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

fn write_header(out: &mut String, family: &Family) {
    let Family { name, help, kind, .. } = family;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn write_series(out: &mut String, family: &Family, series: &Series) {
    if series.is_empty() {
        return;
    }
    write_header(out, family);
    for (values, value) in series {
        write_sample(out, family.name, family.labels, values, None, *value);
    }
}

fn write_histograms(out: &mut String, family: &Family, histograms: &Histograms) {
    if histograms.is_empty() {
        return;
    }
    write_header(out, family);
    let bucket = format!("{}_bucket", family.name);
    for (values, histogram) in histograms {
        for (bound, count) in histogram.bounds.iter().zip(&histogram.cumulative) {
            let le = number(*bound);
            write_sample(out, &bucket, family.labels, values, Some(&le), *count as f64);
        }
        let count = histogram.count as f64;
        write_sample(out, &bucket, family.labels, values, Some("+Inf"), count);
        let sum = format!("{}_sum", family.name);
        write_sample(out, &sum, family.labels, values, None, histogram.sum);
        let total = format!("{}_count", family.name);
        write_sample(out, &total, family.labels, values, None, count);
    }
}

/// One sample line: `name{label="value",...} value`, with an `le` label last for histogram
/// buckets.
fn write_sample(
    out: &mut String,
    name: &str,
    names: &[&str],
    values: &[String],
    le: Option<&str>,
    value: f64,
) {
    let mut pairs: Vec<(&str, &str)> = names.iter().copied().zip(values.iter().map(String::as_str)).collect();
    pairs.extend(le.map(|le| ("le", le)));
    out.push_str(name);
    if !pairs.is_empty() {
        out.push('{');
        for (i, (label, value)) in pairs.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label_value(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// A sample value as the text format wants it: Rust's shortest round-trip decimal, with the
/// format's own spelling of infinities (`NaN` is already spelled the same).
fn number(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}
