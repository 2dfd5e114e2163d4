//! The `datadog` metric provider through the real controller: an AnalysisRun queries a local
//! stand-in of Datadog's query API (it implements the documented shapes; it is not Datadog) with the
//! keys of a Secret it was granted, and its verdict promotes a good canary and aborts a bad one with
//! the value the stand-in served.

use crate::harness::{Cluster, Controller, create, revision};
use crate::providers::{assert_the_failed_run_measured, error_ratio_template, ship_bad, ship_good, steps};
use crate::rollouts::deploy_stable;
use bellwether_testkit::datadog::{Datadog, Points, Series};
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

const API_KEY: &str = "api-e2e-0123456789";
const APPLICATION_KEY: &str = "app-e2e-0123456789";

/// The template measuring the error ratio of the revision under test.
const TEMPLATE: &str = "datadog-errors";

/// The error ratio of `{{revision}}`, per second of traced requests.
const QUERY: &str = "sum:trace.http.request.errors{service:shop,version:{{revision}}}.as_count().rollup(sum, {{interval}}) / sum:trace.http.request.hits{service:shop,version:{{revision}}}.as_count().rollup(sum, {{interval}})";

/// Serves `ratio` as `revision`'s error ratio, a point every second whatever the range asked for.
fn serve(datadog: &Datadog, revision: &str, ratio: f64) {
    let query = QUERY.replace("{{revision}}", revision).replace("{{interval}}", "1");
    datadog.serve(&query, vec![Series::new(1, Points::Constant(ratio))]);
}

/// The Secret of the keys, and a template measuring the error ratio of the revision under test
/// with them.
async fn datadog_template(cluster: &Cluster, datadog: &Datadog) {
    create::<Secret>(
        &cluster.client,
        &cluster.namespace,
        json!({"metadata": {"name": "datadog"}, "stringData": {"api-key": API_KEY, "application-key": APPLICATION_KEY}}),
    )
    .await;
    let provider = json!({"datadog": {
        "address": datadog.address(),
        "query": QUERY,
        "window": "10s",
        "timeout": "2s",
        "apiKey": {"name": "datadog", "key": "api-key"},
        "applicationKey": {"name": "datadog", "key": "application-key"},
    }});
    error_ratio_template(cluster, TEMPLATE, "error-ratio", provider).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datadog_metric_promotes_a_good_canary_and_aborts_a_bad_one_with_its_value() {
    let cluster = Cluster::start("datadog-provider").await;
    let datadog = Datadog::start(API_KEY, APPLICATION_KEY).await;
    datadog_template(&cluster, &datadog).await;
    let granted = format!("{}/datadog", cluster.namespace);
    let controller = Controller::start(&cluster, &["--readable-secret", &granted]);
    let stable = deploy_stable(&cluster, steps(TEMPLATE)).await;

    let good_rollout = cluster.rollout("2", steps(TEMPLATE));
    let good = revision(&good_rollout);
    serve(&datadog, &good, 0.002);
    assert_eq!(ship_good(&cluster, &good_rollout).await, good);
    let asked = datadog.received();
    assert!(
        asked.iter().any(|r| r.query.as_deref().is_some_and(|q| q.contains(&format!("version:{good}")))),
        "the run asked for the canary's revision: {asked:?}"
    );
    assert!(
        asked.iter().all(|r| r.api_key.as_deref() == Some(API_KEY)
            && r.application_key.as_deref() == Some(APPLICATION_KEY)),
        "every query carried the Secret's keys"
    );

    let bad_rollout = cluster.rollout("3", steps(TEMPLATE));
    serve(&datadog, &revision(&bad_rollout), 0.25);
    ship_bad(&cluster, &bad_rollout, &good, "error-ratio", "0.25").await;
    assert_the_failed_run_measured(&cluster, 0.25).await;
    assert_ne!(stable, good);
    controller.stop().await;
}
