//! The `job` metric provider through the real controller: an analysis step runs a Job for each
//! measurement, whose command passes for a good canary and fails for a bad one, and the Jobs are
//! deleted once measured. On the test API server the simulated Job controller runs the command on
//! this machine; on a real cluster it runs in `busybox`.

use crate::harness::{Cluster, Controller, eventually, revision};
use crate::providers::{ship_bad, ship_good};
use crate::rollouts::deploy_stable;
use bellwether::api::{AnalysisPhase, AnalysisRun, RolloutPhase};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

const TEMPLATE: &str = "smoke";
const METRIC_LABEL: &str = "bellwether.dev/metric=smoke";

/// A template whose Job fails for the revision that the `bad` arg names, and passes for any other:
/// `count` passes in a row promote.
async fn smoke_template(cluster: &Cluster, count: i32, pod: Value) {
    cluster
        .create_template(
            TEMPLATE,
            json!({
                "args": [{"name": "bad"}],
                "metrics": [{
                    "name": "smoke",
                    "interval": "1s",
                    "count": count,
                    "consecutiveErrorLimit": 0,
                    "provider": {"job": {
                        "metadata": {"labels": {"suite": "smoke"}},
                        "spec": {"activeDeadlineSeconds": 60, "template": {"spec": pod}},
                    }},
                    "threshold": {"min": 1},
                }],
            }),
        )
        .await;
}

/// The pod of the Job: passes unless the revision under test is the `bad` arg's.
fn smoke_pod() -> Value {
    json!({
        "containers": [{
            "name": "smoke",
            "image": "busybox:1.36",
            "command": ["sh", "-c", "test \"$REVISION\" != \"$BAD\""],
            "env": [{"name": "REVISION", "value": "{{revision}}"}, {"name": "BAD", "value": "{{args.bad}}"}],
        }],
    })
}

fn steps(bad: &str) -> Value {
    json!([
        {"setWeight": 10},
        {"analysis": {"templates": [{"templateName": TEMPLATE}], "args": [{"name": "bad", "value": bad}]}},
    ])
}

/// The Jobs of the metric seen over the test: every name, and the most that existed at once.
#[derive(Default)]
struct Seen {
    names: BTreeSet<String>,
    live: BTreeSet<String>,
    most: usize,
}

fn watch_jobs(cluster: &Cluster) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    let config = watcher::Config::default().labels(METRIC_LABEL);
    let stream = watcher(cluster.api::<Job>(), config).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let mut seen = log.lock().unwrap();
            match event {
                Ok(watcher::Event::Apply(job) | watcher::Event::InitApply(job)) => {
                    seen.names.insert(job.name_any());
                    seen.live.insert(job.name_any());
                }
                Ok(watcher::Event::Delete(job)) => {
                    seen.live.remove(&job.name_any());
                }
                _ => {}
            }
            seen.most = seen.most.max(seen.live.len());
        }
    });
    seen
}

async fn no_jobs_left(cluster: &Cluster) {
    eventually("no Job of the metric left", || async {
        let jobs = cluster.api::<Job>().list(&ListParams::default().labels(METRIC_LABEL)).await.ok()?;
        jobs.items.is_empty().then_some(())
    })
    .await;
}

/// The measurements and phase of the run of `revision`.
async fn run_of(cluster: &Cluster, revision: &str) -> AnalysisRun {
    let runs = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs").items;
    runs.into_iter().find(|run| run.spec.revision == revision).expect("the revision's run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_metric_promotes_a_good_canary_and_aborts_a_bad_one() {
    let cluster = Cluster::start("job-provider").await;
    smoke_template(&cluster, 2, smoke_pod()).await;
    let bad = revision(&cluster.rollout("3", steps("none")));
    let controller = Controller::start(&cluster, &["--job-metrics"]);
    let seen = watch_jobs(&cluster);
    deploy_stable(&cluster, steps(&bad)).await;

    let good = ship_good(&cluster, &cluster.rollout("2", steps(&bad))).await;
    let run = run_of(&cluster, &good).await;
    let status = run.status.expect("a status");
    assert_eq!(status.phase, Some(AnalysisPhase::Successful));
    let values: Vec<Option<f64>> = status.metric_results[0].measurements.iter().map(|m| m.value).collect();
    assert_eq!(values, [Some(1.0), Some(1.0)], "each Job that succeeded measured 1");
    no_jobs_left(&cluster).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.names.len(), 2, "a Job per measurement: {:?}", seen.names);
        assert_eq!(seen.most, 1, "each deleted once measured, before the next: {:?}", seen.names);
    }

    ship_bad(&cluster, &cluster.rollout("3", steps(&bad)), &good, "smoke", "0").await;
    let run = run_of(&cluster, &bad).await;
    let failed = run.status.expect("a status");
    assert_eq!(failed.phase, Some(AnalysisPhase::Failed));
    assert_eq!(failed.metric_results[0].measurements.last().and_then(|m| m.value), Some(0.0));
    no_jobs_left(&cluster).await;
    let notes = cluster.event_notes("JobFailed").await;
    assert!(notes.iter().any(|n| n.contains("of metric smoke failed")), "{notes:?}");
    controller.stop().await;
}

/// Runs a canary whose only analysis is a job metric, with the controller started with `flags`,
/// until the rollout aborts; returns the run's first measurement error.
async fn first_error(test: &str, pod: Value, flags: &[&str]) -> String {
    let cluster = Cluster::start(test).await;
    smoke_template(&cluster, 1, pod).await;
    let controller = Controller::start(&cluster, flags);
    deploy_stable(&cluster, steps("none")).await;
    let canary = cluster.ship(&cluster.rollout("2", steps("none"))).await;
    cluster
        .rollout_until("the canary aborted", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let run = run_of(&cluster, &canary).await;
    let status = run.status.expect("a status");
    assert_eq!(status.phase, Some(AnalysisPhase::Error));
    let jobs = cluster.api::<Job>().list(&ListParams::default().labels(METRIC_LABEL)).await.unwrap();
    assert!(
        jobs.items.is_empty(),
        "no Job was left: {:?}",
        jobs.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>()
    );
    controller.stop().await;
    let measurement = status.metric_results[0].measurements.first().cloned().expect("a measurement");
    assert_eq!(measurement.value, None);
    measurement.error.expect("a measurement error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_job_metrics_allowed_a_job_metric_errors_naming_the_flag() {
    let error = first_error("job-not-allowed", smoke_pod(), &[]).await;
    assert!(error.contains("--job-metrics") && error.contains("jobMetrics: true"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_api_server_refuses_is_a_measurement_error_quoting_it() {
    let mut pod = smoke_pod();
    pod["restartPolicy"] = json!("Always");
    let error = first_error("job-refused", pod, &["--job-metrics"]).await;
    assert!(error.starts_with("provider.job: creating Job "), "{error}");
    assert!(error.contains(r#"spec.template.spec.restartPolicy: Unsupported value: "Always""#), "{error}");
}
