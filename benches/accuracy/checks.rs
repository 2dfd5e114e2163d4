//! The baseline policies on short hand-built series, where the right verdict can be worked out by
//! hand. A harness-less bench has no `#[test]`s, so `main` runs these on every invocation.

use super::policies::{ArgoRollouts, Flagger, Kayenta};
use bellwether::api::{AnalysisPhase, Measurement, Metric};
use bellwether::engine::{MetricPlan, MetricVerdict};
use bellwether::sim::Policy;
use chrono::{DateTime, Duration, TimeZone, Utc};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).single().expect("a valid time")
}

/// An error-rate metric with `max` 0.01, measured every minute, `count` measurements if given.
fn metric(count: Option<i32>) -> Metric {
    let mut value = serde_json::json!({
        "name": "error-rate",
        "interval": "1m",
        "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "q"}},
        "threshold": {"max": 0.01}
    });
    if let Some(count) = count {
        value["count"] = count.into();
    }
    serde_json::from_value(value).expect("the check's metric parses")
}

/// One sample a minute from the start: (canary, stable); `None` is no data.
fn series(values: &[(Option<f64>, Option<f64>)]) -> Vec<Measurement> {
    values
        .iter()
        .enumerate()
        .map(|(i, &(canary, stable))| Measurement {
            at: minute(i),
            value: canary,
            baseline: stable,
            ..Measurement::default()
        })
        .collect()
}

fn minute(i: usize) -> DateTime<Utc> {
    start() + Duration::minutes(i as i64)
}

/// Canary values only, stable always at 0.001.
fn canary(values: &[Option<f64>]) -> Vec<Measurement> {
    series(&values.iter().map(|&v| (v, Some(0.001))).collect::<Vec<_>>())
}

const GOOD: Option<f64> = Some(0.002);
const BAD: Option<f64> = Some(0.05);

fn expect(
    policy: &dyn Policy,
    metric: &Metric,
    samples: &[Measurement],
    phase: AnalysisPhase,
    at: Option<usize>,
) {
    let plan = MetricPlan::new(metric, None).expect("the checks' metrics are valid");
    let verdict: MetricVerdict = policy.judge(&plan, samples, start());
    assert_eq!(
        (verdict.phase, verdict.decided_at),
        (phase, at.map(minute)),
        "{} on {} samples: {}",
        policy.name(),
        samples.len(),
        verdict.message
    );
}

fn argo() {
    let argo = ArgoRollouts { failure_limit: 3 };
    let five = metric(Some(5));
    expect(&argo, &five, &canary(&[GOOD; 5]), AnalysisPhase::Successful, Some(4));
    expect(&argo, &five, &canary(&[BAD; 4]), AnalysisPhase::Failed, Some(3));
    // Three failures are within failureLimit 3; the run still ends after five measurements.
    expect(&argo, &five, &canary(&[BAD, BAD, BAD, GOOD, GOOD]), AnalysisPhase::Successful, Some(4));
    // An empty result is an Error measurement: not counted, and the fifth in a row is one too many.
    expect(&argo, &five, &canary(&[GOOD, None, None, GOOD, GOOD, GOOD]), AnalysisPhase::Running, None);
    expect(&argo, &five, &canary(&[None; 5]), AnalysisPhase::Error, Some(4));
    expect(&argo, &five, &canary(&[GOOD, None, GOOD, GOOD, GOOD, GOOD]), AnalysisPhase::Successful, Some(5));
    // Background analysis never succeeds on its own.
    expect(&argo, &metric(None), &canary(&[GOOD; 12]), AnalysisPhase::Running, None);
    let mut down = canary(&[GOOD; 5]);
    down.iter_mut().for_each(|s| *s = Measurement { value: None, error: Some("down".into()), ..s.clone() });
    expect(&argo, &metric(None), &down, AnalysisPhase::Error, Some(4));
}

fn flagger() {
    let flagger = Flagger { threshold: 5 };
    let ten = metric(Some(10));
    // Failed checks accumulate over the whole analysis: five, not in a row, roll back.
    let alternating = [BAD, GOOD, BAD, GOOD, BAD, GOOD, BAD, GOOD, BAD];
    expect(&flagger, &ten, &canary(&alternating[..8]), AnalysisPhase::Running, None);
    expect(&flagger, &ten, &canary(&alternating), AnalysisPhase::Failed, Some(8));
    // No values found is a failed check.
    expect(&flagger, &ten, &canary(&[None; 5]), AnalysisPhase::Failed, Some(4));
    // A failed check halts advancement: success needs as many passing checks as the window has.
    expect(&flagger, &metric(Some(3)), &canary(&[BAD, GOOD, GOOD, GOOD]), AnalysisPhase::Successful, Some(3));
}

fn kayenta() {
    let kayenta = Kayenta { judge_every: 5, pass: 90.0, marginal: 75.0 };
    let ten = metric(Some(10));
    let same: Vec<_> =
        (0..10).map(|i| (Some(0.001 + 0.0001 * i as f64), Some(0.00105 + 0.0001 * i as f64))).collect();
    expect(&kayenta, &ten, &series(&same), AnalysisPhase::Successful, Some(9));
    expect(&kayenta, &ten, &series(&same[..7]), AnalysisPhase::Running, None);
    // Five canary values all above five baseline values: p = 0.0122 < 0.02, High at the first
    // judgement.
    let higher: Vec<_> =
        (0..5).map(|i| (Some(0.002 + 0.0001 * i as f64), Some(0.001 + 0.0001 * i as f64))).collect();
    expect(&kayenta, &ten, &series(&higher), AnalysisPhase::Failed, Some(4));
    // Lower is no harm for a `max` metric.
    let lower: Vec<_> = (0..10).map(|i| (Some(0.0001 * i as f64), Some(0.002 + 0.0001 * i as f64))).collect();
    expect(&kayenta, &ten, &series(&lower), AnalysisPhase::Successful, Some(9));
    // Without a baseline the metric has no data, which the default nanStrategy passes.
    let no_baseline: Vec<_> = (0..10).map(|_| (BAD, None)).collect();
    expect(&kayenta, &ten, &series(&no_baseline), AnalysisPhase::Successful, Some(9));
    // A judgement that cannot fetch its data fails the analysis.
    let mut down = series(&same);
    down[4].error = Some("down".into());
    expect(&kayenta, &ten, &down, AnalysisPhase::Error, Some(4));
}

/// Runs every check; panics on the first wrong verdict.
pub fn run() {
    argo();
    flagger();
    kayenta();
}
