//! The Prometheus provider against real servers of the Prometheus API with the same data: a
//! Prometheus with backfilled blocks and a VictoriaMetrics with imported samples. Every test that
//! queries a server runs against each ([`Backend`]); where they answer differently, the test says
//! how. Then the pool of providers: one per address, timeout and credentials, each address with its
//! own limit on queries in flight.
//!
//! Needs `prometheus`, `promtool` and `victoria-metrics` on PATH; ./scripts/test installs them when
//! missing.

use bellwether_testkit::{prometheus, victoria_metrics};

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
use victoria_metrics::VictoriaMetrics;

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

/// A server of the Prometheus query API that the tests run against, each started once for the whole
/// test binary with [`fixture`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Prometheus,
    VictoriaMetrics,
}

impl Backend {
    fn address(self) -> &'static str {
        match self {
            Backend::Prometheus => {
                static SERVER: OnceLock<Result<Prometheus, String>> = OnceLock::new();
                prometheus::shared(&SERVER, fixture).address()
            }
            Backend::VictoriaMetrics => victoria_metrics_server().address(),
        }
    }

    /// A query that keeps the server busy for milliseconds, within its limits: a 1ms timeout always
    /// fires first. VictoriaMetrics refuses Prometheus's (more than 30,000 points in a subquery) in
    /// under a millisecond, and evaluates `vector(1)` too fast.
    fn slow_query(self) -> &'static str {
        match self {
            Backend::Prometheus => "count(count_over_time(vector(1)[2d:1s]))",
            Backend::VictoriaMetrics => "count(count_over_time(rate(http_requests_total[5m])[8h:1s]))",
        }
    }

    /// What the server's message for a PromQL syntax error says.
    fn says_of_a_syntax_error(self) -> &'static str {
        match self {
            Backend::Prometheus => "parse error",
            Backend::VictoriaMetrics => "unparsed data",
        }
    }
}

fn victoria_metrics_server() -> &'static VictoriaMetrics {
    static SERVER: OnceLock<Result<VictoriaMetrics, String>> = OnceLock::new();
    victoria_metrics::shared(&SERVER, fixture)
}

/// Runs each of the test bodies named, `async fn name(backend: Backend)`, as a test against each
/// backend: `on_prometheus::name` and `on_victoria_metrics::name`.
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        mod on_prometheus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Prometheus).await
                }
            )*
        }
        mod on_victoria_metrics {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::VictoriaMetrics).await
                }
            )*
        }
    };
}

on_each_backend!(
    instant_query_at_a_past_time_gives_the_value,
    error_ratio_per_revision,
    scalar_result_gives_the_value,
    empty_result_is_no_data,
    zero_over_zero_is_no_data,
    infinities_keep_their_sign,
    two_series_are_an_error_naming_them,
    syntax_error_is_a_bad_query,
    range_selector_in_an_instant_query_is_unexpected,
    slow_query_times_out,
    range_query_gives_the_points,
    a_query_too_long_for_a_url_is_sent_by_post,
    range_query_drops_nan_points,
    range_query_series_count_rule,
    the_pool_builds_one_provider_per_address_timeout_and_credentials,
    a_misconfigured_metric_is_an_error_measurement_naming_the_field,
    a_server_that_never_answers_holds_only_its_own_permits,
);

fn provider_with_timeout(backend: Backend, timeout: Duration) -> PrometheusProvider {
    PrometheusProvider::new(backend.address(), timeout, &ResolvedAuth::default()).unwrap()
}

fn provider(backend: Backend) -> PrometheusProvider {
    provider_with_timeout(backend, Duration::from_secs(10))
}

const ERROR_RATIO: &str = r#"sum(rate(http_requests_total{revision="REV",code="500"}[5m])) / sum(rate(http_requests_total{revision="REV"}[5m]))"#;

async fn instant_query_at_a_past_time_gives_the_value(backend: Backend) {
    let p = provider(backend);
    let value = p.instant(r#"queue_depth{revision="good"}"#, Some(at_minute(30))).await;
    assert_eq!(value, Ok(Some(30.0)));
    let value = p.instant(r#"queue_depth{revision="bad"}"#, Some(at_minute(30))).await;
    assert_eq!(value, Ok(Some(60.0)));
}

async fn error_ratio_per_revision(backend: Backend) {
    let p = provider(backend);
    let bad = p.instant(&ERROR_RATIO.replace("REV", "bad"), Some(at_minute(30))).await.unwrap().unwrap();
    assert!((bad - 0.1).abs() < 1e-9, "bad revision error ratio {bad}");
    let good = p.instant(&ERROR_RATIO.replace("REV", "good"), Some(at_minute(30))).await;
    assert_eq!(good, Ok(Some(0.0)));
}

async fn scalar_result_gives_the_value(backend: Backend) {
    let p = provider(backend);
    let value = p.instant(r#"scalar(queue_depth{revision="good"}) * 2"#, Some(at_minute(10))).await;
    assert_eq!(value, Ok(Some(20.0)));
}

async fn empty_result_is_no_data(backend: Backend) {
    let p = provider(backend);
    let missing = p.instant(r#"queue_depth{revision="missing"}"#, Some(at_minute(30))).await;
    assert_eq!(missing, Ok(None));
    // Before the data starts.
    let before = p.instant(r#"queue_depth{revision="good"}"#, Some(at_minute(-60))).await;
    assert_eq!(before, Ok(None));
    // Without a time Prometheus evaluates at "now", long after the backfilled hour.
    let now = p.instant(r#"queue_depth{revision="good"}"#, None).await;
    assert_eq!(now, Ok(None));
}

async fn zero_over_zero_is_no_data(backend: Backend) {
    let p = provider(backend);
    let no_traffic = r#"sum(rate(http_requests_total{revision="good",code="500"}[5m])) / sum(rate(http_requests_total{revision="good",code="500"}[5m]))"#;
    assert_eq!(p.instant(no_traffic, Some(at_minute(30))).await, Ok(None));
}

/// `+Inf` and `-Inf` are values, kept with their sign; `0/0` is no data.
async fn infinities_keep_their_sign(backend: Backend) {
    let p = provider(backend);
    let depth = r#"queue_depth{revision="good"}"#;
    assert_eq!(p.instant(&format!("{depth} / 0"), Some(at_minute(30))).await, Ok(Some(f64::INFINITY)));
    assert_eq!(p.instant(&format!("-{depth} / 0"), Some(at_minute(30))).await, Ok(Some(f64::NEG_INFINITY)));
    // The depth is 0 at minute 0.
    assert_eq!(p.instant(&format!("{depth} / 0"), Some(at_minute(0))).await, Ok(None));
    assert_eq!(p.instant("1 / 0", None).await, Ok(Some(f64::INFINITY)));
}

async fn two_series_are_an_error_naming_them(backend: Backend) {
    let p = provider(backend);
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

async fn syntax_error_is_a_bad_query(backend: Backend) {
    let p = provider(backend);
    let err = p.instant("sum(rate(http_requests_total[5m])", Some(at_minute(30))).await.unwrap_err();
    match &err {
        MeasurementError::BadQuery { message } => {
            assert!(message.contains(backend.says_of_a_syntax_error()), "{message}")
        }
        other => panic!("expected BadQuery, got {other:?}"),
    }
    assert!(err.to_string().starts_with("Prometheus rejected the query: "), "{err}");
}

async fn range_selector_in_an_instant_query_is_unexpected(backend: Backend) {
    let p = provider(backend);
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

async fn slow_query_times_out(backend: Backend) {
    // A 1ms timeout, on the HTTP call and sent as the server's evaluation timeout, fires before the
    // server has the answer.
    let p = provider_with_timeout(backend, Duration::from_millis(1));
    let err = p.instant(backend.slow_query(), Some(at_minute(30))).await.unwrap_err();
    assert_eq!(err.label(), "timeout", "{err}");
    assert!(err.to_string().starts_with("Prometheus query timed out: "), "{err}");
}

async fn range_query_gives_the_points(backend: Backend) {
    let p = provider(backend);
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

async fn a_query_too_long_for_a_url_is_sent_by_post(backend: Backend) {
    let p = provider(backend);
    let query = query_too_long_for_a_url();
    match backend {
        Backend::Prometheus => {
            assert_eq!(p.instant(&query, Some(at_minute(30))).await, Ok(Some(30.0)));
            let points =
                p.range(&query, at_minute(10), at_minute(12), Duration::from_secs(60)).await.unwrap();
            assert_eq!(points, [(at_minute(10), 10.0), (at_minute(11), 11.0), (at_minute(12), 12.0)]);
        }
        // VictoriaMetrics refuses any query longer than -search.maxQueryLen (16 KiB by default),
        // however it is sent: the limit is the server's, and the error names it.
        Backend::VictoriaMetrics => {
            for err in [
                p.instant(&query, Some(at_minute(30))).await.unwrap_err(),
                p.range(&query, at_minute(10), at_minute(12), Duration::from_secs(60)).await.unwrap_err(),
            ] {
                match &err {
                    MeasurementError::BadQuery { message } => {
                        assert!(message.contains("-search.maxQueryLen"), "{message}")
                    }
                    other => panic!("expected BadQuery, got {other:?}"),
                }
            }
        }
    }
    // Just over the limit for a GET, with the time parameters in the body as well.
    let padding = "+".repeat(MAX_GET_QUERY_BYTES / 3);
    let query = format!(r#"queue_depth{{revision="good", padding!="{padding}"}}"#);
    assert_eq!(p.instant(&query, Some(at_minute(45))).await, Ok(Some(45.0)));
}

async fn range_query_drops_nan_points(backend: Backend) {
    let p = provider(backend);
    // 0/0 at minute 20 only.
    let query = r#"(queue_depth{revision="good"} - 20) / (queue_depth{revision="good"} - 20)"#;
    let points = p.range(query, at_minute(18), at_minute(22), Duration::from_secs(60)).await.unwrap();
    let minutes: Vec<DateTime<Utc>> = points.iter().map(|(t, _)| *t).collect();
    assert_eq!(minutes, vec![at_minute(18), at_minute(19), at_minute(21), at_minute(22)]);
    assert!(points.iter().all(|(_, v)| *v == 1.0), "{points:?}");
}

async fn range_query_series_count_rule(backend: Backend) {
    let p = provider(backend);
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

async fn the_pool_builds_one_provider_per_address_timeout_and_credentials(backend: Backend) {
    let pool = Providers::new(4);
    let vars = bad_against_good();
    let query = r#"queue_depth{revision="{{revision}}"}"#;
    let default_timeout = pooled_metric(backend.address(), query, None);
    let short_timeout = pooled_metric(backend.address(), query, Some("5s"));
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
async fn a_misconfigured_metric_is_an_error_measurement_naming_the_field(backend: Backend) {
    let pool = Providers::new(4);
    let cases = [
        (
            pooled_metric("http://", "vector(1)", None),
            "provider.prometheus.address: invalid Prometheus address",
        ),
        (pooled_metric(backend.address(), "vector(1)", Some("0s")), "provider.prometheus.timeout: "),
        (
            pooled_metric(backend.address(), r#"x{revision="{{revison}}"}"#, None),
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
async fn a_server_that_never_answers_holds_only_its_own_permits(backend: Backend) {
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
    let metric = pooled_metric(backend.address(), r#"queue_depth{revision="{{revision}}"}"#, None);
    let measured = tokio::time::timeout(
        Duration::from_secs(60),
        pool.measure(&metric, &vars, &ResolvedAuth::default(), at_minute(30)),
    )
    .await
    .expect("a query to another Prometheus does not wait for the silent one");
    assert_eq!(measured.value, Some(60.0), "{measured:?}");
    stuck.abort();
}

/// An address with a path prefix keeps it, with or without a trailing slash: VictoriaMetrics serves
/// the API under `/prometheus` too, as Mimir does.
#[tokio::test]
async fn a_path_prefix_is_kept() {
    let prefixed = victoria_metrics_server().prefixed_address();
    for address in [prefixed.clone(), format!("{prefixed}/")] {
        let p = PrometheusProvider::new(&address, Duration::from_secs(10), &ResolvedAuth::default()).unwrap();
        let value = p.instant(r#"queue_depth{revision="good"}"#, Some(at_minute(30))).await;
        assert_eq!(value, Ok(Some(30.0)), "{address}");
    }
}

/// A proxy in front of VictoriaMetrics that, as Mimir's gateway does, answers 401 `no org id` to a
/// request without an `X-Scope-OrgID` of `tenant`, and passes the others on.
fn tenant_proxy(tenant: &'static str) -> String {
    let upstream: std::net::SocketAddr =
        victoria_metrics_server().address().trim_start_matches("http://").parse().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || proxy_one(stream, upstream, tenant));
        }
    });
    address
}

/// Serves one request on `client`, then closes the connection.
fn proxy_one(mut client: TcpStream, upstream: std::net::SocketAddr, tenant: &str) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    let complete = |request: &[u8]| {
        let text = String::from_utf8_lossy(request);
        let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
        let length = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
            .map_or(0, |length| length.trim().parse().unwrap());
        body.len() >= length
    };
    while !complete(&request) {
        match client.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").unwrap();
    let has_tenant = head.lines().any(|line| {
        line.split_once(':')
            .is_some_and(|(name, value)| name.eq_ignore_ascii_case("x-scope-orgid") && value.trim() == tenant)
    });
    let response = if has_tenant {
        // One request a connection: both ends close after the answer.
        let (line, rest) = text.split_once("\r\n").unwrap();
        let forwarded = format!("{line}\r\nConnection: close\r\n{rest}");
        let mut server = TcpStream::connect(upstream).unwrap();
        server.write_all(forwarded.as_bytes()).unwrap();
        let mut answer = Vec::new();
        server.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (status, rest) = answer.split_once("\r\n").unwrap();
        format!("{status}\r\nConnection: close\r\n{rest}")
    } else {
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nno org id\n".into()
    };
    let _ = client.write_all(response.as_bytes());
}

/// The tenant header reaches the server, on a GET and on a POST; without it the gateway's refusal
/// is an unexpected answer that quotes it.
#[tokio::test]
async fn a_tenant_header_reaches_the_server() {
    let address = tenant_proxy("tenant-1");
    let tenant =
        ResolvedAuth { credentials: None, headers: vec![("X-Scope-OrgID".into(), "tenant-1".into())] };
    let p = PrometheusProvider::new(&address, Duration::from_secs(10), &tenant).unwrap();
    let query = r#"queue_depth{revision="good"}"#;
    assert_eq!(p.instant(query, Some(at_minute(30))).await, Ok(Some(30.0)));
    let padding = "+".repeat(MAX_GET_QUERY_BYTES / 3);
    let long = format!(r#"queue_depth{{revision="good", padding!="{padding}"}}"#);
    assert_eq!(p.instant(&long, Some(at_minute(45))).await, Ok(Some(45.0)));

    let anonymous =
        PrometheusProvider::new(&address, Duration::from_secs(10), &ResolvedAuth::default()).unwrap();
    let err = anonymous.instant(query, Some(at_minute(30))).await.unwrap_err();
    assert_eq!(err.to_string(), "unexpected answer from Prometheus: HTTP 401 Unauthorized: no org id");
}
