//! Who judges a run's metrics: Bellwether's own judgments, or in the accuracy benchmark another
//! tool's policy, through the same run core.

use super::metric::{MAX_MEASUREMENTS, MetricPlan, Problem};
use super::verdict::MetricVerdict;
use bellwether_api::{Measurement, Metric};
use chrono::{DateTime, Duration, Utc};

/// Who judges a run's metrics. The controller always judges with [`Bellwether`]; the accuracy
/// benchmark drives the same run core with other tools' policies, to compare them on equal terms.
pub trait Judge: Sync {
    /// The verdict on `measurements` (oldest first) of a run that started at `started_at`. It must
    /// use only these, never the future.
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict;

    /// The most of a metric's latest measurements the judge looks at before it decides: by
    /// default all of them, which a status holds up to [`MAX_MEASUREMENTS`].
    fn needs(&self, _plan: &MetricPlan<'_>) -> usize {
        MAX_MEASUREMENTS
    }

    /// Whether everything up to a measurement after which the metric was Healthy, with no
    /// measurement error pending, can be forgotten without changing any later verdict.
    fn forgets(&self, _plan: &MetricPlan<'_>) -> bool {
        false
    }
}

/// Bellwether's own judgments, as each metric's settings pick them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bellwether;

impl Judge for Bellwether {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        plan.judge(measurements, started_at)
    }

    fn needs(&self, plan: &MetricPlan<'_>) -> usize {
        plan.needs()
    }

    fn forgets(&self, plan: &MetricPlan<'_>) -> bool {
        plan.forgets()
    }
}

/// Judges one metric with Bellwether's judgments. `started_at` is when the run started;
/// `run_duration` its window when the metric has no `count`.
pub fn judge_metric(
    metric: &Metric,
    measurements: &[Measurement],
    started_at: DateTime<Utc>,
    run_duration: Option<Duration>,
) -> MetricVerdict {
    verdict_of(&Bellwether, metric, measurements, started_at, run_duration)
}

/// `metric`'s verdict by `judge`, or an Error naming why it cannot be judged at all.
pub(crate) fn verdict_of(
    judge: &dyn Judge,
    metric: &Metric,
    measurements: &[Measurement],
    started_at: DateTime<Utc>,
    run_duration: Option<Duration>,
) -> MetricVerdict {
    match MetricPlan::new(metric, run_duration) {
        Ok(plan) => judge.judge(&plan, measurements, started_at),
        Err(problems) => unplannable(metric, &problems),
    }
}

/// The Error verdict of a metric whose settings cannot be resolved, naming each problem.
pub(crate) fn unplannable(metric: &Metric, problems: &[Problem]) -> MetricVerdict {
    let problems = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    MetricVerdict::unjudgeable(metric, format!("{}: cannot be judged: {problems}", metric.name))
}
