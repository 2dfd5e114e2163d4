//! `workloadRef`: a Rollout taking over an existing Deployment, per each `scaleDown` mode, and
//! handing it back, serving, when the Rollout is deleted.

use crate::harness::{CANARY, Cluster, Controller, ROLLOUT, STABLE, create, eventually};
use bellwether::api::{REVISION_LABEL, Rollout, RolloutPhase};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The Deployment `web`: 4 pods labelled as the Rollout selects them, running `version`.
pub fn deployment(version: &str) -> Value {
    json!({
        "metadata": {"name": ROLLOUT},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": ROLLOUT}},
            "template": {
                "metadata": {"labels": {"app": ROLLOUT}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "env": [{"name": "VERSION", "value": version}]}]},
            },
        },
    })
}

/// The Rollout `web` with its template taken from the Deployment.
fn referencing(cluster: &Cluster, scale_down: &str) -> Rollout {
    let mut rollout = cluster.rollout("1", json!([{"setWeight": 50}, {"pause": {"duration": "1s"}}]));
    rollout.spec.template = None;
    rollout.spec.workload_ref = Some(
        serde_json::from_value(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": ROLLOUT, "scaleDown": scale_down}),
        )
        .expect("a workloadRef"),
    );
    rollout
}

/// Every distinct `spec.replicas` of the Deployment, in order, for the whole test.
fn record_deployment_scales(cluster: &Cluster) -> Arc<Mutex<Vec<i32>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let stream = watcher(cluster.api::<Deployment>(), watcher::Config::default()).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) = event else { continue };
            let replicas = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            let mut log = log.lock().unwrap();
            if log.last() != Some(&replicas) {
                log.push(replicas);
            }
        }
    });
    seen
}

async fn selected_revision(cluster: &Cluster, service: &str) -> Option<String> {
    let service = cluster.api::<Service>().get(service).await.expect("reading a Service");
    service.spec?.selector?.get(REVISION_LABEL).cloned()
}

/// Waits until the deleted Rollout is gone, then checks that neither Service selects a revision:
/// both select the Deployment's pods again.
async fn gone_and_handed_back(cluster: &Cluster) {
    eventually("the Rollout to be gone", || async {
        cluster.rollouts().get_opt(ROLLOUT).await.ok()?.is_none().then_some(())
    })
    .await;
    for service in [STABLE, CANARY] {
        assert_eq!(
            selected_revision(cluster, service).await,
            None,
            "{service} selects the Deployment's pods again"
        );
    }
}

/// Takes the Deployment over with `scale_down`, and waits until the Rollout is Healthy with the
/// Services selecting its stable revision; returns the revision.
pub async fn take_over(cluster: &Cluster, scale_down: &str) -> String {
    serving_deployment(cluster).await;
    take_over_serving(cluster, scale_down).await
}

/// Creates the Deployment and waits until its pods are available.
async fn serving_deployment(cluster: &Cluster) {
    create::<Deployment>(&cluster.client, &cluster.namespace, deployment("1")).await;
    eventually("the Deployment's pods to be available", || async {
        let d = cluster.api::<Deployment>().get(ROLLOUT).await.ok()?;
        (d.status?.available_replicas? == 4).then_some(())
    })
    .await;
}

/// [`take_over`] of a Deployment already serving.
async fn take_over_serving(cluster: &Cluster, scale_down: &str) -> String {
    cluster
        .rollouts()
        .create(&Default::default(), &referencing(cluster, scale_down))
        .await
        .expect("creating the Rollout");
    let stable = cluster
        .rollout_until("the Rollout to take the Deployment over", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.phase == Some(RolloutPhase::Healthy) && s.stable_revision.is_some())
        })
        .await
        .status
        .and_then(|s| s.stable_revision)
        .expect("a stable revision");
    eventually("the stable Service to select the Rollout's pods", || async {
        (selected_revision(cluster, STABLE).await.as_deref() == Some(stable.as_str())).then_some(())
    })
    .await;
    stable
}

async fn deployment_replicas(cluster: &Cluster) -> Option<i32> {
    cluster.api::<Deployment>().get(ROLLOUT).await.ok()?.spec?.replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_over_deployment_is_left_alone_with_never_and_serves_again_when_the_rollout_is_deleted() {
    let cluster = Cluster::start("workload-never").await;
    let controller = Controller::start(&cluster, &[]);
    let scales = record_deployment_scales(&cluster);
    let stable = take_over(&cluster, "never").await;
    assert_eq!(deployment_replicas(&cluster).await, Some(4), "never: the Deployment keeps its pods");

    // A new template in the Deployment is a new revision, shipped as a canary.
    cluster
        .api::<Deployment>()
        .patch(ROLLOUT, &PatchParams::default(), &Patch::Merge(json!({"spec": deployment("2")["spec"]})))
        .await
        .expect("changing the Deployment's template");
    cluster
        .rollout_until("the Deployment's new template promoted", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.stable_revision.as_deref().is_some_and(|r| r != stable)
                    && s.history
                        .first()
                        .is_some_and(|h| h.outcome == bellwether::api::RolloutOutcome::Promoted)
            })
        })
        .await;

    cluster.rollouts().delete(ROLLOUT, &DeleteParams::default()).await.expect("deleting the Rollout");
    gone_and_handed_back(&cluster).await;
    assert_eq!(deployment_replicas(&cluster).await, Some(4));
    assert_eq!(*scales.lock().unwrap(), [4], "the Deployment was never scaled");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_success_scales_the_deployment_to_zero_and_a_deleted_rollout_scales_it_back_first() {
    let cluster = Cluster::start("workload-onsuccess").await;
    let controller = Controller::start(&cluster, &[]);
    let scales = record_deployment_scales(&cluster);
    take_over(&cluster, "onSuccess").await;
    eventually("the Deployment scaled to zero", || async {
        (deployment_replicas(&cluster).await? == 0).then_some(())
    })
    .await;
    assert_eq!(*scales.lock().unwrap(), [4, 0]);

    cluster.rollouts().delete(ROLLOUT, &DeleteParams::default()).await.expect("deleting the Rollout");
    // Held by its finalizer until the Deployment's pods are back and the Services select them.
    eventually("the Deployment scaled back up", || async {
        (deployment_replicas(&cluster).await? == 4).then_some(())
    })
    .await;
    gone_and_handed_back(&cluster).await;
    let deployment = cluster.api::<Deployment>().get(ROLLOUT).await.expect("the Deployment");
    assert_eq!(
        deployment.status.and_then(|s| s.available_replicas),
        Some(4),
        "serving before the Rollout went"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progressively_scales_the_deployment_down_as_the_rollouts_pods_become_available() {
    let cluster = Cluster::start("workload-progressive").await;
    // The test API server makes a ReplicaSet's pods available together, so the Deployment goes down
    // in one step here; the engine's tests take it pod by pod.
    let controller = Controller::start(&cluster, &[]);
    let scales = record_deployment_scales(&cluster);
    take_over(&cluster, "progressively").await;
    eventually("the Deployment scaled to zero", || async {
        (deployment_replicas(&cluster).await? == 0).then_some(())
    })
    .await;
    let seen = scales.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&4));
    assert_eq!(seen.last(), Some(&0));
    assert!(seen.windows(2).all(|w| w[1] < w[0]), "only ever down: {seen:?}");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_the_controller_may_not_scale_keeps_serving_and_is_still_handed_back() {
    let cluster = Cluster::start("workload-refused").await;
    // RBAC that refuses patching Deployments: the scale-down after the takeover is refused (403).
    let Some(server) = &cluster.server else { return };
    let controller = Controller::start(&cluster, &[]);
    serving_deployment(&cluster).await;
    server.forbid_writes("deployments");
    take_over_serving(&cluster, "onSuccess").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(deployment_replicas(&cluster).await, Some(4), "the refused scale-down changed nothing");

    // Its pods are still there, so the hand-back needs no write to the Deployment.
    cluster.rollouts().delete(ROLLOUT, &DeleteParams::default()).await.expect("deleting the Rollout");
    gone_and_handed_back(&cluster).await;
    controller.stop().await;
}
