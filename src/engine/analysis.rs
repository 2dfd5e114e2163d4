//! AnalysisRuns, decided purely: which metrics are due for a measurement, the status that new
//! measurements lead to, the deadline of a run, and what the Rollout engine believes of a run.
//! The AnalysisRun reconciler queries the metrics that [`due`] names and writes the status that
//! [`record`] returns; the Rollout's fetch phase hands every run through [`assess`].
//!
//! A metric's verdict is final: once its result is terminal it is neither measured nor judged
//! again, and once the run is terminal its status no longer changes.
//!
//! A run that is terminated (`spec.terminate`) before its metrics decide ends **Successful**, with
//! the message `terminated: <summary>`, as in Argo Rollouts. The Rollout engine terminates only runs
//! it no longer wants (a promotion skipped the step, an abort, a newer revision), so the run's end
//! is no verdict on the canary: Failed or Error would report a failure that no measurement showed,
//! and Inconclusive missing evidence that nobody waited for. A metric that already decided keeps
//! the run's verdict, and [`assess`] reports `terminating`, so that a terminated run is never
//! mistaken for a passed one.
//!
//! **Measurements, not phases.** Whoever can write a run's status could write `phase: Successful`
//! over a failing canary's measurements. [`assess`] judges every metric again from the measurements
//! the status holds, with the same judges, and believes the recorded phase only where it agrees, or
//! where it is Failed or Error (a run can fail for reasons its measurements do not show: a status
//! the API server refused, its deadline; believing a failure is never unsafe). A run whose phase
//! disagrees with its measurements is reported as distrusted and treated as an Error.
//!
//! **Nothing waits forever.** A run with no verdict by its [`deadline`] ends in Error, naming what
//! was still missing; so does one whose metrics stopped being measured (see [`assess`]). Both clocks
//! count only from when the controller deciding began measuring ([`Clock::measuring_since`]), so
//! that a controller that was down does not blame the run for its own absence.

use super::judge::{hysteresis_durations, initial_delay};
use crate::api::{
    AnalysisPhase, AnalysisRunSpec, AnalysisRunStatus, HysteresisState, HysteresisStatus, Measurement,
    Metric, MetricResult, format_duration,
};
use crate::engine::{
    AnalysisRunState, DEFAULT_CONSECUTIVE_ERROR_LIMIT, MetricVerdict, Window, first_counted_at, format_value,
    judge_metric, metric_interval, run_phase,
};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// The most measurements one metric keeps in status. A sequential measurement with its counts is
/// about 150 bytes of JSON, so a full metric is about 150 KB, and a run with a few of them stays
/// far below the 1.5 MiB an object may have in etcd. At the default interval it is almost 17 hours
/// of measurements, longer than any analysis step should last; the judge re-reads them all on each
/// measurement, which at this size takes well under a millisecond.
pub const MAX_MEASUREMENTS: usize = 1000;

/// The most bytes of error text one measurement keeps. A provider's error can quote a long query
/// or answer; a thousand measurements of that would approach the size etcd allows an object.
pub const MAX_ERROR_BYTES: usize = 512;

/// The time a decision is made, and since when the controller making it has been measuring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub now: DateTime<Utc>,
    /// When this controller began measuring runs (it became the leader); deadlines and lateness
    /// count from no earlier than this.
    pub measuring_since: DateTime<Utc>,
}

impl Clock {
    /// A clock for a controller that has always been measuring, as in tests and the simulation.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self { now, measuring_since: DateTime::<Utc>::MIN_UTC }
    }
}

/// The metrics whose next measurement is due at `now`, in spec order. Nothing is due once the run
/// is terminal or terminated; see [`next_due`].
pub fn due(spec: &AnalysisRunSpec, status: Option<&AnalysisRunStatus>, now: DateTime<Utc>) -> Vec<String> {
    schedule(spec, status, now).filter(|(_, at)| *at <= now).map(|(name, _)| name.to_string()).collect()
}

/// When the next measurement of any metric is due, for requeueing; `None` when nothing will be.
pub fn next_due(
    spec: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule(spec, status, now).map(|(_, at)| at).min()
}

/// Each running metric and when its next measurement is due: `initialDelay` after the run started
/// (now, for a run not started yet), then an `interval` after its latest measurement.
fn schedule<'a>(
    spec: &'a AnalysisRunSpec,
    status: Option<&'a AnalysisRunStatus>,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (&'a str, DateTime<Utc>)> {
    let ended = spec.terminate || status.and_then(|s| s.phase).is_some_and(AnalysisPhase::is_terminal);
    let started_at = status.and_then(|s| s.started_at).unwrap_or(now);
    spec.metrics.iter().filter(move |_| !ended).filter_map(move |metric| {
        let result = status.and_then(|s| s.metric_results.iter().find(|r| r.name == metric.name));
        if result.is_some_and(|r| r.phase.is_terminal()) {
            return None;
        }
        Some((metric.name.as_str(), next_measurement_at(metric, result, started_at)))
    })
}

fn next_measurement_at(
    metric: &Metric,
    result: Option<&MetricResult>,
    started_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match result.and_then(|r| r.measurements.last()) {
        Some(latest) => latest.at + metric_interval(metric),
        None => first_counted_at(metric, started_at),
    }
}

/// The run's next status after the measurements `taken` (each with its metric's name, oldest first)
/// at `clock.now`. Measurements of metrics that already decided, or that the spec does not name,
/// are dropped. A run still without a verdict past its [`deadline`] ends in Error.
pub fn record(
    spec: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    taken: Vec<(String, Measurement)>,
    clock: Clock,
) -> AnalysisRunStatus {
    let now = clock.now;
    let mut status = status.cloned().unwrap_or_default();
    let started_at = *status.started_at.get_or_insert(now);
    if status.phase.is_some_and(AnalysisPhase::is_terminal) {
        return status;
    }
    let run_duration = run_duration(spec);
    let mut taken = taken;
    let mut results = Vec::with_capacity(spec.metrics.len());
    let mut verdicts = Vec::with_capacity(spec.metrics.len());
    for metric in &spec.metrics {
        let previous = status.metric_results.iter().find(|r| r.name == metric.name);
        if let Some(previous) = previous.filter(|r| r.phase.is_terminal()) {
            verdicts.push(stored_verdict(metric, previous));
            results.push(previous.clone());
            continue;
        }
        let mut measurements = previous.map(|r| r.measurements.clone()).unwrap_or_default();
        let (mine, others): (Vec<_>, Vec<_>) = taken.into_iter().partition(|(name, _)| *name == metric.name);
        taken = others;
        measurements.extend(mine.into_iter().map(|(_, m)| bounded(m)));
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
    let (phase, message) = if spec.terminate && !phase.is_terminal() {
        (AnalysisPhase::Successful, format!("terminated: {message}"))
    } else if let Some(overdue) = overdue(spec, started_at, clock).filter(|_| !phase.is_terminal()) {
        (AnalysisPhase::Error, format!("{overdue}: {message}"))
    } else {
        (phase, message)
    };
    status.phase = Some(phase);
    status.message = Some(message);
    status.metric_results = results;
    status
}

/// The status after the API server refused to store `wanted`: the run ends in Error with the
/// server's reason, keeping the measurements it last stored. Retrying the same write could only be
/// refused again, holding the rollout forever.
pub fn refused(
    stored: Option<&AnalysisRunStatus>,
    wanted: &AnalysisRunStatus,
    reason: &str,
) -> AnalysisRunStatus {
    let mut status = stored.cloned().unwrap_or_default();
    status.started_at = status.started_at.or(wanted.started_at);
    status.phase = Some(AnalysisPhase::Error);
    status.message = Some(truncate(
        format!("the API server refused the run's status, so it cannot record its measurements: {reason}"),
        MAX_ERROR_BYTES,
    ));
    status
}

/// A measurement whose error text fits [`MAX_ERROR_BYTES`].
fn bounded(mut measurement: Measurement) -> Measurement {
    measurement.error = measurement.error.map(|error| truncate(error, MAX_ERROR_BYTES));
    measurement
}

/// `text` cut at a character boundary to at most `max` bytes, an ellipsis marking the cut.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn run_duration(spec: &AnalysisRunSpec) -> Option<Duration> {
    spec.duration.as_ref().and_then(|d| d.parse().ok())
}

/// How long past its due time a metric's next measurement may come before the run counts as not
/// being measured: three intervals, and never less than a minute, room for a busy controller.
fn grace(metric: &Metric) -> Duration {
    (metric_interval(metric) * 3).max(Duration::minutes(1))
}

/// How long a run may take to reach a verdict: its `timeout` (the analysis step's), or else, for
/// the slowest metric, `initialDelay` plus three times its window (`count × interval` or the
/// step's duration) plus `breachFor` and `recoverFor`, plus [`grace`]. Every judge decides within
/// twice the window while it is measured once an interval; the third leaves room for a controller
/// that measures late. `None` when a metric has no window: background analysis
/// only watches for failure, and only its liveness is bounded.
pub fn deadline(spec: &AnalysisRunSpec) -> Option<Duration> {
    if let Some(timeout) = spec.timeout.as_ref().and_then(|t| t.parse().ok()) {
        return Some(timeout);
    }
    let run_duration = run_duration(spec);
    spec.metrics.iter().try_fold(Duration::zero(), |slowest, metric| {
        let window = match Window::of(metric, run_duration) {
            Window::Count(n) => metric_interval(metric) * n.try_into().unwrap_or(i32::MAX),
            Window::Duration(d) => d,
            Window::Unbounded => return None,
        };
        let (breach_for, recover_for) = hysteresis_durations(metric);
        let bound = initial_delay(metric) + window * 3 + breach_for + recover_for + grace(metric);
        Some(slowest.max(bound))
    })
}

/// Why a run still without a verdict is past its deadline, if it is.
fn overdue(spec: &AnalysisRunSpec, started_at: DateTime<Utc>, clock: Clock) -> Option<String> {
    let deadline = deadline(spec)?;
    let from = started_at.max(clock.measuring_since);
    (clock.now >= from + deadline).then(|| {
        let how = if spec.timeout.is_some() { "its timeout" } else { "the deadline its metrics allow" };
        format!("no verdict within {} ({how})", format_duration(deadline))
    })
}

/// Why the run counts as not being measured, if it does: a metric without a verdict whose next
/// measurement is more than its [`grace`] overdue.
fn late(
    spec: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    started_at: DateTime<Utc>,
    clock: Clock,
) -> Option<String> {
    spec.metrics.iter().find_map(|metric| {
        let result = status.and_then(|s| s.metric_results.iter().find(|r| r.name == metric.name));
        if result.is_some_and(|r| r.phase.is_terminal()) {
            return None;
        }
        let due = next_measurement_at(metric, result, started_at).max(clock.measuring_since);
        let late = clock.now - due;
        (late > grace(metric)).then(|| {
            let last = match result.and_then(|r| r.measurements.last()) {
                Some(m) => format!("its last measurement was at {}", m.at.format("%H:%M:%S")),
                None => "it has never been measured".into(),
            };
            format!(
                "{}: a measurement is {} overdue ({last}); the run is not being measured",
                metric.name,
                format_duration(late)
            )
        })
    })
}

/// The run that analysis of `revision` with `templates` (their metrics in order, `args` over their
/// defaults) asks for; `None` when a template is missing, which validation reports first.
pub fn build_spec(
    templates: &super::Templates,
    refs: &[crate::api::TemplateRef],
    args: &[crate::api::AnalysisArg],
    revision: &str,
    duration: Option<crate::api::Duration>,
    timeout: Option<crate::api::Duration>,
    context: crate::api::RunContext,
) -> Option<AnalysisRunSpec> {
    let mut metrics = Vec::new();
    let mut sources = Vec::new();
    let mut values = std::collections::BTreeMap::new();
    for reference in refs {
        let template = templates.get(reference)?;
        for metric in &template.metrics {
            metrics.push(metric.clone());
            sources
                .push(crate::api::MetricSource { metric: metric.name.clone(), template: reference.clone() });
        }
        for arg in &template.args {
            if let Some(value) = &arg.value {
                values.entry(arg.name.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    values.extend(args.iter().map(|a| (a.name.clone(), a.value.clone())));
    Some(AnalysisRunSpec {
        metrics,
        args: values.into_iter().map(|(name, value)| crate::api::AnalysisArg { name, value }).collect(),
        revision: revision.to_string(),
        duration,
        timeout,
        terminate: false,
        context: Some(context),
        sources,
    })
}

/// The hash that identifies a run's spec as Bellwether created it: SHA-256 over its canonical JSON,
/// without `terminate`, which the Rollout sets later.
pub fn spec_hash(spec: &AnalysisRunSpec) -> String {
    let spec = AnalysisRunSpec { terminate: false, ..spec.clone() };
    let value = serde_json::to_value(&spec).unwrap_or(serde_json::Value::Null);
    let mut canonical = String::new();
    super::revision::write_canonical(&value, &mut canonical);
    Sha256::digest(canonical.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// What the Rollout engine needs of a run that has ended and that it no longer waits for (it is in
/// neither analysis slot): its recorded phase, for housekeeping, and its name, which new attempts
/// number past. No decision depends on its verdict, so its measurements are not judged again, which
/// keeps a Rollout's passes from growing with the history of its runs.
pub fn ended(name: &str, spec: &AnalysisRunSpec, status: Option<&AnalysisRunStatus>) -> AnalysisRunState {
    AnalysisRunState {
        name: name.to_string(),
        phase: status.and_then(|s| s.phase),
        message: status.and_then(|s| s.message.clone()),
        failed_metric: None,
        failed_value: None,
        terminating: spec.terminate,
        spec_hash: spec_hash(spec),
        distrust: None,
    }
}

/// What the Rollout engine believes of the run named `name`: its measurements judged again (see the
/// module documentation), whether it is late or past its deadline, and whether its recorded phase
/// can be believed. `owned` says whether its controller owner reference names the Rollout's UID;
/// `created_at` is when it was created, for a run never measured.
pub fn assess(
    name: &str,
    owned: bool,
    spec: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    created_at: Option<DateTime<Utc>>,
    clock: Clock,
) -> AnalysisRunState {
    let started_at = status.and_then(|s| s.started_at).or(created_at).unwrap_or(clock.now);
    let run_duration = run_duration(spec);
    let verdicts: Vec<(&Metric, MetricVerdict)> = spec
        .metrics
        .iter()
        .map(|metric| {
            let result = status.and_then(|s| s.metric_results.iter().find(|r| r.name == metric.name));
            let measurements = result.map_or(&[][..], |r| r.measurements.as_slice());
            (metric, judge_metric(metric, measurements, started_at, run_duration))
        })
        .collect();
    let judged_verdicts: Vec<MetricVerdict> = verdicts.iter().map(|(_, v)| v.clone()).collect();
    let judged = run_phase(&judged_verdicts);
    let recorded = status.and_then(|s| s.phase);
    let recorded_message = status.and_then(|s| s.message.clone());
    let failed = verdicts.iter().find(|(_, v)| v.phase == AnalysisPhase::Failed && !v.dry_run);
    let mut state = AnalysisRunState {
        name: name.to_string(),
        phase: Some(judged),
        message: Some(summary(judged, &judged_verdicts)),
        failed_metric: failed.map(|(m, _)| m.name.clone()),
        failed_value: failed
            .and_then(|(m, _)| {
                let result = status?.metric_results.iter().find(|r| r.name == m.name)?;
                result.measurements.iter().rev().find_map(|m| m.value)
            })
            .map(format_value),
        terminating: spec.terminate,
        spec_hash: spec_hash(spec),
        distrust: None,
    };
    if recorded == Some(AnalysisPhase::Failed) && state.failed_metric.is_none() {
        // Failed for a reason the measurements kept do not show: name the metric it recorded.
        let stored = status.into_iter().flat_map(|s| &s.metric_results).find(|r| {
            r.phase == AnalysisPhase::Failed && !spec.metrics.iter().any(|m| m.name == r.name && m.dry_run)
        });
        state.failed_metric = stored.map(|r| r.name.clone());
        state.failed_value =
            stored.and_then(|r| r.measurements.iter().rev().find_map(|m| m.value)).map(format_value);
    }
    let distrust = |state: &mut AnalysisRunState, why: String| {
        state.phase = Some(AnalysisPhase::Error);
        state.message = Some(why.clone());
        state.distrust = Some(why);
    };
    if !owned {
        let why = format!(
            "AnalysisRun {name} is not owned by this Rollout: its controller owner reference does not name \
             the Rollout's UID"
        );
        distrust(&mut state, why);
        return state;
    }
    match recorded {
        Some(AnalysisPhase::Failed | AnalysisPhase::Error) => {
            state.phase = recorded;
            state.message = recorded_message;
        }
        Some(AnalysisPhase::Successful) if spec.terminate && !judged.is_terminal() => {
            state.phase = recorded;
            state.message = recorded_message;
        }
        Some(recorded) if recorded.is_terminal() && recorded != judged => {
            let detail = state.message.clone().unwrap_or_default();
            distrust(
                &mut state,
                format!(
                    "AnalysisRun {name} records {recorded:?}, but its measurements say {judged:?}{}; its \
                     status was written by someone other than Bellwether",
                    if detail.is_empty() { String::new() } else { format!(" ({detail})") }
                ),
            );
        }
        _ if judged.is_terminal() => {}
        _ => {
            let problem = overdue(spec, started_at, clock).or_else(|| late(spec, status, started_at, clock));
            if let Some(problem) = problem {
                let running = state.message.clone().unwrap_or_default();
                state.phase = Some(AnalysisPhase::Error);
                state.message = Some(format!("{problem}: {running}"));
            } else {
                state.phase = recorded.filter(|p| !p.is_terminal()).or(Some(judged));
            }
        }
    }
    state
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
    let (breach_for, recover_for) = hysteresis_durations(metric);
    let grace = breach_for + recover_for;
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
