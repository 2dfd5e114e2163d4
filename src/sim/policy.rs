//! Who judges a simulated analysis. Bellwether's own judge is one [`Policy`]; the accuracy
//! benchmark plugs in the policies of other canary tools to compare them on the same traffic.

use crate::api::{Measurement, Metric};
use crate::engine::{MetricVerdict, judge_metric};
use chrono::{DateTime, Duration, Utc};

/// A way to judge a metric from its samples so far.
pub trait Policy: Sync {
    /// A short name for tables, for example `bellwether`.
    fn name(&self) -> &str;

    /// Judges one metric of a run from every measurement taken since the run started at
    /// `started_at`. Each carries the canary's value, stable's as its `baseline`, and both
    /// revisions' request counts over the interval.
    /// `run_duration` is the run's window when the metric has no `count` (see
    /// [`crate::engine::Window::of`]). The verdict must only use these, never the future.
    fn judge(
        &self,
        metric: &Metric,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
        run_duration: Option<Duration>,
    ) -> MetricVerdict;
}

/// Bellwether's hysteresis judge, exactly as the AnalysisRun controller applies it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bellwether;

impl Policy for Bellwether {
    fn name(&self) -> &str {
        "bellwether"
    }

    fn judge(
        &self,
        metric: &Metric,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
        run_duration: Option<Duration>,
    ) -> MetricVerdict {
        judge_metric(metric, measurements, started_at, run_duration)
    }
}
