//! The AnalysisRun core: which metrics are due for a measurement, the status that new measurements
//! lead to, the deadline of a run, and what the Rollout engine believes of a run. The AnalysisRun
//! reconciler queries the metrics that [`due`] names and writes the status that [`record`] returns;
//! the Rollout's fetch phase hands every run through [`assess`]. The simulation drives the same
//! functions, through [`record_with`] and [`assess_with`] when it judges with another tool's policy.
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

use super::judge::{Bellwether, Judge, unplannable, verdict_of};
use super::metric::{MAX_MEASUREMENTS, MetricPlan};
use super::verdict::{MetricVerdict, Window, format_value, run_phase, summary};
use crate::observation::AnalysisRunState;
use bellwether_api::{
    AnalysisPhase, AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, HysteresisState, HysteresisStatus,
    Measurement, Metric, MetricResult, Rollout, created_at, format_duration,
};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

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
    due_since(spec, status, now).into_iter().map(|(name, _)| name).collect()
}

/// [`due`], with the time each metric's measurement became due, which names that measurement: it
/// stays the same until the measurement is recorded, and each next one is due later.
pub fn due_since(
    spec: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    now: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>)> {
    schedule(spec, status, now)
        .filter(|(_, at)| *at <= now)
        .map(|(name, at)| (name.to_string(), at))
        .collect()
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
    let run_duration = run_duration(spec);
    spec.metrics.iter().filter(move |_| !ended).filter_map(move |metric| {
        let result = status.and_then(|s| s.metric_results.iter().find(|r| r.name == metric.name));
        if result.is_some_and(|r| r.phase.is_terminal()) {
            return None;
        }
        // A metric that cannot be planned is due at once: the status that records it names why.
        let due = MetricPlan::new(metric, run_duration)
            .map_or(started_at, |plan| next_measurement_at(&plan, result, started_at));
        Some((metric.name.as_str(), due))
    })
}

fn next_measurement_at(
    plan: &MetricPlan<'_>,
    result: Option<&MetricResult>,
    started_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match result.and_then(|r| r.measurements.last()) {
        Some(latest) => latest.at + plan.interval,
        None => plan.first_counted_at(started_at),
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
    record_with(&Bellwether, spec, status, taken, clock)
}

/// [`record`], with the metrics judged by `judge`.
pub fn record_with(
    judge: &dyn Judge,
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
        // One plan per metric and pass: the judge and the trim read the same resolved settings.
        let (mut verdict, mut measurements) = match MetricPlan::new(metric, run_duration) {
            Ok(plan) => {
                let verdict = judge.judge(&plan, &measurements, started_at);
                (verdict, trim(judge, &plan, measurements, started_at))
            }
            Err(problems) => (unplannable(metric, &problems), measurements),
        };
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
/// being measured: three intervals, and never less than a minute, room for a busy controller; and
/// for a job metric, whose measurement is taken when its Job ends, the Job's
/// `activeDeadlineSeconds` on top, so that a long test is not mistaken for a run nobody measures.
fn grace(plan: &MetricPlan<'_>) -> Duration {
    let job = plan.metric.provider.job.as_ref();
    let runs_for = job.and_then(|job| job.spec.get("activeDeadlineSeconds")?.as_i64()).unwrap_or(0);
    (plan.interval * 3).max(Duration::minutes(1)) + Duration::seconds(runs_for.max(0))
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
    // A metric that cannot be planned ends in Error at its first measurement and needs no time.
    let plans = spec.metrics.iter().filter_map(|metric| MetricPlan::new(metric, run_duration).ok());
    plans.into_iter().try_fold(Duration::zero(), |slowest, plan| {
        let window = match plan.window {
            Window::Count(n) => plan.interval * n.try_into().unwrap_or(i32::MAX),
            Window::Duration(d) => d,
            Window::Unbounded => return None,
        };
        let bound = plan.initial_delay + window * 3 + plan.settling() + grace(&plan);
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
    let run_duration = run_duration(spec);
    spec.metrics.iter().find_map(|metric| {
        let result = status.and_then(|s| s.metric_results.iter().find(|r| r.name == metric.name));
        if result.is_some_and(|r| r.phase.is_terminal()) {
            return None;
        }
        let plan = MetricPlan::new(metric, run_duration).ok()?;
        let due = next_measurement_at(&plan, result, started_at).max(clock.measuring_since);
        let late = clock.now - due;
        (late > grace(&plan)).then(|| {
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

/// How long a run that its owner's status does not name yet is looked at again soon: the Rollout
/// writes its status before it creates the run, but its cache here may lag behind.
const YOUNG: Duration = Duration::seconds(30);

/// Whether the AnalysisRun reconciler may measure a run, and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entitlement {
    /// Owned by a managed Rollout, which names it with this spec: measure it.
    Measure,
    /// Owned by a managed Rollout that no longer wants it, and terminated: record its end, without
    /// measuring anything.
    RecordTermination,
    /// Owned by a managed Rollout whose status does not name it yet; look again soon.
    NotYetNamed,
    /// Not measured, for this reason.
    Refused(String),
}

/// Whether `run` may be measured, given the Rollout its controller owner reference names (`owner`,
/// looked up by name and checked against the reference's UID by the caller) at `now`.
pub fn entitlement(run: &AnalysisRun, owner: Option<&Rollout>, now: DateTime<Utc>) -> Entitlement {
    let Some(owner) = owner else {
        return Entitlement::Refused("no Rollout that this controller manages owns it".into());
    };
    let name = run.metadata.name.as_deref().unwrap_or_default();
    let status = owner.status.as_ref();
    let named = status
        .into_iter()
        .flat_map(|s| [s.step_analysis_run.as_ref(), s.background_analysis_run.as_ref()])
        .flatten()
        .find(|r| r.name == name);
    match named {
        Some(reference) if reference.spec_hash.as_deref() == Some(spec_hash(&run.spec).as_str()) => {
            Entitlement::Measure
        }
        Some(_) => Entitlement::Refused(format!(
            "its spec is not the one Rollout {} created it with",
            owner.metadata.name.as_deref().unwrap_or_default()
        )),
        None if run.spec.terminate => Entitlement::RecordTermination,
        None if created_at(&run.metadata).is_some_and(|at| now - at < YOUNG) => Entitlement::NotYetNamed,
        None => Entitlement::Refused(format!(
            "Rollout {} does not name it",
            owner.metadata.name.as_deref().unwrap_or_default()
        )),
    }
}

/// The hash that identifies a run's spec as Bellwether created it: SHA-256 over its canonical JSON,
/// without `terminate`, which the Rollout sets later.
pub fn spec_hash(spec: &AnalysisRunSpec) -> String {
    let spec = AnalysisRunSpec { terminate: false, ..spec.clone() };
    let value = serde_json::to_value(&spec).unwrap_or(serde_json::Value::Null);
    let mut canonical = String::new();
    crate::revision::write_canonical(&value, &mut canonical);
    Sha256::digest(canonical.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// What the Rollout engine needs of a run that has ended and that it no longer waits for (it is in
/// neither analysis slot): its recorded phase, for housekeeping, and its name, which new attempts
/// number past. No decision depends on its verdict, so its measurements are not judged again, which
/// keeps a Rollout's passes from growing with the history of its runs.
pub fn ended(
    name: &str,
    owned: bool,
    spec: &AnalysisRunSpec,
    status: Option<&AnalysisRunStatus>,
    created_at: Option<DateTime<Utc>>,
) -> AnalysisRunState {
    AnalysisRunState {
        name: name.to_string(),
        phase: status.and_then(|s| s.phase),
        message: status.and_then(|s| s.message.clone()),
        failed_metric: None,
        failed_value: None,
        terminating: spec.terminate,
        spec_hash: spec_hash(spec),
        distrust: None,
        owned,
        created_at,
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
    assess_with(&Bellwether, name, owned, spec, status, created_at, clock)
}

/// [`assess`], with the metrics judged by `judge`.
pub fn assess_with(
    judge: &dyn Judge,
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
            (metric, verdict_of(judge, metric, measurements, started_at, run_duration))
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
        owned,
        created_at,
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

/// How many of a metric's latest measurements its status keeps: never fewer than its judgment can
/// look at before it decides (see each judgment's `needs`), so that trimming the older ones cannot
/// change a verdict. Each count adds a margin of `consecutiveErrorLimit + 1`, room for the failed
/// queries a judgment tolerates in a row, which it skips without counting them. None exceeds
/// [`MAX_MEASUREMENTS`]; a metric that cannot be planned keeps that many.
pub fn keep(metric: &Metric, run_duration: Option<Duration>) -> usize {
    MetricPlan::new(metric, run_duration).map_or(MAX_MEASUREMENTS, |plan| kept(&Bellwether, &plan))
}

fn kept(judge: &dyn Judge, plan: &MetricPlan<'_>) -> usize {
    let margin = usize::try_from(plan.error_limit).unwrap_or(0) + 1;
    judge.needs(plan).saturating_add(margin).min(MAX_MEASUREMENTS)
}

/// Drops the oldest measurements beyond [`keep`], but only where dropping them cannot change what
/// the judge decides, now or after any later measurement:
///
/// - measurements before `initialDelay`, which the judge never looks at;
/// - for a judgment that forgets (a threshold metric in background analysis), everything up to a
///   measurement after which the metric was Healthy with no measurement error pending. Every
///   judgment starts a series Healthy with no errors, and one that forgets depends on nothing
///   earlier from there.
///
/// Other judgments need every measurement since `initialDelay`, which stays within [`keep`] while
/// measurements come an interval apart and succeed, and never beyond [`MAX_MEASUREMENTS`]. The
/// latest measurement is always kept, since the next one is due an interval after it.
fn trim(
    judge: &dyn Judge,
    plan: &MetricPlan<'_>,
    mut measurements: Vec<Measurement>,
    started_at: DateTime<Utc>,
) -> Vec<Measurement> {
    let len = measurements.len();
    let target = kept(judge, plan);
    if len <= target {
        return measurements;
    }
    let first_at = plan.first_counted_at(started_at);
    let forgets = judge.forgets(plan);
    let exact = |cut: usize| {
        let before = &measurements[..cut];
        before.iter().all(|m| m.at < first_at)
            || forgets && {
                let verdict = judge.judge(plan, before, started_at);
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
