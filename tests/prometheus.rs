//! The Prometheus provider against a real Prometheus server with backfilled data, and the pool of
//! providers: one per address, timeout and credentials, each address with its own limit on queries
//! in flight.
//!
//! Needs `prometheus` and `promtool` on PATH; ./scripts/test installs them when missing.

use bellwether_testkit::prometheus;

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bellwether::api::Metric;
use bellwether::api::template::Vars;
use bellwether::metrics::prometheus::{
    Credentials, MAX_GET_QUERY_BYTES, MeasurementError, PrometheusProvider, ResolvedAuth,
};
use bellwether::metrics::providers::Providers;
use chrono::{DateTime, TimeDelta, Utc};
use prometheus::Prometheus;

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
    prometheus::shared(&SERVER, fixture)
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

/// `queue_depth` of the good revision, padded with a matcher every series passes to over 1 MiB: longer
/// than Prometheus takes in a request's URL and headers.
fn query_too_long_for_a_url() -> String {
    format!(r#"queue_depth{{revision="good", padding!="{}"}}"#, "+".repeat(1 << 20))
}

#[tokio::test]
async fn a_query_too_long_for_a_url_is_sent_by_post() {
    let p = provider();
    let query = query_too_long_for_a_url();
    assert_eq!(p.instant(&query, Some(at_minute(30))).await, Ok(Some(30.0)));
    let points = p.range(&query, at_minute(10), at_minute(12), Duration::from_secs(60)).await.unwrap();
    assert_eq!(points, [(at_minute(10), 10.0), (at_minute(11), 11.0), (at_minute(12), 12.0)]);
    // Just over the limit for a GET, with the time parameters in the body as well.
    let padding = "+".repeat(MAX_GET_QUERY_BYTES / 3);
    let query = format!(r#"queue_depth{{revision="good", padding!="{padding}"}}"#);
    assert_eq!(p.instant(&query, Some(at_minute(45))).await, Ok(Some(45.0)));
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

/// A threshold metric at `address` on `query`, with the given provider `timeout`.
fn pooled_metric(address: &str, query: &str, timeout: Option<&str>) -> Metric {
    serde_json::from_value(serde_json::json!({
        "name": "queue",
        "provider": {"prometheus": {"address": address, "query": query, "timeout": timeout}},
        "threshold": {"max": 100}
    }))
    .unwrap()
}

/// A compare metric at `address`: each measurement runs two queries.
fn pooled_comparison(address: &str) -> Metric {
    serde_json::from_value(serde_json::json!({
        "name": "queue",
        "provider": {"prometheus": {"address": address, "query": r#"queue_depth{revision="{{revision}}"}"#}},
        "compare": {"confidence": 0.95}
    }))
    .unwrap()
}

/// The variables of a run of the `bad` revision against `good`.
fn bad_against_good() -> Vars {
    Vars {
        revision: "bad".into(),
        canary_revision: "bad".into(),
        stable_revision: "good".into(),
        ..Vars::default()
    }
}

#[tokio::test]
async fn the_pool_builds_one_provider_per_address_timeout_and_credentials() {
    let pool = Providers::new(4);
    let vars = bad_against_good();
    let query = r#"queue_depth{revision="{{revision}}"}"#;
    let default_timeout = pooled_metric(server().address(), query, None);
    let short_timeout = pooled_metric(server().address(), query, Some("5s"));
    let none = ResolvedAuth::default();
    let bearer =
        ResolvedAuth { credentials: Some(Credentials::Bearer { token: "t0ken".into() }), headers: vec![] };
    let runs = [
        (&default_timeout, &none),
        (&default_timeout, &none),
        (&short_timeout, &none),
        (&short_timeout, &bearer),
    ];
    let mut counts = Vec::new();
    for (metric, auth) in runs {
        let measurement = pool.measure(metric, &vars, auth, at_minute(30)).await;
        assert_eq!(measurement.value, Some(60.0), "{measurement:?}");
        counts.push(pool.provider_count());
    }
    assert_eq!(counts, [1, 1, 2, 3]);
    let clone = pool.clone();
    clone.measure(&default_timeout, &vars, &bearer, at_minute(30)).await;
    assert_eq!(pool.provider_count(), 4, "clones share the pool");
}

/// Nothing listens at the address: the measurement's error names it.
#[tokio::test]
async fn an_unreachable_address_is_an_error_measurement_naming_it() {
    let pool = Providers::new(4);
    let metric = pooled_metric("http://127.0.0.1:1", "vector(1)", None);
    let measurement = pool.measure(&metric, &Vars::default(), &ResolvedAuth::default(), at_minute(30)).await;
    let error = measurement.error.clone().unwrap_or_else(|| panic!("no error in {measurement:?}"));
    assert!(error.contains("Prometheus at http://127.0.0.1:1 is unreachable"), "{error}");
    assert_eq!((measurement.value, measurement.at), (None, at_minute(30)));
}

/// A metric that cannot be measured as configured gives an error measurement naming the field.
#[tokio::test]
async fn a_misconfigured_metric_is_an_error_measurement_naming_the_field() {
    let pool = Providers::new(4);
    let cases = [
        (
            pooled_metric("http://", "vector(1)", None),
            "provider.prometheus.address: invalid Prometheus address",
        ),
        (pooled_metric(server().address(), "vector(1)", Some("0s")), "provider.prometheus.timeout: "),
        (
            pooled_metric(server().address(), r#"x{revision="{{revison}}"}"#, None),
            "provider.prometheus.query: unknown variable {{revison}}; did you mean {{revision}}?",
        ),
    ];
    for (metric, expected) in cases {
        let measurement =
            pool.measure(&metric, &Vars::default(), &ResolvedAuth::default(), at_minute(30)).await;
        let error = measurement.error.clone().unwrap_or_else(|| panic!("no error in {measurement:?}"));
        assert!(error.starts_with(expected), "{error}");
    }
    assert_eq!(pool.provider_count(), 0, "no provider is kept for a metric that cannot be measured");
}

/// What a [`QueryCounter`] has seen.
#[derive(Default)]
struct Counted {
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// An HTTP server that holds each request for a while before answering it with no data, counting the
/// requests and the most it held at once. It serves each connection on its own thread, so that it
/// would see any overlap the client allows.
fn query_counter() -> (String, Arc<Counted>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let counted = Arc::new(Counted::default());
    let shared = Arc::clone(&counted);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counted = Arc::clone(&shared);
            std::thread::spawn(move || answer_slowly(stream, &counted));
        }
    });
    (address, counted)
}

fn answer_slowly(mut stream: TcpStream, counted: &Counted) {
    if !read_request_head(&mut stream) {
        return;
    }
    counted.requests.fetch_add(1, Ordering::SeqCst);
    let now = counted.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counted.most_in_flight.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    // Leaves before answering: the client's next request can only follow the answer.
    counted.in_flight.fetch_sub(1, Ordering::SeqCst);
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// Reads a request up to the end of its headers (a query is a GET, with no body); false if the
/// connection closed first.
fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    true
}

/// With a limit of one, concurrent measurements of a comparison (two queries each) against one
/// address never have two queries in flight: each query holds a permit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_never_runs_more_queries_against_one_address_than_its_limit() {
    let (address, counted) = query_counter();
    let pool = Providers::new(1);
    let metric = pooled_comparison(&address);
    let vars = bad_against_good();
    let measures = (0..6).map(|_| {
        let (pool, metric, vars) = (pool.clone(), metric.clone(), vars.clone());
        tokio::spawn(
            async move { pool.measure(&metric, &vars, &ResolvedAuth::default(), at_minute(30)).await },
        )
    });
    for measurement in futures::future::join_all(measures).await {
        let measurement = measurement.unwrap();
        assert_eq!(measurement.error, None, "{measurement:?}");
    }
    assert_eq!(counted.requests.load(Ordering::SeqCst), 12);
    assert_eq!(counted.most_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(pool.provider_count(), 1);
}

/// A Prometheus that never answers holds its address's only permit, and the other addresses' are
/// still free.
#[tokio::test]
async fn a_prometheus_that_never_answers_holds_only_its_own_permits() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let (arrived, mut arrival) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            if read_request_head(&mut stream) {
                let _ = arrived.send(());
            }
            std::thread::spawn(move || {
                let _held = stream;
                std::thread::sleep(Duration::from_secs(600));
            });
        }
    });
    let pool = Providers::new(1);
    let vars = bad_against_good();
    let stuck = {
        let (pool, metric, vars) =
            (pool.clone(), pooled_metric(&silent, "vector(1)", Some("10m")), vars.clone());
        tokio::spawn(
            async move { pool.measure(&metric, &vars, &ResolvedAuth::default(), at_minute(30)).await },
        )
    };
    arrival.recv().await.expect("the silent server gets the query");
    let metric = pooled_metric(server().address(), r#"queue_depth{revision="{{revision}}"}"#, None);
    let measured = tokio::time::timeout(
        Duration::from_secs(60),
        pool.measure(&metric, &vars, &ResolvedAuth::default(), at_minute(30)),
    )
    .await
    .expect("a query to another Prometheus does not wait for the silent one");
    assert_eq!(measured.value, Some(60.0), "{measured:?}");
    stuck.abort();
}
