//! A metric as every judgment sees it: its [`MetricPlan`] (settings resolved once, like
//! [`crate::Plan`] for a Rollout: durations parsed, defaults applied), and the [`Judgment`]
//! interface each of Bellwether's judgments implements. [`super::plan`] builds plans; every judge,
//! the AnalysisRun core and validation read a metric through its plan, so no duration is parsed
//! twice and none falls back to zero in silence.

use super::verdict::{MetricVerdict, Window};
use bellwether_api::{Measurement, Metric};
use chrono::{DateTime, Duration, Utc};
use std::fmt;

/// The most measurements one metric keeps in status. A sequential measurement with its counts is
/// about 150 bytes of JSON, so a full metric is about 150 KB, and a run with a few of them stays
/// far below the 1.5 MiB an object may have in etcd. At the default interval it is almost 17 hours
/// of measurements, longer than any analysis step should last; the judge re-reads them all on each
/// measurement, which at this size takes well under a millisecond.
pub const MAX_MEASUREMENTS: usize = 1000;

/// What each of Bellwether's judgments provides to the run core.
pub(crate) trait Judgment: Send + Sync {
    /// The verdict on `measurements` (oldest first) of a run that started at `started_at`.
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict;

    /// The most of a metric's latest measurements the judgment looks at before it decides.
    fn needs(&self, plan: &MetricPlan<'_>) -> usize;

    /// Whether everything up to a measurement after which the metric was Healthy, with no
    /// measurement error pending, can be forgotten without changing any later verdict.
    fn forgets(&self, _plan: &MetricPlan<'_>) -> bool {
        false
    }

    /// How long one breach may take to fail or recover, which a run's deadline allows for.
    fn settling(&self) -> Duration {
        Duration::zero()
    }
}

/// One problem with a metric's settings, at a field relative to the metric (`interval`,
/// `threshold.hysteresis.breachFor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A metric of a run, resolved.
pub struct MetricPlan<'a> {
    pub metric: &'a Metric,
    /// The time between measurements: `interval`, or [`DEFAULT_INTERVAL`].
    pub interval: Duration,
    /// How long after the run starts its measurements begin to count.
    pub initial_delay: Duration,
    pub window: Window,
    /// Measurement errors in a row the metric tolerates.
    pub error_limit: i32,
    pub(crate) run_duration: Option<Duration>,
    pub(crate) judgment: Box<dyn Judgment + 'a>,
}

impl fmt::Debug for MetricPlan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricPlan")
            .field("metric", &self.metric.name)
            .field("interval", &self.interval)
            .field("initial_delay", &self.initial_delay)
            .field("window", &self.window)
            .field("error_limit", &self.error_limit)
            .finish_non_exhaustive()
    }
}

impl<'a> MetricPlan<'a> {
    /// When the metric's measurements start to count: `initialDelay` after its run started.
    pub fn first_counted_at(&self, started_at: DateTime<Utc>) -> DateTime<Utc> {
        started_at + self.initial_delay
    }

    /// The metric's verdict on `measurements` (oldest first) of a run that started at `started_at`.
    pub fn judge(&self, measurements: &[Measurement], started_at: DateTime<Utc>) -> MetricVerdict {
        self.judgment.judge(self, measurements, started_at)
    }

    /// The most of the latest measurements the judgment looks at before it decides.
    pub(crate) fn needs(&self) -> usize {
        self.judgment.needs(self)
    }

    /// Whether the measurements up to one after which the metric was Healthy, with no error
    /// pending, can never change a later verdict.
    pub(crate) fn forgets(&self) -> bool {
        self.judgment.forgets(self)
    }

    /// How long one breach may take to fail or recover.
    pub(crate) fn settling(&self) -> Duration {
        self.judgment.settling()
    }

    /// Whole intervals in `d`, rounded up.
    pub(crate) fn intervals(&self, d: Duration) -> usize {
        let interval_ms = self.interval.num_milliseconds().max(1);
        usize::try_from((d.num_milliseconds() + interval_ms - 1) / interval_ms).unwrap_or(0)
    }
}

/// `value` parsed, or `None` with a problem at `field` when it does not parse.
pub(crate) fn duration(
    value: Option<&bellwether_api::Duration>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<Duration> {
    value.and_then(|d| d.parse().map_err(|e| problems.push(Problem::new(field, e.to_string()))).ok())
}

/// Problems for the bounds in `numbers` that are not finite. JSON has no NaN or infinity, so these
/// only come from YAML or code; every comparison with NaN is false, which would make a bound of NaN
/// pass every value.
pub(crate) fn finite(numbers: &[(&str, Option<f64>)], problems: &mut Vec<Problem>) {
    for (field, number) in numbers {
        if let Some(number) = number.filter(|n| !n.is_finite()) {
            problems.push(Problem::new(*field, format!("{number} is not a finite number")));
        }
    }
}
