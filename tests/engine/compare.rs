//! The compare judgment: the canary against stable, decided once on a complete window.

use super::fixtures::at_minute;
use bellwether::api::{AnalysisPhase, HysteresisState, Measurement, Metric};
use bellwether::engine::{MetricVerdict, judge_metric};
use chrono::Duration;
use proptest::prelude::*;

/// A metric named `name`, measured every minute, with `compare` settings added to
/// `{"confidence": 0.95}` and `extra` fields (such as `count`) added to the metric.
fn metric(name: &str, compare: serde_json::Value, extra: serde_json::Value) -> Metric {
    let mut settings = serde_json::json!({"confidence": 0.95});
    settings.as_object_mut().unwrap().extend(compare.as_object().unwrap().clone());
    let mut value = serde_json::json!({
        "name": name,
        "interval": "1m",
        "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "q"}},
        "compare": settings
    });
    value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(value).expect("fixture metric parses")
}

/// One measurement a minute from minute 1: the canary's value and stable's, `None` for no data.
fn series(canary: &[Option<f64>], stable: &[Option<f64>]) -> Vec<Measurement> {
    canary
        .iter()
        .zip(stable)
        .enumerate()
        .map(|(i, (value, baseline))| Measurement {
            at: at_minute(i as f64 + 1.0),
            value: *value,
            baseline: *baseline,
            ..Measurement::default()
        })
        .collect()
}

fn judge(metric: &Metric, canary: &[f64], stable: &[f64]) -> MetricVerdict {
    let some = |values: &[f64]| values.iter().copied().map(Some).collect::<Vec<_>>();
    judge_metric(metric, &series(&some(canary), &some(stable)), at_minute(0.0), None)
}

const STABLE: [f64; 12] = [0.21, 0.23, 0.2, 0.24, 0.22, 0.19, 0.25, 0.22, 0.2, 0.23, 0.21, 0.24];
const CANARY_SLOW: [f64; 12] = [0.39, 0.43, 0.4, 0.44, 0.41, 0.38, 0.45, 0.41, 0.39, 0.42, 0.4, 0.43];

fn latency(compare: serde_json::Value) -> Metric {
    metric("p99-latency", compare, serde_json::json!({"count": 12}))
}

#[test]
fn a_clear_increase_fails_once_the_window_is_complete() {
    let v = judge(&latency(serde_json::json!({})), &CANARY_SLOW, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert_eq!(
        v.message,
        "p99-latency: canary mean 0.4125 is 1.88× stable's 0.22 (Mann–Whitney p = 1.8e-5 < 0.05, \
         increase), 12 vs 12 values"
    );
    assert_eq!(v.state, HysteresisState::Failed);
    assert_eq!(v.decided_at, Some(at_minute(12.0)));
    assert!(!v.dry_run);
}

#[test]
fn noise_passes() {
    let canary = [0.22, 0.2, 0.24, 0.21, 0.23, 0.25, 0.19, 0.22, 0.21, 0.24, 0.2, 0.23];
    let v = judge(&latency(serde_json::json!({})), &canary, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Successful);
    assert!(v.message.starts_with("p99-latency: no significant increase (p = 0."), "{}", v.message);
    assert!(v.message.ends_with("), 12 vs 12 values"), "{}", v.message);
    assert_eq!(v.state, HysteresisState::Healthy);
    assert_eq!(v.decided_at, Some(at_minute(12.0)));
}

/// Kayenta's classic blind spot: most canary points far above stable's, a few alike.
#[test]
fn seven_of_ten_canary_points_at_a_hundred_times_stable_fail() {
    let stable = [0.011, 0.012, 0.01, 0.013, 0.011, 0.012, 0.01, 0.011, 0.013, 0.012];
    let canary: Vec<f64> =
        stable.iter().enumerate().map(|(i, s)| if i < 7 { s * 100.0 } else { *s }).collect();
    let m = metric("error-rate", serde_json::json!({}), serde_json::json!({"count": 10}));
    let v = judge(&m, &canary, &stable);
    assert_eq!(v.phase, AnalysisPhase::Failed, "{}", v.message);
}

#[test]
fn mostly_zero_series_are_inconclusive_never_successful() {
    let m = metric("error-rate", serde_json::json!({}), serde_json::json!({"count": 10}));
    let canary = [0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.0];
    let stable = [0.0, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.01, 0.0];
    let v = judge(&m, &canary, &stable);
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
    assert_eq!(
        v.message,
        "error-rate: only 4 non-zero values of the 10 needed: too sparse to compare; use a sequential \
         judgment for rare errors"
    );
    assert_eq!(v.decided_at, Some(at_minute(10.0)));
    // However the few errors fall, a mostly-zero window never passes.
    let v = judge(&m, &[0.0; 10], &[0.0; 10]);
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
    let v = judge(&m, &[0.0; 10], &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3]);
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
}

/// Same median, four times the spread: a rank test of location sees nothing, the distribution
/// test does.
#[test]
fn a_pure_variance_increase_passes_mann_whitney_alone_but_fails_kolmogorov_smirnov() {
    // Interleaved, so that each half of the window looks alike.
    let grid = |low: f64, width: f64| -> Vec<f64> {
        (0..40).map(|i| low + width * f64::from((i * 17) % 40) / 39.0).collect()
    };
    let (canary, stable) = (grid(0.6, 0.8), grid(0.9, 0.2));
    let count = serde_json::json!({"count": 40});
    let v = judge(&metric("p99-latency", serde_json::json!({}), count.clone()), &canary, &stable);
    assert_eq!(v.phase, AnalysisPhase::Successful, "{}", v.message);
    let with_ks = serde_json::json!({"distributionTest": "kolmogorovSmirnov"});
    let v = judge(&metric("p99-latency", with_ks, count), &canary, &stable);
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert!(
        v.message.starts_with(
            "p99-latency: canary's distribution differs from stable's (Kolmogorov–Smirnov D = 0.375, p = 0.0"
        ),
        "{}",
        v.message
    );
    assert!(
        v.message.ends_with("increase) while no significant increase (p = 0.5019), 40 vs 40 values"),
        "{}",
        v.message
    );
}

/// A canary that is simply better differs from stable too, but not in the direction that hurts.
#[test]
fn kolmogorov_smirnov_does_not_fail_an_improvement() {
    let m = latency(serde_json::json!({"distributionTest": "kolmogorovSmirnov"}));
    let faster: Vec<f64> = STABLE.iter().map(|s| s / 2.0).collect();
    let v = judge(&m, &faster, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Successful, "{}", v.message);
    assert!(
        v.message.contains("no significant change of distribution (Kolmogorov–Smirnov p = 1)"),
        "{}",
        v.message
    );
}

#[test]
fn direction_decrease_and_either() {
    let lower: Vec<f64> = STABLE.iter().map(|s| s / 2.0).collect();
    let phase = |direction: &str, canary: &[f64]| {
        judge(&latency(serde_json::json!({"direction": direction})), canary, &STABLE).phase
    };
    assert_eq!(phase("decrease", &lower), AnalysisPhase::Failed);
    assert_eq!(phase("increase", &lower), AnalysisPhase::Successful);
    assert_eq!(phase("decrease", &CANARY_SLOW), AnalysisPhase::Successful);
    assert_eq!(phase("either", &lower), AnalysisPhase::Failed);
    assert_eq!(phase("either", &CANARY_SLOW), AnalysisPhase::Failed);
    let v = judge(&latency(serde_json::json!({"direction": "decrease"})), &lower, &STABLE);
    assert_eq!(
        v.message,
        "p99-latency: canary mean 0.11 is 2× lower than stable's 0.22 (Mann–Whitney p = 1.8e-5 < 0.05, \
         decrease), 12 vs 12 values"
    );
}

#[test]
fn max_ratio_lets_a_significant_but_small_difference_pass() {
    let canary: Vec<f64> = STABLE.iter().map(|s| s * 1.08).collect();
    let v = judge(&latency(serde_json::json!({})), &canary, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Failed, "8% slower is significant here: {}", v.message);
    let v = judge(&latency(serde_json::json!({"maxRatio": 1.1})), &canary, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Successful);
    assert!(
        v.message.starts_with("p99-latency: canary mean 0.2376 is 1.08× stable's 0.22, within maxRatio 1.1"),
        "{}",
        v.message
    );
    let v = judge(&latency(serde_json::json!({"maxRatio": 1.5})), &CANARY_SLOW, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Failed, "1.88× is beyond 1.5");
}

/// One wild stable value inflates stable's mean above the canary's, whose values are all higher:
/// the ranks show the regression, the ratio of means hides it until the outlier is dropped.
#[test]
fn remove_outliers_keeps_one_wild_stable_value_from_masking_a_regression() {
    let mut stable = STABLE;
    stable[5] = 9.0;
    let v = judge(&latency(serde_json::json!({})), &CANARY_SLOW, &stable);
    assert_eq!(v.phase, AnalysisPhase::Successful, "masked: {}", v.message);
    let v = judge(&latency(serde_json::json!({"removeOutliers": true})), &CANARY_SLOW, &stable);
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert!(v.message.ends_with("12 vs 11 values"), "{}", v.message);
}

#[test]
fn fewer_values_than_min_samples_are_inconclusive() {
    let m = latency(serde_json::json!({}));
    let canary: Vec<Option<f64>> =
        CANARY_SLOW.iter().enumerate().map(|(i, v)| (i % 2 == 0).then_some(*v)).collect();
    let stable: Vec<Option<f64>> = STABLE.iter().copied().map(Some).collect();
    let v = judge_metric(&m, &series(&canary, &stable), at_minute(0.0), None);
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
    assert_eq!(
        v.message,
        "p99-latency: only 6 canary and 12 stable values of the 10 needed on each side: too few to compare; \
         use a sequential judgment for rare errors"
    );
    let v = judge(&latency(serde_json::json!({"minSamples": 20})), &CANARY_SLOW, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
}

#[test]
fn nothing_is_decided_before_the_window_is_complete() {
    let m = latency(serde_json::json!({}));
    let v = judge(&m, &[9.0; 11], &STABLE[..11]);
    assert_eq!(v.phase, AnalysisPhase::Running, "damning, but only 11 of 12");
    assert_eq!(v.decided_at, None);
    assert_eq!(v.state, HysteresisState::Healthy);
    assert_eq!(
        v.message,
        "p99-latency: 11 of 12 measurements taken; compares with stable once the window is complete"
    );
    // Without a count, the window is the step's duration: decided at the first measurement at or
    // after its end.
    let m = metric("p99-latency", serde_json::json!({}), serde_json::json!({}));
    let measurements = series(&[Some(0.4); 12], &STABLE.map(Some));
    let v = judge_metric(&m, &measurements[..9], at_minute(0.0), Some(Duration::minutes(10)));
    assert_eq!((v.phase, v.decided_at), (AnalysisPhase::Running, None));
    assert_eq!(v.message, "p99-latency: 9m of 10m taken; compares with stable once the window is complete");
    let v = judge_metric(&m, &measurements, at_minute(0.0), Some(Duration::minutes(10)));
    assert_eq!((v.phase, v.decided_at), (AnalysisPhase::Failed, Some(at_minute(10.0))));
}

#[test]
fn measurements_before_the_initial_delay_do_not_count() {
    let m =
        metric("p99-latency", serde_json::json!({}), serde_json::json!({"count": 10, "initialDelay": "3m"}));
    // The first two minutes are a cold start: slow, and not part of the sample.
    let mut canary = vec![5.0, 5.0];
    canary.extend(&STABLE[..10]);
    let v = judge(&m, &canary, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Successful, "{}", v.message);
    assert!(v.message.ends_with("10 vs 10 values"), "{}", v.message);
    assert_eq!(v.decided_at, Some(at_minute(12.0)));
}

#[test]
fn measurement_errors_are_skipped_until_they_exceed_the_limit() {
    let m = metric(
        "p99-latency",
        serde_json::json!({}),
        serde_json::json!({"count": 10, "consecutiveErrorLimit": 2}),
    );
    let error = |minute: f64| Measurement {
        at: at_minute(minute),
        error: Some("connection refused".into()),
        ..Measurement::default()
    };
    let mut measurements = series(&CANARY_SLOW.map(Some), &STABLE.map(Some));
    measurements.insert(3, error(3.5));
    measurements.insert(4, error(3.7));
    let v = judge_metric(&m, &measurements[..5], at_minute(0.0), None);
    assert_eq!(v.phase, AnalysisPhase::Running);
    assert_eq!(v.consecutive_errors, 2);
    assert_eq!(v.message, "p99-latency: 2 measurement error(s) in a row (limit 2): connection refused");
    let v = judge_metric(&m, &measurements, at_minute(0.0), None);
    assert_eq!(v.phase, AnalysisPhase::Failed, "two errors, then ten values: {}", v.message);
    assert_eq!(v.decided_at, Some(at_minute(10.0)));
    measurements.insert(5, error(3.9));
    let v = judge_metric(&m, &measurements, at_minute(0.0), None);
    assert_eq!(v.phase, AnalysisPhase::Error);
    assert_eq!(
        v.message,
        "p99-latency: 3 measurement errors in a row (consecutiveErrorLimit 2): connection refused"
    );
    assert_eq!(v.decided_at, Some(at_minute(3.9)));
}

#[test]
fn an_unbounded_window_is_an_error() {
    let m = metric("p99-latency", serde_json::json!({}), serde_json::json!({}));
    let v = judge(&m, &CANARY_SLOW, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Error);
    assert!(v.message.contains("give the metric a count"), "{}", v.message);
}

#[test]
fn a_dry_run_says_so() {
    let m = metric("p99-latency", serde_json::json!({}), serde_json::json!({"count": 12, "dryRun": true}));
    let v = judge(&m, &CANARY_SLOW, &STABLE);
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert!(v.dry_run);
    assert!(v.message.starts_with("[dry run] p99-latency: canary mean 0.4125"), "{}", v.message);
}

fn values() -> impl Strategy<Value = Vec<Option<f64>>> {
    // Few distinct values, zeros and gaps among them, so that ties and sparse windows are common.
    prop::collection::vec(prop::option::weighted(0.9, (0u8..8).prop_map(|v| f64::from(v) / 4.0)), 12)
}

proptest! {
    #[test]
    fn swapping_canary_and_stable_swaps_increase_and_decrease(
        canary in values(),
        stable in values(),
        ks in any::<bool>(),
        remove_outliers in any::<bool>(),
        max_ratio in prop::option::of(1.0..2.0f64),
    ) {
        let settings = |direction: &str| {
            let mut compare = serde_json::json!({"direction": direction, "removeOutliers": remove_outliers});
            if ks {
                compare["distributionTest"] = "kolmogorovSmirnov".into();
            }
            if let Some(max_ratio) = max_ratio {
                compare["maxRatio"] = max_ratio.into();
            }
            latency(compare)
        };
        let forward = judge_metric(&settings("increase"), &series(&canary, &stable), at_minute(0.0), None);
        let swapped = judge_metric(&settings("decrease"), &series(&stable, &canary), at_minute(0.0), None);
        prop_assert_eq!(forward.phase, swapped.phase, "{} / {}", forward.message, swapped.message);
        prop_assert!(forward.phase.is_terminal());
    }
}
