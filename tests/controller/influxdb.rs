//! The `influxdb` metric provider against a real InfluxDB 1.x (Debian's `influxd`, started by the
//! testkit): threshold, compare and sequential measurements of points the tests write; each shape
//! of answer becoming the value, no data or the measurement error it should; args that cannot leave
//! their literal; and basic and JWT credentials against a server that requires them. What no
//! InfluxDB can be made to answer (a 5xx, an HTML page, nothing at all) comes from local stand-ins.
//! Measured through the controller's pool, as the AnalysisRun reconciler measures.
//!
//! Needs `influxd` on PATH; ./scripts/test installs it when missing.

use bellwether::api::template::Vars;
use bellwether::api::{Counts, Measurement, Metric};
use bellwether::controller::secrets::{ReadableSecrets, resolve_auth};
use bellwether::metrics::prometheus::{Credentials, ResolvedAuth};
use bellwether::metrics::provider::Provider;
use bellwether::metrics::providers::Providers;
use bellwether_testkit::apiserver::TestApiServer;
use bellwether_testkit::http_stub::canned_server;
use bellwether_testkit::influxdb::{self, InfluxDb, jwt, now_ms};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;

/// The server of this test binary, without auth; each test writes to a database of its own.
fn server() -> &'static InfluxDb {
    static SERVER: OnceLock<Result<InfluxDb, String>> = OnceLock::new();
    influxdb::shared(&SERVER)
}

/// Requests a second for the last minute, by revision and code: the canary ("good") fails 2% of
/// its requests, stable 1%; and latencies, the canary's slower.
const POINTS: &[&str] = &[
    r#"requests,revision=good,code=200 count=980i"#,
    r#"requests,revision=good,code=500 count=20i"#,
    r#"requests,revision=stable,code=200 count=3960i"#,
    r#"requests,revision=stable,code=500 count=40i"#,
    r#"latency,revision=good seconds=0.2"#,
    r#"latency,revision=good seconds=0.4"#,
    r#"latency,revision=stable seconds=0.1"#,
    r#"latency,revision=stable seconds=0.1"#,
];

/// Creates the database `name` on `server` with [`POINTS`], each written a second before the one
/// before it, ending a second ago.
fn database_on(server: &InfluxDb, name: &str) {
    server.create_database(name).expect("creating the database");
    let now = now_ms();
    let lines: Vec<String> = POINTS
        .iter()
        .zip(1..)
        .map(|(line, seconds_ago)| format!("{line} {}", now - 1000 * seconds_ago))
        .collect();
    server.write(name, &lines.join("\n")).expect("writing the points");
}

/// [`database_on`] the shared server.
fn database(name: &str) -> &'static InfluxDb {
    let server = server();
    database_on(server, name);
    server
}

/// A metric reading `database` at `address` with `query`, judged by `judgment`.
fn metric_at(address: &str, database: &str, query: &str, judgment: Value) -> Metric {
    let mut metric = json!({
        "name": "m",
        "interval": "5m",
        "provider": {"influxdb": {"address": address, "database": database, "query": query, "timeout": "5s"}},
    });
    let (kind, settings) = judgment.as_object().and_then(|o| o.iter().next()).expect("one judgment");
    metric[kind] = settings.clone();
    serde_json::from_value(metric).expect("a metric")
}

fn metric(database: &str, query: &str) -> Metric {
    metric_at(server().address(), database, query, json!({"threshold": {"max": 1}}))
}

/// The canary is "good", stable is "stable"; `rev` is an arg.
fn vars(rev: &str) -> Vars {
    Vars {
        args: [("rev".to_owned(), rev.to_owned())].into(),
        revision: "good".into(),
        canary_revision: "good".into(),
        stable_revision: "stable".into(),
        ..Vars::default()
    }
}

async fn measure_with(metric: &Metric, vars: &Vars, auth: &ResolvedAuth) -> Measurement {
    Providers::new(4).measure(metric, vars, auth, Utc::now()).await
}

async fn measure(metric: &Metric) -> Measurement {
    measure_with(metric, &vars("good"), &ResolvedAuth::default()).await
}

/// The measurement's value, or its error.
async fn value(metric: &Metric) -> Result<Option<f64>, String> {
    let measurement = measure(metric).await;
    measurement.error.map_or(Ok(measurement.value), Err)
}

const FAILED: &str = r#"SELECT sum("count") FROM "requests" WHERE "revision" = '{{revision}}' AND "code" = '500' AND time > now() - {{interval}}"#;
const ALL: &str = r#"SELECT sum("count") FROM "requests" WHERE "revision" = '{{revision}}' AND time > now() - {{interval}}"#;

#[tokio::test]
async fn a_threshold_metric_measures_the_canary_now() {
    database("threshold");
    assert_eq!(value(&metric("threshold", FAILED)).await, Ok(Some(20.0)));
    let p99 = r#"SELECT percentile("seconds", 99) FROM "latency" WHERE "revision" = '{{revision}}' AND time > now() - 5m"#;
    assert_eq!(value(&metric("threshold", p99)).await, Ok(Some(0.4)));
}

#[tokio::test]
async fn a_compare_metric_measures_both_revisions() {
    let server = database("compare");
    let mean =
        r#"SELECT mean("seconds") FROM "latency" WHERE "revision" = '{{revision}}' AND time > now() - 5m"#;
    let metric = metric_at(server.address(), "compare", mean, json!({"compare": {"confidence": 0.95}}));
    let measurement = measure(&metric).await;
    assert_eq!(measurement.error, None);
    assert!((measurement.value.unwrap() - 0.3).abs() < 1e-9, "{measurement:?}");
    assert_eq!(measurement.baseline, Some(0.1));
}

#[tokio::test]
async fn a_sequential_metric_counts_both_revisions() {
    let server = database("sequential");
    let metric = metric_at(
        server.address(),
        "sequential",
        FAILED,
        json!({"sequential": {"requestsQuery": ALL, "maxIncrease": 0.5}}),
    );
    let measurement = measure(&metric).await;
    assert_eq!(measurement.error, None);
    assert_eq!(
        measurement.counts,
        Some(Counts {
            canary_errors: 20.0,
            canary_requests: 1000.0,
            stable_errors: 40.0,
            stable_requests: 4000.0
        })
    );
    assert_eq!(measurement.value, Some(0.02));
}

#[tokio::test]
async fn no_series_and_null_are_no_data() {
    let server = database("nodata");
    let nobody = r#"SELECT sum("count") FROM "requests" WHERE "revision" = 'nobody' AND time > now() - 5m"#;
    assert_eq!(value(&metric("nodata", nobody)).await, Ok(None));
    // A revision that failed requests but has no count of all of them: a ratio of a value and null.
    let now = now_ms();
    server
        .write(
            "nodata",
            &format!(
                "ratio,revision=good errors=1i {}\nratio,revision=stable requests=10i {}",
                now - 1000,
                now - 1000
            ),
        )
        .unwrap();
    let ratio = r#"SELECT sum("errors") / sum("requests") FROM "ratio" WHERE "revision" = '{{revision}}' AND time > now() - 5m"#;
    assert_eq!(value(&metric("nodata", ratio)).await, Ok(None));
}

#[tokio::test]
async fn several_series_name_their_tag_sets() {
    database("series");
    let grouped = r#"SELECT sum("count") FROM "requests" WHERE time > now() - 5m GROUP BY "revision""#;
    assert_eq!(
        value(&metric("series", grouped)).await,
        Err(r#"query returned 2 series, expected 1: requests{revision="good"}, requests{revision="stable"}"#
            .into())
    );
}

#[tokio::test]
async fn several_rows_or_values_ask_for_an_aggregate() {
    database("rows");
    let raw = r#"SELECT "seconds" FROM "latency" WHERE "revision" = '{{revision}}' AND time > now() - 5m"#;
    let error = value(&metric("rows", raw)).await.unwrap_err();
    assert!(
        error.starts_with(
            "unexpected answer from InfluxDB: the query returned 2 rows, expected 1: aggregate the query"
        ),
        "{error}"
    );
    let two = r#"SELECT sum("count"), mean("count") FROM "requests" WHERE time > now() - 5m"#;
    let error = value(&metric("rows", two)).await.unwrap_err();
    assert!(error.contains("returned 2 values per row (sum, mean), expected 1"), "{error}");
}

#[tokio::test]
async fn syntax_errors_and_unknown_databases_are_rejected_queries() {
    database("rejected");
    let error = value(&metric("rejected", r#"SELECT sum("count") FROM "requests" WHERE"#)).await.unwrap_err();
    assert!(error.starts_with("InfluxDB rejected the query: error parsing query: found EOF"), "{error}");
    assert_eq!(
        value(&metric("nope", ALL)).await,
        Err("InfluxDB rejected the query: database not found: nope".into())
    );
    let mut unknown_policy = metric("rejected", ALL);
    unknown_policy.provider.influxdb.as_mut().unwrap().retention_policy = Some("week".into());
    assert_eq!(
        value(&unknown_policy).await,
        Err("InfluxDB rejected the query: retention policy not found: week".into())
    );
}

/// Whether `database` still answers: nothing a test sent dropped it or wrote to it.
async fn untouched(database: &str) {
    assert_eq!(value(&metric(database, FAILED)).await, Ok(Some(20.0)), "{database} is intact");
    let written = r#"SELECT count("sum") FROM "written" WHERE time > 0"#;
    assert_eq!(value(&metric(database, written)).await, Ok(None), "nothing was written to {database}");
}

#[tokio::test]
async fn a_second_statement_or_a_write_is_refused_before_anything_is_sent() {
    database("statements");
    let second = r#"SELECT sum("count") FROM "requests"; DROP DATABASE "statements""#;
    let error = value(&metric("statements", second)).await.unwrap_err();
    assert!(error.starts_with("provider.influxdb.query: ';' at byte 35 ends the statement"), "{error}");
    let into = r#"SELECT sum("count") INTO "written" FROM "requests" WHERE time > 0"#;
    let error = value(&metric("statements", into)).await.unwrap_err();
    assert!(error.starts_with("provider.influxdb.query: INTO at byte 20 writes the result"), "{error}");
    untouched("statements").await;
}

/// Values written to end their literal and run more InfluxQL measure what their literal says: a
/// revision, a field or a regex of that very name, which has no data.
#[tokio::test]
async fn args_cannot_leave_their_literal() {
    database("injection");
    let in_string =
        r#"SELECT sum("count") FROM "requests" WHERE "revision" = '{{args.rev}}' AND time > now() - 5m"#;
    let in_identifier = r#"SELECT sum("{{args.rev}}") FROM "requests" WHERE time > now() - 5m"#;
    let in_regex =
        r#"SELECT sum("count") FROM "requests" WHERE "revision" =~ /^{{args.rev}}$/ AND time > now() - 5m"#;
    let hostile = [
        r#"good' OR "revision" = 'stable"#,
        r#"good'; DROP DATABASE "injection"; SELECT '"#,
        "good' -- ",
        r#"count") FROM "requests"; SELECT sum("count"#,
        ".*",
        "good|stable",
        r#"good$/ OR "revision" =~ /^stable"#,
        "good\\",
        "good\n",
    ];
    for query in [in_string, in_identifier, in_regex] {
        for rev in hostile {
            let measurement =
                measure_with(&metric("injection", query), &vars(rev), &ResolvedAuth::default()).await;
            assert_eq!((measurement.value, measurement.error), (None, None), "{query} with {rev:?}");
        }
    }
    // The same queries measure what they name.
    for (query, rev, expected) in
        [(in_string, "good", 1000.0), (in_identifier, "count", 5000.0), (in_regex, "stable", 4000.0)]
    {
        let measurement =
            measure_with(&metric("injection", query), &vars(rev), &ResolvedAuth::default()).await;
        assert_eq!((measurement.value, measurement.error), (Some(expected), None), "{query} with {rev:?}");
    }
    // A bare value is one number or duration, or no query is sent.
    let bare = r#"SELECT sum("count") FROM "requests" WHERE time > now() - {{args.rev}}"#;
    let measurement =
        measure_with(&metric("injection", bare), &vars("5m OR true"), &ResolvedAuth::default()).await;
    assert!(measurement.error.unwrap().contains("is outside a string, so its value must be one number"));
    untouched("injection").await;
}

#[tokio::test]
async fn a_long_query_goes_by_post() {
    database("post");
    let long = "x".repeat(4000);
    let query =
        r#"SELECT sum("count") FROM "requests" WHERE "revision" = '{{args.rev}}' AND time > now() - 5m"#;
    let measurement = measure_with(&metric("post", query), &vars(&long), &ResolvedAuth::default()).await;
    assert_eq!((measurement.value, measurement.error), (None, None));
}

/// A server that requires credentials: none, or wrong ones, are a rejected query naming the refusal;
/// a user's password read from a Secret, or a JWT signed with the server's shared secret, measure.
#[tokio::test]
async fn credentials_are_refused_or_accepted() {
    let shared_secret = "jwt-shared-secret";
    let server = InfluxDb::start_with_auth(shared_secret).expect("an InfluxDB with auth");
    database_on(&server, "secured");
    server.create_reader("reader", "reader-password", "secured").unwrap();
    let metric = |auth: Value| {
        let mut metric = metric_at(server.address(), "secured", FAILED, json!({"threshold": {"max": 1}}));
        metric.provider.influxdb.as_mut().unwrap().auth = serde_json::from_value(auth).unwrap();
        metric
    };
    let none = measure(&metric(Value::Null)).await.error.unwrap();
    assert!(none.starts_with("InfluxDB rejected the query: HTTP 401 Unauthorized: "), "{none}");

    let apiserver = TestApiServer::start().await;
    let client = apiserver.client();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "influxdb-reader", "namespace": "shop"},
        "stringData": {"username": "reader", "password": "reader-password\n", "wrong": "guess"},
    }))
    .unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "shop")
        .create(&Default::default(), &secret)
        .await
        .unwrap();
    let readable = ReadableSecrets::new([("shop".to_owned(), "influxdb-reader".to_owned())]);
    let basic = |password: &str| {
        metric(json!({"basic": {
            "username": {"name": "influxdb-reader", "key": "username"},
            "password": {"name": "influxdb-reader", "key": password},
        }}))
    };
    let measured = |metric: Metric| {
        let client = client.clone();
        let readable = readable.clone();
        async move {
            let auth =
                resolve_auth(&client, "shop", &readable, Provider::of(&metric).unwrap()).await.unwrap();
            measure_with(&metric, &vars("good"), &auth).await
        }
    };
    let wrong = measured(basic("wrong")).await.error.unwrap();
    assert_eq!(wrong, "InfluxDB rejected the query: HTTP 401 Unauthorized: authorization failed");
    let right = measured(basic("password")).await;
    assert_eq!((right.value, right.error), (Some(20.0), None));

    let bearer = |token: String| {
        let auth = ResolvedAuth { credentials: Some(Credentials::Bearer { token }), headers: vec![] };
        let metric = metric(Value::Null);
        async move { measure_with(&metric, &vars("good"), &auth).await }
    };
    let in_an_hour = Utc::now().timestamp() + 3600;
    let signed = bearer(jwt(shared_secret, "reader", in_an_hour)).await;
    assert_eq!((signed.value, signed.error), (Some(20.0), None));
    let expired = bearer(jwt(shared_secret, "reader", Utc::now().timestamp() - 60)).await.error.unwrap();
    assert!(expired.starts_with("InfluxDB rejected the query: HTTP 401 Unauthorized: "), "{expired}");
    let forged = bearer(jwt("another-secret", "reader", in_an_hour)).await.error.unwrap();
    assert!(forged.starts_with("InfluxDB rejected the query: HTTP 401 Unauthorized: "), "{forged}");
}

#[tokio::test]
async fn a_server_that_is_down_is_unreachable() {
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let error = value(&metric_at(&address, "app", ALL, json!({"threshold": {"max": 1}}))).await.unwrap_err();
    assert!(error.starts_with(&format!("InfluxDB at {address} is unreachable: ")), "{error}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections (the kernel does, from the backlog) but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let mut metric = metric_at(&address, "app", ALL, json!({"threshold": {"max": 1}}));
    metric.provider.influxdb.as_mut().unwrap().timeout = Some(bellwether::api::Duration::new("300ms"));
    let started = std::time::Instant::now();
    assert_eq!(
        value(&metric).await,
        Err(format!("InfluxDB query timed out: no answer from {address} within 300ms"))
    );
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    drop(listener);
}

#[tokio::test]
async fn html_and_server_errors_from_a_stand_in_are_classified() {
    let login = canned_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 33\r\nConnection: close\r\n\r\n<html><body>Sign in</body></html>",
    );
    assert_eq!(
        value(&metric_at(&login, "app", ALL, json!({"threshold": {"max": 1}}))).await,
        Err("unexpected answer from InfluxDB: an answer that is not InfluxDB JSON: <html><body>Sign in</body></html>"
            .into())
    );
    let down = canned_server(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nupstream down",
    );
    assert_eq!(
        value(&metric_at(&down, "app", ALL, json!({"threshold": {"max": 1}}))).await,
        Err("InfluxDB answered HTTP 503: upstream down".into())
    );
}

#[tokio::test]
async fn the_pool_keeps_one_client_per_database_and_settings() {
    database("pool");
    let pool = Providers::new(4);
    let mut counts = Vec::new();
    let mut other_policy = metric("pool", FAILED);
    other_policy.provider.influxdb.as_mut().unwrap().retention_policy = Some("autogen".into());
    for metric in [metric("pool", FAILED), metric("pool", ALL), metric("other", ALL), other_policy] {
        pool.measure(&metric, &vars("good"), &ResolvedAuth::default(), Utc::now()).await;
        counts.push(pool.provider_count());
    }
    assert_eq!(counts, [1, 1, 2, 3]);
}
