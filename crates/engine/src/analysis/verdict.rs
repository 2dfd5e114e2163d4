//! The words every judgment speaks: a metric's verdict, its window, its run of measurement errors,
//! the fold that turns measurements into a verdict, and the run's phase from its metrics' verdicts.

use bellwether_api::{AnalysisPhase, HysteresisState, Measurement, Metric, format_duration};
use chrono::{DateTime, Duration, Utc};

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
    pub(crate) fn of(
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

    /// An Error verdict that no measurement made: the metric cannot be judged at all.
    pub(crate) fn unjudgeable(metric: &Metric, message: String) -> Self {
        Self::of(metric, AnalysisPhase::Error, message, HysteresisState::Healthy, None, 0, None)
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

    pub(crate) fn describe(self) -> String {
        match self {
            Self::Count(n) => format!("{n} measurements"),
            Self::Duration(d) => format_duration(d),
            Self::Unbounded => "the whole run".into(),
        }
    }
}

/// A metric's run of measurement errors, against its `consecutiveErrorLimit`: every judgment
/// tolerates the same number of failed queries in a row, and words them the same way.
pub(crate) struct ErrorRun {
    limit: i32,
    /// Errors in a row so far.
    pub(crate) count: i32,
    last: Option<String>,
}

impl ErrorRun {
    pub(crate) fn new(limit: i32) -> Self {
        Self { limit, count: 0, last: None }
    }

    /// Records one measurement. A failed one is `Err` with the Error verdict's message once the
    /// errors in a row exceed the limit, and `Ok(false)` before that; any other measurement ends the
    /// run of errors and is `Ok(true)`: judge it.
    pub(crate) fn record(&mut self, name: &str, measurement: &Measurement) -> Result<bool, String> {
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
    pub(crate) fn progress(&self, name: &str) -> Option<String> {
        let error = self.last.as_ref().filter(|_| self.count > 0)?;
        Some(format!("{name}: {} measurement error(s) in a row (limit {}): {error}", self.count, self.limit))
    }
}

/// A judgment's running state over a metric's measurements. [`fold`] hands it every measurement
/// from `initialDelay` on, oldest first, until it decides.
pub(crate) trait Fold<'m> {
    /// Takes one measurement; the final phase and message, once this one decides the metric.
    fn observe(&mut self, measurement: &'m Measurement) -> Option<(AnalysisPhase, String)>;
    /// The message of a metric still running.
    fn progress(&self) -> String;
    /// The metric's hysteresis state and when it began.
    fn state(&self) -> (HysteresisState, Option<DateTime<Utc>>);
    /// Measurement errors in a row at the end.
    fn errors(&self) -> i32;
}

/// Folds the measurements of `metric` taken from `first_at` on into a verdict: the first one that
/// decides ends it, and without one the metric is still Running.
pub(crate) fn fold<'m>(
    metric: &Metric,
    first_at: DateTime<Utc>,
    mut fold: impl Fold<'m>,
    measurements: &'m [Measurement],
) -> MetricVerdict {
    let (phase, message, decided_at) = measurements
        .iter()
        .filter(|m| m.at >= first_at)
        .find_map(|m| fold.observe(m).map(|(phase, message)| (phase, message, Some(m.at))))
        .unwrap_or_else(|| (AnalysisPhase::Running, fold.progress(), None));
    let (state, since) = fold.state();
    MetricVerdict::of(metric, phase, message, state, since, fold.errors(), decided_at)
}

/// A measured value with four significant digits, so that messages stay readable: `0.0995`,
/// `123.5`, `2`, `+Inf`. Thresholds are shown as written.
pub fn format_value(value: f64) -> String {
    if !value.is_finite() {
        // As Prometheus and the stored status write them.
        return bellwether_api::sample::format(value);
    }
    if value == 0.0 {
        return value.to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 12) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
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

/// The run's message: the deciding metric's, the same one [`run_phase`] decided on; while running,
/// how many metrics still are; once successful, every metric's.
pub fn summary(phase: AnalysisPhase, verdicts: &[MetricVerdict]) -> String {
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
