//! Who judges a simulated analysis. Bellwether's own judge is one [`Policy`]; the accuracy
//! benchmark plugs in the policies of other canary tools to compare them on the same traffic.

use crate::api::{Measurement, Metric};
use crate::engine::{MetricVerdict, judge_metric};
use chrono::{DateTime, Duration, Utc};

/// One measurement of a metric: the canary's value, as the metric's query would return it, and the
/// same query for the stable revision, which comparing policies use as the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub canary: Measurement,
    /// `None` when stable had no traffic in the window or the metric source was down.
    pub stable: Option<f64>,
}

/// A way to judge a metric from its samples so far.
pub trait Policy: Sync {
    /// A short name for tables, for example `bellwether`.
    fn name(&self) -> &str;

    /// Judges one metric of a run from every sample taken since the run started at `started_at`.
    /// `run_duration` is the run's window when the metric has no `count` (see
    /// [`crate::engine::Window::of`]). The verdict must only use samples, never the future.
    fn judge(
        &self,
        metric: &Metric,
        samples: &[Sample],
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
        samples: &[Sample],
        started_at: DateTime<Utc>,
        run_duration: Option<Duration>,
    ) -> MetricVerdict {
        let measurements: Vec<Measurement> = samples.iter().map(|s| s.canary.clone()).collect();
        judge_metric(metric, &measurements, started_at, run_duration)
    }
}
