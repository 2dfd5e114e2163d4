//! Bellwether's statistical judgments applied to the bundled example, which is written with
//! thresholds: each policy rewrites a metric's judgment the way a template author would, keeping
//! its query, interval and windows, and then judges it with the engine.

use bellwether::api::{
    Baseline, Compare, CompareTest, Direction, Measurement, Metric, Sequential as SequentialJudgment,
};
use bellwether::engine::{MetricVerdict, Window, judge_metric};
use bellwether::sim::{Policy, Signal};
use chrono::{DateTime, Duration, Utc};

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

impl Policy for CompareAtSteps {
    fn name(&self) -> &str {
        "bellwether compare"
    }

    fn judge(
        &self,
        metric: &Metric,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
        run_duration: Option<Duration>,
    ) -> MetricVerdict {
        if Window::of(metric, run_duration) == Window::Unbounded {
            return judge_metric(metric, measurements, started_at, run_duration);
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
        judge_metric(&compared, measurements, started_at, run_duration)
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

    fn judge(
        &self,
        metric: &Metric,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
        run_duration: Option<Duration>,
    ) -> MetricVerdict {
        if !matches!(Signal::of(metric), Signal::ErrorRatio { .. }) {
            return judge_metric(metric, measurements, started_at, run_duration);
        }
        let sequential = Metric {
            threshold: None,
            sequential: Some(SequentialJudgment {
                requests_query: "the simulation counts requests itself".into(),
                alpha: Some(self.alpha),
                max_increase: self.max_increase,
            }),
            ..metric.clone()
        };
        judge_metric(&sequential, measurements, started_at, run_duration)
    }
}
