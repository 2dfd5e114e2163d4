//! How three other canary tools would judge the same samples, each as its documentation and code
//! describe it, with the settings shown in its documentation's examples. They judge against the
//! metric's `threshold` (its `hysteresis`, which they lack, is ignored) and honour its `interval`,
//! `initialDelay` and `count`, fields these tools have under the same names or close kin.

use bellwether::api::{AnalysisPhase, HysteresisState, Measurement, Metric, Threshold};
use bellwether::engine::{Judge, MetricPlan, MetricVerdict, Window, format_value, mann_whitney_u};
use bellwether::sim::Policy;
use chrono::{DateTime, Duration, Utc};

/// What the baselines read from a metric: its threshold, the samples after `initialDelay`, and
/// how many measurements make up the run (`None` for background analysis, which never ends on
/// its own).
struct Run<'a> {
    metric: &'a Metric,
    threshold: Threshold,
    samples: &'a [Measurement],
    length: Option<u32>,
}

impl<'a> Run<'a> {
    fn new(plan: &MetricPlan<'a>, samples: &'a [Measurement], started_at: DateTime<Utc>) -> Self {
        let metric = plan.metric;
        let interval = plan.interval.max(Duration::seconds(1));
        let first_at = plan.first_counted_at(started_at);
        let length = match plan.window {
            Window::Count(n) => Some(n),
            Window::Duration(d) => Some((d.num_milliseconds() / interval.num_milliseconds()).max(1) as u32),
            Window::Unbounded => None,
        };
        let threshold =
            metric.threshold.clone().unwrap_or(Threshold { min: None, max: None, hysteresis: None });
        let skip = samples.iter().take_while(|s| s.at < first_at).count();
        Self { metric, threshold, samples: &samples[skip..], length }
    }

    fn within(&self, value: f64) -> bool {
        !(self.threshold.min.is_some_and(|m| value < m) || self.threshold.max.is_some_and(|m| value > m))
    }

    /// `0.034 (max 0.01)`.
    fn shown(&self, value: Option<f64>) -> String {
        let bounds = match (self.threshold.min, self.threshold.max) {
            (Some(min), Some(max)) => format!(" (range {min}..{max})"),
            (Some(min), None) => format!(" (min {min})"),
            (None, Some(max)) => format!(" (max {max})"),
            (None, None) => String::new(),
        };
        match value {
            Some(value) => format!("{}{bounds}", format_value(value)),
            None => "no data".into(),
        }
    }

    fn verdict(&self, phase: AnalysisPhase, message: String, at: Option<DateTime<Utc>>) -> MetricVerdict {
        let state = match phase {
            AnalysisPhase::Failed => HysteresisState::Failed,
            _ => HysteresisState::Healthy,
        };
        MetricVerdict {
            phase,
            message: format!("{}: {message}", self.metric.name),
            state,
            since: at.filter(|_| state == HysteresisState::Failed),
            consecutive_errors: 0,
            decided_at: at.filter(|_| phase.is_terminal()),
            dry_run: self.metric.dry_run,
        }
    }

    /// A verdict still running, Breaching since the first failed measurement if there was one.
    fn running(&self, message: String, first_failure: Option<DateTime<Utc>>) -> MetricVerdict {
        let mut verdict = self.verdict(AnalysisPhase::Running, message, None);
        if first_failure.is_some() {
            verdict.state = HysteresisState::Breaching;
            verdict.since = first_failure;
        }
        verdict
    }
}

/// Argo Rollouts' AnalysisRun (`analysis/analysis.go`, `assessMetricStatus`):
/// - a measurement is Successful when `successCondition` holds, here "within the threshold", and
///   Failed otherwise (`utils/evaluate`: without a `failureCondition`, a false success condition
///   is a failure; a NaN compares false, so it fails too);
/// - a query error, and an empty result, for which `result[0]` cannot be evaluated
///   (argo-rollouts#1466), are Error measurements: they do not count towards `count`, and more than
///   `consecutiveErrorLimit` (default 4) in a row make the metric an Error. The simulation's "no
///   data" is a canary that has served no request: its series do not exist, so the result is
///   empty;
/// - the metric fails once failed measurements exceed `failureLimit`, and succeeds once `count`
///   measurements are taken. A step's duration stands for `count` = duration / interval;
///   background analysis has no count and runs until it fails.
pub struct ArgoRollouts {
    /// `failureLimit: 3`, the value in every AnalysisTemplate of Argo Rollouts' analysis
    /// documentation (docs/features/analysis.md, "Background Analysis").
    pub failure_limit: u32,
}

impl Policy for ArgoRollouts {
    fn name(&self) -> &str {
        "argo-rollouts"
    }
}

impl Judge for ArgoRollouts {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        samples: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        let run = Run::new(plan, samples, started_at);
        let error_limit = plan.error_limit.max(0) as u32;
        let (mut counted, mut failed, mut errors) = (0u32, 0u32, 0u32);
        let mut first_failure = None;
        for sample in run.samples {
            let at = sample.at;
            match (sample.error.as_ref(), sample.value) {
                (Some(_), _) | (None, None) => {
                    errors += 1;
                    if errors > error_limit {
                        let why = sample.error.as_deref().unwrap_or("empty result, result[0] fails");
                        let message = format!(
                            "consecutiveErrors ({errors}) > consecutiveErrorLimit ({error_limit}): {why}"
                        );
                        return run.verdict(AnalysisPhase::Error, message, Some(at));
                    }
                    continue;
                }
                (None, Some(value)) => {
                    errors = 0;
                    counted += 1;
                    if value.is_nan() || !run.within(value) {
                        failed += 1;
                        first_failure.get_or_insert(at);
                    }
                    if failed > self.failure_limit {
                        let message = format!(
                            "failed ({failed}) > failureLimit ({}), last {}",
                            self.failure_limit,
                            run.shown(Some(value))
                        );
                        return run.verdict(AnalysisPhase::Failed, message, Some(at));
                    }
                }
            }
            if run.length.is_some_and(|n| counted >= n) {
                let message = format!("count ({counted}) reached with {failed} failed");
                return run.verdict(AnalysisPhase::Successful, message, Some(at));
            }
        }
        let message = format!("{counted} measured, {failed} failed (failureLimit {})", self.failure_limit);
        let mut verdict = run.running(message, first_failure);
        verdict.consecutive_errors = errors as i32;
        verdict
    }
}

/// Flagger's canary analysis (`pkg/controller/scheduler.go` and `scheduler_metrics.go`):
/// - every interval one check; it fails when the value is outside `thresholdRange`, when the
///   query fails, and when it returns no values ("Halt advancement no values found");
/// - a failed check halts advancement and increments `failedChecks`, which never resets during
///   the analysis; the canary is rolled back once `failedChecks >= threshold`;
/// - advancement needs passing checks, so the run succeeds after as many passing checks as it
///   has measurements (`count`, or the step's duration over the interval).
pub struct Flagger {
    /// `threshold: 5`, "max number of failed metric checks before rollback", as in Flagger's
    /// tutorials (docs/gitbook/tutorials, for example istio-progressive-delivery.md).
    pub threshold: u32,
}

impl Policy for Flagger {
    fn name(&self) -> &str {
        "flagger"
    }
}

impl Judge for Flagger {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        samples: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        let run = Run::new(plan, samples, started_at);
        let (mut passed, mut failed) = (0u32, 0u32);
        let mut first_failure = None;
        for sample in run.samples {
            let at = sample.at;
            let value = sample.value.filter(|v| !v.is_nan());
            if sample.error.is_none() && value.is_some_and(|v| run.within(v)) {
                passed += 1;
            } else {
                failed += 1;
                first_failure.get_or_insert(at);
                if failed >= self.threshold {
                    let why = sample.error.clone().unwrap_or_else(|| run.shown(value));
                    let message = format!("failed checks threshold reached {failed}, last {why}");
                    return run.verdict(AnalysisPhase::Failed, message, Some(at));
                }
            }
            if run.length.is_some_and(|n| passed >= n) {
                let message =
                    format!("{passed} checks passed, {failed} failed (threshold {})", self.threshold);
                return run.verdict(AnalysisPhase::Successful, message, Some(at));
            }
        }
        let message = format!("{passed} checks passed, {failed} failed (threshold {})", self.threshold);
        run.running(message, first_failure)
    }
}

/// Kayenta's canary analysis with its default judge, NetflixACAJudge (kayenta-judge:
/// `NetflixACAJudge.scala`, `MannWhitneyClassifier.scala`, `WeightedSumScorer.scala`):
/// - it compares the canary's values with the baseline's, here stable's, never with the
///   threshold. The direction comes from the threshold: only an increase is bad for a `max`,
///   only a decrease for a `min`;
/// - at the end of each judgement interval the whole window so far is classified. The judge takes
///   a Mann–Whitney test at 98% confidence (`confLevel = 0.98`): High when the canary is
///   significantly greater and its mean is at least the baseline's (`allowedIncrease` 1.0), Low
///   the other way round. Identical or all-equal data are a Pass. (The judge's outlier removal and
///   its tolerance on the Hodges–Lehmann shift are not modelled.)
/// - the score of a single metric is 100 for Pass and 0 for High or Low. A score below
///   `marginal` fails the canary at once; the last judgement must reach `pass`;
/// - with its default `nanStrategy`, a metric without data on either side is a Pass: so without
///   a baseline (stable has no traffic, or the metric source is down) the canary passes. A query
///   that fails at judgement time fails the analysis with an Error, as the stage does when it
///   cannot fetch metrics.
pub struct Kayenta {
    /// Measurements per judgement interval.
    pub judge_every: u32,
    /// `thresholds: {pass: 90, marginal: 75}`, as in Argo Rollouts' Kayenta example
    /// (docs/features/analysis.md, "Experimentation").
    pub pass: f64,
    pub marginal: f64,
}

/// NetflixACAJudge's confidence level for the Mann–Whitney classifier.
const KAYENTA_CONFIDENCE: f64 = 0.98;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Pass,
    High,
    Low,
}

impl Kayenta {
    fn classify(run: &Run<'_>, samples: &[Measurement]) -> (Class, String) {
        let canary: Vec<f64> = samples.iter().filter_map(|s| s.value).filter(|v| !v.is_nan()).collect();
        let stable: Vec<f64> = samples.iter().filter_map(|s| s.baseline).filter(|v| !v.is_nan()).collect();
        let Some(test) = mann_whitney_u(&canary, &stable) else {
            return (
                Class::Pass,
                format!("no data ({} canary, {} baseline values)", canary.len(), stable.len()),
            );
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let ratio = if mean(&stable) == 0.0 { 1.0 } else { mean(&canary) / mean(&stable) };
        let significant = test.p_two_sided < 1.0 - KAYENTA_CONFIDENCE;
        let (increase, decrease) = match (run.threshold.min, run.threshold.max) {
            (None, Some(_)) => (true, false),
            (Some(_), None) => (false, true),
            _ => (true, true),
        };
        let detail = format!(
            "{} canary vs {} baseline values, p {:.4}, mean ratio {}",
            canary.len(),
            stable.len(),
            test.p_two_sided,
            format_value(ratio)
        );
        let class = if increase && significant && test.z > 0.0 && ratio >= 1.0 {
            Class::High
        } else if decrease && significant && test.z < 0.0 && ratio <= 1.0 {
            Class::Low
        } else {
            Class::Pass
        };
        (class, detail)
    }
}

impl Policy for Kayenta {
    fn name(&self) -> &str {
        "kayenta"
    }
}

impl Judge for Kayenta {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        samples: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        let run = Run::new(plan, samples, started_at);
        let every = self.judge_every.max(1) as usize;
        let last = run.length.map(|n| n as usize);
        let ends: Vec<usize> =
            (1..=run.samples.len()).filter(|&k| k % every == 0 || Some(k) == last).collect();
        for (judgement, &end) in ends.iter().enumerate() {
            let sample = &run.samples[end - 1];
            let at = sample.at;
            if let Some(error) = &sample.error {
                let message = format!("judgement {} could not fetch metrics: {error}", judgement + 1);
                return run.verdict(AnalysisPhase::Error, message, Some(at));
            }
            let (class, detail) = Self::classify(&run, &run.samples[..end]);
            let score = if class == Class::Pass { 100.0 } else { 0.0 };
            let label = match class {
                Class::Pass => "Pass",
                Class::High => "High",
                Class::Low => "Low",
            };
            let message = format!(
                "judgement {} scored {score} ({label}: {detail}; marginal {}, pass {})",
                judgement + 1,
                self.marginal,
                self.pass
            );
            if score < self.marginal {
                return run.verdict(AnalysisPhase::Failed, message, Some(at));
            }
            if Some(end) == last {
                let phase =
                    if score >= self.pass { AnalysisPhase::Successful } else { AnalysisPhase::Failed };
                return run.verdict(phase, message, Some(at));
            }
        }
        let lifetime = match last {
            Some(n) => format!(" of {n}"),
            None => String::new(),
        };
        let message = format!(
            "{} measurements{lifetime}, judged every {} ({})",
            run.samples.len(),
            every,
            run.shown(run.samples.last().and_then(|s| s.value))
        );
        run.verdict(AnalysisPhase::Running, message, None)
    }
}
