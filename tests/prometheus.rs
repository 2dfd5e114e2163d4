//! The Prometheus provider against a real Prometheus server with backfilled data.
//!
//! Needs `prometheus` and `promtool` on PATH; ./scripts/test installs them when missing.

#[path = "support/prometheus.rs"]
mod prometheus_support;

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use bellwether::metrics::prometheus::{MeasurementError, PrometheusProvider, ResolvedAuth};
use chrono::{DateTime, TimeDelta, Utc};
use prometheus_support::Prometheus;

/// The start of the backfilled data: 2024-01-15T00:00:00Z. One sample a minute for an hour.
const T0: i64 = 1_705_276_800;
const MINUTES: i64 = 60;

fn at_minute(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0, 0).unwrap() + TimeDelta::minutes(minute)
}

/// Per-revision request counters (the "bad" revision fails 10% of its requests, the "good" one none)
/// and a gauge whose value is the minute number (times two for "bad").
fn fixture() -> String {
    let mut om = String::from("# TYPE http_requests counter\n");
    let per_minute = [("good", "200", 100), ("good", "500", 0), ("bad", "200", 90), ("bad", "500", 10)];
    for (revision, code, rate) in per_minute {
        for minute in 0..=MINUTES {
            let value = rate * minute;
            let ts = T0 + 60 * minute;
            writeln!(om, r#"http_requests_total{{revision="{revision}",code="{code}"}} {value} {ts}"#)
                .unwrap();
        }
    }
    om.push_str("# TYPE queue_depth gauge\n");
    for (revision, factor) in [("good", 1), ("bad", 2)] {
        for minute in 0..=MINUTES {
            let ts = T0 + 60 * minute;
            writeln!(om, r#"queue_depth{{revision="{revision}"}} {} {ts}"#, factor * minute).unwrap();
        }
    }
    om.push_str("# EOF\n");
    om
}

/// One server for the whole test binary.
fn server() -> &'static Prometheus {
    static SERVER: OnceLock<Result<Prometheus, String>> = OnceLock::new();
    prometheus_support::shared(&SERVER, fixture)
}

fn provider_with_timeout(timeout: Duration) -> PrometheusProvider {
    PrometheusProvider::new(server().address(), timeout, &ResolvedAuth::default()).unwrap()
}

fn provider() -> PrometheusProvider {
    provider_with_timeout(Duration::from_secs(10))
}

const ERROR_RATIO: &str = r#"sum(rate(http_requests_total{revision="REV",code="500"}[5m])) / sum(rate(http_requests_total{revision="REV"}[5m]))"#;

#[tokio::test]
async fn instant_query_at_a_past_time_gives_the_value() {
    let p = provider();
    let value = p.instant(r#"queue_depth{revision="good"}"#, Some(at_minute(30))).await;
    assert_eq!(value, Ok(Some(30.0)));
    let value = p.instant(r#"queue_depth{revision="bad"}"#, Some(at_minute(30))).await;
    assert_eq!(value, Ok(Some(60.0)));
}

#[tokio::test]
async fn error_ratio_per_revision() {
    let p = provider();
    let bad = p.instant(&ERROR_RATIO.replace("REV", "bad"), Some(at_minute(30))).await.unwrap().unwrap();
    assert!((bad - 0.1).abs() < 1e-9, "bad revision error ratio {bad}");
    let good = p.instant(&ERROR_RATIO.replace("REV", "good"), Some(at_minute(30))).await;
    assert_eq!(good, Ok(Some(0.0)));
}

#[tokio::test]
async fn scalar_result_gives_the_value() {
    let p = provider();
    let value = p.instant(r#"scalar(queue_depth{revision="good"}) * 2"#, Some(at_minute(10))).await;
    assert_eq!(value, Ok(Some(20.0)));
}

#[tokio::test]
async fn empty_result_is_no_data() {
    let p = provider();
    let missing = p.instant(r#"queue_depth{revision="missing"}"#, Some(at_minute(30))).await;
    assert_eq!(missing, Ok(None));
    // Before the data starts.
    let before = p.instant(r#"queue_depth{revision="good"}"#, Some(at_minute(-60))).await;
    assert_eq!(before, Ok(None));
    // Without a time Prometheus evaluates at "now", long after the backfilled hour.
    let now = p.instant(r#"queue_depth{revision="good"}"#, None).await;
    assert_eq!(now, Ok(None));
}

#[tokio::test]
async fn zero_over_zero_is_no_data() {
    let p = provider();
    let no_traffic = r#"sum(rate(http_requests_total{revision="good",code="500"}[5m])) / sum(rate(http_requests_total{revision="good",code="500"}[5m]))"#;
    assert_eq!(p.instant(no_traffic, Some(at_minute(30))).await, Ok(None));
}

#[tokio::test]
async fn two_series_are_an_error_naming_them() {
    let p = provider();
    let err = p.instant("sum by (revision) (queue_depth)", Some(at_minute(30))).await.unwrap_err();
    assert_eq!(
        err,
        MeasurementError::TooManySeries {
            count: 2,
            series: vec![r#"{revision="bad"}"#.into(), r#"{revision="good"}"#.into()],
        }
    );
    assert_eq!(
        err.to_string(),
        r#"query returned 2 series, expected 1: {revision="bad"}, {revision="good"}"#
    );
    let err = p.instant("http_requests_total", Some(at_minute(30))).await.unwrap_err();
    assert_eq!(err.label(), "too_many_series");
    assert!(
        err.to_string().starts_with(
            r#"query returned 4 series, expected 1: http_requests_total{code="200", revision="bad"}, "#
        ),
        "{err}"
    );
}

#[tokio::test]
async fn syntax_error_is_a_bad_query() {
    let p = provider();
    let err = p.instant("sum(rate(http_requests_total[5m])", Some(at_minute(30))).await.unwrap_err();
    match &err {
        MeasurementError::BadQuery { message } => assert!(message.contains("parse error"), "{message}"),
        other => panic!("expected BadQuery, got {other:?}"),
    }
    assert!(err.to_string().starts_with("Prometheus rejected the query: "), "{err}");
}

#[tokio::test]
async fn range_selector_in_an_instant_query_is_unexpected() {
    let p = provider();
    let err = p.instant(r#"queue_depth{revision="good"}[5m]"#, Some(at_minute(30))).await.unwrap_err();
    assert_eq!(err.label(), "unexpected");
    assert!(err.to_string().contains("range vector"), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("http://127.0.0.1:{port}");
    let p = PrometheusProvider::new(&address, Duration::from_secs(5), &ResolvedAuth::default()).unwrap();
    let err = p.instant("up", None).await.unwrap_err();
    match &err {
        MeasurementError::Unreachable { address: a, reason } => {
            assert_eq!(a, &address);
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err.to_string().starts_with(&format!("Prometheus at {address} is unreachable: ")), "{err}");
    let err = p.range("up", at_minute(0), at_minute(5), Duration::from_secs(60)).await.unwrap_err();
    assert_eq!(err.label(), "unreachable");
}

#[tokio::test]
async fn unknown_host_is_unreachable() {
    let p = PrometheusProvider::new(
        "http://prometheus.bellwether-test.invalid:9090",
        Duration::from_secs(20),
        &ResolvedAuth::default(),
    )
    .unwrap();
    let err = p.instant("up", None).await.unwrap_err();
    assert_eq!(err.label(), "unreachable", "{err}");
}

#[tokio::test]
async fn slow_query_times_out() {
    // A subquery with 172,800 steps takes Prometheus tens of milliseconds or more; a 1ms timeout
    // (on the HTTP call and sent as Prometheus's evaluation timeout) always fires first.
    let p = provider_with_timeout(Duration::from_millis(1));
    let err = p.instant("count(count_over_time(vector(1)[2d:1s]))", Some(at_minute(30))).await.unwrap_err();
    assert_eq!(err.label(), "timeout", "{err}");
    assert!(err.to_string().starts_with("Prometheus query timed out: "), "{err}");
}

#[tokio::test]
async fn range_query_gives_the_points() {
    let p = provider();
    let points = p
        .range(r#"queue_depth{revision="good"}"#, at_minute(10), at_minute(15), Duration::from_secs(60))
        .await
        .unwrap();
    let expected: Vec<(DateTime<Utc>, f64)> = (10..=15).map(|m| (at_minute(m), m as f64)).collect();
    assert_eq!(points, expected);

    let ratio = p
        .range(&ERROR_RATIO.replace("REV", "bad"), at_minute(20), at_minute(40), Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(ratio.len(), 5);
    assert!(ratio.iter().all(|(_, v)| (v - 0.1).abs() < 1e-9), "{ratio:?}");
}

#[tokio::test]
async fn range_query_drops_nan_points() {
    let p = provider();
    // 0/0 at minute 20 only.
    let query = r#"(queue_depth{revision="good"} - 20) / (queue_depth{revision="good"} - 20)"#;
    let points = p.range(query, at_minute(18), at_minute(22), Duration::from_secs(60)).await.unwrap();
    let minutes: Vec<DateTime<Utc>> = points.iter().map(|(t, _)| *t).collect();
    assert_eq!(minutes, vec![at_minute(18), at_minute(19), at_minute(21), at_minute(22)]);
    assert!(points.iter().all(|(_, v)| *v == 1.0), "{points:?}");
}

#[tokio::test]
async fn range_query_series_count_rule() {
    let p = provider();
    let none = p
        .range(r#"queue_depth{revision="missing"}"#, at_minute(0), at_minute(10), Duration::from_secs(60))
        .await;
    assert_eq!(none, Ok(vec![]));
    let err = p
        .range("sum by (revision) (queue_depth)", at_minute(0), at_minute(10), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"query returned 2 series, expected 1: {revision="bad"}, {revision="good"}"#
    );
    let err = p.range("queue_depth", at_minute(0), at_minute(10), Duration::ZERO).await.unwrap_err();
    assert_eq!(err.label(), "bad_query", "{err}");
}
