//! Bellwether's statistical judgments applied to the bundled example, which is written with
//! thresholds: each policy rewrites a metric's judgment the way a template author would, keeping
//! its query, interval and windows, and then judges it with the engine.

use bellwether::api::{
    Baseline, Compare, CompareTest, Direction, Measurement, Metric, Sequential as SequentialJudgment,
};
use bellwether::engine::{Judge, MetricPlan, MetricVerdict, Window};
use bellwether::sim::{Policy, Signal};
use chrono::{DateTime, Utc};

/// The direction in which a threshold metric gets worse: up for a `max`, down for a `min` only.
fn worse(metric: &Metric) -> Direction {
    match &metric.threshold {
        Some(threshold) if threshold.max.is_none() && threshold.min.is_some() => Direction::Decrease,
        _ => Direction::Increase,
    }
}

/// Canary against stable at every analysis step, over the step's measurements. A comparison needs a
/// fixed sample, so background analysis (no window) keeps its threshold.
pub struct CompareAtSteps {
    pub confidence: f64,
    pub max_ratio: f64,
    /// The example's steps take five or six measurements per metric.
    pub min_samples: i32,
}

/// Judges `metric`, rewritten from the one `plan` is of, in the same run.
fn judge_rewritten(
    plan: &MetricPlan<'_>,
    metric: &Metric,
    measurements: &[Measurement],
    started_at: DateTime<Utc>,
) -> MetricVerdict {
    let rewritten = plan.of_same_run(metric).expect("a rewritten judgment is valid");
    rewritten.judge(measurements, started_at)
}

impl Policy for CompareAtSteps {
    fn name(&self) -> &str {
        "bellwether compare"
    }
}

impl Judge for CompareAtSteps {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        let metric = plan.metric;
        if plan.window == Window::Unbounded {
            return plan.judge(measurements, started_at);
        }
        let compared = Metric {
            threshold: None,
            compare: Some(Compare {
                baseline: Baseline::Stable,
                test: CompareTest::MannWhitney,
                direction: worse(metric),
                confidence: self.confidence,
                max_ratio: Some(self.max_ratio),
                min_samples: Some(self.min_samples),
                remove_outliers: false,
                distribution_test: None,
            }),
            ..metric.clone()
        };
        judge_rewritten(plan, &compared, measurements, started_at)
    }
}

/// Error rates judged by the sequential test on request counts, at steps and in the background;
/// latency metrics keep their threshold.
pub struct SequentialErrors {
    pub alpha: f64,
    pub max_increase: f64,
}

impl Policy for SequentialErrors {
    fn name(&self) -> &str {
        "bellwether sequential"
    }
}

impl Judge for SequentialErrors {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        let metric = plan.metric;
        if !matches!(Signal::of(metric), Signal::ErrorRatio { .. }) {
            return plan.judge(measurements, started_at);
        }
        let sequential = Metric {
            threshold: None,
            sequential: Some(SequentialJudgment {
                requests_query: "the simulation counts requests itself".into(),
                alpha: Some(self.alpha),
                max_increase: self.max_increase,
                breach_for: None,
            }),
            ..metric.clone()
        };
        judge_rewritten(plan, &sequential, measurements, started_at)
    }
}
