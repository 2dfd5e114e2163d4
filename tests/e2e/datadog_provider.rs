//! The `datadog` metric provider through the real controller: an AnalysisRun queries a local
//! stand-in of Datadog's query API (it implements the documented shapes; it is not Datadog) with the
//! keys of a Secret it was granted, and its verdict promotes a good canary and aborts a bad one with
//! the value the stand-in served.

use crate::harness::{Cluster, Controller, create};
use crate::rollouts::deploy_stable;
use bellwether::api::{AnalysisPhase, AnalysisRun, AnalysisTemplate, RolloutPhase};
use bellwether_testkit::datadog::{Datadog, Points, Series};
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use serde_json::json;

const API_KEY: &str = "api-e2e-0123456789";
const APPLICATION_KEY: &str = "app-e2e-0123456789";

/// The error ratio of `{{revision}}`, per second of traced requests.
const QUERY: &str = "sum:trace.http.request.errors{service:shop,version:{{revision}}}.as_count().rollup(sum, {{interval}}) / sum:trace.http.request.hits{service:shop,version:{{revision}}}.as_count().rollup(sum, {{interval}})";

/// Serves `ratio` as `revision`'s error ratio, a point every second whatever the range asked for.
fn serve(datadog: &Datadog, revision: &str, ratio: f64) {
    let query = QUERY.replace("{{revision}}", revision).replace("{{interval}}", "1");
    datadog.serve(&query, vec![Series::new(1, Points::Constant(ratio))]);
}

/// The Secret of the keys, and a template measuring the error ratio of the revision under test, at
/// most 1%.
async fn datadog_template(cluster: &Cluster, datadog: &Datadog) {
    create::<Secret>(
        &cluster.client,
        &cluster.namespace,
        json!({"metadata": {"name": "datadog"}, "stringData": {"api-key": API_KEY, "application-key": APPLICATION_KEY}}),
    )
    .await;
    create::<AnalysisTemplate>(
        &cluster.client,
        &cluster.namespace,
        json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "datadog-errors"},
            "spec": {"metrics": [{
                "name": "error-ratio",
                "interval": "1s",
                "count": 3,
                "provider": {"datadog": {
                    "address": datadog.address(),
                    "query": QUERY,
                    "window": "10s",
                    "timeout": "2s",
                    "apiKey": {"name": "datadog", "key": "api-key"},
                    "applicationKey": {"name": "datadog", "key": "application-key"},
                }},
                "threshold": {"max": 0.01},
            }]},
        }),
    )
    .await;
}

fn steps() -> serde_json::Value {
    json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "datadog-errors"}]}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datadog_metric_promotes_a_good_canary_and_aborts_a_bad_one_with_its_value() {
    let cluster = Cluster::start("datadog-provider").await;
    let datadog = Datadog::start(API_KEY, APPLICATION_KEY).await;
    datadog_template(&cluster, &datadog).await;
    let granted = format!("{}/datadog", cluster.namespace);
    let controller = Controller::start(&cluster, &["--readable-secret", &granted]);
    let stable = deploy_stable(&cluster, steps()).await;

    let good_rollout = cluster.rollout("2", steps());
    let good = bellwether::engine::revision_of(&good_rollout.spec.embedded_template().unwrap_or_default());
    serve(&datadog, &good, 0.002);
    assert_eq!(cluster.ship(&good_rollout).await, good);
    cluster
        .rollout_until("the good canary promoted", |r| {
            r.status.as_ref().is_some_and(|s| s.stable_revision.as_deref() == Some(good.as_str()))
        })
        .await;
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

    let bad_rollout = cluster.rollout("3", steps());
    let bad = bellwether::engine::revision_of(&bad_rollout.spec.embedded_template().unwrap_or_default());
    serve(&datadog, &bad, 0.25);
    cluster.ship(&bad_rollout).await;
    let aborted = cluster
        .rollout_until("the bad canary aborted", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let status = aborted.status.expect("a status");
    assert_eq!(status.stable_revision.as_deref(), Some(good.as_str()), "the bad canary was not promoted");
    let abort = status.abort.expect("an abort");
    assert_eq!((abort.metric.as_deref(), abort.value.as_deref()), (Some("error-ratio"), Some("0.25")));
    let runs = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs").items;
    let failed = runs
        .iter()
        .filter_map(|r| r.status.as_ref())
        .find(|s| s.phase == Some(AnalysisPhase::Failed))
        .expect("the failed run");
    assert!(
        failed.metric_results[0].measurements.iter().any(|m| m.value == Some(0.25)),
        "{:?}",
        failed.metric_results
    );
    assert_ne!(stable, good);
    controller.stop().await;
}
