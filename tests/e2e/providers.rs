//! What the metric providers' end-to-end tests share: a template of the one metric a provider
//! measures, and the story each tells with it, a good canary promoted and then a bad one aborted by
//! the value its metric measured.

use crate::harness::Cluster;
use bellwether::api::{AnalysisPhase, AnalysisRun, Rollout, RolloutPhase};
use kube::api::ListParams;
use serde_json::{Value, json};

/// Creates the template `name` of one metric, `metric`: the error ratio of the revision under test
/// that `provider` measures, three times a second apart, at most 1%.
pub async fn error_ratio_template(cluster: &Cluster, name: &str, metric: &str, provider: Value) {
    cluster
        .create_template(
            name,
            json!({"metrics": [{
                "name": metric,
                "interval": "1s",
                "count": 3,
                "provider": provider,
                "threshold": {"max": 0.01},
            }]}),
        )
        .await;
}

/// The steps of a canary: 10%, then the analysis of `template`.
pub fn steps(template: &str) -> Value {
    json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": template}]}}])
}

/// Ships `rollout`, a good canary, and waits until it is promoted; returns its revision.
pub async fn ship_good(cluster: &Cluster, rollout: &Rollout) -> String {
    let good = cluster.ship(rollout).await;
    cluster
        .rollout_until("the good canary promoted", |r| {
            r.status.as_ref().is_some_and(|s| s.stable_revision.as_deref() == Some(good.as_str()))
        })
        .await;
    good
}

/// Ships `rollout`, a bad canary, and waits until it is aborted; checks that `good` is still the
/// stable revision and that the abort names `metric` and the `value` it measured.
pub async fn ship_bad(cluster: &Cluster, rollout: &Rollout, good: &str, metric: &str, value: &str) {
    cluster.ship(rollout).await;
    let aborted = cluster
        .rollout_until("the bad canary aborted", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let status = aborted.status.expect("a status");
    assert_eq!(status.stable_revision.as_deref(), Some(good), "the bad canary was not promoted");
    let abort = status.abort.expect("an abort");
    assert_eq!((abort.metric.as_deref(), abort.value.as_deref()), (Some(metric), Some(value)));
}

/// Checks that the run that failed measured `value`.
pub async fn assert_the_failed_run_measured(cluster: &Cluster, value: f64) {
    let runs = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs").items;
    let failed = runs
        .iter()
        .filter_map(|r| r.status.as_ref())
        .find(|s| s.phase == Some(AnalysisPhase::Failed))
        .expect("the failed run");
    assert!(
        failed.metric_results[0].measurements.iter().any(|m| m.value == Some(value)),
        "{:?}",
        failed.metric_results
    );
}
