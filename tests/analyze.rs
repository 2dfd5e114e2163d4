//! `bellwether analyze` backtests the ready-made templates against a real Prometheus holding
//! per-revision traffic: a stable revision, a good canary, one with 5x errors, a latency regression,
//! one with no traffic and a flapping one. The measurements of the canary-vs-stable templates (values,
//! baselines, counts), the verdicts and the times they fired are asserted. The provider pool the
//! AnalysisRun reconciler measures through is checked against the same data, with the variables of a
//! run.
//!
//! Every run's exit code is checked against its verdict, and the runs that cannot start (an invalid
//! template, a backtest too long, Prometheus out of reach) against theirs. An InfluxDB metric is
//! measured now against a real InfluxDB, and refused a backtest. A Datadog metric is backtested
//! against a local stand-in of Datadog's query API, with its keys from the environment.
//!
//! Needs `prometheus`, `promtool` and `influxd` on PATH; ./scripts/test installs them when missing.

use bellwether_testkit::datadog::{self, Datadog, Points};
use bellwether_testkit::prometheus;

use bellwether::api::{AnalysisArg, AnalysisRun, AnalysisRunSpec, Metric, RunContext};
use bellwether::metrics::measure::{self, MetricQueries, Pair};
use bellwether::metrics::prometheus::ResolvedAuth;
use bellwether::metrics::providers::Providers;
use chrono::{DateTime, TimeDelta, Utc};
use prometheus::Prometheus;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::sync::OnceLock;

/// The start of the backfilled data, 2024-02-01T00:00:00Z: an hour of samples every 15s.
const T0: i64 = 1_706_745_600;
const SAMPLES: i64 = 60 * 4;
const SAMPLE_SECONDS: i64 = 15;

fn at_minute(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0, 0).unwrap() + TimeDelta::minutes(minute)
}

/// Requests per second, error share and the latency bucket most requests land in, for one minute.
#[derive(Clone, Copy)]
struct Traffic {
    rps: f64,
    error_share: f64,
    slow: bool,
}

const GOOD: Traffic = Traffic { rps: 100.0, error_share: 0.002, slow: false };

/// Stable takes four fifths of the traffic while the canary is at a 20% weight.
const STABLE_RPS: f64 = 400.0;

/// The per-revision traffic of each scenario, minute by minute.
fn scenario(revision: &str, minute: i64) -> Traffic {
    match revision {
        "stable" => Traffic { rps: STABLE_RPS, ..GOOD },
        "good" => GOOD,
        "errors5x" => Traffic { error_share: 0.015, ..GOOD },
        "slow" => Traffic { slow: true, ..GOOD },
        "idle" => Traffic { rps: 0.0, ..GOOD },
        // 2% errors for a minute, then 0.1% for a minute, and again: each breach is shorter than
        // breachFor, but no recovery lasts recoverFor.
        "flapping" => Traffic { error_share: if minute % 2 == 0 { 0.02 } else { 0.001 }, ..GOOD },
        other => panic!("no scenario {other}"),
    }
}

const REVISIONS: [&str; 6] = ["stable", "good", "errors5x", "slow", "idle", "flapping"];

/// The share of fast requests (under 100ms) in one minute: 99.2% to 99.8%, varying from minute to
/// minute and differently for each revision, so that p99s have the spread real ones have and a
/// comparison of two good revisions is not of two constants.
fn fast_share(revision: &str, minute: i64) -> f64 {
    let seed: i64 = revision.bytes().map(i64::from).sum();
    0.992 + 0.006 * ((minute * 37 + seed) % 11) as f64 / 10.0
}

/// A sample series: its name with labels, and its (timestamp, value) points.
type Series = (String, Vec<(i64, f64)>);

/// An OpenMetrics family: its type and its series.
type Family = (&'static str, Vec<Series>);

/// Counters as an app would expose them (`http_requests_total`, a latency histogram), and the
/// same traffic as Istio's gateway reports it for the Services `good-svc` and `errors5x-svc` and as
/// Envoy Gateway's per-backendRef clusters report it for the routes `good-route` and
/// `errors5x-route`, as OpenMetrics text grouped by family.
fn fixture() -> String {
    let mut families: BTreeMap<&str, Family> = BTreeMap::new();
    for revision in REVISIONS {
        let mut requests = [0.0f64; 2];
        let mut buckets = [0.0f64; 5];
        let mut points: [Vec<(i64, f64)>; 7] = Default::default();
        for sample in 0..=SAMPLES {
            let ts = T0 + sample * SAMPLE_SECONDS;
            // A sample counts the requests since the previous one: the traffic of that interval.
            let minute = (sample.max(1) - 1) * SAMPLE_SECONDS / 60;
            let traffic = scenario(revision, minute);
            let n = traffic.rps * SAMPLE_SECONDS as f64;
            if sample > 0 {
                requests[0] += n * (1.0 - traffic.error_share);
                requests[1] += n * traffic.error_share;
                // Fast: about 99.5% under 100ms, all under 250ms. Slow: 5% take 0.5s to 1s.
                let cumulative = if traffic.slow {
                    [0.90, 0.95, 0.95, 1.0, 1.0]
                } else {
                    [fast_share(revision, minute), 1.0, 1.0, 1.0, 1.0]
                };
                for (bucket, share) in buckets.iter_mut().zip(cumulative) {
                    *bucket += n * share;
                }
            }
            points[0].push((ts, requests[0]));
            points[1].push((ts, requests[1]));
            for (i, bucket) in buckets.iter().enumerate() {
                points[2 + i].push((ts, *bucket));
            }
        }
        let mut add = |family: &'static str, kind: &'static str, series: String, points: &Vec<(i64, f64)>| {
            families.entry(family).or_insert((kind, Vec::new())).1.push((series, points.clone()));
        };
        let app = format!(r#"namespace="shop",revision="{revision}""#);
        add("http_requests", "counter", format!(r#"http_requests_total{{{app},code="200"}}"#), &points[0]);
        add("http_requests", "counter", format!(r#"http_requests_total{{{app},code="500"}}"#), &points[1]);
        for (i, le) in ["0.1", "0.25", "0.5", "1", "+Inf"].iter().enumerate() {
            let name = format!(r#"http_request_duration_seconds_bucket{{{app},le="{le}"}}"#);
            add("http_request_duration_seconds_bucket", "unknown", name, &points[2 + i]);
        }
        if matches!(revision, "good" | "errors5x") {
            let cluster = format!(r#"envoy_cluster_name="httproute/shop/{revision}-route/rule/0/backend/1""#);
            for (class, points) in [("2", &points[0]), ("5", &points[1])] {
                let name = format!(
                    r#"envoy_cluster_upstream_rq_xx{{{cluster},envoy_response_code_class="{class}"}}"#
                );
                add("envoy_cluster_upstream_rq_xx", "unknown", name, points);
            }
            for (i, le) in ["100", "250", "500", "1000", "+Inf"].iter().enumerate() {
                let name = format!(r#"envoy_cluster_upstream_rq_time_bucket{{{cluster},le="{le}"}}"#);
                add("envoy_cluster_upstream_rq_time_bucket", "unknown", name, &points[2 + i]);
            }
            let istio = format!(
                r#"reporter="source",destination_service_namespace="shop",destination_service_name="{revision}-svc""#
            );
            add(
                "istio_requests",
                "counter",
                format!(r#"istio_requests_total{{{istio},response_code="200"}}"#),
                &points[0],
            );
            add(
                "istio_requests",
                "counter",
                format!(r#"istio_requests_total{{{istio},response_code="503"}}"#),
                &points[1],
            );
            for (i, le) in ["100", "250", "500", "1000", "+Inf"].iter().enumerate() {
                let name = format!(r#"istio_request_duration_milliseconds_bucket{{{istio},le="{le}"}}"#);
                add("istio_request_duration_milliseconds_bucket", "unknown", name, &points[2 + i]);
            }
        }
    }
    let mut om = String::new();
    for (family, (kind, series)) in families {
        writeln!(om, "# TYPE {family} {kind}").unwrap();
        for (name, points) in series {
            for (ts, value) in points {
                writeln!(om, "{name} {value} {ts}").unwrap();
            }
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

/// Runs `bellwether analyze -o json` over the first 20 minutes and returns the report.
fn analyze(template: &str, address: &str, extra: &[&str]) -> Value {
    analyze_until(20, template, address, extra)
}

/// The exit codes `bellwether analyze` documents.
const SUCCESSFUL: i32 = 0;
const FAILED: i32 = 1;
const USAGE: i32 = 2;
const INCONCLUSIVE: i32 = 3;
const ERROR: i32 = 4;
const UNDECIDED: i32 = 5;
const COULD_NOT_RUN: i32 = 6;

/// The exit code of a run whose verdict is `phase`.
fn exit_code_of(phase: &str) -> i32 {
    match phase {
        "Successful" => SUCCESSFUL,
        "Failed" => FAILED,
        "Inconclusive" => INCONCLUSIVE,
        "Error" => ERROR,
        "Pending" | "Running" => UNDECIDED,
        other => panic!("no phase {other}"),
    }
}

/// A `bellwether analyze` over the first `minutes` minutes, with `-o json`.
fn backtest(minutes: i64, template: &str, address: &str, extra: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bellwether"));
    command.args(["analyze", "-f", template, "--prometheus", address, "-n", "shop", "-o", "json"]);
    command.args(["--from", &at_minute(0).to_rfc3339(), "--to", &at_minute(minutes).to_rfc3339()]);
    command.args(extra);
    command.output().expect("bellwether runs")
}

/// Runs `bellwether analyze -o json` over the first `minutes` minutes and returns the report, after
/// checking that it exited with its verdict's code.
fn analyze_until(minutes: i64, template: &str, address: &str, extra: &[&str]) -> Value {
    let output = backtest(minutes, template, address, extra);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("analyze -o json printed no report ({e}): {stderr}\nPrometheus log:\n{}", server().log())
    });
    let phase = report["phase"].as_str().expect("a report has a phase");
    assert_eq!(output.status.code(), Some(exit_code_of(phase)), "exit code of a {phase} run: {stderr}");
    report
}

/// Runs `bellwether analyze` expecting it not to run: returns its error output, after checking that it
/// exited with `code` and printed no report.
fn refused(code: i32, output: std::process::Output) -> String {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "a report of a run that did not run: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

fn ready_made(name: &str) -> String {
    format!("{}/analysis-templates/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `--at` measures at the instant named, not `initialDelay` after it: at the last minute of data,
/// where a minute later every `rate()` has nothing, the ready-made template gets its values, and
/// with one measurement of windows of several, no verdict yet.
#[test]
fn at_measures_at_the_instant_named() {
    let at = at_minute(60);
    let output = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["analyze", "-f", &ready_made("http-app.yaml"), "--prometheus", server().address()])
        .args(["-n", "shop", "--revision", "errors5x", "-o", "json", "--at", &at.to_rfc3339()])
        .output()
        .expect("bellwether runs");
    assert_eq!(output.status.code(), Some(UNDECIDED), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    for metric in ["error-rate", "latency-p99"] {
        let [point] = points(&report, metric) else { panic!("one measurement of {metric}: {report}") };
        assert_eq!(point["at"].as_str().map(|t| t.parse::<DateTime<Utc>>().unwrap()), Some(at), "{point}");
        assert!(!point["value"].is_null(), "{metric} has no data at the instant named: {point}");
    }
    let [error_rate] = points(&report, "error-rate") else { unreachable!() };
    assert_near(number(&error_rate["value"]), 0.015, "errors5x's error rate");
    assert_eq!(error_rate["state"], "Breaching", "the measurement counts: {error_rate}");
}

/// (phase, minutes after the start it fired, message) of one metric in a report.
fn verdict(report: &Value, metric: &str) -> (String, Option<i64>, String) {
    let m =
        report["metrics"].as_array().unwrap().iter().find(|m| m["name"] == metric).expect("metric in report");
    let fired = m["fired_at"].as_str().map(|t| {
        let at: DateTime<Utc> = t.parse().unwrap();
        (at - at_minute(0)).num_minutes()
    });
    (m["phase"].as_str().unwrap().to_string(), fired, m["message"].as_str().unwrap().to_string())
}

fn http_app(revision: &str) -> Value {
    analyze(&ready_made("http-app.yaml"), server().address(), &["--revision", revision])
}

#[test]
fn a_good_canary_passes_after_its_window() {
    let report = http_app("good");
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Successful", Some(5)), "{message}");
    assert!(message.starts_with("error-rate: healthy for 5 measurements, last 0.002"), "{message}");
    assert_eq!(verdict(&report, "latency-p99").0, "Successful");
    assert_eq!(report["phase"], "Successful");
}

#[test]
fn five_times_the_errors_fails_after_breach_for() {
    let report = http_app("errors5x");
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!(
        (phase.as_str(), fired),
        ("Failed", Some(3)),
        "first measurement at 1m, breachFor 2m: {message}"
    );
    assert!(message.contains("> max 0.01 continuously for 2m (breachFor 2m)"), "{message}");
    assert_eq!(report["phase"], "Failed");
}

#[test]
fn a_latency_regression_fails_on_p99() {
    let report = http_app("slow");
    let (phase, fired, message) = verdict(&report, "latency-p99");
    assert_eq!(
        (phase.as_str(), fired),
        ("Failed", Some(4)),
        "first measurement at 1m, breachFor 3m: {message}"
    );
    assert!(message.contains("> max 0.5"), "{message}");
    assert_eq!(verdict(&report, "error-rate").0, "Successful");
    assert_eq!(report["phase"], "Failed");
}

#[test]
fn no_traffic_is_inconclusive_never_successful() {
    let report = http_app("idle");
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Inconclusive", Some(5)), "{message}");
    assert_eq!(message, "error-rate: no data in 5 measurements (noData: inconclusive)");
    assert_eq!(report["phase"], "Inconclusive");
}

/// Each breach lasts a minute, shorter than breachFor, but the clear minutes between them are
/// shorter than recoverFor: the metric never recovers, and its minutes out of the clear add up to
/// a breach that lasts, at half the speed of a steady one.
#[test]
fn a_flapping_metric_fails_because_it_never_recovers() {
    let report = http_app("flapping");
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Failed", Some(5)), "{message}");
    assert!(
        message.ends_with("> max 0.01 without recovering, out of the clear for 2m of 4m (breachFor 2m)"),
        "{message}"
    );
}

#[test]
fn the_istio_template_judges_the_canary_service() {
    let good = analyze(&ready_made("istio.yaml"), server().address(), &["--canary-service", "good-svc"]);
    assert_eq!(good["phase"], "Successful", "{good}");
    let bad = analyze(&ready_made("istio.yaml"), server().address(), &["--canary-service", "errors5x-svc"]);
    let (phase, fired, message) = verdict(&bad, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Failed", Some(3)), "{message}");
}

#[test]
fn the_envoy_gateway_template_judges_the_canary_backend_cluster() {
    let template = ready_made("envoy-gateway.yaml");
    let good = analyze(&template, server().address(), &["--arg", "route=good-route"]);
    assert_eq!(good["phase"], "Successful", "{good}");
    let bad = analyze(&template, server().address(), &["--arg", "route=errors5x-route"]);
    let (phase, fired, message) = verdict(&bad, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Failed", Some(3)), "{message}");
}

#[test]
fn a_missing_arg_is_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["analyze", "-f", &ready_made("envoy-gateway.yaml"), "--prometheus", "http://127.0.0.1:1"])
        .output()
        .expect("bellwether runs");
    let stderr = refused(COULD_NOT_RUN, output);
    assert!(stderr.contains(r#"arg "route" has no value"#), "{stderr}");
}

/// A web endpoint answers only for the present, so a backtest of a web metric cannot run: analyze
/// says so, naming the metric, before it asks anything of Prometheus.
#[test]
fn a_web_metric_cannot_be_backtested() {
    let template = template_file(serde_json::json!({
        "name": "slo-burn",
        "provider": {"web": {"url": "http://slo.monitoring/api/v1/burn?rev={{revision}}", "jsonPath": "$.burn"}},
        "threshold": {"max": 1}
    }));
    let stderr =
        refused(COULD_NOT_RUN, backtest(20, template.path().to_str().unwrap(), "http://127.0.0.1:1", &[]));
    assert!(stderr.contains("slo-burn: uses the web provider, which cannot be backtested"), "{stderr}");
}

/// InfluxQL is evaluated at the server's clock, so analyze measures an InfluxDB metric once, now,
/// and refuses a backtest or a past `--at`, naming the metric and the reason; an InfluxDB it cannot
/// reach is named as one.
#[test]
fn an_influxdb_metric_is_measured_now_and_never_backtested() {
    let influxdb = bellwether_testkit::influxdb::InfluxDb::start().expect("an InfluxDB");
    influxdb.create_database("shop").unwrap();
    let now = bellwether_testkit::influxdb::now_ms();
    let lines = format!(
        "requests,revision=good,code=500 count=3i {}\nrequests,revision=errors5x,code=500 count=15i {}",
        now - 1000,
        now - 1000
    );
    influxdb.write("shop", &lines).unwrap();
    let template = template_file(serde_json::json!({
        "name": "failed",
        "provider": {"influxdb": {
            "address": "http://influxdb.monitoring:8086",
            "database": "shop",
            "query": r#"SELECT sum("count") FROM "requests" WHERE "revision" = '{{revision}}' AND time > now() - 1m"#,
        }},
        "threshold": {"max": 10}
    }));
    let path = template.path().to_str().unwrap();
    let now = |address: &str| {
        Command::new(env!("CARGO_BIN_EXE_bellwether"))
            .args(["analyze", "-f", path, "--influxdb", address, "--revision", "errors5x", "-o", "json"])
            .output()
            .expect("bellwether runs")
    };
    let output = now(influxdb.address());
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    let [point] = points(&report, "failed") else { panic!("one measurement: {report}") };
    assert_eq!((number(&point["value"]), point["state"].as_str()), (15.0, Some("Failed")), "{point}");
    assert_eq!(output.status.code(), Some(FAILED), "{report}");

    let reason =
        "failed: uses the influxdb provider, which is measured only now: InfluxQL has no evaluation time";
    let stderr =
        refused(COULD_NOT_RUN, backtest(20, path, "http://127.0.0.1:1", &["--influxdb", influxdb.address()]));
    assert!(stderr.contains(reason), "{stderr}");
    let an_hour_ago = (Utc::now() - TimeDelta::hours(1)).to_rfc3339();
    let past = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["analyze", "-f", path, "--influxdb", influxdb.address(), "--at", &an_hour_ago])
        .output()
        .expect("bellwether runs");
    assert!(refused(COULD_NOT_RUN, past).contains(reason));
    let stderr = refused(COULD_NOT_RUN, now("http://127.0.0.1:1"));
    assert!(stderr.contains("failed: InfluxDB at http://127.0.0.1:1 is unreachable: "), "{stderr}");
}

/// A Job tests only the present, so a backtest of a job metric cannot run either.
#[test]
fn a_job_metric_cannot_be_backtested() {
    let template = template_file(serde_json::json!({
        "name": "smoke",
        "provider": {"job": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "smoke", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
        }}}}},
        "threshold": {"min": 1}
    }));
    let stderr =
        refused(COULD_NOT_RUN, backtest(20, template.path().to_str().unwrap(), "http://127.0.0.1:1", &[]));
    assert!(stderr.contains("smoke: uses the job provider, which cannot be backtested"), "{stderr}");
}

/// The Datadog keys the backtests below send, and the stand-in accepts.
const DD_API_KEY: &str = "api-0123456789";
const DD_APP_KEY: &str = "app-0123456789";

/// An error ratio per minute from Datadog, as a revision's traced requests give it.
const DATADOG_ERRORS: &str = "sum:trace.http.request.errors{service:shop,version:{{revision}}}.as_count().rollup(sum, {{interval}}) / sum:trace.http.request.hits{service:shop,version:{{revision}}}.as_count().rollup(sum, {{interval}})";

/// A stand-in of Datadog's query API (not Datadog: it answers the documented shapes), serving the
/// per-minute error ratio of `good` (0.2%) and `errors5x` (0.2% until minute 3, then 5%) around
/// the backtests' hour, on the runtime that runs it.
fn datadog_stand_in() -> (tokio::runtime::Runtime, Datadog) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let datadog = runtime.block_on(Datadog::start(DD_API_KEY, DD_APP_KEY));
    for revision in ["good", "errors5x"] {
        let points = (-10..70)
            .map(|minute| {
                let ratio = if revision == "errors5x" && minute >= 3 { 0.05 } else { 0.002 };
                (at_minute(minute).timestamp(), Some(ratio))
            })
            .collect();
        let query = DATADOG_ERRORS.replace("{{revision}}", revision).replace("{{interval}}", "60");
        datadog.serve(&query, vec![datadog::Series::new(60, Points::At(points))]);
    }
    (runtime, datadog)
}

/// A backtest of a Datadog error-ratio metric over the first ten minutes, with the keys in the
/// environment unless `keys` is false.
fn datadog_backtest(datadog: &Datadog, revision: &str, keys: bool) -> std::process::Output {
    let template = template_file(serde_json::json!({
        "name": "error-ratio",
        "interval": "1m",
        "count": 5,
        "provider": {"datadog": {
            "address": datadog.address(),
            "query": DATADOG_ERRORS,
            "apiKey": {"name": "datadog", "key": "api-key"},
            "applicationKey": {"name": "datadog", "key": "application-key"},
        }},
        "threshold": {"max": 0.01}
    }));
    let mut command = Command::new(env!("CARGO_BIN_EXE_bellwether"));
    command.args(["analyze", "-f", template.path().to_str().unwrap(), "--revision", revision, "-o", "json"]);
    command.args(["--from", &at_minute(0).to_rfc3339(), "--to", &at_minute(10).to_rfc3339()]);
    command.env_remove("DD_API_KEY").env_remove("DD_APP_KEY");
    if keys {
        command.env("DD_API_KEY", DD_API_KEY).env("DD_APP_KEY", DD_APP_KEY);
    }
    command.output().expect("bellwether runs")
}

/// A Datadog metric is backtested against the stand-in with its keys from the environment: each
/// measurement asks for the window before it and takes the latest minute that is over, so a
/// regression from minute 3 fails at minute 4, and a good canary passes after its five.
#[test]
fn a_datadog_metric_is_backtested_with_keys_from_the_environment() {
    let (_runtime, datadog) = datadog_stand_in();
    let output = datadog_backtest(&datadog, "errors5x", true);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(FAILED), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    let (phase, fired, message) = verdict(&report, "error-ratio");
    assert_eq!((phase.as_str(), fired), ("Failed", Some(4)), "{message}");
    let values: Vec<f64> = points(&report, "error-ratio").iter().map(|p| number(&p["value"])).collect();
    assert_eq!(values, [0.002, 0.002, 0.002, 0.002, 0.05], "each the minute before its measurement");

    // The reachability check, then one query per measurement: the five minutes before each.
    let received = datadog.received();
    assert_eq!(received.len(), 6, "{received:?}");
    for (request, minute) in received.iter().zip([0, 0, 1, 2, 3, 4]) {
        let to = at_minute(minute).timestamp();
        assert_eq!(
            (request.from.as_deref(), request.to.as_deref()),
            (Some((to - 300).to_string().as_str()), Some(to.to_string().as_str()))
        );
        assert_eq!(
            (request.api_key.as_deref(), request.application_key.as_deref()),
            (Some(DD_API_KEY), Some(DD_APP_KEY))
        );
    }

    let good = datadog_backtest(&datadog, "good", true);
    assert_eq!(good.status.code(), Some(SUCCESSFUL), "{}", String::from_utf8_lossy(&good.stderr));
    let report: Value = serde_json::from_slice(&good.stdout).expect("a JSON report");
    assert_eq!(verdict(&report, "error-ratio").0, "Successful");
}

/// Without its keys a Datadog metric cannot be backtested: analyze says which variables to set, and
/// asks nothing of Datadog.
#[test]
fn a_datadog_metric_without_keys_cannot_be_backtested() {
    let (_runtime, datadog) = datadog_stand_in();
    let stderr = refused(COULD_NOT_RUN, datadog_backtest(&datadog, "good", false));
    assert!(stderr.contains("error-ratio: queries Datadog"), "{stderr}");
    assert!(stderr.contains("set DD_API_KEY and DD_APP_KEY"), "{stderr}");
    assert!(datadog.received().is_empty());
}

/// Measurements that fail one after the other make the metric an Error once they pass
/// consecutiveErrorLimit (4 by default), as in a real run.
#[test]
fn measurement_errors_are_an_error_after_the_error_limit() {
    let template = template_file(serde_json::json!({
        "name": "error-rate",
        "interval": "1m",
        "count": 10,
        "provider": {"prometheus": {"address": "http://unused:9090", "query": "sort_by_label(x, \"code\")"}},
        "threshold": {"max": 0.01}
    }));
    let report = analyze(template.path().to_str().unwrap(), server().address(), &[]);
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Error", Some(4)), "the fifth, from minute 0: {message}");
    assert!(message.contains("5 measurement errors in a row (consecutiveErrorLimit 4)"), "{message}");
    assert!(message.contains("Prometheus rejected the query"), "{message}");
}

/// With no Prometheus to ask, every measurement would fail and the verdict would say nothing of the
/// template: analyze does not run, and says which Prometheus it could not reach, for every kind of
/// metric.
#[test]
fn prometheus_down_means_analyze_cannot_run() {
    let args = ["--revision", "good", "--stable-revision", "stable"];
    for template in ["http-app.yaml", "http-app-errors-vs-stable.yaml", "http-app-latency-vs-stable.yaml"] {
        let stderr = refused(COULD_NOT_RUN, backtest(20, &ready_made(template), "http://127.0.0.1:1", &args));
        assert!(
            stderr.contains(": Prometheus at http://127.0.0.1:1 is unreachable: "),
            "{template}: {stderr}"
        );
    }
}

/// The error-rate metric of `http-app.yaml`, judged by `threshold` (YAML text), in a template file.
fn error_rate_with(threshold: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let text = format!(
        r#"apiVersion: bellwether.dev/v1alpha1
kind: AnalysisTemplate
metadata:
  name: loose
spec:
  metrics:
    - name: error-rate
      interval: 1m
      count: 5
      provider:
        prometheus:
          address: http://unused:9090
          query: sum(rate(http_requests_total{{revision="{{{{revision}}}}", code=~"5.."}}[1m])) / sum(rate(http_requests_total{{revision="{{{{revision}}}}"}}[1m]))
      threshold:
{threshold}
"#
    );
    std::fs::write(file.path(), text).unwrap();
    file
}

/// A template the API server or the controller would refuse is refused before anything is measured,
/// each error located by line and field and said once, even where the schema and the engine both
/// see it. Run as it is, each of these would pass a canary with 5 times the errors.
#[test]
fn an_invalid_template_is_refused_with_each_error_once() {
    let cases = [
        (
            "        {}",
            "14: error: AnalysisTemplate/loose: spec.metrics[0].threshold: threshold needs min, max or both",
        ),
        (
            "        max: .nan",
            "15: error: AnalysisTemplate/loose: spec.metrics[0].threshold.max: NaN is not a finite number",
        ),
        (
            "        max: 0.01\n        max: 1",
            r#"16: error: AnalysisTemplate/loose: duplicate key "max" (first at "#,
        ),
    ];
    for (threshold, expected) in cases {
        let template = error_rate_with(threshold);
        let path = template.path().to_str().unwrap();
        let stderr =
            refused(COULD_NOT_RUN, backtest(20, path, server().address(), &["--revision", "errors5x"]));
        let located = format!("{path}:{expected}");
        assert!(stderr.starts_with("error: AnalysisTemplate/loose is refused"), "{stderr}");
        assert_eq!(stderr.matches(&located).count(), 1, "{threshold:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 2, "one error, once: {stderr}");
    }
}

/// A template of one metric with `query` and `timeout`, written to a temporary file.
fn one_metric_template(query: &str, timeout: &str) -> tempfile::NamedTempFile {
    template_file(serde_json::json!({
        "name": "probe",
        "interval": "1m",
        "count": 3,
        "consecutiveErrorLimit": 1,
        "provider": {"prometheus": {"address": "http://unused:9090", "query": query, "timeout": timeout}},
        "threshold": {"max": 1}
    }))
}

/// A template of the one metric `metric`, written to a temporary file.
fn template_file(metric: Value) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let template = serde_json::json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "probe"},
        "spec": {"metrics": [metric]}
    });
    std::fs::write(file.path(), serde_yaml::to_string(&template).unwrap()).unwrap();
    file
}

#[test]
fn a_bad_query_is_an_error_naming_the_problem() {
    // Well-formed PromQL that Prometheus refuses: sort_by_label is experimental, and off by default.
    let template = one_metric_template(r#"sort_by_label(http_requests_total, "code")"#, "10s");
    let report = analyze(template.path().to_str().unwrap(), server().address(), &[]);
    let (phase, fired, message) = verdict(&report, "probe");
    assert_eq!((phase.as_str(), fired), ("Error", Some(1)), "{message}");
    assert!(message.contains("Prometheus rejected the query"), "{message}");
}

#[test]
fn a_slow_query_times_out() {
    let heavy = "count(count_over_time(http_request_duration_seconds_bucket[1h:1s]))";
    let template = one_metric_template(heavy, "1ms");
    let report = analyze(template.path().to_str().unwrap(), server().address(), &[]);
    let (phase, _, message) = verdict(&report, "probe");
    assert_eq!(phase, "Error", "{message}");
    assert!(message.contains("timed out"), "{message}");
}

#[test]
fn the_table_shows_states_and_when_the_verdict_fired() {
    let output = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["analyze", "-f", &ready_made("http-app.yaml"), "--prometheus", server().address()])
        .args(["-n", "shop", "--revision", "errors5x", "--from", &at_minute(0).to_rfc3339()])
        .args(["--to", &at_minute(20).to_rfc3339()])
        .output()
        .expect("bellwether runs");
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(FAILED), "{}", String::from_utf8_lossy(&output.stderr));
    // docs/analysis.md shows these lines.
    assert!(
        table.contains("  2024-02-01 00:01:00      0.015000  Breaching  error-rate: breaching since 00:01:00, 0.015 > max 0.01 (breachFor 2m)"),
        "{table}"
    );
    assert!(table.contains("verdict: Failed, fired at 00:03:00 (3m after start)"), "{table}");
    assert!(table.contains("run: Failed"), "{table}");
}

fn errors_vs_stable(canary: &str, extra: &[&str]) -> Value {
    let revisions = ["--revision", canary, "--stable-revision", "stable"];
    let args: Vec<&str> = revisions.iter().chain(extra).copied().collect();
    analyze(&ready_made("http-app-errors-vs-stable.yaml"), server().address(), &args)
}

fn latency_vs_stable(canary: &str) -> Value {
    let args = ["--revision", canary, "--stable-revision", "stable"];
    analyze(&ready_made("http-app-latency-vs-stable.yaml"), server().address(), &args)
}

/// The measurements of one metric in a report, oldest first.
fn points<'r>(report: &'r Value, metric: &str) -> &'r [Value] {
    let m =
        report["metrics"].as_array().unwrap().iter().find(|m| m["name"] == metric).expect("metric in report");
    m["points"].as_array().unwrap()
}

/// A count, or a measured value, which the report writes as Prometheus does: a string such as
/// `"0.25"`.
fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(bellwether::api::sample::parse))
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

fn assert_near(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() <= 1e-6 * expected.abs().max(1.0), "{what}: {actual} != {expected}");
}

/// p99 of a fast minute: the 99th percentile interpolated within the 0–100ms bucket.
fn fast_p99(revision: &str, minute: i64) -> f64 {
    0.1 * 0.99 / fast_share(revision, minute)
}

/// Each measurement of a sequential metric counts each revision's failed and all requests in the
/// minute before it, and its value is the canary's share of failures.
#[test]
fn sequential_measurements_count_both_revisions_requests() {
    let report = errors_vs_stable("errors5x", &[]);
    let metric = &report["metrics"][0];
    assert!(metric["query"].as_str().unwrap().contains(r#"revision="errors5x""#), "{metric}");
    assert!(metric["stable_query"].as_str().unwrap().contains(r#"revision="stable""#), "{metric}");
    assert!(metric["requests_query"].as_str().unwrap().contains(r#"revision="errors5x""#), "{metric}");
    assert!(metric["stable_requests_query"].as_str().unwrap().contains(r#"revision="stable""#), "{metric}");
    let first = &points(&report, "error-rate")[0];
    assert_eq!(first["at"], at_minute(1).to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "{first}");
    let counts = &first["counts"];
    assert_near(number(&counts["canaryErrors"]), 90.0, "canary errors");
    assert_near(number(&counts["canaryRequests"]), 6000.0, "canary requests");
    assert_near(number(&counts["stableErrors"]), 48.0, "stable errors");
    assert_near(number(&counts["stableRequests"]), 24000.0, "stable requests");
    assert_near(number(&first["value"]), 0.015, "canary error share");
    assert!(first.get("baseline").is_none() && first.get("error").is_none(), "{first}");
}

/// A canary that serves nothing counts zero requests, and has no error share to show.
#[test]
fn a_canary_without_traffic_counts_zero_requests() {
    let report = errors_vs_stable("idle", &[]);
    for point in points(&report, "error-rate") {
        assert!(point.get("value").is_none() && point.get("error").is_none(), "{point}");
        assert_eq!(number(&point["counts"]["canaryRequests"]), 0.0, "{point}");
        assert_near(number(&point["counts"]["stableRequests"]), 24000.0, "stable requests");
    }
}

/// Each measurement of a compare metric runs the query for the canary (the value) and for stable (the
/// baseline) at the same time.
#[test]
fn compare_measurements_take_stable_as_the_baseline() {
    let report = latency_vs_stable("slow");
    let points = points(&report, "latency-p99");
    assert!(!points.is_empty(), "{report}");
    for (minute, point) in (1..).zip(points) {
        assert_near(number(&point["value"]), 0.9, "slow p99");
        assert_near(number(&point["baseline"]), fast_p99("stable", minute - 1), "stable p99");
        assert!(point.get("counts").is_none(), "{point}");
    }
}

/// `{{service}}` names the canary's Service in the canary's query and stable's in stable's, for
/// gateway metrics that tell revisions apart by Service.
#[test]
fn service_names_the_service_of_each_revision() {
    let template = template_file(serde_json::json!({
        "name": "gateway-errors",
        "interval": "1m",
        "count": 3,
        "provider": {"prometheus": {"address": "http://unused:9090", "query": concat!(
            r#"sum(rate(istio_requests_total{destination_service_name="{{service}}", "#,
            r#"response_code=~"5.."}[{{interval}}]))"#,
            r#" / sum(rate(istio_requests_total{destination_service_name="{{service}}"}[{{interval}}]))"#
        )}},
        "compare": {"confidence": 0.95, "minSamples": 3}
    }));
    let services = ["--canary-service", "errors5x-svc", "--stable-service", "good-svc"];
    let report = analyze_until(3, template.path().to_str().unwrap(), server().address(), &services);
    let metric = &report["metrics"][0];
    assert!(metric["query"].as_str().unwrap().contains(r#""errors5x-svc""#), "{metric}");
    assert!(metric["stable_query"].as_str().unwrap().contains(r#""good-svc""#), "{metric}");
    let points = points(&report, "gateway-errors");
    assert!(points.len() >= 2, "{report}");
    for point in points.iter().skip(1) {
        assert_near(number(&point["value"]), 0.015, "canary error rate");
        assert_near(number(&point["baseline"]), 0.002, "stable error rate");
    }
}

/// A rejected requestsQuery is each measurement's error, naming the query and the revision.
#[test]
fn a_broken_requests_query_is_an_error_naming_it() {
    let template = template_file(serde_json::json!({
        "name": "error-rate",
        "interval": "1m",
        "count": 5,
        "consecutiveErrorLimit": 2,
        "provider": {"prometheus": {
            "address": "http://unused:9090",
            "query": concat!(
                r#"sum(increase(http_requests_total{revision="{{revision}}", "#,
                r#"code=~"5.."}[{{interval}}]))"#
            )
        }},
        "sequential": {
            // Well-formed PromQL that Prometheus refuses: sort_by_label is experimental, and off by default.
            "requestsQuery": concat!(
                r#"sort_by_label(sum by (code) (increase(http_requests_total{revision="{{revision}}"}"#,
                r#"[{{interval}}])), "code")"#
            ),
            "maxIncrease": 0.5
        }
    }));
    let args = ["--revision", "good", "--stable-revision", "stable"];
    let report = analyze_until(5, template.path().to_str().unwrap(), server().address(), &args);
    let points = points(&report, "error-rate");
    assert!(!points.is_empty(), "{report}");
    for point in points {
        let error = point["error"].as_str().unwrap_or_else(|| panic!("no error in {point}"));
        assert!(error.starts_with("requestsQuery for "), "{error}");
        assert!(error.contains("Prometheus rejected the query"), "{error}");
        assert!(point.get("value").is_none() && point.get("counts").is_none(), "{point}");
    }
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Error", Some(2)), "{message}");
    assert!(message.contains("requestsQuery for "), "{message}");
}

/// A typo in requestsQuery stops the analysis before it measures anything, naming the field.
#[test]
fn an_unknown_variable_in_requests_query_is_named() {
    let template = template_file(serde_json::json!({
        "name": "error-rate",
        "provider": {"prometheus": {"address": "http://unused:9090", "query": "sum(x)"}},
        "sequential": {"requestsQuery": r#"sum(x{service="{{servce}}"})"#, "maxIncrease": 0.5}
    }));
    let output = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["analyze", "-f", template.path().to_str().unwrap(), "--prometheus", "http://127.0.0.1:1"])
        .output()
        .expect("bellwether runs");
    let stderr = refused(COULD_NOT_RUN, output);
    assert!(
        stderr.contains(
            "AnalysisTemplate/probe: spec.metrics[0].sequential.requestsQuery: unknown variable {{servce}}; \
             did you mean {{service}}?"
        ),
        "{stderr}"
    );
}

#[test]
fn the_table_shows_baselines_and_counts() {
    let table = |template: &str, canary: &str, to: i64, code: i32| {
        let output = Command::new(env!("CARGO_BIN_EXE_bellwether"))
            .args(["analyze", "-f", &ready_made(template), "--prometheus", server().address()])
            .args(["-n", "shop", "--revision", canary, "--stable-revision", "stable"])
            .args(["--from", &at_minute(0).to_rfc3339(), "--to", &at_minute(to).to_rfc3339()])
            .output()
            .expect("bellwether runs");
        assert_eq!(output.status.code(), Some(code), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    // Two of the comparison's ten measurements: no verdict yet.
    let compare = table("http-app-latency-vs-stable.yaml", "slow", 2, UNDECIDED);
    let stable_query = concat!(
        r#"  query (stable): histogram_quantile(0.99, sum by (le) "#,
        r#"(rate(http_request_duration_seconds_bucket{namespace="shop", revision="stable"}[1m])))"#
    );
    assert!(compare.contains(stable_query), "{compare}");
    assert!(
        compare.contains("  TIME                        VALUE     BASELINE  STATE      JUDGE"),
        "{compare}"
    );
    let baseline = format!("{:.6}", fast_p99("stable", 0));
    assert!(compare.contains(&format!("  2024-02-01 00:01:00      0.900000     {baseline}  ")), "{compare}");
    let sequential = table("http-app-errors-vs-stable.yaml", "errors5x", 2, FAILED);
    let requests_query = concat!(
        r#"  requestsQuery (canary): "#,
        r#"sum(increase(http_requests_total{namespace="shop", revision="errors5x"}[1m]))"#
    );
    assert!(sequential.contains(requests_query), "{sequential}");
    assert!(
        sequential.contains(
            "  TIME                        VALUE   CANARY ERR/REQ   STABLE ERR/REQ  STATE      JUDGE"
        ),
        "{sequential}"
    );
    assert!(
        sequential.contains("  2024-02-01 00:01:00      0.015000          90/6000         48/24000  "),
        "{sequential}"
    );
}

/// The sequential test rolls back a canary failing 7.5 times as often as stable at its first
/// measurement: 90 failures where stable's rate predicts 12.
#[test]
fn the_sequential_template_fails_a_canary_with_more_errors_at_once() {
    let report = errors_vs_stable("errors5x", &[]);
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Failed", Some(1)), "{message}");
    assert!(message.contains("canary fails 7.5× as often as stable"), "{message}");
    assert_eq!(report["phase"], "Failed");
}

fn recommended(canary: &str) -> Value {
    let args = ["--revision", canary, "--stable-revision", "stable"];
    analyze(&ready_made("recommended.yaml"), server().address(), &args)
}

/// When a metric of a report fired, in seconds after the start.
fn fired_after(report: &Value, metric: &str) -> Option<i64> {
    let m =
        report["metrics"].as_array().unwrap().iter().find(|m| m["name"] == metric).expect("metric in report");
    m["fired_at"].as_str().map(|t| (t.parse::<DateTime<Utc>>().unwrap() - at_minute(0)).num_seconds())
}

/// The recommended template against a real Prometheus: slow requests are counted from the
/// histogram's buckets, each metric fails only the canary that is worse on it, one interval after
/// its one-minute breachFor, and as background analysis it never passes.
#[test]
fn the_recommended_template_fails_a_slow_or_failing_canary_after_breach_for() {
    let slow = recommended("slow");
    let (phase, _, message) = verdict(&slow, "slow-vs-stable");
    assert_eq!(phase, "Failed", "{message}");
    assert_eq!(fired_after(&slow, "slow-vs-stable"), Some(FIRST_RECOMMENDED_FAILURE), "{message}");
    assert!(
        message.contains("canary fails, stable does not (450 errors in 9,000 requests vs 0 in 36,000)"),
        "{message}"
    );
    assert_eq!(verdict(&slow, "errors-vs-stable").0, "Running");

    let failing = recommended("errors5x");
    let (phase, _, message) = verdict(&failing, "errors-vs-stable");
    assert_eq!(phase, "Failed", "{message}");
    assert_eq!(fired_after(&failing, "errors-vs-stable"), Some(FIRST_RECOMMENDED_FAILURE), "{message}");
    assert!(message.contains("canary fails 7.5× as often as stable"), "{message}");
    assert_eq!(verdict(&failing, "slow-vs-stable").0, "Running");

    let good = recommended("good");
    for metric in ["errors-vs-stable", "slow-vs-stable"] {
        let (phase, _, message) = verdict(&good, metric);
        assert_eq!(phase, "Running", "20 minutes of a good canary: {message}");
    }
    assert_eq!(good["phase"], "Running");
}

/// Measured every 30s from the start, the first interval with counts ends at 30s; breachFor 1m
/// spans two intervals, so a lasting regression fails at the third: 90s.
const FIRST_RECOMMENDED_FAILURE: i64 = 90;

/// A canary as good as stable at a 20% weight passes once the counts rule out 1.5 times stable's
/// error rate, long before its 20-minute window ends.
#[test]
fn the_sequential_template_passes_a_good_canary_early() {
    let report = errors_vs_stable("good", &[]);
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Successful", Some(5)), "{message}");
    assert!(message.contains("evidence it is within 1.5× of stable"), "{message}");
    assert_eq!(report["phase"], "Successful");
}

/// Latency is not what the sequential template judges: a slow canary that fails no more often passes.
#[test]
fn the_sequential_template_judges_errors_not_latency() {
    assert_eq!(verdict(&errors_vs_stable("slow", &[]), "error-rate").0, "Successful");
}

/// A canary that serves nothing gives no evidence either way: Inconclusive when the window ends.
#[test]
fn the_sequential_template_is_inconclusive_without_traffic() {
    let report = errors_vs_stable("idle", &[]);
    let (phase, fired, message) = verdict(&report, "error-rate");
    assert_eq!((phase.as_str(), fired), ("Inconclusive", Some(20)), "{message}");
}

/// The compare template decides once its 10 measurements are in: a canary whose p99 is 9 times
/// stable's fails, ...
#[test]
fn the_compare_template_fails_a_slower_canary_after_its_window() {
    let report = latency_vs_stable("slow");
    let (phase, fired, message) = verdict(&report, "latency-p99");
    assert_eq!((phase.as_str(), fired), ("Failed", Some(10)), "{message}");
    assert!(message.contains("is 9.05× stable's"), "{message}");
    assert_eq!(report["phase"], "Failed");
}

/// ... and one whose p99 varies as stable's does passes, whatever its error rate.
#[test]
fn the_compare_template_passes_a_canary_as_fast_as_stable() {
    for canary in ["good", "errors5x"] {
        let report = latency_vs_stable(canary);
        let (phase, fired, message) = verdict(&report, "latency-p99");
        assert_eq!((phase.as_str(), fired), ("Successful", Some(10)), "{canary}: {message}");
        assert!(message.contains("no significant increase"), "{message}");
    }
}

/// A run in `shop` of the canary `errors5x` against `stable`, behind the Services `errors5x-svc` and
/// `good-svc`, as the controller creates it.
fn shop_run(metrics: Vec<Metric>) -> AnalysisRun {
    let spec = AnalysisRunSpec {
        metrics,
        args: vec![AnalysisArg { name: "code".into(), value: "500".into() }],
        revision: "errors5x".into(),
        duration: None,
        timeout: None,
        terminate: false,
        sources: Vec::new(),
        context: Some(RunContext {
            rollout: "frontend".into(),
            stable_revision: "stable".into(),
            canary_service: "errors5x-svc".into(),
            stable_service: "good-svc".into(),
        }),
    };
    let mut run = AnalysisRun::new("frontend-errors5x", spec);
    run.metadata.namespace = Some("shop".into());
    run
}

/// A metric at `address` with `query`, judged as `judgment` (its `threshold`, `compare` or
/// `sequential`).
fn metric(name: &str, address: &str, query: &str, judgment: Value) -> Metric {
    let mut metric = serde_json::json!({
        "name": name,
        "interval": "1m",
        "provider": {"prometheus": {"address": address, "query": query}},
    });
    metric.as_object_mut().unwrap().extend(judgment.as_object().unwrap().clone());
    serde_json::from_value(metric).unwrap()
}

/// Every variable of a run's queries comes from the run: its namespace, revision and args, and the
/// Rollout, stable revision and Services of its context.
#[test]
fn a_runs_variables_fill_every_placeholder() {
    let query = concat!(
        r#"x{rollout="{{rollout.name}}", namespace="{{rollout.namespace}}", canary="{{canary.revision}}", "#,
        r#"stable="{{stable.revision}}", canary_svc="{{canary.service}}", stable_svc="{{stable.service}}", "#,
        r#"revision="{{revision}}", service="{{service}}", code="{{args.code}}"}[{{interval}}]"#
    );
    let probe =
        metric("probe", "http://unused:9090", query, serde_json::json!({"compare": {"confidence": 0.95}}));
    let run = shop_run(vec![probe.clone()]);
    let expected = |revision: &str, service: &str| {
        format!(
            r#"x{{rollout="frontend", namespace="shop", canary="errors5x", stable="stable", canary_svc="errors5x-svc", stable_svc="good-svc", revision="{revision}", service="{service}", code="500"}}[1m]"#
        )
    };
    assert_eq!(
        MetricQueries::render(&probe, &measure::vars(&run)),
        Ok(MetricQueries::Compare(Pair {
            canary: expected("errors5x", "errors5x-svc"),
            stable: expected("stable", "good-svc"),
        }))
    );
}

/// The pool measures each kind of metric with a run's variables: a threshold on stable's failures
/// (`{{stable.revision}}`, `{{args.code}}`), a comparison of the gateway's error rates of each
/// revision's Service (`{{service}}`), and each revision's counts for the sequential test
/// (`{{revision}}`). All three query one Prometheus, through one provider.
#[tokio::test]
async fn the_pool_measures_each_kind_of_metric_with_a_runs_variables() {
    let address = server().address();
    let threshold = metric(
        "stable-errors",
        address,
        r#"sum(increase(http_requests_total{namespace="{{rollout.namespace}}", revision="{{stable.revision}}", code="{{args.code}}"}[{{interval}}]))"#,
        serde_json::json!({"threshold": {"max": 100}}),
    );
    let compare = metric(
        "gateway-errors",
        address,
        concat!(
            r#"sum(rate(istio_requests_total{destination_service_name="{{service}}", "#,
            r#"response_code=~"5.."}[{{interval}}]))"#,
            r#" / sum(rate(istio_requests_total{destination_service_name="{{service}}"}[{{interval}}]))"#
        ),
        serde_json::json!({"compare": {"confidence": 0.95}}),
    );
    let sequential = metric(
        "error-rate",
        address,
        r#"sum(increase(http_requests_total{namespace="{{rollout.namespace}}", revision="{{revision}}", code=~"5.."}[{{interval}}]))"#,
        serde_json::json!({"sequential": {
            "requestsQuery": r#"sum(increase(http_requests_total{namespace="{{rollout.namespace}}", revision="{{revision}}"}[{{interval}}]))"#,
            "maxIncrease": 0.5
        }}),
    );
    let run = shop_run(vec![threshold.clone(), compare.clone(), sequential.clone()]);
    let vars = measure::vars(&run);
    let pool = Providers::new(2);
    let auth = ResolvedAuth::default();

    let stable_errors = pool.measure(&threshold, &vars, &auth, at_minute(1)).await;
    assert_eq!(stable_errors.error, None, "{stable_errors:?}");
    assert_near(stable_errors.value.unwrap(), 48.0, "stable's failures in the first minute");

    let gateway = pool.measure(&compare, &vars, &auth, at_minute(2)).await;
    assert_eq!(gateway.error, None, "{gateway:?}");
    assert_near(gateway.value.unwrap(), 0.015, "errors5x-svc error rate");
    assert_near(gateway.baseline.unwrap(), 0.002, "good-svc error rate");

    let counted = pool.measure(&sequential, &vars, &auth, at_minute(1)).await;
    assert_eq!(counted.error, None, "{counted:?}");
    let counts = counted.counts.unwrap();
    assert_near(counts.canary_errors, 90.0, "canary errors");
    assert_near(counts.canary_requests, 6000.0, "canary requests");
    assert_near(counts.stable_errors, 48.0, "stable errors");
    assert_near(counts.stable_requests, 24000.0, "stable requests");
    assert_near(counted.value.unwrap(), 0.015, "canary error share");

    assert_eq!(pool.provider_count(), 1, "one address, timeout and credentials: one provider");
}

/// Each verdict has its own exit code, so that a pipeline can tell a bad canary from a template that
/// could not decide; a window too short for a verdict has its own too.
#[test]
fn each_verdict_exits_with_its_own_code() {
    let code = |minutes: i64, template: &str, revision: &str| {
        backtest(minutes, &ready_made(template), server().address(), &["--revision", revision]).status.code()
    };
    assert_eq!(code(20, "http-app.yaml", "good"), Some(SUCCESSFUL));
    assert_eq!(code(20, "http-app.yaml", "errors5x"), Some(FAILED));
    assert_eq!(code(20, "http-app.yaml", "idle"), Some(INCONCLUSIVE));
    // Well-formed PromQL that Prometheus refuses: sort_by_label is experimental, and off by default.
    let broken = one_metric_template(r#"sort_by_label(http_requests_total, "code")"#, "10s");
    let path = broken.path().to_str().unwrap();
    assert_eq!(backtest(20, path, server().address(), &[]).status.code(), Some(ERROR));
    // Three of the five measurements of a good canary, two of a bad one's breachFor: no verdict yet.
    assert_eq!(code(3, "http-app.yaml", "good"), Some(UNDECIDED));
    let running =
        analyze_until(2, &ready_made("http-app.yaml"), server().address(), &["--revision", "errors5x"]);
    assert_eq!(running["phase"], "Running", "{running}");
}

#[test]
fn usage_errors_exit_2() {
    let template = ready_made("http-app.yaml");
    let reversed = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args([
            "analyze",
            "-f",
            &template,
            "--from",
            &at_minute(5).to_rfc3339(),
            "--to",
            &at_minute(0).to_rfc3339(),
        ])
        .output()
        .expect("bellwether runs");
    assert!(refused(USAGE, reversed).contains("--from must be before --to"));
    for (flag, value) in [("--at", "yesterday"), ("--duration", "5 minutes")] {
        let output = Command::new(env!("CARGO_BIN_EXE_bellwether"))
            .args(["analyze", "-f", &template, flag, value])
            .output()
            .expect("bellwether runs");
        assert!(refused(USAGE, output).contains(&format!("{value:?}")), "{flag}");
    }
}

#[test]
fn a_file_that_cannot_be_read_cannot_run() {
    let missing = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["analyze", "-f", "no/such/template.yaml"])
        .output()
        .expect("bellwether runs");
    assert!(refused(COULD_NOT_RUN, missing).contains("cannot read no/such/template.yaml"));
}

#[test]
fn help_lists_the_exit_codes() {
    let output = Command::new(env!("CARGO_BIN_EXE_bellwether")).args(["analyze", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains(
            "Exit codes: 0 Successful, 1 Failed, 2 usage error, 3 Inconclusive, 4 Error, 5 no verdict yet"
        ),
        "{help}"
    );
    assert!(help.contains("6 could not run"), "{help}");
}

/// Ten years of 1s measurements are 315,619,201 points, which a backtest refuses by arithmetic: it
/// must not build them first (3.8 GB of times). The run gets 1 GiB of address space and no
/// Prometheus, and must fail fast with the metric, the count and the limit.
#[test]
fn a_backtest_too_long_is_refused_before_anything_is_allocated() {
    let template = template_file(serde_json::json!({
        "name": "per-second",
        "interval": "1s",
        "count": 5,
        "provider": {"prometheus": {"address": "http://127.0.0.1:1", "query": "up"}},
        "threshold": {"max": 1}
    }));
    let started = std::time::Instant::now();
    let output = Command::new("sh")
        .args(["-c", r#"ulimit -v 1048576 && exec "$@""#, "sh", env!("CARGO_BIN_EXE_bellwether"), "analyze"])
        .args(["-f", template.path().to_str().unwrap()])
        .args(["--from", "2024-01-01T00:00:00Z", "--to", "2034-01-01T00:00:00Z"])
        .output()
        .expect("bellwether runs");
    let stderr = refused(COULD_NOT_RUN, output);
    assert!(
        stderr.contains(
            "per-second: the backtest needs 315619201 measurements, one every 1s; at most 10000 are allowed"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
}

/// The table names each measurement's error once, though the judge's message quotes it too.
#[test]
fn the_table_names_each_error_once() {
    // Well-formed PromQL that Prometheus refuses, at every measurement.
    let template = one_metric_template(r#"sort_by_label(http_requests_total, "code")"#, "10s");
    let output = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["analyze", "-f", template.path().to_str().unwrap(), "--prometheus", server().address()])
        .args(["--from", &at_minute(0).to_rfc3339(), "--to", &at_minute(5).to_rfc3339()])
        .output()
        .expect("bellwether runs");
    assert_eq!(output.status.code(), Some(ERROR));
    let table = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("  2024-02-01 ")).collect();
    assert!(!rows.is_empty(), "{table}");
    for row in rows {
        assert_eq!(row.matches("Prometheus rejected the query").count(), 1, "{row}");
    }
}
