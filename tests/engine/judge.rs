//! The analysis judge: hysteresis scenarios and the properties the issue asks for.

use super::fixtures::at_minute;
use bellwether::api::{AnalysisPhase, HysteresisState, Measurement, Metric, NoDataPolicy};
use bellwether::engine::{MetricVerdict, judge_metric, run_phase};
use proptest::prelude::*;

/// An error-rate metric: `max`, with the given hysteresis, judged every minute.
fn metric(
    max: f64,
    breach_for: &str,
    recover_max: Option<f64>,
    recover_for: &str,
    count: Option<i32>,
) -> Metric {
    let mut hysteresis = serde_json::json!({"breachFor": breach_for, "recoverFor": recover_for});
    if let Some(recover) = recover_max {
        hysteresis["recover"] = serde_json::json!({"max": recover});
    }
    let mut value = serde_json::json!({
        "name": "error-rate",
        "interval": "1m",
        "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "q"}},
        "threshold": {"max": max, "hysteresis": hysteresis}
    });
    if let Some(count) = count {
        value["count"] = count.into();
    }
    serde_json::from_value(value).expect("fixture metric parses")
}

/// One measurement a minute from minute 1; `None` is no data.
fn series(values: &[Option<f64>]) -> Vec<Measurement> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Measurement { at: at_minute(i as f64 + 1.0), value: *v, ..Measurement::default() })
        .collect()
}

fn judge(metric: &Metric, values: &[Option<f64>]) -> MetricVerdict {
    judge_metric(metric, &series(values), at_minute(0.0), None)
}

#[test]
fn a_sustained_breach_fails_after_breach_for_and_says_why() {
    let m = metric(0.01, "2m", None, "0s", Some(10));
    let v = judge(&m, &[Some(0.001), Some(0.034), Some(0.03), Some(0.034)]);
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert_eq!(v.message, "error-rate: 0.034 > max 0.01 continuously for 2m (breachFor 2m)");
    assert_eq!(v.decided_at, Some(at_minute(4.0)));
    assert_eq!(v.state, HysteresisState::Failed);
}

#[test]
fn a_spike_shorter_than_breach_for_does_not_fail() {
    let m = metric(0.01, "3m", None, "0s", Some(5));
    let v = judge(
        &m,
        &[Some(0.001), Some(0.5), Some(0.4), Some(0.001), Some(0.002), Some(0.001), Some(0.001), Some(0.001)],
    );
    assert_eq!(v.phase, AnalysisPhase::Successful);
    assert_eq!(v.message, "error-rate: healthy for 5 measurements, last 0.001 <= max 0.01");
    assert_eq!(v.decided_at, Some(at_minute(8.0)), "the window slides past the spike");
}

#[test]
fn recovery_needs_clear_values_held_for_recover_for_and_marginal_values_hold_the_state() {
    // Fail above 1%; recover only below 0.2% held for 3m.
    let m = metric(0.01, "10m", Some(0.002), "3m", None);
    let v = judge(&m, &[Some(0.02), Some(0.005), Some(0.005)]);
    assert_eq!(v.state, HysteresisState::Breaching, "0.5% is marginal: still breaching");
    assert!(v.message.starts_with("error-rate: breaching since"), "{}", v.message);
    let v = judge(&m, &[Some(0.02), Some(0.001), Some(0.001), Some(0.001)]);
    assert_eq!(v.state, HysteresisState::Breaching, "clear for 2m of 3m");
    assert_eq!(v.message, "error-rate: recovering, 0.001 <= max 0.002 (recoverFor 3m)");
    let v = judge(&m, &[Some(0.02), Some(0.001), Some(0.001), Some(0.001), Some(0.001)]);
    assert_eq!(v.state, HysteresisState::Healthy);
    let v = judge(&m, &[Some(0.02), Some(0.001), Some(0.001), Some(0.005), Some(0.001), Some(0.001)]);
    assert_eq!(v.state, HysteresisState::Breaching, "a marginal value restarts the recovery clock");
}

#[test]
fn marginal_values_keep_a_breach_going_until_it_fails() {
    let m = metric(0.01, "3m", Some(0.002), "0s", None);
    let v = judge(&m, &[Some(0.02), Some(0.005), Some(0.005), Some(0.02)]);
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert_eq!(v.message, "error-rate: 0.02 > max 0.01 without recovering for 3m (breachFor 3m)");
}

#[test]
fn clear_values_pause_the_breach_clock_so_rare_breaches_add_up_slowly() {
    // A quiet canary: now and then one failed request makes a window breach, between clear ones.
    let m = metric(0.01, "3m", None, "10m", None);
    let (b, c) = (Some(0.02), Some(0.0));
    let v = judge(&m, &[b, c, c, b, c, c, b]);
    assert_eq!(v.phase, AnalysisPhase::Running, "{}", v.message);
    assert_eq!(v.state, HysteresisState::Breaching, "clear for 2m of recoverFor 10m is not recovered");
    // A metric that flaps between breach and clear is out of the clear half the time: it fails once
    // that adds up to breachFor.
    let v = judge(&m, &[b, c, b, c, b, c]);
    assert_eq!(v.phase, AnalysisPhase::Running, "out of the clear for 2m so far: {}", v.message);
    let v = judge(&m, &[b, c, b, c, b, c, b]);
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert_eq!(
        v.message,
        "error-rate: 0.02 > max 0.01 without recovering, out of the clear for 3m of 6m (breachFor 3m)"
    );
    assert_eq!(v.decided_at, Some(at_minute(7.0)));
}

#[test]
fn initial_delay_skips_warm_up_measurements() {
    let mut m = metric(0.01, "0s", None, "0s", Some(2));
    m.initial_delay = Some(bellwether::api::Duration::new("2m"));
    let v = judge(&m, &[Some(0.9), Some(0.001), Some(0.001)]);
    assert_eq!(
        v.phase,
        AnalysisPhase::Successful,
        "the breach at minute 1 was during warm-up: {}",
        v.message
    );
}

#[test]
fn no_data_is_inconclusive_by_default_and_follows_its_policy() {
    let mut m = metric(0.01, "0s", None, "0s", Some(3));
    let v = judge(&m, &[None, None, None]);
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
    assert_eq!(v.message, "error-rate: no data in 3 measurements (noData: inconclusive)");
    m.no_data = NoDataPolicy::Fail;
    assert_eq!(judge(&m, &[None]).phase, AnalysisPhase::Failed);
    m.no_data = NoDataPolicy::Pass;
    assert_eq!(judge(&m, &[None, None, None]).phase, AnalysisPhase::Successful);
    m.no_data = NoDataPolicy::Ignore;
    let v = judge(&m, &[None, Some(0.001), None, Some(0.001), Some(0.001)]);
    assert_eq!(v.phase, AnalysisPhase::Successful);
    assert_eq!(v.decided_at, Some(at_minute(5.0)), "ignored measurements do not count toward the window");
}

#[test]
fn gaps_in_the_data_keep_the_run_from_succeeding() {
    let m = metric(0.01, "0s", None, "0s", Some(3));
    let v = judge(&m, &[Some(0.001), None, Some(0.001), Some(0.001), None, Some(0.001)]);
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
    assert_eq!(
        v.message,
        "error-rate: not healthy for a whole window of 3 measurements within 6 measurements (2 without data)"
    );
}

#[test]
fn measurement_errors_beyond_the_limit_are_an_error() {
    let mut m = metric(0.01, "0s", None, "0s", Some(3));
    m.consecutive_error_limit = Some(2);
    let error = |i: f64| Measurement {
        at: at_minute(i),
        error: Some("Prometheus unreachable".into()),
        ..Measurement::default()
    };
    let v = judge_metric(&m, &[error(1.0), error(2.0)], at_minute(0.0), None);
    assert_eq!(v.phase, AnalysisPhase::Running);
    assert_eq!(v.message, "error-rate: 2 measurement error(s) in a row (limit 2): Prometheus unreachable");
    let v = judge_metric(&m, &[error(1.0), error(2.0), error(3.0)], at_minute(0.0), None);
    assert_eq!(v.phase, AnalysisPhase::Error);
    assert_eq!(
        v.message,
        "error-rate: 3 measurement errors in a row (consecutiveErrorLimit 2): Prometheus unreachable"
    );
}

#[test]
fn a_duration_window_needs_that_long_of_health() {
    let m = metric(0.01, "0s", None, "0s", None);
    let values = vec![Some(0.001); 6];
    let v = judge_metric(&m, &series(&values), at_minute(0.0), Some(chrono::Duration::minutes(5)));
    assert_eq!(v.phase, AnalysisPhase::Successful);
    assert_eq!(v.decided_at, Some(at_minute(6.0)));
    assert_eq!(v.message, "error-rate: healthy for 5m, last 0.001 <= max 0.01");
}

#[test]
fn dry_run_metrics_report_but_never_decide() {
    let mut dry = metric(0.01, "0s", None, "0s", Some(1));
    dry.dry_run = true;
    let failing_dry = judge(&dry, &[Some(0.5)]);
    assert_eq!(failing_dry.phase, AnalysisPhase::Failed);
    assert!(failing_dry.message.starts_with("[dry run] error-rate: 0.5 > max 0.01"));
    let passing = judge(&metric(0.01, "0s", None, "0s", Some(1)), &[Some(0.001)]);
    assert_eq!(run_phase(&[failing_dry, passing]), AnalysisPhase::Successful);
}

#[test]
fn a_run_is_the_worst_of_its_metrics() {
    let m = metric(0.01, "0s", None, "0s", Some(2));
    let failed = judge(&m, &[Some(0.5)]);
    let running = judge(&m, &[Some(0.001)]);
    let inconclusive = judge(&m, &[None, None]);
    let passed = judge(&m, &[Some(0.001), Some(0.001)]);
    assert_eq!(run_phase(&[passed.clone(), running.clone(), failed]), AnalysisPhase::Failed);
    assert_eq!(
        run_phase(&[inconclusive.clone(), running]),
        AnalysisPhase::Running,
        "wait for the rest before calling it"
    );
    assert_eq!(run_phase(&[inconclusive, passed.clone()]), AnalysisPhase::Inconclusive);
    assert_eq!(run_phase(&[passed]), AnalysisPhase::Successful);
}

/// A series of breach (true) and clear (false) minutes.
fn breaches() -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(any::<bool>(), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn breaches_shorter_than_breach_for_never_fail(pattern in breaches(), breach_for in 1..6i64) {
        // Cut every run of breaches at breachFor measurements: a minute apart, they span less
        // than breachFor.
        let mut values = Vec::new();
        let mut run = 0;
        for breach in pattern {
            if breach && run < breach_for {
                run += 1;
                values.push(Some(0.5));
            } else {
                run = 0;
                values.push(Some(0.001));
            }
        }
        let m = metric(0.01, &format!("{breach_for}m"), None, "0s", None);
        let v = judge(&m, &values);
        prop_assert_ne!(v.phase, AnalysisPhase::Failed, "{:?}: {}", values, v.message);
    }

    #[test]
    fn a_sustained_breach_fails_by_breach_for_plus_one_interval(
        healthy_before in 0..20usize,
        breach_for in 0..10i64,
        extra in 0..10usize,
    ) {
        let mut values = vec![Some(0.001); healthy_before];
        values.extend(vec![Some(0.5); breach_for as usize + 1 + extra]);
        let m = metric(0.01, &format!("{breach_for}m"), None, "0s", None);
        let v = judge(&m, &values);
        prop_assert_eq!(v.phase, AnalysisPhase::Failed);
        let first_breach = at_minute(healthy_before as f64 + 1.0);
        let fired = v.decided_at.expect("a failure is decided at a measurement");
        prop_assert!(fired <= first_breach + chrono::Duration::minutes(breach_for + 1), "fired at {} for breachFor {}m", fired, breach_for);
    }

    #[test]
    fn a_run_never_succeeds_before_its_window_is_complete(
        values in prop::collection::vec(prop::option::weighted(0.9, 0.0..0.02f64), 0..40),
        count in 1..10i32,
    ) {
        let m = metric(0.01, "2m", Some(0.005), "1m", Some(count));
        let v = judge(&m, &values);
        if v.phase == AnalysisPhase::Successful {
            let at = v.decided_at.expect("success is decided at a measurement");
            let judged = series(&values).iter().filter(|x| x.at <= at).count();
            prop_assert!(judged >= count as usize, "succeeded after {} of {} measurements", judged, count);
            let window = series(&values).into_iter().filter(|x| x.at <= at).rev().take(count as usize).collect::<Vec<_>>();
            prop_assert!(window.iter().all(|x| x.value.is_some_and(|v| v <= 0.01)), "the window held a breach or a gap");
        }
    }

    #[test]
    fn no_data_by_default_is_never_successful(
        values in prop::collection::vec(prop::option::weighted(0.5, 0.0..0.009f64), 1..40),
        count in 1..10i32,
    ) {
        let all_missing: Vec<Option<f64>> = values.iter().map(|_| None).collect();
        let m = metric(0.01, "0s", None, "0s", Some(count));
        let v = judge(&m, &all_missing);
        prop_assert_ne!(v.phase, AnalysisPhase::Successful);
        if all_missing.len() >= count as usize {
            prop_assert_eq!(v.phase, AnalysisPhase::Inconclusive);
        }
        // Gaps inside a window never count as health either.
        let mixed = judge(&m, &values);
        if mixed.phase == AnalysisPhase::Successful {
            let at = mixed.decided_at.unwrap();
            let window: Vec<_> = series(&values).into_iter().filter(|x| x.at <= at).rev().take(count as usize).collect();
            prop_assert!(window.iter().all(|x| x.value.is_some()));
        }
    }
}

/// The timeline docs/analysis.md uses to explain hysteresis; keep the two in step.
#[test]
fn the_readme_timeline_holds() {
    let m = metric(0.01, "2m", Some(0.005), "3m", Some(5));
    let minutes = [0.002, 0.030, 0.008, 0.003, 0.004, 0.002, 0.003, 0.002, 0.002, 0.002, 0.002];
    let expected = [
        "error-rate: 1/5 healthy measurements, last 0.002 <= max 0.01",
        "error-rate: breaching since 12:02:00, 0.03 > max 0.01 (breachFor 2m)",
        "error-rate: breaching since 12:02:00, 0.008 <= max 0.01 (breachFor 2m)",
        "error-rate: recovering, 0.003 <= max 0.005 (recoverFor 3m)",
        "error-rate: recovering, 0.004 <= max 0.005 (recoverFor 3m)",
        "error-rate: recovering, 0.002 <= max 0.005 (recoverFor 3m)",
        "error-rate: 1/5 healthy measurements, last 0.003 <= max 0.01",
        "error-rate: 2/5 healthy measurements, last 0.002 <= max 0.01",
        "error-rate: 3/5 healthy measurements, last 0.002 <= max 0.01",
        "error-rate: 4/5 healthy measurements, last 0.002 <= max 0.01",
        "error-rate: healthy for 5 measurements, last 0.002 <= max 0.01",
    ];
    for (i, want) in expected.iter().enumerate() {
        let values: Vec<Option<f64>> = minutes[..=i].iter().map(|v| Some(*v)).collect();
        assert_eq!(judge(&m, &values).message, *want, "after minute {}", i + 1);
    }
    let failing = judge(&m, &[Some(0.002), Some(0.03), Some(0.02), Some(0.025)]);
    assert_eq!(failing.message, "error-rate: 0.025 > max 0.01 continuously for 2m (breachFor 2m)");
}

#[test]
fn measured_values_are_shown_with_four_significant_digits() {
    let m = metric(0.5, "0s", None, "0s", Some(3));
    assert_eq!(
        judge(&m, &[Some(0.099_497_487_437)]).message,
        "error-rate: 1/3 healthy measurements, last 0.0995 <= max 0.5"
    );
    assert_eq!(judge(&m, &[Some(123.456)]).message, "error-rate: 123.5 > max 0.5");
    assert_eq!(judge(&m, &[Some(0.0)]).message, "error-rate: 1/3 healthy measurements, last 0 <= max 0.5");
}
