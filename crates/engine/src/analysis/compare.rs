//! The compare judgment: the canary's measurements against stable's, taken by the same query at the
//! same times (each measurement's `value` is the canary's, its `baseline` stable's).
//!
//! It is a fixed-sample test. The metric stays Running, whatever the early data shows, until its
//! window is complete (`count` measurements, or the step's duration), and then decides once.
//! Looking at a significance test after every measurement and stopping at the first significant
//! result would fail good canaries far more often than `confidence` promises; a judgment that may
//! decide at any time is the sequential one.
//!
//! At the decision the Mann–Whitney U test asks whether the canary moved in `direction`; a
//! significant move fails the metric when the ratio of means exceeds `maxRatio`. An optional
//! Kolmogorov–Smirnov test also fails it on a change of shape, such as a wider spread with the
//! same median, that a test of location does not see. Samples that are small or mostly zero are
//! Inconclusive, never Successful: a rank test on a handful of rare errors cannot tell a broken
//! canary from a good one.

use super::metric::{Judgment, MetricPlan, Problem, finite};
use super::stats::{drop_outliers, kolmogorov_smirnov, mann_whitney_u};
use super::verdict::{ErrorRun, Fold, MetricVerdict, Window, fold, format_value};
use bellwether_api::{
    AnalysisPhase, Compare, Direction, DistributionTest, HysteresisState, Measurement, format_duration,
};
use chrono::{DateTime, Duration, Utc};

/// Values needed on each side, and non-zero values in all, when `minSamples` is unset.
const DEFAULT_MIN_SAMPLES: i32 = 10;

/// The ratio of means a significant difference must exceed when `maxRatio` is unset: any.
const DEFAULT_MAX_RATIO: f64 = 1.0;

/// A compare metric's settings, checked.
#[derive(Debug)]
pub(crate) struct Settings<'a>(&'a Compare);

/// Checks a compare metric's settings.
pub(crate) fn resolve<'a>(compare: &'a Compare, problems: &mut Vec<Problem>) -> Settings<'a> {
    finite(
        &[("compare.confidence", Some(compare.confidence)), ("compare.maxRatio", compare.max_ratio)],
        problems,
    );
    Settings(compare)
}

impl Judgment for Settings<'_> {
    fn judge(
        &self,
        plan: &MetricPlan<'_>,
        measurements: &[Measurement],
        started_at: DateTime<Utc>,
    ) -> MetricVerdict {
        let name = &plan.metric.name;
        if plan.window == Window::Unbounded {
            let message = format!(
                "{name}: compare needs a fixed sample to decide on; give the metric a count to run it in \
                 background analysis"
            );
            return MetricVerdict::unjudgeable(plan.metric, message);
        }
        let state = State {
            name,
            compare: self.0,
            window: plan.window,
            first_at: plan.first_counted_at(started_at),
            errors: ErrorRun::new(plan.error_limit),
            taken: Vec::new(),
            last_at: None,
            failed_at: None,
        };
        fold(plan.metric, plan.first_counted_at(started_at), state, measurements)
    }

    /// The whole window, `count`, or `duration / interval + 1`, which the test decides on.
    fn needs(&self, plan: &MetricPlan<'_>) -> usize {
        match plan.window {
            Window::Count(n) => n as usize,
            Window::Duration(d) => plan.intervals(d) + 1,
            // Compare refuses to run without a window.
            Window::Unbounded => 1,
        }
    }
}

/// The measurements taken towards the window.
struct State<'a, 'm> {
    name: &'a str,
    compare: &'a Compare,
    window: Window,
    first_at: DateTime<Utc>,
    errors: ErrorRun,
    taken: Vec<&'m Measurement>,
    last_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
}

impl<'m> Fold<'m> for State<'_, 'm> {
    fn observe(&mut self, measurement: &'m Measurement) -> Option<(AnalysisPhase, String)> {
        self.last_at = Some(measurement.at);
        match self.errors.record(self.name, measurement) {
            Err(message) => return Some((AnalysisPhase::Error, message)),
            Ok(true) => self.taken.push(measurement),
            Ok(false) => {}
        }
        let complete = match self.window {
            Window::Count(n) => self.taken.len() >= n as usize,
            Window::Duration(d) => measurement.at >= self.first_at + d,
            Window::Unbounded => false,
        };
        if !complete {
            return None;
        }
        let (phase, message) = decide(self.name, self.compare, &self.taken);
        if phase == AnalysisPhase::Failed {
            self.failed_at = Some(measurement.at);
        }
        Some((phase, message))
    }

    fn progress(&self) -> String {
        let name = self.name;
        if let Some(message) = self.errors.progress(name) {
            return message;
        }
        let progress = match self.window {
            Window::Count(n) => format!("{} of {n} measurements", self.taken.len()),
            Window::Duration(d) => {
                let elapsed = self.last_at.map_or(Duration::zero(), |at| at - self.first_at);
                format!("{} of {}", format_duration(elapsed.max(Duration::zero())), format_duration(d))
            }
            Window::Unbounded => String::new(),
        };
        format!("{name}: {progress} taken; compares with stable once the window is complete")
    }

    fn state(&self) -> (HysteresisState, Option<DateTime<Utc>>) {
        match self.failed_at {
            Some(at) => (HysteresisState::Failed, Some(at)),
            None => (HysteresisState::Healthy, None),
        }
    }

    fn errors(&self) -> i32 {
        self.errors.count
    }
}

/// The verdict on a complete window.
fn decide(name: &str, compare: &Compare, taken: &[&Measurement]) -> (AnalysisPhase, String) {
    let sample = |of: fn(&Measurement) -> Option<f64>| -> Vec<f64> {
        let values: Vec<f64> = taken.iter().filter_map(|m| of(m)).filter(|v| !v.is_nan()).collect();
        if compare.remove_outliers { drop_outliers(&values) } else { values }
    };
    let canary = sample(|m| m.value);
    let stable = sample(|m| m.baseline);
    let min = compare.min_samples.unwrap_or(DEFAULT_MIN_SAMPLES).max(1) as usize;
    let rare = "use a sequential judgment for rare errors";
    if canary.len() < min || stable.len() < min {
        let message = format!(
            "{name}: only {} canary and {} stable values of the {min} needed on each side: too few to \
             compare; {rare}",
            canary.len(),
            stable.len()
        );
        return (AnalysisPhase::Inconclusive, message);
    }
    let non_zero = canary.iter().chain(&stable).filter(|v| **v != 0.0).count();
    if non_zero < min {
        let message = format!(
            "{name}: only {non_zero} non-zero values of the {min} needed: too sparse to compare; {rare}"
        );
        return (AnalysisPhase::Inconclusive, message);
    }
    let counts = format!("{} vs {} values", canary.len(), stable.len());
    let alpha = 1.0 - compare.confidence;
    let mwu = mann_whitney_u(&canary, &stable).expect("both samples hold values, none of them NaN");
    let (canary_mean, stable_mean) = (mean(&canary), mean(&stable));
    let (p, ratio, moving) = match compare.direction {
        Direction::Increase => (mwu.p_greater, ratio(canary_mean, stable_mean), "increase"),
        Direction::Decrease => (mwu.p_less, ratio(stable_mean, canary_mean), "decrease"),
        Direction::Either => {
            (mwu.p_two_sided, ratio(canary_mean, stable_mean).max(ratio(stable_mean, canary_mean)), "change")
        }
    };
    let direction = match compare.direction {
        Direction::Either => "either direction",
        _ => moving,
    };
    let means = describe_means(canary_mean, stable_mean);
    let max_ratio = compare.max_ratio.unwrap_or(DEFAULT_MAX_RATIO);
    let significant = p < alpha;
    if significant && ratio > max_ratio {
        let message = format!(
            "{name}: {means} (Mann–Whitney p = {} < {}, {direction}), {counts}",
            format_p(p),
            format_value(alpha)
        );
        return (AnalysisPhase::Failed, message);
    }
    let location = if significant {
        format!(
            "{means}, within maxRatio {} (Mann–Whitney p = {}, {direction})",
            format_value(max_ratio),
            format_p(p)
        )
    } else {
        format!("no significant {moving} (p = {})", format_p(p))
    };
    let Some(DistributionTest::KolmogorovSmirnov) = compare.distribution_test else {
        return (AnalysisPhase::Successful, format!("{name}: {location}, {counts}"));
    };
    let ks = kolmogorov_smirnov(&canary, &stable).expect("both samples hold values, none of them NaN");
    // A directed judgment counts only the gap on its own side, so that a canary that got better
    // (lower latency, with the same or a narrower spread) is not failed for being different.
    let (d, p) = match compare.direction {
        Direction::Increase => (ks.d_higher, ks.p_higher),
        Direction::Decrease => (ks.d_lower, ks.p_lower),
        Direction::Either => (ks.d, ks.p_two_sided),
    };
    if p < alpha {
        let message = format!(
            "{name}: canary's distribution differs from stable's (Kolmogorov–Smirnov D = {}, p = {} < {}, \
             {direction}) while {location}, {counts}",
            format_value(d),
            format_p(p),
            format_value(alpha)
        );
        return (AnalysisPhase::Failed, message);
    }
    let message = format!(
        "{name}: {location}; no significant change of distribution (Kolmogorov–Smirnov p = {}), {counts}",
        format_p(p)
    );
    (AnalysisPhase::Successful, message)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// How many times `worse` is `base`: 1 when they are equal, infinite when `base` is 0 and `worse`
/// above it, for a canary that fails where stable never did.
fn ratio(worse: f64, base: f64) -> f64 {
    if worse == base {
        1.0
    } else if base == 0.0 {
        if worse > 0.0 { f64::INFINITY } else { 0.0 }
    } else {
        worse / base
    }
}

/// `canary mean 0.41 is 1.86× stable's 0.22`, or `... 2× lower than stable's ...`.
fn describe_means(canary: f64, stable: f64) -> String {
    let (c, s) = (format_value(canary), format_value(stable));
    if canary == stable || canary == 0.0 || stable == 0.0 {
        return format!("canary mean {c} against stable's {s}");
    }
    let times = |r: f64| {
        let text = format!("{r:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if canary > stable {
        format!("canary mean {c} is {}× stable's {s}", times(canary / stable))
    } else {
        format!("canary mean {c} is {}× lower than stable's {s}", times(stable / canary))
    }
}

/// A p-value with four significant digits, or in scientific notation once it is tiny.
fn format_p(p: f64) -> String {
    if p >= 1e-4 || p == 0.0 { format_value(p) } else { format!("{p:.1e}") }
}
