//! The `datadog` metric provider against a local stand-in of Datadog's query API (v1), measured
//! through the controller's pool as the AnalysisRun reconciler measures: what each query asks for
//! (its range, its keys), each judgment's measurement, and each answer Datadog documents as the
//! value or the measurement error it should be. The stand-in implements the documented request and
//! answer shapes; it is not Datadog.

use bellwether::api::template::Vars;
use bellwether::api::{Counts, Measurement, Metric};
use bellwether::controller::secrets::{ReadableSecrets, resolve_auth};
use bellwether::metrics::datadog::key_headers;
use bellwether::metrics::prometheus::ResolvedAuth;
use bellwether::metrics::provider::Provider;
use bellwether::metrics::providers::Providers;
use bellwether_testkit::apiserver::TestApiServer;
use bellwether_testkit::datadog::{Datadog, Fault, Points, Series};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;

const API_KEY: &str = "api-0123456789";
const APPLICATION_KEY: &str = "app-0123456789";

const ERRORS: &str = "sum:trace.http.request.errors{service:shop,version:{{revision}}}.as_count()";

fn at() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

/// Unix seconds `offset` from [`at`].
fn t(offset: i64) -> i64 {
    at().timestamp() + offset
}

fn vars() -> Vars {
    Vars {
        args: [("service".to_owned(), "shop".to_owned())].into(),
        revision: "canary1".into(),
        canary_revision: "canary1".into(),
        stable_revision: "stable1".into(),
        interval: String::new(),
        ..Vars::default()
    }
}

/// A threshold metric querying `datadog` with `query`, and `extra` provider fields.
fn metric(datadog: &Datadog, query: &str, extra: Value) -> Metric {
    metric_at(&datadog.address(), query, extra)
}

/// A threshold metric querying the Datadog API at `address`.
fn metric_at(address: &str, query: &str, extra: Value) -> Metric {
    let mut provider = json!({
        "address": address,
        "query": query,
        "apiKey": {"name": "datadog", "key": "api-key"},
        "applicationKey": {"name": "datadog", "key": "application-key"},
    });
    for (field, value) in extra.as_object().into_iter().flatten() {
        provider[field] = value.clone();
    }
    serde_json::from_value(json!({
        "name": "errors",
        "interval": "1m",
        "provider": {"datadog": provider},
        "threshold": {"max": 10},
    }))
    .unwrap()
}

fn keys() -> ResolvedAuth {
    key_headers(API_KEY, APPLICATION_KEY)
}

async fn measure(metric: &Metric) -> Measurement {
    Providers::new(4).measure(metric, &vars(), &keys(), at()).await
}

/// The error of one threshold measurement of `query`.
async fn error_of(datadog: &Datadog, query: &str, extra: Value) -> String {
    let measurement = measure(&metric(datadog, query, extra)).await;
    let value = measurement.value;
    measurement.error.unwrap_or_else(|| panic!("an error, got the value {value:?}"))
}

async fn stand_in() -> Datadog {
    Datadog::start(API_KEY, APPLICATION_KEY).await
}

#[tokio::test]
async fn the_value_is_the_latest_whole_bucket_over_the_window() {
    let datadog = stand_in().await;
    let query = "sum:trace.http.request.errors{service:shop,version:canary1}.as_count()";
    // The bucket stamped at `at` is still filling; the one before it is the latest over.
    let points = vec![(t(-180), Some(4.0)), (t(-120), Some(3.0)), (t(-60), Some(5.0)), (t(0), Some(90.0))];
    datadog.serve(query, vec![Series::new(60, Points::At(points))]);
    let measurement = measure(&metric(&datadog, ERRORS, json!({}))).await;
    assert_eq!((measurement.value, measurement.error), (Some(5.0), None));

    let received = datadog.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, "/api/v1/query");
    assert_eq!(request.query.as_deref(), Some(query));
    let range = |request: &bellwether_testkit::datadog::Received| {
        (request.from.clone().unwrap(), request.to.clone().unwrap())
    };
    assert_eq!(range(request), (t(-300).to_string(), t(0).to_string()), "the default window is 5m");
    assert_eq!(
        (request.api_key.as_deref(), request.application_key.as_deref()),
        (Some(API_KEY), Some(APPLICATION_KEY))
    );
    let ten_minutes = measure(&metric(&datadog, ERRORS, json!({"window": "10m"}))).await;
    assert_eq!(ten_minutes.value, Some(5.0));
    assert_eq!(range(&datadog.received()[1]), (t(-600).to_string(), t(0).to_string()));

    // The latest whole bucket null (or missing, as a sparse count's quiet minute is) is no data:
    // the minute before it was read by the measurement before, and counting it again would count
    // its requests twice.
    for latest in [vec![(t(-60), None)], vec![]] {
        let points = [vec![(t(-180), Some(4.0)), (t(-120), Some(3.0))], latest, vec![(t(0), Some(90.0))]];
        datadog.serve(query, vec![Series::new(60, Points::At(points.concat()))]);
        let measurement = measure(&metric(&datadog, ERRORS, json!({}))).await;
        assert_eq!((measurement.value, measurement.error), (None, None));
    }
}

#[tokio::test]
async fn a_compare_metric_measures_the_canary_and_stable() {
    let datadog = stand_in().await;
    let latency = "p99:trace.http.request.duration{service:{{args.service}},version:{{revision}}}.rollup(avg, {{interval}})";
    let rendered = |revision: &str| {
        format!("p99:trace.http.request.duration{{service:shop,version:{revision}}}.rollup(avg, 60)")
    };
    datadog.serve(&rendered("canary1"), vec![Series::new(60, Points::Constant(0.25))]);
    datadog.serve(&rendered("stable1"), vec![Series::new(60, Points::Constant(0.125))]);
    let mut compare = metric(&datadog, latency, json!({}));
    compare.threshold = None;
    compare.compare = serde_json::from_value(json!({"confidence": 0.95})).unwrap();
    let measurement = Providers::new(4).measure(&compare, &vars(), &keys(), at()).await;
    assert_eq!((measurement.value, measurement.baseline, measurement.error), (Some(0.25), Some(0.125), None));
}

#[tokio::test]
async fn a_sequential_metric_counts_each_revisions_requests() {
    let datadog = stand_in().await;
    let count = |metric: &str, revision: &str| {
        format!(
            "sum:trace.http.request.{metric}{{service:shop,version:{revision}}}.as_count().rollup(sum, 60)"
        )
    };
    for (metric, revision, value) in [
        ("errors", "canary1", 3.0),
        ("hits", "canary1", 600.0),
        ("errors", "stable1", 6.0),
        ("hits", "stable1", 2400.0),
    ] {
        datadog.serve(&count(metric, revision), vec![Series::new(60, Points::Constant(value))]);
    }
    let mut sequential = metric(
        &datadog,
        "sum:trace.http.request.errors{service:shop,version:{{revision}}}.as_count().rollup(sum, {{interval}})",
        json!({"window": "2m"}),
    );
    sequential.threshold = None;
    sequential.sequential = serde_json::from_value(json!({
        "requestsQuery": "sum:trace.http.request.hits{service:shop,version:{{revision}}}.as_count().rollup(sum, {{interval}})",
        "maxIncrease": 0.5,
    }))
    .unwrap();
    let measurement = Providers::new(4).measure(&sequential, &vars(), &keys(), at()).await;
    assert_eq!(measurement.error, None);
    assert_eq!(
        measurement.counts,
        Some(Counts {
            canary_errors: 3.0,
            canary_requests: 600.0,
            stable_errors: 6.0,
            stable_requests: 2400.0
        })
    );
    assert_eq!(measurement.value, Some(0.005));
}

#[tokio::test]
async fn keys_are_read_from_a_secret_and_wrong_ones_are_refused() {
    let datadog = stand_in().await;
    let query = "sum:trace.http.request.errors{service:shop,version:canary1}.as_count()";
    datadog.serve(query, vec![Series::new(60, Points::Constant(2.0))]);
    let apiserver = TestApiServer::start().await;
    let client = apiserver.client();
    let secrets = kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "shop");
    let secret = |keys: Value| -> k8s_openapi::api::core::v1::Secret {
        serde_json::from_value(
            json!({"metadata": {"name": "datadog", "namespace": "shop"}, "stringData": keys}),
        )
        .unwrap()
    };
    secrets
        .create(
            &Default::default(),
            &secret(json!({"api-key": format!("{API_KEY}\n"), "application-key": APPLICATION_KEY})),
        )
        .await
        .unwrap();
    let metric = metric(&datadog, ERRORS, json!({}));
    let provider = Provider::of(&metric).unwrap();

    let refused = resolve_auth(&client, "shop", &ReadableSecrets::default(), provider).await.unwrap_err();
    assert!(refused.to_string().contains("is not among the Secrets Bellwether was granted"), "{refused}");

    let readable = ReadableSecrets::new([("shop".to_owned(), "datadog".to_owned())]);
    let auth = resolve_auth(&client, "shop", &readable, provider).await.unwrap();
    assert!(!format!("{auth:?}").contains(API_KEY), "{auth:?}");
    let pool = Providers::new(4);
    let measurement = pool.measure(&metric, &vars(), &auth, at()).await;
    assert_eq!((measurement.value, measurement.error), (Some(2.0), None));
    let received = datadog.received();
    assert_eq!(
        (received[0].api_key.as_deref(), received[0].application_key.as_deref()),
        (Some(API_KEY), Some(APPLICATION_KEY)),
        "the keys arrive trimmed"
    );

    let mut wrong = secret(json!({"api-key": "revoked-key", "application-key": APPLICATION_KEY}));
    wrong.metadata.name = Some("datadog-old".into());
    secrets.create(&Default::default(), &wrong).await.unwrap();
    let readable = ReadableSecrets::new([("shop".to_owned(), "datadog-old".to_owned())]);
    let mut old = metric.clone();
    let datadog_provider = old.provider.datadog.as_mut().unwrap();
    datadog_provider.api_key.name = "datadog-old".into();
    datadog_provider.application_key.name = "datadog-old".into();
    let auth = resolve_auth(&client, "shop", &readable, Provider::of(&old).unwrap()).await.unwrap();
    let error = pool.measure(&old, &vars(), &auth, at()).await.error.expect("refused");
    assert!(
        error.starts_with(
            "Datadog rejected the query: HTTP 403 Forbidden: the API or application key was refused (Forbidden)"
        ),
        "{error}"
    );
    assert!(!error.contains("revoked-key") && !error.contains(APPLICATION_KEY), "{error}");
}

#[tokio::test]
async fn a_query_without_series_or_points_is_no_data() {
    let datadog = stand_in().await;
    let measurement = measure(&metric(&datadog, ERRORS, json!({}))).await;
    assert_eq!((measurement.value, measurement.error), (None, None), "an unknown query has no series");
    let query = "sum:trace.http.request.errors{service:shop,version:canary1}.as_count()";
    datadog.serve(query, vec![Series::new(60, Points::At(vec![(t(-120), None), (t(-3600), Some(1.0))]))]);
    let measurement = measure(&metric(&datadog, ERRORS, json!({}))).await;
    assert_eq!(
        (measurement.value, measurement.error),
        (None, None),
        "null points, and one out of the window"
    );
}

#[tokio::test]
async fn several_series_are_an_error_naming_their_tags() {
    let datadog = stand_in().await;
    let query = "sum:trace.http.request.errors{service:shop} by {version}.as_count()";
    let series = |version: &str| Series {
        tag_set: vec![format!("version:{version}")],
        interval: 60,
        points: Points::Constant(1.0),
    };
    datadog.serve(query, vec![series("b"), series("a")]);
    assert_eq!(
        error_of(&datadog, query, json!({})).await,
        "query returned 2 series, expected 1: {version:a}, {version:b}"
    );
}

#[tokio::test]
async fn a_rejected_query_quotes_datadogs_errors() {
    let datadog = stand_in().await;
    let query = "sum:trace.http.request.errors{service:shop}.as_cont()";
    datadog.reject(query, &["Error parsing query: unknown function as_cont"]);
    assert_eq!(
        error_of(&datadog, query, json!({})).await,
        "Datadog rejected the query: Error parsing query: unknown function as_cont"
    );
    let failing = "sum:trace.http.request.errors{service:shop}.rollup(sum, 1)";
    datadog.fail(failing, "Rollup interval too small for the time range");
    assert_eq!(
        error_of(&datadog, failing, json!({})).await,
        "Datadog rejected the query: Rollup interval too small for the time range"
    );
}

#[tokio::test]
async fn a_value_that_is_no_tag_value_is_refused_before_any_request() {
    let datadog = stand_in().await;
    let mut vars = vars();
    vars.args.insert("service".into(), "shop,version:*".into());
    let metric = metric(&datadog, "sum:errors{service:{{args.service}}}.as_count()", json!({}));
    let measurement = Providers::new(4).measure(&metric, &vars, &keys(), at()).await;
    let error = measurement.error.unwrap();
    assert!(
        error.starts_with(
            "provider.datadog.query: the value of {{args.service}} at byte 19 is \"shop,version:*\""
        ),
        "{error}"
    );
    assert!(datadog.received().is_empty());
}

#[tokio::test]
async fn a_rate_limit_says_when_to_retry() {
    let datadog = stand_in().await;
    datadog.set_fault(Some(Fault::RateLimited { reset: 17 }));
    assert_eq!(
        error_of(&datadog, ERRORS, json!({})).await,
        "Datadog answered HTTP 429: rate limited (Too many requests); the limit resets in 17s \
         (X-RateLimit-Reset); the limit is 100 queries every 3600s"
    );
}

#[tokio::test]
async fn server_errors_and_pages_that_are_not_json_are_classified() {
    let datadog = stand_in().await;
    datadog.set_fault(Some(Fault::ServerError(502)));
    assert_eq!(
        error_of(&datadog, ERRORS, json!({})).await,
        "Datadog answered HTTP 502: Internal Server Error"
    );
    datadog.set_fault(Some(Fault::Html));
    assert_eq!(
        error_of(&datadog, ERRORS, json!({})).await,
        "unexpected answer from Datadog: an answer that is not JSON: \
         <html><head><title>Sign in</title></head><body>Sign in</body></html>"
    );
}

#[tokio::test]
async fn a_datadog_that_never_answers_times_out() {
    let datadog = stand_in().await;
    datadog.set_fault(Some(Fault::Hang));
    let started = std::time::Instant::now();
    assert_eq!(
        error_of(&datadog, ERRORS, json!({"timeout": "300ms"})).await,
        format!("Datadog query timed out: no answer from {} within 300ms", datadog.address())
    );
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_datadog_that_is_down_is_unreachable() {
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let error = measure(&metric_at(&down, ERRORS, json!({}))).await.error.unwrap();
    assert!(error.starts_with(&format!("Datadog at {down} is unreachable: ")), "{error}");
}

/// Metrics that query one site with the same window, timeout and keys share a client; each
/// difference makes another.
#[tokio::test]
async fn clients_are_shared_by_what_they_are_built_from() {
    let datadog = stand_in().await;
    let pool = Providers::new(4);
    let same = metric(&datadog, ERRORS, json!({}));
    let other_query = metric(&datadog, "sum:hits{version:{{revision}}}.as_count()", json!({}));
    let other_window = metric(&datadog, ERRORS, json!({"window": "10m"}));
    for metric in [&same, &other_query, &same] {
        pool.measure(metric, &vars(), &keys(), at()).await;
    }
    assert_eq!(pool.provider_count(), 1);
    pool.measure(&other_window, &vars(), &keys(), at()).await;
    pool.measure(&same, &vars(), &key_headers(API_KEY, "rotated"), at()).await;
    assert_eq!(pool.provider_count(), 3);
}

/// The stand-in refuses what Datadog documents refusing, so that the provider's requests, which it
/// accepts, are shown to be well formed.
#[tokio::test]
async fn the_stand_in_refuses_requests_datadog_refuses() {
    let datadog = stand_in().await;
    let http = reqwest::Client::new();
    let get = |path: &str, keys: bool| {
        let mut request = http.get(format!("{}{path}", datadog.address()));
        if keys {
            request = request.header("DD-API-KEY", API_KEY).header("DD-APPLICATION-KEY", APPLICATION_KEY);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(
        get("/api/v1/query?from=1&to=2&query=x", false).await,
        (403, r#"{"errors":["Forbidden"]}"#.into())
    );
    assert_eq!(get("/api/v1/query?from=1&to=2", true).await.0, 400);
    assert_eq!(get("/api/v1/query?from=1&query=x", true).await.0, 400);
    assert_eq!(get("/api/v1/query?from=2&to=1&query=x", true).await.0, 400);
    assert_eq!(get("/api/v1/query?from=one&to=2&query=x", true).await.0, 400);
    assert_eq!(get("/api/v2/query?from=1&to=2&query=x", true).await.0, 404);
    let (status, body) = get("/api/v1/query?from=1&to=2&query=x", true).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &body["status"], &body["series"]), (200, &json!("ok"), &json!([])));
}
