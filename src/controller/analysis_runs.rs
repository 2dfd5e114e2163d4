//! AnalysisRuns: which metrics are due for a measurement, the status that new measurements lead to,
//! and what the Rollout engine sees of a run. The reconciler queries the metrics that [`due`] names
//! and writes the status that [`record`] returns; the judging itself is the engine's.
//!
//! A metric's verdict is final: once its result is terminal it is neither measured nor judged
//! again, and once the run is terminal its status no longer changes.
//!
//! A run that is terminated (`spec.terminate`) before its metrics decide ends **Successful**, with
//! the message `terminated: <summary>`, as in Argo Rollouts. The Rollout engine terminates only runs
//! it no longer wants (a promotion skipped the step, an abort, a newer revision), so the run's end
//! is no verdict on the canary: Failed or Error would report a failure that no measurement showed,
//! and Inconclusive missing evidence that nobody waited for. A metric that already decided keeps
//! the run's verdict, and [`run_state`] reports `terminating` so that a terminated run is never
//! mistaken for a passed one.

use crate::api::{
    AnalysisPhase, AnalysisRun, AnalysisRunStatus, HysteresisState, HysteresisStatus, Measurement, Metric,
    MetricResult,
};
use crate::engine::{
    AnalysisRunState, DEFAULT_CONSECUTIVE_ERROR_LIMIT, MetricVerdict, Window, first_counted_at, format_value,
    judge_metric, metric_interval, run_phase,
};
use chrono::{DateTime, Duration, Utc};

/// The most measurements one metric keeps in status. A sequential measurement with its counts is
/// about 150 bytes of JSON, so a full metric is about 150 KB, and a run with a few of them stays
/// far below the 1.5 MiB an object may have in etcd. At the default interval it is almost 17 hours
/// of measurements, longer than any analysis step should last; the judge re-reads them all on each
/// measurement, which at this size takes well under a millisecond.
pub const MAX_MEASUREMENTS: usize = 1000;

/// The metrics whose next measurement is due at `now`, in spec order. Nothing is due once the run
/// is terminal or terminated; see [`next_due`].
pub fn due(run: &AnalysisRun, now: DateTime<Utc>) -> Vec<String> {
    schedule(run, now).filter(|(_, at)| *at <= now).map(|(name, _)| name.to_string()).collect()
}

/// When the next measurement of any metric is due, for requeueing; `None` when nothing will be.
pub fn next_due(run: &AnalysisRun, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule(run, now).map(|(_, at)| at).min()
}

/// Each running metric and when its next measurement is due: `initialDelay` after the run started
/// (now, for a run not started yet), then an `interval` after its latest measurement.
fn schedule(run: &AnalysisRun, now: DateTime<Utc>) -> impl Iterator<Item = (&str, DateTime<Utc>)> {
    let status = run.status.as_ref();
    let ended = run.spec.terminate || status.and_then(|s| s.phase).is_some_and(AnalysisPhase::is_terminal);
    let started_at = status.and_then(|s| s.started_at).unwrap_or(now);
    run.spec.metrics.iter().filter(move |_| !ended).filter_map(move |metric| {
        let result = status.and_then(|s| s.metric_results.iter().find(|r| r.name == metric.name));
        if result.is_some_and(|r| r.phase.is_terminal()) {
            return None;
        }
        let at = match result.and_then(|r| r.measurements.last()) {
            Some(latest) => latest.at + metric_interval(metric),
            None => first_counted_at(metric, started_at),
        };
        Some((metric.name.as_str(), at))
    })
}

/// The run's next status after the measurements `taken` (each with its metric's name, oldest first)
/// at `now`. Measurements of metrics that already decided, or that the spec does not name, are
/// dropped.
pub fn record(run: &AnalysisRun, taken: Vec<(String, Measurement)>, now: DateTime<Utc>) -> AnalysisRunStatus {
    let mut status = run.status.clone().unwrap_or_default();
    let started_at = *status.started_at.get_or_insert(now);
    if status.phase.is_some_and(AnalysisPhase::is_terminal) {
        return status;
    }
    let run_duration = run.spec.duration.as_ref().and_then(|d| d.parse().ok());
    let mut taken = taken;
    let mut results = Vec::with_capacity(run.spec.metrics.len());
    let mut verdicts = Vec::with_capacity(run.spec.metrics.len());
    for metric in &run.spec.metrics {
        let previous = status.metric_results.iter().find(|r| r.name == metric.name);
        if let Some(previous) = previous.filter(|r| r.phase.is_terminal()) {
            verdicts.push(stored_verdict(metric, previous));
            results.push(previous.clone());
            continue;
        }
        let mut measurements = previous.map(|r| r.measurements.clone()).unwrap_or_default();
        let (mine, others): (Vec<_>, Vec<_>) = taken.into_iter().partition(|(name, _)| *name == metric.name);
        taken = others;
        measurements.extend(mine.into_iter().map(|(_, m)| m));
        let mut verdict = judge_metric(metric, &measurements, started_at, run_duration);
        let mut measurements = trim(metric, measurements, started_at, run_duration);
        if measurements.len() > MAX_MEASUREMENTS {
            measurements.drain(..measurements.len() - MAX_MEASUREMENTS);
            if !verdict.phase.is_terminal() {
                verdict = overflow(metric, verdict);
            }
        }
        let since = verdict.since.or_else(|| {
            let previous = previous.and_then(|r| r.hysteresis.as_ref());
            previous.filter(|h| h.state == verdict.state).map(|h| h.since)
        });
        results.push(MetricResult {
            name: metric.name.clone(),
            phase: verdict.phase,
            message: Some(verdict.message.clone()),
            measurements,
            hysteresis: since.map(|since| HysteresisStatus { state: verdict.state, since }),
            consecutive_errors: verdict.consecutive_errors,
        });
        verdicts.push(verdict);
    }
    let phase = run_phase(&verdicts);
    let message = summary(phase, &verdicts);
    let (phase, message) = if run.spec.terminate && !phase.is_terminal() {
        (AnalysisPhase::Successful, format!("terminated: {message}"))
    } else {
        (phase, message)
    };
    status.phase = Some(phase);
    status.message = Some(message);
    status.metric_results = results;
    status
}

/// What the Rollout engine sees of the run named `name`.
pub fn run_state(name: &str, run: &AnalysisRun) -> AnalysisRunState {
    let status = run.status.as_ref();
    let phase = status.and_then(|s| s.phase);
    let failed = status.filter(|_| phase == Some(AnalysisPhase::Failed)).and_then(|s| {
        s.metric_results.iter().find(|r| {
            r.phase == AnalysisPhase::Failed
                && !run.spec.metrics.iter().any(|m| m.name == r.name && m.dry_run)
        })
    });
    AnalysisRunState {
        name: name.to_string(),
        phase,
        message: status.and_then(|s| s.message.clone()),
        failed_metric: failed.map(|r| r.name.clone()),
        failed_value: failed
            .and_then(|r| r.measurements.iter().rev().find_map(|m| m.value))
            .map(format_value),
        terminating: run.spec.terminate,
    }
}

/// How many of a metric's latest measurements its status keeps: never fewer than its judge can
/// look at before it decides, so that trimming the older ones cannot change a verdict. Each count
/// adds a margin of `consecutiveErrorLimit + 1`, room for the failed queries the judge tolerates in
/// a row, which it skips without counting them. None exceeds [`MAX_MEASUREMENTS`].
///
/// - **threshold**: a metric with a success window is Inconclusive once it has judged
///   `2 × count + (breachFor + recoverFor) / interval` measurements, or once `2 × duration +
///   breachFor + recoverFor` has passed since `initialDelay`, at most one measurement per interval
///   plus the first. Until then every measurement is kept. In background analysis (no window) the
///   count is one breach and its recovery, `(breachFor + recoverFor) / interval + 1`, but older
///   measurements go only where the metric was Healthy with no errors pending (see [`trim`]).
/// - **compare**: the whole window, `count`, or `duration / interval + 1`, which the test decides on.
/// - **sequential**: every measurement since the run started, since its e-processes are products
///   over all of them; a metric that runs past [`MAX_MEASUREMENTS`] ends as an Error.
pub fn keep(metric: &Metric, run_duration: Option<Duration>) -> usize {
    let interval_ms = metric_interval(metric).num_milliseconds().max(1);
    let intervals =
        |d: Duration| usize::try_from((d.num_milliseconds() + interval_ms - 1) / interval_ms).unwrap_or(0);
    let hysteresis = metric.threshold.as_ref().and_then(|t| t.hysteresis.as_ref());
    let parse =
        |d: Option<&crate::api::Duration>| d.and_then(|d| d.parse().ok()).unwrap_or_else(Duration::zero);
    let grace = parse(hysteresis.and_then(|h| h.breach_for.as_ref()))
        + parse(hysteresis.and_then(|h| h.recover_for.as_ref()));
    let needed =
        match (metric.sequential.is_some(), metric.compare.is_some(), Window::of(metric, run_duration)) {
            (true, _, _) => MAX_MEASUREMENTS,
            (false, true, Window::Count(n)) => n as usize,
            (false, true, Window::Duration(d)) => intervals(d) + 1,
            // Compare refuses to run without a window.
            (false, true, Window::Unbounded) => 1,
            (false, false, Window::Count(n)) => {
                (n as usize).saturating_mul(2).saturating_add(intervals(grace))
            }
            (false, false, Window::Duration(d)) => intervals(d + d + grace) + 1,
            (false, false, Window::Unbounded) => intervals(grace) + 1,
        };
    let margin = error_limit(metric) + 1;
    needed.saturating_add(margin).min(MAX_MEASUREMENTS)
}

/// Drops the oldest measurements beyond [`keep`], but only where dropping them cannot change what
/// the judge decides, now or after any later measurement:
///
/// - measurements before `initialDelay`, which the judge never looks at;
/// - for a threshold metric in background analysis, everything up to a measurement after which the
///   metric was Healthy with no measurement error pending. The judge starts every series Healthy
///   with no errors, and from Healthy its hysteresis depends on nothing earlier: a breach starts a
///   new breach, and without a window there is neither a streak nor an exhaustion count to carry.
///
/// With a window, a threshold metric's exhaustion counts every measurement it judged since
/// `initialDelay`, so dropping any of them could turn a would-be Inconclusive into a later
/// Successful; compare and sequential metrics need all of theirs. Those keep everything since
/// `initialDelay`, which stays within [`keep`] while measurements come an interval apart and
/// succeed, and never beyond [`MAX_MEASUREMENTS`]. The latest measurement is always kept, since the
/// next one is due an interval after it.
fn trim(
    metric: &Metric,
    mut measurements: Vec<Measurement>,
    started_at: DateTime<Utc>,
    run_duration: Option<Duration>,
) -> Vec<Measurement> {
    let len = measurements.len();
    let target = keep(metric, run_duration);
    if len <= target {
        return measurements;
    }
    let first_at = first_counted_at(metric, started_at);
    let resets = metric.compare.is_none()
        && metric.sequential.is_none()
        && Window::of(metric, run_duration) == Window::Unbounded;
    let exact = |cut: usize| {
        let before = &measurements[..cut];
        before.iter().all(|m| m.at < first_at)
            || resets && {
                let verdict = judge_metric(metric, before, started_at, run_duration);
                verdict.phase == AnalysisPhase::Running
                    && verdict.state == HysteresisState::Healthy
                    && verdict.consecutive_errors == 0
            }
    };
    if let Some(cut) = (len - target..len).find(|&cut| exact(cut)) {
        measurements.drain(..cut);
    }
    measurements
}

/// The verdict of a metric whose measurements no longer fit in status.
fn overflow(metric: &Metric, verdict: MetricVerdict) -> MetricVerdict {
    let name = &metric.name;
    let message = if metric.sequential.is_some() {
        format!(
            "{name}: the sequential test ran past the {MAX_MEASUREMENTS} measurements a status can hold \
             without deciding; its evidence needs every one since the run started, so give the metric a \
             count or the step a shorter duration"
        )
    } else {
        format!(
            "{name}: needs more than the {MAX_MEASUREMENTS} measurements a status can hold to decide; \
             check its measurement errors and interval"
        )
    };
    let message = if metric.dry_run { format!("[dry run] {message}") } else { message };
    MetricVerdict { phase: AnalysisPhase::Error, message, ..verdict }
}

/// A decided metric's verdict as its status records it.
fn stored_verdict(metric: &Metric, result: &MetricResult) -> MetricVerdict {
    MetricVerdict {
        phase: result.phase,
        message: result.message.clone().unwrap_or_default(),
        state: result.hysteresis.as_ref().map_or(HysteresisState::Healthy, |h| h.state),
        since: result.hysteresis.as_ref().map(|h| h.since),
        consecutive_errors: result.consecutive_errors,
        decided_at: result.measurements.last().map(|m| m.at),
        dry_run: metric.dry_run,
    }
}

/// The run's message: the deciding metric's, the same one [`run_phase`] decided on; while running,
/// how many metrics still are; once successful, every metric's.
fn summary(phase: AnalysisPhase, verdicts: &[MetricVerdict]) -> String {
    match phase {
        AnalysisPhase::Pending | AnalysisPhase::Running => {
            let running = verdicts.iter().filter(|v| !v.phase.is_terminal()).count();
            format!("{running} of {} metrics running", verdicts.len())
        }
        AnalysisPhase::Successful => {
            verdicts.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; ")
        }
        AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive => verdicts
            .iter()
            .find(|v| v.phase == phase && !v.dry_run)
            .map(|v| v.message.clone())
            .unwrap_or_default(),
    }
}

fn error_limit(metric: &Metric) -> usize {
    usize::try_from(metric.consecutive_error_limit.unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT)).unwrap_or(0)
}
