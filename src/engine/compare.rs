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

use super::judge::{ErrorRun, MetricVerdict, Window, first_counted_at, format_value};
use super::stats::{drop_outliers, kolmogorov_smirnov, mann_whitney_u};
use crate::api::{
    AnalysisPhase, Compare, Direction, DistributionTest, HysteresisState, Measurement, Metric,
    format_duration,
};
use chrono::{DateTime, Duration, Utc};

/// Values needed on each side, and non-zero values in all, when `minSamples` is unset.
const DEFAULT_MIN_SAMPLES: i32 = 10;

/// The ratio of means a significant difference must exceed when `maxRatio` is unset: any.
const DEFAULT_MAX_RATIO: f64 = 1.0;

/// Judges a compare metric. `started_at` is when the run started; `run_duration` its window when
/// the metric has no `count`.
pub fn judge(
    metric: &Metric,
    compare: &Compare,
    measurements: &[Measurement],
    started_at: DateTime<Utc>,
    run_duration: Option<Duration>,
) -> MetricVerdict {
    let name = &metric.name;
    let verdict = |phase, message: String, consecutive_errors, decided_at: Option<DateTime<Utc>>| {
        let failed = phase == AnalysisPhase::Failed;
        let state = if failed { HysteresisState::Failed } else { HysteresisState::Healthy };
        MetricVerdict::of(
            metric,
            phase,
            message,
            state,
            decided_at.filter(|_| failed),
            consecutive_errors,
            decided_at,
        )
    };
    let window = Window::of(metric, run_duration);
    if window == Window::Unbounded {
        let message = format!(
            "{name}: compare needs a fixed sample to decide on; give the metric a count to run it in \
             background analysis"
        );
        return verdict(AnalysisPhase::Error, message, 0, None);
    }
    let first_at = first_counted_at(metric, started_at);
    let mut errors = ErrorRun::new(metric);
    let mut taken: Vec<&Measurement> = Vec::new();
    for measurement in measurements.iter().filter(|m| m.at >= first_at) {
        match errors.record(name, measurement) {
            Err(message) => {
                return verdict(AnalysisPhase::Error, message, errors.count, Some(measurement.at));
            }
            Ok(true) => taken.push(measurement),
            Ok(false) => {}
        }
        let complete = match window {
            Window::Count(n) => taken.len() >= n as usize,
            Window::Duration(d) => measurement.at >= first_at + d,
            Window::Unbounded => false,
        };
        if complete {
            let (phase, message) = decide(name, compare, &taken);
            return verdict(phase, message, errors.count, Some(measurement.at));
        }
    }
    let message = match errors.progress(name) {
        Some(message) => message,
        None => {
            let progress = match window {
                Window::Count(n) => format!("{} of {n} measurements", taken.len()),
                Window::Duration(d) => {
                    let elapsed = measurements.last().map_or(Duration::zero(), |m| m.at - first_at);
                    format!("{} of {}", format_duration(elapsed.max(Duration::zero())), format_duration(d))
                }
                Window::Unbounded => String::new(),
            };
            format!("{name}: {progress} taken; compares with stable once the window is complete")
        }
    };
    verdict(AnalysisPhase::Running, message, errors.count, None)
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
