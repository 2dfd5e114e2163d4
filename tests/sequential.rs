//! The sequential judgment: hand-built counts for each rule, then seeded traffic for its statistical
//! promises — a good canary is rolled back at most `alpha` of the time although the judge runs after
//! every interval, regressions are caught about as fast as a fixed-sample test could, and a canary
//! as good as stable passes while one at the `maxIncrease` limit rarely does.
//!
//! Run with `--nocapture` to see the tables.

use bellwether::api::{AnalysisPhase, Counts, HysteresisState, Measurement, Metric};
use bellwether::engine::{MetricVerdict, judge_metric};
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use statrs::distribution::{ContinuousCDF, Normal};

fn at_minute(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

/// An error-rate metric measured every minute; `count` bounds its window, and without it the
/// window is the run's duration or, with none, unbounded (background analysis).
fn metric(alpha: f64, max_increase: f64, count: Option<i32>) -> Metric {
    let mut value = serde_json::json!({
        "name": "error-rate",
        "interval": "1m",
        "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "errors"}},
        "sequential": {"requestsQuery": "requests", "alpha": alpha, "maxIncrease": max_increase}
    });
    if let Some(count) = count {
        value["count"] = count.into();
    }
    serde_json::from_value(value).expect("fixture metric parses")
}

/// One interval's counts: canary errors and requests, then stable's.
type Interval = (f64, f64, f64, f64);

fn measurement(minute: i64, (ce, cr, se, sr): Interval) -> Measurement {
    Measurement {
        at: at_minute(minute),
        value: (cr > 0.0).then(|| ce / cr),
        counts: Some(Counts {
            canary_errors: ce,
            canary_requests: cr,
            stable_errors: se,
            stable_requests: sr,
        }),
        ..Measurement::default()
    }
}

/// One measurement a minute from minute 1.
fn series(intervals: &[Interval]) -> Vec<Measurement> {
    intervals.iter().enumerate().map(|(i, &counts)| measurement(i as i64 + 1, counts)).collect()
}

fn judge(metric: &Metric, measurements: &[Measurement]) -> MetricVerdict {
    judge_metric(metric, measurements, at_minute(0), None)
}

/// 200 requests a second, 5% to the canary, stable failing 0.5%: one minute when the canary fails
/// `r` times as often, in expectation.
fn minute(r: f64) -> Interval {
    (3.0 * r, 600.0, 57.0, 11_400.0)
}

/// The part of a message after the counts: the evidence.
fn evidence(verdict: &MetricVerdict) -> &str {
    verdict.message.split_once("; ").map_or("", |(_, evidence)| evidence)
}

#[test]
fn a_canary_as_good_as_stable_passes_once_the_counts_rule_out_the_max_increase() {
    let m = metric(0.05, 0.5, Some(60));
    let v = judge(&m, &series(&[minute(1.0); 60]));
    assert_eq!(v.phase, AnalysisPhase::Successful, "{}", v.message);
    assert_eq!(v.state, HysteresisState::Healthy);
    let minutes = (v.decided_at.unwrap() - at_minute(0)).num_minutes();
    assert!((5..=30).contains(&minutes), "passed after {minutes}m: {}", v.message);
    assert!(
        v.message.starts_with(&format!(
            "error-rate: canary fails 1.0× as often as stable ({} errors in {} requests vs {} in {}); \
             evidence it is within 1.5× of stable ",
            3 * minutes,
            grouped(600 * minutes),
            57 * minutes,
            grouped(11_400 * minutes)
        )),
        "{}",
        v.message
    );
    assert!(v.message.ends_with(" ≥ 20 = 1/alpha"), "{}", v.message);
}

#[test]
fn a_canary_failing_five_times_as_often_fails_within_minutes_and_says_how_sure() {
    let m = metric(0.05, 0.5, Some(60));
    let v = judge(&m, &series(&[minute(5.0); 60]));
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert_eq!(v.state, HysteresisState::Failed);
    assert_eq!(v.decided_at, Some(at_minute(1)), "{}", v.message);
    assert_eq!(v.since, v.decided_at);
    assert_eq!(
        v.message,
        "error-rate: canary fails 5.0× as often as stable (15 errors in 600 requests vs 57 in 11,400); \
         evidence of a regression 11,318 ≥ 20 = 1/alpha"
    );
}

#[test]
fn while_running_the_message_shows_both_e_values_against_their_bounds() {
    let m = metric(0.05, 0.5, Some(60));
    let v = judge(&m, &series(&[(6.0, 600.0, 57.0, 11_400.0)]));
    assert_eq!(v.phase, AnalysisPhase::Running);
    assert_eq!(v.state, HysteresisState::Breaching, "twice the errors in a minute: some evidence");
    assert_eq!(v.since, Some(at_minute(1)));
    assert_eq!(
        v.message,
        "error-rate: canary fails 2.0× as often as stable (6 errors in 600 requests vs 57 in 11,400); \
         evidence of a regression 1.3 (fails at 20), evidence it is within 1.5× of stable 0.24 (passes at 20)"
    );
    let v = judge(&m, &series(&[(6.0, 600.0, 57.0, 11_400.0), minute(0.5)]));
    assert_eq!(v.state, HysteresisState::Healthy, "a good minute brings the evidence back below 1");
    assert_eq!(v.since, Some(at_minute(2)));
}

#[test]
fn intervals_without_failures_or_requests_carry_no_evidence() {
    let m = metric(0.05, 0.5, None);
    let informative = [(6.0, 600.0, 57.0, 11_400.0), minute(1.0), (4.0, 590.0, 60.0, 11_500.0)];
    let quiet = (0.0, 600.0, 0.0, 11_400.0);
    let idle = (0.0, 0.0, 2.0, 11_400.0);
    let padded = [informative[0], quiet, idle, informative[1], quiet, informative[2], idle];
    let a = judge(&m, &series(&informative));
    let b = judge(&m, &series(&padded));
    assert_eq!(a.phase, AnalysisPhase::Running);
    assert_eq!(evidence(&a), evidence(&b), "{} vs {}", a.message, b.message);

    let v = judge(&m, &series(&[quiet; 100]));
    assert_eq!(v.phase, AnalysisPhase::Running, "background analysis never passes");
    assert_eq!(evidence(&v), "evidence of a regression 1.0 (fails at 20)");
    assert!(v.message.starts_with("error-rate: neither revision failed (0 errors in 60,000 requests"));
}

#[test]
fn fractional_counts_from_increase_are_rounded_to_whole_requests() {
    let m = metric(0.05, 0.5, Some(10));
    let exact = series(&[(6.0, 600.0, 57.0, 11_400.0), (3.0, 610.0, 55.0, 11_300.0)]);
    let extrapolated = series(&[(5.6, 600.4, 57.3, 11_399.6), (3.4, 609.5, 54.5, 11_300.49)]);
    assert_eq!(judge(&m, &exact), judge(&m, &extrapolated));
}

#[test]
fn a_window_that_ends_before_either_bound_is_crossed_is_inconclusive_never_successful() {
    // A quiet service: 1 canary request a second and stable failing 0.5%.
    let quiet = (0.0, 60.0, 6.0, 1_140.0);
    let slow = [quiet, (1.0, 60.0, 5.0, 1_140.0), quiet, quiet, (1.0, 60.0, 7.0, 1_140.0)];
    let v = judge(&metric(0.05, 0.5, Some(5)), &series(&slow));
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
    assert_eq!(v.decided_at, Some(at_minute(5)));
    assert_eq!(
        v.message,
        "error-rate: not enough evidence either way in 300 canary requests over 5 measurements: \
         canary fails 1.3× as often as stable (2 errors in 300 requests vs 30 in 5,700); \
         evidence of a regression 0.49 (fails at 20), \
         evidence it is within 1.5× of stable 0.66 (passes at 20)"
    );
    let v = judge_metric(&metric(0.05, 0.5, None), &series(&slow), at_minute(0), Some(Duration::minutes(3)));
    assert_eq!(v.phase, AnalysisPhase::Inconclusive, "{}", v.message);
    assert_eq!(v.decided_at, Some(at_minute(3)), "the first measurement at or after the 3m window");
    assert!(v.message.contains(" over 3m: "), "{}", v.message);
}

#[test]
fn missing_counts_never_pass_even_with_no_data_pass() {
    let mut m = metric(0.05, 0.5, Some(5));
    m.no_data = bellwether::api::NoDataPolicy::Pass;
    let empty: Vec<Measurement> =
        (1..=5).map(|i| Measurement { at: at_minute(i), ..Measurement::default() }).collect();
    let v = judge(&m, &empty[..3]);
    assert_eq!((v.phase, v.message.as_str()), (AnalysisPhase::Running, "error-rate: no counts yet"));
    let v = judge(&m, &empty);
    assert_eq!(v.phase, AnalysisPhase::Inconclusive);
    assert_eq!(v.message, "error-rate: no counts in 5 measurements");
}

#[test]
fn measurement_errors_beyond_the_limit_are_an_error_and_fewer_are_forgiven() {
    let m = metric(0.05, 0.5, Some(60));
    let failing = |minute| Measurement {
        at: at_minute(minute),
        error: Some("Prometheus is unreachable".into()),
        ..Measurement::default()
    };
    let mut measurements: Vec<Measurement> = (1..=4).map(failing).collect();
    let v = judge(&m, &measurements);
    assert_eq!(v.phase, AnalysisPhase::Running);
    assert_eq!(v.consecutive_errors, 4);
    assert_eq!(v.message, "error-rate: 4 measurement error(s) in a row (limit 4): Prometheus is unreachable");
    measurements.push(failing(5));
    let v = judge(&m, &measurements);
    assert_eq!(v.phase, AnalysisPhase::Error);
    assert_eq!(v.decided_at, Some(at_minute(5)));
    assert_eq!(
        v.message,
        "error-rate: 5 measurement errors in a row (consecutiveErrorLimit 4): Prometheus is unreachable"
    );
    measurements[4] = measurement(5, minute(1.0));
    let v = judge(&m, &measurements);
    assert_eq!((v.phase, v.consecutive_errors), (AnalysisPhase::Running, 0));
}

#[test]
fn a_measurement_repeated_within_half_an_interval_is_not_counted_twice() {
    let m = metric(0.05, 0.5, None);
    let once = series(&[(6.0, 600.0, 57.0, 11_400.0), (5.0, 600.0, 57.0, 11_400.0)]);
    let mut twice = Vec::new();
    for measurement in &once {
        twice.push(measurement.clone());
        twice.push(Measurement { at: measurement.at + Duration::seconds(20), ..measurement.clone() });
    }
    assert_eq!(judge(&m, &once), judge(&m, &twice));
}

#[test]
fn nothing_before_initial_delay_counts_and_dry_run_says_so() {
    let mut m = metric(0.05, 0.5, Some(60));
    m.initial_delay = Some(bellwether::api::Duration::new("3m"));
    m.dry_run = true;
    let mut intervals = vec![minute(20.0); 2];
    intervals.extend([minute(1.0); 2]);
    let v = judge(&m, &series(&intervals));
    assert_eq!(v.phase, AnalysisPhase::Running, "the regressed minutes came before initialDelay");
    assert!(v.dry_run);
    assert!(v.message.starts_with("[dry run] error-rate: canary fails 1.0× as often as stable (6 errors"));
    let v = judge(&m, &series(&[minute(1.0), minute(1.0), minute(5.0)]));
    assert_eq!(v.phase, AnalysisPhase::Failed);
    assert!(v.message.starts_with("[dry run] error-rate: canary fails 5.0×"), "{}", v.message);
}

#[test]
fn settings_outside_the_api_range_are_an_error() {
    let v = judge(&metric(0.0, 0.5, Some(5)), &series(&[minute(1.0)]));
    assert_eq!(v.phase, AnalysisPhase::Error);
    assert_eq!(
        v.message,
        "error-rate: sequential needs alpha in 0.0001..0.5 and maxIncrease in 0.01..100, not 0 and 0.5"
    );
}

/// [`metric`] with `sequential.breachFor`.
fn with_breach_for(mut metric: Metric, breach_for: &str) -> Metric {
    metric.sequential.as_mut().expect("a sequential metric").breach_for =
        Some(bellwether::api::Duration::new(breach_for));
    metric
}

#[test]
fn with_breach_for_a_burst_cannot_fail_the_canary_alone() {
    // Two minutes in which the canary fails 50 times as often, then it recovers for good.
    let mut intervals = vec![minute(50.0), minute(50.0)];
    intervals.extend([minute(1.0); 30]);
    let without = judge(&metric(ALPHA, 0.5, None), &series(&intervals));
    assert_eq!(
        without.phase,
        AnalysisPhase::Failed,
        "without breachFor the burst fails: {}",
        without.message
    );
    assert_eq!(without.decided_at, Some(at_minute(1)), "{}", without.message);
    let with = judge(&with_breach_for(metric(ALPHA, 0.5, None), "2m"), &series(&intervals));
    assert_eq!(with.phase, AnalysisPhase::Running, "{}", with.message);
    assert_eq!(with.state, HysteresisState::Healthy, "the burst's evidence fades: {}", with.message);
}

#[test]
fn with_breach_for_a_lasting_gross_regression_fails_one_interval_after_it() {
    for r in [20.0, 50.0] {
        let v = judge(&with_breach_for(metric(ALPHA, 0.5, None), "2m"), &series(&[minute(r); 10]));
        assert_eq!(v.phase, AnalysisPhase::Failed, "{r}x: {}", v.message);
        assert_eq!(v.decided_at, Some(at_minute(3)), "{r}x fails at its third minute: {}", v.message);
    }
    // breachFor rounds up to whole intervals: one shorter than the interval still spares a burst
    // inside one interval.
    let v = judge(&with_breach_for(metric(ALPHA, 0.5, None), "30s"), &series(&[minute(20.0); 10]));
    assert_eq!(v.decided_at, Some(at_minute(2)), "{}", v.message);
}

#[test]
fn with_breach_for_a_marginal_regression_still_builds_up_evidence() {
    let v = judge(&with_breach_for(metric(ALPHA, 0.5, None), "2m"), &series(&[minute(3.0); 60]));
    assert_eq!(v.phase, AnalysisPhase::Failed, "{}", v.message);
    let minutes = (v.decided_at.unwrap() - at_minute(0)).num_minutes();
    assert!((3..=20).contains(&minutes), "failed after {minutes}m: {}", v.message);
}

#[test]
fn a_breach_for_that_does_not_parse_or_exceeds_ten_minutes_is_an_error_naming_the_field() {
    for (breach_for, expected) in [
        ("2 minutes", "sequential.breachFor: duration \"2 minutes\""),
        ("11m", "sequential.breachFor: 11m is longer than the most, 10m"),
        ("1000h", "sequential.breachFor: 1000h is longer than the most, 10m"),
    ] {
        let v = judge(&with_breach_for(metric(ALPHA, 0.5, None), breach_for), &series(&[minute(1.0)]));
        assert_eq!(v.phase, AnalysisPhase::Error, "{breach_for}: {}", v.message);
        assert!(v.message.contains(expected), "{breach_for}: {}", v.message);
    }
    let v = judge(&with_breach_for(metric(ALPHA, 0.5, None), "10m"), &series(&[minute(1.0)]));
    assert_eq!(v.phase, AnalysisPhase::Running, "10m is allowed: {}", v.message);
}

/// `12,000`.
fn grouped(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The traffic of the statistical tests: 200 requests a second, 5% of them to the canary, stable
/// failing 0.5% of the time, judged every minute for an hour.
const RPS: f64 = 200.0;
const CANARY_SHARE: f64 = 0.05;
const STABLE_ERROR_RATE: f64 = 0.005;
const HORIZON: i64 = 60;
const ALPHA: f64 = 0.05;

/// One minute of traffic in which the canary fails `r` times as often as stable. Stable's rate
/// wobbles from minute to minute by a log-normal factor (σ 0.3) that the canary shares, as when a
/// dependency has a bad minute: the test must not mistake that for the canary.
fn draw(rng: &mut ChaCha8Rng, r: f64) -> Interval {
    let wobble = LogNormal::new(-0.045, 0.3).unwrap().sample(rng);
    let canary = Poisson::new(RPS * CANARY_SHARE * 60.0).unwrap().sample(rng);
    let stable = Poisson::new(RPS * (1.0 - CANARY_SHARE) * 60.0).unwrap().sample(rng);
    let rate = STABLE_ERROR_RATE * wobble;
    let canary_errors = Binomial::new(canary as u64, (r * rate).min(1.0)).unwrap().sample(rng);
    let stable_errors = Binomial::new(stable as u64, rate.min(1.0)).unwrap().sample(rng);
    (canary_errors as f64, canary, stable_errors as f64, stable)
}

/// Runs one seeded canary for the horizon, judging after every interval as the controller does,
/// until a verdict: the phase and the minute it came, or `None` if still running at the end.
fn run(metric: &Metric, seed: u64, r: f64) -> Option<(AnalysisPhase, i64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut measurements = Vec::with_capacity(HORIZON as usize);
    for minute in 1..=HORIZON {
        measurements.push(measurement(minute, draw(&mut rng, r)));
        let verdict = judge(metric, &measurements);
        if verdict.phase.is_terminal() {
            return Some((verdict.phase, minute));
        }
    }
    None
}

/// [`run`] for seeds `0..n`, spread over the machine's cores; the outcome of each seed is the
/// same however they are spread.
fn runs(metric: &Metric, n: u64, r: f64) -> Vec<Option<(AnalysisPhase, i64)>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = (t * chunk)..((t + 1) * chunk).min(n);
                scope.spawn(move || seeds.map(|seed| run(metric, seed, r)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("no panic")).collect()
    })
}

/// The minutes at which runs reached `phase`, sorted; and the share of runs that did.
fn times(outcomes: &[Option<(AnalysisPhase, i64)>], phase: AnalysisPhase) -> (Vec<i64>, f64) {
    let mut minutes: Vec<i64> =
        outcomes.iter().flatten().filter(|(p, _)| *p == phase).map(|&(_, minute)| minute).collect();
    minutes.sort_unstable();
    let share = minutes.len() as f64 / outcomes.len() as f64;
    (minutes, share)
}

/// The q-quantile of the time to reach a verdict over all runs, counting runs that never did as
/// later than any; `None` when that quantile lies beyond the horizon.
fn quantile(sorted: &[i64], runs: usize, q: f64) -> Option<i64> {
    let rank = ((q * runs as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

fn minutes(m: Option<i64>) -> String {
    m.map_or(format!(">{HORIZON}"), |m| m.to_string())
}

fn margin(p: f64, n: usize) -> f64 {
    3.0 * (p * (1.0 - p) / n as f64).sqrt()
}

#[test]
fn a_good_canary_judged_after_every_interval_is_rolled_back_at_most_alpha_of_the_time() {
    const RUNS: u64 = 10_000;
    let outcomes = runs(&metric(ALPHA, 0.5, None), RUNS, 1.0);
    let (failed, rate) = times(&outcomes, AnalysisPhase::Failed);
    let bound = ALPHA + margin(ALPHA, RUNS as usize);
    println!(
        "\nfalse rollbacks of a canary exactly as good as stable, judged every minute for {HORIZON}m: \
         {} of {RUNS} runs = {:.2}% (alpha {}%, allowed up to {:.2}%)",
        failed.len(),
        rate * 100.0,
        ALPHA * 100.0,
        bound * 100.0
    );
    assert!(
        outcomes.iter().flatten().all(|(phase, _)| *phase == AnalysisPhase::Failed),
        "background never passes"
    );
    assert!(rate <= bound, "false-rollback rate {rate} above {bound}");
}

#[test]
fn with_breach_for_a_good_canary_is_still_rolled_back_at_most_alpha_of_the_time() {
    const RUNS: u64 = 4_000;
    let outcomes = runs(&with_breach_for(metric(ALPHA, 0.5, None), "3m"), RUNS, 1.0);
    let (failed, rate) = times(&outcomes, AnalysisPhase::Failed);
    let bound = ALPHA + margin(ALPHA, RUNS as usize);
    println!(
        "\nfalse rollbacks with breachFor 3m: {} of {RUNS} runs = {:.2}% (allowed up to {:.2}%)",
        failed.len(),
        rate * 100.0,
        bound * 100.0
    );
    assert!(rate <= bound, "false-rollback rate {rate} above {bound}");
    // The limits only lower evidence: a 3x regression is still caught, later at most.
    let caught = runs(&with_breach_for(metric(ALPHA, 0.5, None), "3m"), 400, 3.0);
    let (_, share) = times(&caught, AnalysisPhase::Failed);
    assert!(share >= 0.95, "3x caught in {:.1}% of runs", share * 100.0);
}

/// Canary requests a one-shot, one-sided two-proportion z-test at `alpha` needs to detect a canary
/// failing `r` times as often as stable with 80% power, with stable serving the rest of the traffic.
fn fixed_sample_canary_requests(r: f64) -> f64 {
    let normal = Normal::standard();
    let (z_alpha, z_beta) = (normal.inverse_cdf(1.0 - ALPHA), normal.inverse_cdf(0.8));
    let k = (1.0 - CANARY_SHARE) / CANARY_SHARE;
    let (p_s, p_c) = (STABLE_ERROR_RATE, r * STABLE_ERROR_RATE);
    let pooled = (p_c + k * p_s) / (1.0 + k);
    let null = z_alpha * (pooled * (1.0 - pooled) * (1.0 + 1.0 / k)).sqrt();
    let alternative = z_beta * (p_c * (1.0 - p_c) + p_s * (1.0 - p_s) / k).sqrt();
    ((null + alternative) / (p_c - p_s)).powi(2)
}

#[test]
fn regressions_are_detected_about_as_fast_as_a_fixed_sample_test_would() {
    const RUNS: u64 = 1_000;
    let canary_per_minute = RPS * CANARY_SHARE * 60.0;
    println!(
        "\nTime to detect a regression: {RPS} req/s, {}% to the canary, stable failing {}%, alpha {ALPHA}, \
         judged every minute, {RUNS} seeds each\n",
        CANARY_SHARE * 100.0,
        STABLE_ERROR_RATE * 100.0
    );
    println!(
        "| canary error rate | detected within {HORIZON}m | median | p90 | fixed-sample test (80% power) |"
    );
    println!("|---|---|---|---|---|");
    let mut detected = Vec::new();
    for r in [1.5, 2.0, 5.0] {
        let outcomes = runs(&metric(ALPHA, 0.5, None), RUNS, r);
        let (failed, rate) = times(&outcomes, AnalysisPhase::Failed);
        let (median, p90) = (quantile(&failed, outcomes.len(), 0.5), quantile(&failed, outcomes.len(), 0.9));
        let fixed = fixed_sample_canary_requests(r);
        println!(
            "| {r}× stable | {:.1}% | {}m | {}m | {:.0} canary requests = {:.1}m |",
            rate * 100.0,
            minutes(median),
            minutes(p90),
            fixed,
            fixed / canary_per_minute
        );
        detected.push((r, rate, median));
    }
    for pair in detected.windows(2) {
        let ((small, small_rate, small_median), (large, large_rate, large_median)) = (pair[0], pair[1]);
        assert!(small_rate <= large_rate, "{small}× detected more often than {large}×");
        assert!(small_median.unwrap_or(i64::MAX) >= large_median.unwrap_or(i64::MAX));
    }
    let (_, rate_5x, median_5x) = detected[2];
    assert_eq!(rate_5x, 1.0, "every 5× regression is caught within {HORIZON}m");
    assert!(median_5x <= Some(2), "a 5× regression is caught within a couple of minutes");
    let (_, rate_2x, _) = detected[1];
    assert!(rate_2x >= 0.95, "2× regressions are caught within the hour: {rate_2x}");
}

#[test]
fn a_canary_as_good_as_stable_passes_and_one_at_the_max_increase_rarely_does() {
    const RUNS: u64 = 1_000;
    let m = metric(ALPHA, 0.5, Some(HORIZON as i32));
    let good = runs(&m, RUNS, 1.0);
    let (passed, pass_rate) = times(&good, AnalysisPhase::Successful);
    let median = quantile(&passed, good.len(), 0.5);
    let (_, false_rollbacks) = times(&good, AnalysisPhase::Failed);
    let limit = runs(&m, RUNS, 1.5);
    let (_, limit_pass_rate) = times(&limit, AnalysisPhase::Successful);
    let (_, limit_fail_rate) = times(&limit, AnalysisPhase::Failed);
    println!(
        "\nmaxIncrease 0.5, count {HORIZON}, same traffic, {RUNS} seeds each:\n\
         | canary error rate | passed | failed | inconclusive | median time to pass |\n\
         |---|---|---|---|---|\n\
         | 1× stable | {:.1}% | {:.1}% | {:.1}% | {}m |\n\
         | 1.5× stable (the limit) | {:.1}% | {:.1}% | {:.1}% | |",
        pass_rate * 100.0,
        false_rollbacks * 100.0,
        (1.0 - pass_rate - false_rollbacks) * 100.0,
        minutes(median),
        limit_pass_rate * 100.0,
        limit_fail_rate * 100.0,
        (1.0 - limit_pass_rate - limit_fail_rate) * 100.0
    );
    assert!(pass_rate >= 0.9, "a canary as good as stable passes within the hour: {pass_rate}");
    let bound = ALPHA + margin(ALPHA, RUNS as usize);
    assert!(limit_pass_rate <= bound, "a canary at the limit passed {limit_pass_rate} > {bound}");
}
