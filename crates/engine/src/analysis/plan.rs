//! How a metric's plan is built: its durations parsed and checked, its defaults applied, and its
//! judgment picked from the one of `threshold`, `compare` or `sequential` it sets. A fourth
//! judgment is a module implementing [`Judgment`] and one arm here.

use super::metric::{Judgment, MetricPlan, Problem, duration};
use super::verdict::Window;
use super::{compare, sequential, threshold};
use bellwether_api::{DEFAULT_CONSECUTIVE_ERROR_LIMIT, DEFAULT_INTERVAL, Metric};
use chrono::Duration;

/// The shortest metric `interval`: measuring more often would load Prometheus for no gain, since
/// few scrape faster.
const MIN_INTERVAL: Duration = Duration::seconds(1);

impl<'a> MetricPlan<'a> {
    /// Resolves `metric` for a run whose window, when the metric has no `count`, is `run_duration`;
    /// every problem found when it cannot be.
    pub fn new(metric: &'a Metric, run_duration: Option<Duration>) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let interval =
            duration(metric.interval.as_ref(), "interval", &mut problems).unwrap_or(DEFAULT_INTERVAL);
        if interval < MIN_INTERVAL {
            let shown = metric.interval.as_ref().map(ToString::to_string).unwrap_or_default();
            problems.push(Problem::new(
                "interval",
                format!("{shown} is below the minimum of 1s: a metric is measured once an interval"),
            ));
        }
        let initial_delay = duration(metric.initial_delay.as_ref(), "initialDelay", &mut problems)
            .unwrap_or_else(Duration::zero);
        let judgment: Option<Box<dyn Judgment + 'a>> =
            match (&metric.threshold, &metric.compare, &metric.sequential) {
                (Some(settings), None, None) => {
                    Some(Box::new(threshold::resolve(settings, metric, &mut problems)))
                }
                (None, Some(settings), None) => Some(Box::new(compare::resolve(settings, &mut problems))),
                (None, None, Some(settings)) => Some(Box::new(sequential::resolve(settings, &mut problems))),
                _ => {
                    problems
                        .push(Problem::new("", "must have exactly one of threshold, compare or sequential"));
                    None
                }
            };
        match judgment {
            Some(judgment) if problems.is_empty() => Ok(Self {
                metric,
                interval,
                initial_delay,
                window: Window::of(metric, run_duration),
                error_limit: metric.consecutive_error_limit.unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT),
                run_duration,
                judgment,
            }),
            _ => Err(problems),
        }
    }

    /// The plan of another metric in the same run, such as this one with its judgment rewritten.
    pub fn of_same_run<'b>(&self, metric: &'b Metric) -> Result<MetricPlan<'b>, Vec<Problem>> {
        MetricPlan::new(metric, self.run_duration)
    }
}
