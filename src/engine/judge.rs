//! The analysis judge: turns a metric's timestamped measurements into a hysteresis state and a
//! verdict, and a run's metrics into the run's phase.
//!
//! Each measurement is a **breach** (outside `threshold`), **clear** (inside the stricter
//! `recover` bounds, which default to the threshold) or **marginal** (in between). A Healthy metric
//! turns Breaching on a breach; a breach that lasts `breachFor` fails it. From Breaching, only clear
//! measurements held for `recoverFor` make it Healthy again; marginal ones keep it where it is.
//!
//! The run succeeds when the metric has been Healthy for a whole success window: the last `count`
//! measurements, or the run's `duration`, never starting before `initialDelay`. The window slides:
//! a metric that breached and recovered must then stay Healthy for a full window. A metric gets
//! twice its window, plus `breachFor` and `recoverFor`, to show one whole Healthy window; after
//! that it is Inconclusive rather than holding the rollout forever.

use crate::api::{
    AnalysisPhase, Bounds, HysteresisState, Measurement, Metric, NoDataPolicy, Threshold, format_duration,
};
use chrono::{DateTime, Duration, Utc};

/// Measurement errors in a row that a metric tolerates when `consecutiveErrorLimit` is unset.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;

/// The time between measurements when a metric sets no `interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::minutes(1);

/// A metric's verdict after the measurements seen so far.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricVerdict {
    pub phase: AnalysisPhase,
    /// One line that names the numbers, for example
    /// `error-rate: 0.034 > max 0.01 continuously for 2m05s (breachFor 2m)`.
    pub message: String,
    pub state: HysteresisState,
    /// When the current hysteresis state began.
    pub since: Option<DateTime<Utc>>,
    pub consecutive_errors: i32,
    /// The time of the measurement that made the verdict final, if it is final.
    pub decided_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
}

impl MetricVerdict {
    /// A verdict on `metric`; the message of a dry-run metric says so.
    pub(super) fn of(
        metric: &Metric,
        phase: AnalysisPhase,
        message: String,
        state: HysteresisState,
        since: Option<DateTime<Utc>>,
        consecutive_errors: i32,
        decided_at: Option<DateTime<Utc>>,
    ) -> Self {
        let message = if metric.dry_run { format!("[dry run] {message}") } else { message };
        Self { phase, message, state, since, consecutive_errors, decided_at, dry_run: metric.dry_run }
    }
}

/// How long a run lasts for a metric: `count` measurements, or a duration (the step's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    Count(u32),
    Duration(Duration),
    /// Background analysis: the metric never succeeds on its own, it only watches for failure.
    Unbounded,
}

impl Window {
    /// The metric's window: its `count`, else the run's duration, else unbounded.
    pub fn of(metric: &Metric, run_duration: Option<Duration>) -> Self {
        match (metric.count, run_duration) {
            (Some(count), _) => Self::Count(count.max(1) as u32),
            (None, Some(duration)) => Self::Duration(duration),
            (None, None) => Self::Unbounded,
        }
    }

    pub(super) fn describe(self) -> String {
        match self {
            Self::Count(n) => format!("{n} measurements"),
            Self::Duration(d) => format_duration(d),
            Self::Unbounded => "the whole run".into(),
        }
    }
}

/// A metric's run of measurement errors, against its `consecutiveErrorLimit`: every judgment
/// tolerates the same number of failed queries in a row, and words them the same way.
pub(super) struct ErrorRun {
    limit: i32,
    /// Errors in a row so far.
    pub(super) count: i32,
    last: Option<String>,
}

impl ErrorRun {
    pub(super) fn new(metric: &Metric) -> Self {
        Self {
            limit: metric.consecutive_error_limit.unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT),
            count: 0,
            last: None,
        }
    }

    /// Records one measurement. A failed one is `Err` with the Error verdict's message once the
    /// errors in a row exceed the limit, and `Ok(false)` before that; any other measurement ends the
    /// run of errors and is `Ok(true)`: judge it.
    pub(super) fn record(&mut self, name: &str, measurement: &Measurement) -> Result<bool, String> {
        let Some(error) = &measurement.error else {
            self.count = 0;
            return Ok(true);
        };
        self.count += 1;
        self.last = Some(error.clone());
        if self.count > self.limit {
            return Err(format!(
                "{name}: {} measurement errors in a row (consecutiveErrorLimit {}): {error}",
                self.count, self.limit
            ));
        }
        Ok(false)
    }

    /// While the latest measurements failed: `2 measurement error(s) in a row (limit 4): …`.
    pub(super) fn progress(&self, name: &str) -> Option<String> {
        let error = self.last.as_ref().filter(|_| self.count > 0)?;
        Some(format!("{name}: {} measurement error(s) in a row (limit {}): {error}", self.count, self.limit))
    }
}

/// The time between a metric's measurements: its `interval`, or [`DEFAULT_INTERVAL`].
pub fn metric_interval(metric: &Metric) -> Duration {
    metric.interval.as_ref().and_then(|d| d.parse().ok()).unwrap_or(DEFAULT_INTERVAL)
}

/// When a metric's measurements start to count: `initialDelay` after its run started.
pub fn first_counted_at(metric: &Metric, started_at: DateTime<Utc>) -> DateTime<Utc> {
    started_at + initial_delay(metric)
}

/// A metric's `initialDelay`, zero when unset (validation refuses one that does not parse).
pub(super) fn initial_delay(metric: &Metric) -> Duration {
    or_zero(metric.initial_delay.as_ref())
}

/// A threshold metric's `breachFor` and `recoverFor`, zero when unset or for other judgments.
pub(super) fn hysteresis_durations(metric: &Metric) -> (Duration, Duration) {
    let hysteresis = metric.threshold.as_ref().and_then(|t| t.hysteresis.as_ref());
    (
        or_zero(hysteresis.and_then(|h| h.breach_for.as_ref())),
        or_zero(hysteresis.and_then(|h| h.recover_for.as_ref())),
    )
}

fn or_zero(duration: Option<&crate::api::Duration>) -> Duration {
    duration.and_then(|d| d.parse().ok()).unwrap_or_else(Duration::zero)
}

/// The parsed judgment settings of a threshold metric.
struct Rules<'a> {
    name: &'a str,
    threshold: &'a Threshold,
    recover: Bounds,
    breach_for: Duration,
    recover_for: Duration,
    no_data: NoDataPolicy,
    first_at: DateTime<Utc>,
    window: Window,
    interval: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Breach,
    Marginal,
    Clear,
}

/// The running state of the fold over measurements.
struct Fold {
    state: HysteresisState,
    since: Option<DateTime<Utc>>,
    recovering_since: Option<DateTime<Utc>>,
    /// How long the metric has been out of the clear since it turned Breaching: the time up to
    /// each breach or marginal measurement counts, the time up to a clear one does not. So a
    /// breach lasts through marginal values, and a metric that flaps between breach and clear
    /// still adds up, while one failed request now and then in a quiet window does not.
    breach_time: Duration,
    /// The latest measurement judged since the metric turned Breaching.
    breach_last: Option<DateTime<Utc>>,
    /// Whether every measurement since the breach began was itself a breach.
    unbroken: bool,
    /// First and latest measurement of the current run of Healthy measurements, and its length.
    streak: Option<(DateTime<Utc>, DateTime<Utc>, u32)>,
    judged: u32,
    no_data: u32,
    errors: ErrorRun,
    last_value: Option<f64>,
    verdict: Option<(AnalysisPhase, String, DateTime<Utc>)>,
}

/// Judges one metric. `started_at` is when the run started; `run_duration` its window when the
/// metric has no `count`. Compare and sequential metrics are judged by their own modules.
pub fn judge_metric(
    metric: &Metric,
    measurements: &[Measurement],
    started_at: DateTime<Utc>,
    run_duration: Option<Duration>,
) -> MetricVerdict {
    if let Some(compare) = &metric.compare {
        return super::compare::judge(metric, compare, measurements, started_at, run_duration);
    }
    if let Some(sequential) = &metric.sequential {
        return super::sequential::judge(metric, sequential, measurements, started_at, run_duration);
    }
    let Some(threshold) = metric.threshold.as_ref() else {
        return MetricVerdict {
            phase: AnalysisPhase::Error,
            message: format!("{}: has no judgment: set threshold, compare or sequential", metric.name),
            state: HysteresisState::Healthy,
            since: None,
            consecutive_errors: 0,
            decided_at: None,
            dry_run: metric.dry_run,
        };
    };
    let hysteresis = threshold.hysteresis.as_ref();
    let (breach_for, recover_for) = hysteresis_durations(metric);
    let recover = hysteresis.and_then(|h| h.recover.clone()).unwrap_or(Bounds { min: None, max: None });
    let rules = Rules {
        name: &metric.name,
        threshold,
        recover: Bounds { min: recover.min.or(threshold.min), max: recover.max.or(threshold.max) },
        breach_for,
        recover_for,
        no_data: metric.no_data,
        first_at: first_counted_at(metric, started_at),
        window: Window::of(metric, run_duration),
        interval: metric_interval(metric),
    };
    let mut fold = Fold {
        state: HysteresisState::Healthy,
        since: None,
        recovering_since: None,
        breach_time: Duration::zero(),
        breach_last: None,
        unbroken: false,
        streak: None,
        judged: 0,
        no_data: 0,
        errors: ErrorRun::new(metric),
        last_value: None,
        verdict: None,
    };
    for measurement in measurements.iter().filter(|m| m.at >= rules.first_at) {
        fold.observe(&rules, measurement);
        if fold.verdict.is_some() {
            break;
        }
    }
    let (phase, message, decided_at) = match fold.verdict.clone() {
        Some((phase, message, at)) => (phase, message, Some(at)),
        None => (AnalysisPhase::Running, fold.progress(&rules), None),
    };
    MetricVerdict::of(metric, phase, message, fold.state, fold.since, fold.errors.count, decided_at)
}

fn outside(value: f64, min: Option<f64>, max: Option<f64>) -> bool {
    min.is_some_and(|m| value < m) || max.is_some_and(|m| value > m)
}

/// A measured value with four significant digits, so that messages stay readable: `0.0995`,
/// `123.5`, `2`, `+Inf`. Thresholds are shown as written.
pub fn format_value(value: f64) -> String {
    if !value.is_finite() {
        // As Prometheus and the stored status write them.
        return crate::api::sample::format(value);
    }
    if value == 0.0 {
        return value.to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 12) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// `0.034 > max 0.01`, or `0.2 < min 0.5`.
fn comparison(value: f64, min: Option<f64>, max: Option<f64>) -> String {
    let shown = format_value(value);
    match (min, max) {
        (Some(min), _) if value < min => format!("{shown} < min {min}"),
        (_, Some(max)) if value > max => format!("{shown} > max {max}"),
        (Some(min), Some(max)) => format!("{shown} within {min}..{max}"),
        (Some(min), None) => format!("{shown} >= min {min}"),
        (None, Some(max)) => format!("{shown} <= max {max}"),
        (None, None) => shown,
    }
}

impl Rules<'_> {
    fn classify(&self, value: f64) -> Class {
        if outside(value, self.threshold.min, self.threshold.max) {
            Class::Breach
        } else if outside(value, self.recover.min, self.recover.max) {
            Class::Marginal
        } else {
            Class::Clear
        }
    }
}

impl Fold {
    fn observe(&mut self, rules: &Rules<'_>, measurement: &Measurement) {
        let at = measurement.at;
        match self.errors.record(rules.name, measurement) {
            Err(message) => {
                self.verdict = Some((AnalysisPhase::Error, message, at));
                return;
            }
            Ok(false) => return,
            Ok(true) => {}
        }
        let class = match (measurement.value.filter(|v| !v.is_nan()), rules.no_data) {
            (Some(value), _) => {
                self.last_value = Some(value);
                Some(rules.classify(value))
            }
            (None, NoDataPolicy::Ignore) => return,
            (None, NoDataPolicy::Fail) => Some(Class::Breach),
            (None, NoDataPolicy::Pass) => Some(Class::Clear),
            (None, NoDataPolicy::Inconclusive) => None,
        };
        self.judged += 1;
        match class {
            Some(class) => self.step_hysteresis(rules, class, measurement),
            None => {
                self.no_data += 1;
                self.recovering_since = None;
                self.streak = None;
            }
        }
        if self.verdict.is_none() {
            self.check_window(rules, at);
        }
    }

    fn step_hysteresis(&mut self, rules: &Rules<'_>, class: Class, measurement: &Measurement) {
        let at = measurement.at;
        match (self.state, class) {
            (HysteresisState::Healthy, Class::Breach) => {
                self.state = HysteresisState::Breaching;
                self.since = Some(at);
                self.recovering_since = None;
                self.breach_time = Duration::zero();
                self.breach_last = Some(at);
                self.unbroken = true;
            }
            (HysteresisState::Breaching, Class::Breach) => self.recovering_since = None,
            (HysteresisState::Breaching, Class::Marginal) => {
                self.recovering_since = None;
                self.unbroken = false;
            }
            (HysteresisState::Breaching, Class::Clear) => {
                self.unbroken = false;
                let recovering = *self.recovering_since.get_or_insert(at);
                if at - recovering >= rules.recover_for {
                    self.state = HysteresisState::Healthy;
                    self.since = Some(at);
                    self.recovering_since = None;
                }
            }
            _ => {}
        }
        if self.state == HysteresisState::Breaching {
            let last = self.breach_last.replace(at).unwrap_or(at);
            if class != Class::Clear {
                self.breach_time += at - last;
            }
        }
        if self.state == HysteresisState::Breaching
            && class == Class::Breach
            && self.breach_time >= rules.breach_for
        {
            self.state = HysteresisState::Failed;
            let value = self.describe_value(rules);
            let held = format_duration(self.breach_time);
            let total = at - self.since.unwrap_or(at);
            let how = if self.unbroken {
                format!("continuously for {held}")
            } else if self.breach_time == total {
                format!("without recovering for {held}")
            } else {
                format!("without recovering, out of the clear for {held} of {}", format_duration(total))
            };
            let message = if rules.breach_for.is_zero() {
                format!("{}: {value}", rules.name)
            } else {
                format!("{}: {value} {how} (breachFor {})", rules.name, format_duration(rules.breach_for))
            };
            self.verdict = Some((AnalysisPhase::Failed, message, at));
            return;
        }
        if self.state == HysteresisState::Healthy {
            self.streak = Some(match self.streak {
                Some((first, _, n)) => (first, at, n + 1),
                None => (at, at, 1),
            });
        } else {
            self.streak = None;
        }
    }

    fn describe_value(&self, rules: &Rules<'_>) -> String {
        match self.last_value {
            Some(v) => comparison(v, rules.threshold.min, rules.threshold.max),
            None => "no data (noData: fail)".into(),
        }
    }

    /// Success once a whole window was Healthy; Inconclusive once no window can fit any more.
    fn check_window(&mut self, rules: &Rules<'_>, at: DateTime<Utc>) {
        let name = rules.name;
        // Room for one breach to fail or recover, then a whole window, twice over.
        let grace = rules.breach_for + rules.recover_for;
        let (complete, exhausted) = match (rules.window, self.streak) {
            (Window::Unbounded, _) => (false, false),
            (Window::Count(n), streak) => {
                let interval_ms = rules.interval.num_milliseconds().max(1);
                let grace = (grace.num_milliseconds() + interval_ms - 1) / interval_ms;
                let limit = i64::from(n).saturating_mul(2).saturating_add(grace);
                (streak.is_some_and(|(_, _, len)| len >= n), i64::from(self.judged) >= limit)
            }
            (Window::Duration(d), streak) => (
                streak.is_some_and(|(first, last, _)| last - first >= d),
                at - rules.first_at >= d + d + grace,
            ),
        };
        if complete {
            let last = self.last_value.map(|v| comparison(v, rules.threshold.min, rules.threshold.max));
            let last = last.map(|l| format!(", last {l}")).unwrap_or_default();
            let message = format!("{name}: healthy for {}{last}", rules.window.describe());
            self.verdict = Some((AnalysisPhase::Successful, message, at));
        } else if self.no_data > 0 && self.no_data == self.judged && self.window_elapsed(rules, at) {
            let message = format!("{name}: no data in {} measurements (noData: inconclusive)", self.no_data);
            self.verdict = Some((AnalysisPhase::Inconclusive, message, at));
        } else if exhausted {
            let message = format!(
                "{name}: not healthy for a whole window of {} within {} measurements ({} without data)",
                rules.window.describe(),
                self.judged,
                self.no_data
            );
            self.verdict = Some((AnalysisPhase::Inconclusive, message, at));
        }
    }

    fn window_elapsed(&self, rules: &Rules<'_>, at: DateTime<Utc>) -> bool {
        match rules.window {
            Window::Count(n) => self.judged >= n,
            Window::Duration(d) => at - rules.first_at >= d,
            Window::Unbounded => false,
        }
    }

    /// The message of a metric still running.
    fn progress(&self, rules: &Rules<'_>) -> String {
        let name = rules.name;
        if let Some(message) = self.errors.progress(name) {
            return message;
        }
        let since = self.since.map(|s| format!(" since {}", s.format("%H:%M:%S"))).unwrap_or_default();
        match self.state {
            HysteresisState::Breaching => match self.recovering_since {
                Some(_) => format!(
                    "{name}: recovering, {} (recoverFor {})",
                    self.last_value
                        .map(|v| comparison(v, rules.recover.min, rules.recover.max))
                        .unwrap_or_default(),
                    format_duration(rules.recover_for)
                ),
                None => format!(
                    "{name}: breaching{since}, {} (breachFor {})",
                    self.describe_value(rules),
                    format_duration(rules.breach_for)
                ),
            },
            _ => {
                let healthy = match (rules.window, self.streak) {
                    (Window::Count(n), Some((_, _, len))) => format!("{len}/{n} healthy measurements"),
                    (Window::Count(n), None) => format!("0/{n} healthy measurements"),
                    (Window::Duration(d), Some((first, last, _))) => {
                        format!("healthy for {} of {}", format_duration(last - first), format_duration(d))
                    }
                    (Window::Duration(d), None) => format!("healthy for 0s of {}", format_duration(d)),
                    (Window::Unbounded, _) => "healthy".into(),
                };
                let last = self
                    .last_value
                    .map(|v| format!(", last {}", comparison(v, rules.threshold.min, rules.threshold.max)))
                    .unwrap_or_default();
                format!("{name}: {healthy}{last}")
            }
        }
    }
}

/// A run's phase from its metrics' verdicts: any Failed fails it, then any Error; it keeps running
/// while a metric runs; then any Inconclusive makes it Inconclusive. Dry-run metrics never decide.
pub fn run_phase(verdicts: &[MetricVerdict]) -> AnalysisPhase {
    let deciding: Vec<AnalysisPhase> = verdicts.iter().filter(|v| !v.dry_run).map(|v| v.phase).collect();
    let all: Vec<AnalysisPhase> = verdicts.iter().map(|v| v.phase).collect();
    let any = |phase| deciding.contains(&phase);
    if any(AnalysisPhase::Failed) {
        AnalysisPhase::Failed
    } else if any(AnalysisPhase::Error) {
        AnalysisPhase::Error
    } else if all.iter().any(|p| !p.is_terminal()) {
        AnalysisPhase::Running
    } else if any(AnalysisPhase::Inconclusive) {
        AnalysisPhase::Inconclusive
    } else {
        AnalysisPhase::Successful
    }
}
