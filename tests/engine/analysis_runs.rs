//! AnalysisRuns decided purely: which metrics are due, the status new measurements lead to, how
//! many measurements a status keeps, and what the Rollout engine believes of a run.

use bellwether::api::{
    AnalysisPhase, AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, AnalysisTemplate, Counts,
    HysteresisState, Measurement, Metric,
};
use bellwether::engine::{AnalysisRunState, Clock, MAX_MEASUREMENTS, assess, judge_metric, keep};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::json;

fn t0() -> DateTime<Utc> {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

fn minutes(n: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(n)
}

/// The metrics of the basic example's templates, by name: `error-rate` (1m interval, 1m initial
/// delay, breachFor 3m, recover below 0.006 for 2m) and `p99-latency` (count 5, max 0.5).
fn example(name: &str) -> Metric {
    serde_yaml::Deserializer::from_str(include_str!("../../examples/basic/analysis-templates.yaml"))
        .map(|document| AnalysisTemplate::deserialize(document).expect("the example parses"))
        .flat_map(|template| template.spec.metrics)
        .find(|metric| metric.name == name)
        .expect("the example has the metric")
}

fn metric(value: serde_json::Value) -> Metric {
    let mut metric = json!({
        "name": "m",
        "interval": "1m",
        "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "q"}},
    });
    metric.as_object_mut().unwrap().extend(value.as_object().unwrap().clone());
    serde_json::from_value(metric).expect("a valid metric")
}

fn run(metrics: Vec<Metric>) -> AnalysisRun {
    AnalysisRun::new(
        "checkout-abc123-2",
        AnalysisRunSpec {
            metrics,
            args: vec![],
            revision: "abc123".into(),
            duration: None,
            timeout: None,
            terminate: false,
            context: None,
            sources: Vec::new(),
        },
    )
}

/// The run's next status, as the reconciler records it at `at`.
fn record(run: &AnalysisRun, taken: Vec<(String, Measurement)>, at: DateTime<Utc>) -> AnalysisRunStatus {
    bellwether::engine::record(&run.spec, run.status.as_ref(), taken, Clock::at(at))
}

fn due(run: &AnalysisRun, at: DateTime<Utc>) -> Vec<String> {
    bellwether::engine::due(&run.spec, run.status.as_ref(), at)
}

fn next_due(run: &AnalysisRun, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    bellwether::engine::next_due(&run.spec, run.status.as_ref(), at)
}

/// What the Rollout engine believes of an owned run, judged at the start, when nothing is late.
fn run_state(name: &str, run: &AnalysisRun) -> AnalysisRunState {
    assess(name, true, &run.spec, run.status.as_ref(), None, Clock::at(t0()))
}

fn value(at: DateTime<Utc>, value: f64) -> Measurement {
    Measurement { at, value: Some(value), ..Measurement::default() }
}

fn error(at: DateTime<Utc>) -> Measurement {
    Measurement { at, error: Some("connection refused".into()), ..Measurement::default() }
}

/// Records each metric's measurements in turn, one `record` per measurement, as the reconciler would.
fn feed(mut run: AnalysisRun, name: &str, measurements: Vec<Measurement>) -> AnalysisRun {
    for measurement in measurements {
        let at = measurement.at;
        run.status = Some(record(&run, vec![(name.to_string(), measurement)], at));
    }
    run
}

fn status(run: &AnalysisRun) -> &AnalysisRunStatus {
    run.status.as_ref().unwrap()
}

#[test]
fn metrics_are_due_after_their_initial_delay_and_then_every_interval() {
    let mut run = run(vec![example("error-rate"), example("p99-latency")]);
    assert_eq!(due(&run, t0()), ["p99-latency"], "a run not started yet starts now");
    run.status = Some(record(&run, vec![], t0()));
    assert_eq!(status(&run).started_at, Some(t0()));
    assert_eq!(status(&run).phase, Some(AnalysisPhase::Running));
    assert_eq!(status(&run).message.as_deref(), Some("2 of 2 metrics running"));
    assert_eq!(due(&run, minutes(0) + Duration::seconds(59)), ["p99-latency"]);
    assert_eq!(next_due(&run, t0()), Some(t0()));
    run.status = Some(record(&run, vec![("p99-latency".into(), value(t0(), 0.2))], t0()));
    assert!(due(&run, t0() + Duration::seconds(59)).is_empty());
    assert_eq!(next_due(&run, t0()), Some(minutes(1)), "both at one minute");
    assert_eq!(due(&run, minutes(1)), ["error-rate", "p99-latency"]);
    let taken =
        vec![("error-rate".into(), value(minutes(1), 0.001)), ("p99-latency".into(), value(minutes(1), 0.2))];
    run.status = Some(record(&run, taken, minutes(1)));
    assert!(due(&run, minutes(1) + Duration::seconds(30)).is_empty());
    assert_eq!(due(&run, minutes(2)), ["error-rate", "p99-latency"]);
    let results = &status(&run).metric_results;
    assert_eq!(results.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["error-rate", "p99-latency"]);
    assert_eq!(results[1].measurements.len(), 2);
}

#[test]
fn the_interval_defaults_to_a_minute() {
    let mut run = run(vec![metric(json!({"interval": null, "threshold": {"max": 1.0}}))]);
    run = feed(run, "m", vec![value(t0(), 0.5)]);
    assert!(due(&run, t0() + Duration::seconds(59)).is_empty());
    assert_eq!(due(&run, minutes(1)), ["m"]);
}

#[test]
fn nothing_is_due_once_a_metric_or_the_run_decided_or_the_run_is_terminated() {
    let latency =
        feed(run(vec![example("p99-latency"), example("error-rate")]), "p99-latency", vec![value(t0(), 0.9)]);
    assert_eq!(status(&latency).metric_results[0].phase, AnalysisPhase::Failed);
    assert_eq!(status(&latency).phase, Some(AnalysisPhase::Failed));
    assert!(due(&latency, minutes(5)).is_empty(), "the run failed");
    assert_eq!(next_due(&latency, minutes(5)), None);

    let mut dry = example("p99-latency");
    dry.dry_run = true;
    let run_with_dry = feed(run(vec![dry, example("error-rate")]), "p99-latency", vec![value(t0(), 0.9)]);
    assert_eq!(status(&run_with_dry).phase, Some(AnalysisPhase::Running), "a dry run never decides");
    assert_eq!(due(&run_with_dry, minutes(5)), ["error-rate"], "but it failed, so it is not measured again");

    let mut terminated = run(vec![example("error-rate")]);
    terminated.spec.terminate = true;
    assert!(due(&terminated, minutes(5)).is_empty());
}

#[test]
fn a_breach_held_for_breach_for_fails_the_run_with_the_metric_message() {
    let measurements = vec![
        value(minutes(1), 0.002),
        value(minutes(2), 0.03),
        value(minutes(3), 0.02),
        value(minutes(4), 0.025),
        value(minutes(5), 0.025),
    ];
    let mut run = feed(run(vec![example("error-rate")]), "error-rate", measurements[..4].to_vec());
    let result = &status(&run).metric_results[0];
    assert_eq!(result.phase, AnalysisPhase::Running);
    let hysteresis = result.hysteresis.as_ref().unwrap();
    assert_eq!((hysteresis.state, hysteresis.since), (HysteresisState::Breaching, minutes(2)));
    run = feed(run, "error-rate", measurements[4..].to_vec());
    let status = status(&run);
    let message = "error-rate: 0.025 > max 0.01 continuously for 3m (breachFor 3m)";
    assert_eq!(status.phase, Some(AnalysisPhase::Failed));
    assert_eq!(status.message.as_deref(), Some(message));
    assert_eq!(status.started_at, Some(minutes(1)));
    let result = &status.metric_results[0];
    assert_eq!((result.phase, result.message.as_deref()), (AnalysisPhase::Failed, Some(message)));
    assert_eq!(result.measurements, measurements);
    assert_eq!(result.hysteresis.as_ref().unwrap().state, HysteresisState::Failed);

    let state = run_state("checkout-abc123-2", &run);
    assert_eq!(state.phase, Some(AnalysisPhase::Failed));
    assert_eq!(state.message.as_deref(), Some(message));
    assert_eq!(state.failed_metric.as_deref(), Some("error-rate"));
    assert_eq!(state.failed_value.as_deref(), Some("0.025"));
    assert!(!state.terminating);
}

#[test]
fn healthy_for_the_window_succeeds_with_every_metric_message() {
    let mut run = run(vec![example("p99-latency"), metric(json!({"count": 2, "threshold": {"min": 1.0}}))]);
    run = feed(run, "m", vec![value(t0(), 5.0), value(minutes(1), 5.0)]);
    assert_eq!(status(&run).message.as_deref(), Some("1 of 2 metrics running"));
    run = feed(run, "p99-latency", (0..5).map(|i| value(minutes(i), 0.2)).collect());
    let status = status(&run);
    assert_eq!(status.phase, Some(AnalysisPhase::Successful));
    assert_eq!(
        status.message.as_deref(),
        Some(
            "p99-latency: healthy for 5 measurements, last 0.2 <= max 0.5; \
             m: healthy for 2 measurements, last 5 >= min 1"
        )
    );
    let state = run_state("r", &run);
    assert_eq!((state.failed_metric, state.failed_value), (None, None));
}

#[test]
fn measurement_errors_past_the_limit_make_the_run_an_error() {
    let mut run = run(vec![example("p99-latency"), example("error-rate")]);
    run.status = Some(record(&run, vec![], t0()));
    let run = feed(run, "error-rate", (1..=4).map(|i| error(minutes(i))).collect());
    let result = &status(&run).metric_results[1];
    assert_eq!((result.phase, result.consecutive_errors), (AnalysisPhase::Running, 4));
    let run = feed(run, "error-rate", vec![error(minutes(5))]);
    let status = status(&run);
    assert_eq!(status.phase, Some(AnalysisPhase::Error));
    let message = "error-rate: 5 measurement errors in a row (consecutiveErrorLimit 4): connection refused";
    assert_eq!(status.message.as_deref(), Some(message));
    assert_eq!(status.metric_results[1].consecutive_errors, 5);
    assert_eq!(run_state("r", &run).failed_metric, None, "an error is not a failure of the canary");
}

#[test]
fn compare_metrics_are_judged_on_value_and_baseline() {
    let compare = metric(json!({"count": 10, "compare": {"confidence": 0.95}}));
    let measurements = (0..10)
        .map(|i| Measurement {
            baseline: Some(0.1 + f64::from(i) * 0.001),
            ..value(minutes(i.into()), 0.5 + f64::from(i) * 0.01)
        })
        .collect::<Vec<_>>();
    let run = feed(run(vec![compare]), "m", measurements[..9].to_vec());
    assert_eq!(
        status(&run).phase,
        Some(AnalysisPhase::Running),
        "a fixed sample decides once, when complete"
    );
    let run = feed(run, "m", measurements[9..].to_vec());
    assert_eq!(status(&run).phase, Some(AnalysisPhase::Failed), "{:?}", status(&run).message);
    assert_eq!(status(&run).metric_results[0].measurements.len(), 10);
    assert_eq!(run_state("r", &run).failed_value.as_deref(), Some("0.59"));
}

fn sequential() -> Metric {
    metric(json!({"sequential": {"requestsQuery": "r", "maxIncrease": 0.5}}))
}

fn counts(at: DateTime<Utc>, canary_errors: f64, stable_errors: f64) -> Measurement {
    let counts = Counts { canary_errors, canary_requests: 1000.0, stable_errors, stable_requests: 1000.0 };
    Measurement { at, value: Some(canary_errors / 1000.0), counts: Some(counts), ..Measurement::default() }
}

#[test]
fn sequential_metrics_are_judged_on_their_counts() {
    let run = feed(run(vec![sequential()]), "m", (0..10).map(|i| counts(minutes(i), 30.0, 3.0)).collect());
    let status = status(&run);
    assert_eq!(status.phase, Some(AnalysisPhase::Failed), "{:?}", status.message);
    assert!(status.message.as_deref().unwrap().contains("evidence of a regression"), "{:?}", status.message);
}

#[test]
fn a_sequential_test_that_runs_past_what_a_status_holds_is_an_error() {
    let mut run = run(vec![sequential()]);
    let quiet = |i: i64| ("m".to_string(), counts(minutes(i), 0.0, 0.0));
    run.status = Some(record(&run, (0..MAX_MEASUREMENTS as i64).map(quiet).collect(), t0()));
    let result = &status(&run).metric_results[0];
    assert_eq!(result.phase, AnalysisPhase::Running, "background analysis never passes on its own");
    assert_eq!(result.measurements.len(), MAX_MEASUREMENTS, "every interval is evidence");
    run.status = Some(record(&run, vec![quiet(MAX_MEASUREMENTS as i64)], minutes(MAX_MEASUREMENTS as i64)));
    let status = status(&run);
    assert_eq!(status.phase, Some(AnalysisPhase::Error));
    assert!(
        status.message.as_deref().unwrap().starts_with(
            "m: the sequential test ran past the 1000 measurements a status can hold without deciding"
        ),
        "{:?}",
        status.message
    );
    assert_eq!(status.metric_results[0].measurements.len(), MAX_MEASUREMENTS);
    assert_eq!(status.metric_results[0].measurements.last().unwrap().at, minutes(MAX_MEASUREMENTS as i64));
}

#[test]
fn a_terminated_run_ends_successful_unless_it_already_ended() {
    let mut running = feed(run(vec![example("p99-latency")]), "p99-latency", vec![value(t0(), 0.2)]);
    running.spec.terminate = true;
    assert!(run_state("r", &running).terminating);
    running.status = Some(record(&running, vec![], minutes(1)));
    let status = status(&running);
    assert_eq!(status.phase, Some(AnalysisPhase::Successful));
    assert_eq!(status.message.as_deref(), Some("terminated: 1 of 1 metrics running"));
    assert_eq!(status.metric_results[0].phase, AnalysisPhase::Running, "the metric never decided");
    let state = run_state("r", &running);
    assert_eq!((state.phase, state.terminating), (Some(AnalysisPhase::Successful), true));
    assert_eq!(record(&running, vec![], minutes(2)), *status, "an ended run stays as it ended");

    let mut failed = feed(run(vec![example("p99-latency")]), "p99-latency", vec![value(t0(), 0.9)]);
    failed.spec.terminate = true;
    let after = record(&failed, vec![], minutes(1));
    assert_eq!(after.phase, Some(AnalysisPhase::Failed));
    assert_eq!(after, *failed.status.as_ref().unwrap());
}

#[test]
fn a_run_not_measured_yet_is_running() {
    let state = run_state("checkout-abc123-2", &run(vec![example("error-rate")]));
    assert_eq!(state.name, "checkout-abc123-2");
    assert_eq!(state.phase, Some(AnalysisPhase::Running));
    assert_eq!((state.failed_metric, state.distrust), (None, None));
}

#[test]
fn keep_covers_what_each_judge_looks_at() {
    // count 5, no hysteresis: 2 × 5 measurements, plus 4 + 1 for errors.
    assert_eq!(keep(&example("p99-latency"), None), 15);
    // Background analysis: one breach and its recovery, 3m + 2m, plus the first, plus 5.
    assert_eq!(keep(&example("error-rate"), None), 11);
    // A 10m step: 2 × 10m + 5m at one a minute, plus the first, plus 5.
    assert_eq!(keep(&example("error-rate"), Some(Duration::minutes(10))), 31);
    let compare = metric(json!({"count": 10, "compare": {"confidence": 0.95}}));
    assert_eq!(keep(&compare, None), 15);
    assert_eq!(keep(&sequential(), Some(Duration::minutes(10))), MAX_MEASUREMENTS);
}

#[test]
fn background_analysis_keeps_the_latest_measurements_of_a_healthy_metric() {
    let metric = example("error-rate");
    let run =
        feed(run(vec![metric.clone()]), "error-rate", (1..=100).map(|i| value(minutes(i), 0.001)).collect());
    let result = &status(&run).metric_results[0];
    assert_eq!(result.measurements.len(), keep(&metric, None));
    assert_eq!(result.measurements.last().unwrap().at, minutes(100));
    let hysteresis = result.hysteresis.as_ref();
    assert_eq!(hysteresis, None, "a metric that was never out of the clear has no transition to report");
}

#[derive(Clone, Copy, Debug)]
enum Sample {
    Clear,
    Marginal,
    Breach,
    NoData,
    Error,
}

fn sample(at: DateTime<Utc>, sample: Sample) -> Measurement {
    match sample {
        Sample::Clear => value(at, 0.001),
        Sample::Marginal => value(at, 0.007),
        Sample::Breach => value(at, 0.03),
        Sample::NoData => Measurement { at, ..Measurement::default() },
        Sample::Error => error(at),
    }
}

fn samples() -> impl Strategy<Value = Vec<Sample>> {
    let one = prop_oneof![
        4 => Just(Sample::Clear),
        2 => Just(Sample::Marginal),
        2 => Just(Sample::Breach),
        1 => Just(Sample::NoData),
        1 => Just(Sample::Error),
    ];
    prop::collection::vec(one, 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Feeding measurements one at a time, the status keeps a trimmed series; judging it gives the
    /// phase and hysteresis state that judging every measurement gives, and so does the status.
    #[test]
    fn trimming_never_changes_a_verdict(
        series in samples(),
        breach_for in 0..4u32,
        recover_for in 0..4u32,
        window in prop_oneof![Just(None), (1..6i32).prop_map(Some)],
        step in prop_oneof![Just(None), (2..8i64).prop_map(|m| Some(Duration::minutes(m)))],
        delay in 0..3i64,
        no_data in prop_oneof![Just("inconclusive"), Just("fail"), Just("pass"), Just("ignore")],
        error_limit in 1..4i32,
        gap_seconds in 60..75i64,
    ) {
        let metric = metric(json!({
            "initialDelay": format!("{delay}m"),
            "count": window,
            "threshold": {"max": 0.01, "hysteresis": {
                "breachFor": format!("{breach_for}m"),
                "recover": {"max": 0.005},
                "recoverFor": format!("{recover_for}m"),
            }},
            "noData": no_data,
            "consecutiveErrorLimit": error_limit,
        }));
        let mut run = run(vec![metric.clone()]);
        run.spec.duration = step.map(|d| bellwether::api::Duration::new(format!("{}m", d.num_minutes())));
        // Measurements come up to a quarter late here; the deadline has its own tests.
        run.spec.timeout = Some(bellwether::api::Duration::new("9999h"));
        let mut full = Vec::new();
        for (i, kind) in series.into_iter().enumerate() {
            let measurement = sample(t0() + Duration::seconds(gap_seconds * i as i64), kind);
            full.push(measurement.clone());
            run.status = Some(record(&run, vec![("m".into(), measurement.clone())], measurement.at));
            let result = &status(&run).metric_results[0];
            let whole = judge_metric(&metric, &full, t0(), step);
            let kept = judge_metric(&metric, &result.measurements, t0(), step);
            prop_assert_eq!(result.phase, whole.phase);
            prop_assert_eq!(kept.phase, whole.phase, "after {} measurements, {} kept", full.len(), result.measurements.len());
            prop_assert_eq!(kept.state, whole.state);
            if !whole.phase.is_terminal() {
                prop_assert_eq!(result.measurements.last(), full.last(), "the next one is due after the latest");
            }
        }
    }
}

// ----- values, deadlines and trust -----

/// A run's status as the API server stores it: written as JSON, checked against the CRD's
/// schema, and read back.
fn stored(run: &AnalysisRun) -> AnalysisRun {
    let mut object = serde_json::to_value(run).expect("a run serializes");
    object["apiVersion"] = json!("bellwether.dev/v1alpha1");
    object["kind"] = json!("AnalysisRun");
    object["metadata"]["namespace"] = json!("shop");
    if let Err(errors) = bellwether_openapi::validate_manifest(&object) {
        panic!("the API server would refuse the status: {errors:?}");
    }
    serde_json::from_value(object).expect("a stored run reads back")
}

/// Any `f64`, with the values Prometheus returns for a division by zero drawn often.
fn provider_values() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::NAN),
        1 => Just(-0.0),
        3 => any::<u64>().prop_map(f64::from_bits),
        3 => any::<f64>(),
    ]
}

proptest! {
    /// Whatever number a provider returns, the judge sees it again once the status has been
    /// stored and read back, and decides the same.
    #[test]
    fn every_value_survives_the_status(value in provider_values(), threshold in prop_oneof![Just(true), Just(false)]) {
        let judgment = if threshold { json!({"threshold": {"max": 0.01}}) } else { json!({"threshold": {"min": 0.5}}) };
        let run = feed(run(vec![metric(judgment)]), "m", vec![Measurement { baseline: Some(value), ..self::value(t0(), value) }]);
        let back = stored(&run);
        let before = &status(&run).metric_results[0];
        let after = &status(&back).metric_results[0];
        let (a, b) = (before.measurements[0].value.unwrap(), after.measurements[0].value.unwrap());
        prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{a:?} read back as {b:?}");
        let b = after.measurements[0].baseline.unwrap();
        prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "baseline {a:?} read back as {b:?}");
        let metric = &run.spec.metrics[0];
        let judged = |r: &AnalysisRun| judge_metric(metric, &status(r).metric_results[0].measurements, t0(), None);
        prop_assert_eq!(judged(&run), judged(&back));
        prop_assert_eq!(run_state("r", &run), run_state("r", &back));
    }
}

#[test]
fn infinities_breach_their_bound_and_nan_is_no_data() {
    let max = || run(vec![metric(json!({"threshold": {"max": 0.01}}))]);
    let failed = stored(&feed(max(), "m", vec![value(t0(), f64::INFINITY)]));
    assert_eq!(status(&failed).phase, Some(AnalysisPhase::Failed));
    assert_eq!(status(&failed).message.as_deref(), Some("m: +Inf > max 0.01"));
    assert_eq!(run_state("r", &failed).failed_value.as_deref(), Some("+Inf"));
    let min = stored(&feed(
        run(vec![metric(json!({"threshold": {"min": 0.5}}))]),
        "m",
        vec![value(t0(), f64::NEG_INFINITY)],
    ));
    assert_eq!(status(&min).phase, Some(AnalysisPhase::Failed));
    let nan = stored(&feed(max(), "m", vec![value(t0(), f64::NAN)]));
    assert_eq!(status(&nan).phase, Some(AnalysisPhase::Running), "NaN is no data, never a pass");
}

#[test]
fn a_run_without_a_verdict_by_its_deadline_ends_in_error() {
    // count 5 of 1m, no delay: 3 × 5m, plus 3m of grace.
    let mut run = run(vec![example("p99-latency")]);
    assert_eq!(bellwether::engine::deadline(&run.spec), Some(Duration::minutes(18)));
    run.status = Some(record(&run, vec![], t0()));
    // Measurements that say nothing (no data, ignored) until the deadline.
    run.spec.metrics[0].no_data = bellwether::api::NoDataPolicy::Ignore;
    let quiet =
        |i: i64| ("p99-latency".to_string(), Measurement { at: minutes(i), ..Measurement::default() });
    for i in 0..18 {
        run.status = Some(record(&run, vec![quiet(i)], minutes(i)));
        assert_eq!(status(&run).phase, Some(AnalysisPhase::Running), "at {i}m");
    }
    let late = record(&run, vec![quiet(18)], minutes(18));
    assert_eq!(late.phase, Some(AnalysisPhase::Error));
    assert_eq!(
        late.message.as_deref(),
        Some("no verdict within 18m (the deadline its metrics allow): 1 of 1 metrics running")
    );
    // A controller that began measuring later counts the deadline from then.
    let restarted = Clock { now: minutes(18), measuring_since: minutes(10) };
    let status = bellwether::engine::record(&run.spec, run.status.as_ref(), vec![quiet(18)], restarted);
    assert_eq!(status.phase, Some(AnalysisPhase::Running));
    // An explicit timeout replaces the derived bound.
    run.spec.timeout = Some(bellwether::api::Duration::new("5m"));
    let timed_out = record(&run, vec![quiet(18)], minutes(18));
    assert_eq!(
        timed_out.message.as_deref(),
        Some("no verdict within 5m (its timeout): 1 of 1 metrics running")
    );
    let background = self::run(vec![example("error-rate")]);
    assert_eq!(bellwether::engine::deadline(&background.spec), None, "background analysis only watches");
}

/// A job metric: count 1 of 1m, its Job allowed `deadline` seconds when given.
fn job_metric(deadline: Option<i64>) -> Metric {
    let mut spec = json!({"template": {"spec": {"containers": [{"name": "load", "image": "k6"}]}}});
    if let Some(deadline) = deadline {
        spec["activeDeadlineSeconds"] = json!(deadline);
    }
    serde_json::from_value(json!({
        "name": "load",
        "interval": "1m",
        "count": 1,
        "provider": {"job": {"spec": spec}},
        "threshold": {"min": 1},
    }))
    .expect("a valid metric")
}

#[test]
fn a_jobs_deadline_extends_how_late_its_measurement_may_be() {
    let long = run(vec![job_metric(Some(600))]);
    let short = run(vec![job_metric(None)]);
    // 3 × 1m of window, and a grace of 3m, plus the Job's 10m.
    assert_eq!(bellwether::engine::deadline(&long.spec), Some(Duration::minutes(16)));
    assert_eq!(bellwether::engine::deadline(&short.spec), Some(Duration::minutes(6)));
    let started = |mut run: AnalysisRun| {
        run.status = Some(record(&run, vec![], t0()));
        run
    };
    let (long, short) = (started(long), started(short));
    let at = |run: &AnalysisRun, minute: i64| {
        assess("r", true, &run.spec, run.status.as_ref(), None, Clock::at(minutes(minute)))
    };
    // A 10-minute load test, still running 5 minutes in, is not a run nobody measures.
    assert_eq!(at(&long, 5).phase, Some(AnalysisPhase::Running));
    let overdue = at(&short, 5);
    assert_eq!(overdue.phase, Some(AnalysisPhase::Error));
    assert!(overdue.message.as_deref().unwrap().contains("load: a measurement is 5m overdue"), "{overdue:?}");
    assert_eq!(at(&long, 14).phase, Some(AnalysisPhase::Error), "nor is it allowed forever");
}

#[test]
fn a_measurement_is_due_since_the_same_time_until_it_is_recorded() {
    let mut load = job_metric(None);
    load.count = Some(3);
    let mut run = run(vec![example("error-rate"), load]);
    run.status = Some(record(&run, vec![], t0()));
    let since = |run: &AnalysisRun, at| bellwether::engine::due_since(&run.spec, run.status.as_ref(), at);
    let load = |at| ("load".to_string(), at);
    assert_eq!(since(&run, t0()), [load(t0())]);
    assert_eq!(since(&run, t0() + Duration::seconds(40)), [load(t0())], "the same while it is taken");
    assert_eq!(since(&run, minutes(1)), [("error-rate".to_string(), minutes(1)), load(t0())]);
    let taken = vec![("load".into(), value(t0() + Duration::seconds(40), 1.0))];
    run.status = Some(record(&run, taken, minutes(1)));
    let next = t0() + Duration::seconds(100);
    assert_eq!(since(&run, next), [("error-rate".to_string(), minutes(1)), load(next)]);
}

#[test]
fn a_refused_status_ends_the_run_in_error_keeping_what_was_stored() {
    let run = feed(run(vec![example("p99-latency")]), "p99-latency", vec![value(t0(), 0.2)]);
    let wanted = record(&run, vec![("p99-latency".into(), value(minutes(1), 0.3))], minutes(1));
    let reason = "AnalysisRun.bellwether.dev \"r\" is invalid: status.metricResults[0]: Too long";
    let ended = bellwether::engine::refused(run.status.as_ref(), &wanted, reason);
    assert_eq!(ended.phase, Some(AnalysisPhase::Error));
    assert_eq!(
        ended.message.as_deref(),
        Some(
            format!(
                "the API server refused the run's status, so it cannot record its measurements: {reason}"
            )
            .as_str()
        )
    );
    assert_eq!(ended.metric_results, status(&run).metric_results, "the stored measurements stay");
    let state = run_state("r", &AnalysisRun { status: Some(ended), ..run });
    assert_eq!(state.phase, Some(AnalysisPhase::Error), "believed: a failure is never unsafe");
    assert_eq!(state.distrust, None);
}

#[test]
fn long_measurement_errors_are_cut() {
    let long = Measurement { at: t0(), error: Some("é".repeat(5000)), ..Measurement::default() };
    let run = feed(run(vec![example("p99-latency")]), "p99-latency", vec![long]);
    let kept = status(&run).metric_results[0].measurements[0].error.clone().unwrap();
    assert!(kept.len() <= bellwether::engine::MAX_ERROR_BYTES && kept.ends_with('…'), "{} bytes", kept.len());
}

#[test]
fn a_spec_hash_survives_the_api_server_and_changes_with_the_spec() {
    let run = run(vec![example("p99-latency"), example("error-rate")]);
    let hash = bellwether::engine::spec_hash(&run.spec);
    assert_eq!(bellwether::engine::spec_hash(&stored(&run).spec), hash);
    let mut terminated = run.spec.clone();
    terminated.terminate = true;
    assert_eq!(bellwether::engine::spec_hash(&terminated), hash, "terminate is set later, by the Rollout");
    let mut moved = run.spec.clone();
    moved.metrics[0].provider.prometheus.as_mut().unwrap().address = "http://elsewhere:9090".into();
    assert_ne!(bellwether::engine::spec_hash(&moved), hash);
}

#[test]
fn a_recorded_phase_that_its_measurements_do_not_bear_out_is_distrusted() {
    let failing = feed(run(vec![example("p99-latency")]), "p99-latency", vec![value(t0(), 0.9)]);
    assert_eq!(status(&failing).phase, Some(AnalysisPhase::Failed));
    for forged in [AnalysisPhase::Successful, AnalysisPhase::Inconclusive] {
        let mut run = failing.clone();
        run.status.as_mut().unwrap().phase = Some(forged);
        let state = run_state("r", &run);
        assert_eq!(state.phase, Some(AnalysisPhase::Error));
        let why = state.distrust.expect("distrusted");
        assert!(why.contains(&format!("records {forged:?}, but its measurements say Failed")), "{why}");
    }
    // A phase not written yet is no disagreement: the evidence decides.
    let mut unwritten = failing.clone();
    unwritten.status.as_mut().unwrap().phase = Some(AnalysisPhase::Running);
    let state = run_state("r", &unwritten);
    assert_eq!((state.phase, state.distrust), (Some(AnalysisPhase::Failed), None));
    assert_eq!(state.failed_metric.as_deref(), Some("p99-latency"));
}

#[test]
fn a_run_the_rollout_no_longer_waits_for_keeps_its_recorded_phase() {
    let mut run = feed(run(vec![example("p99-latency")]), "p99-latency", vec![value(t0(), 0.9)]);
    run.status.as_mut().unwrap().phase = Some(AnalysisPhase::Successful);
    let state = bellwether::engine::ended("r", true, &run.spec, run.status.as_ref(), None);
    assert_eq!((state.phase, state.distrust), (Some(AnalysisPhase::Successful), None), "not judged again");
    assert_eq!(state.spec_hash, bellwether::engine::spec_hash(&run.spec));
}
