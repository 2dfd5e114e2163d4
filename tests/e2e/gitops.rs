//! What GitOps tools see and do mid-canary. Flux's `wait: true` judges a Rollout by kstatus, and Flux
//! (or Argo CD with self-heal and no diff settings) puts Git's version of the route and the Services
//! back over the weights and the selectors Bellwether changed: a forced server-side apply replaces
//! a route's `rules` and a Service's `selector` whole, as both are atomic.

use crate::harness::{CANARY, Cluster, Controller, ROLLOUT, ROUTE, STABLE, eventually};
use crate::rollouts::deploy_stable;
use bellwether::api::{REVISION_LABEL, Rollout, RolloutPhase};
use bellwether::cli::steer::steer;
use bellwether::engine::UserAction;
use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;
use serde_json::json;
use std::time::Duration;

/// What Flux's health check makes of a Rollout: kstatus' generic rules for a custom resource
/// (Current, InProgress or Failed), which is what `wait: true` waits on.
fn flux_health(rollout: &Rollout) -> &'static str {
    let Some(status) = &rollout.status else { return "InProgress" };
    if status.observed_generation != rollout.metadata.generation {
        return "InProgress";
    }
    let is_true = |kind: &str| status.conditions.iter().any(|c| c.type_ == kind && c.status == "True");
    if is_true("Reconciling") {
        "InProgress"
    } else if is_true("Stalled") {
        "Failed"
    } else {
        "Current"
    }
}

/// Puts back the route and the Services as Git has them, as Flux's sync does: the weights at rest
/// (stable 100, canary 0) and the selectors without the revision key.
async fn sync_from_git(cluster: &Cluster) {
    let manager = PostParams { field_manager: Some("kustomize-controller".into()), ..Default::default() };
    let mut route = cluster.routes().get(ROUTE).await.expect("reading the route");
    route.data["spec"]["rules"] = json!([{"backendRefs": [
        {"name": STABLE, "port": 80, "weight": 100},
        {"name": CANARY, "port": 80, "weight": 0},
    ]}]);
    cluster.routes().replace(ROUTE, &manager, &route).await.expect("syncing the route");
    for name in [STABLE, CANARY] {
        let services = cluster.api::<Service>();
        let mut service = services.get(name).await.expect("reading a Service");
        service.spec.as_mut().expect("a spec").selector =
            Some([("app".to_string(), ROLLOUT.to_string())].into());
        services.replace(name, &manager, &service).await.expect("syncing a Service");
    }
}

async fn selectors(cluster: &Cluster) -> (Option<String>, Option<String>) {
    let selector = |service: Service| service.spec?.selector?.get(REVISION_LABEL).cloned();
    let services = cluster.api::<Service>();
    let stable = services.get(STABLE).await.expect("reading a Service");
    let canary = services.get(CANARY).await.expect("reading a Service");
    (selector(stable), selector(canary))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_putting_gits_route_and_services_back_mid_canary_is_undone() {
    let cluster = Cluster::start("gitops-sync").await;
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 25}, {"pause": {}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    let rollout = cluster.rollouts().get(ROLLOUT).await.expect("the Rollout");
    assert_eq!(flux_health(&rollout), "Current", "{:?}", rollout.status);

    let canary = cluster.ship(&cluster.rollout("2", steps.clone())).await;
    let paused = cluster
        .rollout_until("the canary paused at 25%", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.canary_revision.as_deref() == Some(canary.as_str())
                    && s.phase == Some(RolloutPhase::Paused)
                    && s.weights.canary == 25
                    && s.weights.verified
            })
        })
        .await;
    assert_eq!(flux_health(&paused), "InProgress", "Flux waits on a canary paused for a person");
    assert_eq!(selectors(&cluster).await, (Some(stable.clone()), Some(canary.clone())));

    sync_from_git(&cluster).await;
    eventually("the weights and the selectors put back", || async {
        let back = cluster.weights().await == Some((25, 75))
            && selectors(&cluster).await == (Some(stable.clone()), Some(canary.clone()));
        back.then_some(())
    })
    .await;
    let rollout = cluster.rollouts().get(ROLLOUT).await.expect("the Rollout");
    let status = rollout.status.as_ref().expect("a status");
    assert_eq!(status.phase, Some(RolloutPhase::Paused), "still paused for a person: {status:?}");
    assert_eq!(status.canary_revision.as_deref(), Some(canary.as_str()), "the same canary");

    let Some(server) = &cluster.server else { return controller.stop().await };
    let wait = Duration::from_secs(30);
    steer(&server.client_as("alice"), &cluster.namespace, ROLLOUT, UserAction::Promote, wait)
        .await
        .expect("alice promotes");
    let promoted = cluster
        .rollout_until("the canary promoted", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.stable_revision.as_deref() == Some(canary.as_str()) && flux_health(r) == "Current"
            })
        })
        .await;
    assert_eq!(crate::harness::kstatus(&promoted), Some(("Ready".into(), "Healthy".into())));

    // At rest, a sync changes nothing that matters: Git's weights are the ones at rest, and the
    // selectors, without the key, reach the one revision left. Bellwether puts the stable key back
    // anyway; the canary Service, which carries no traffic, is pointed at the next canary.
    sync_from_git(&cluster).await;
    eventually("the stable selector on the new stable revision", || async {
        (selectors(&cluster).await.0 == Some(canary.clone())).then_some(())
    })
    .await;
    assert_eq!(cluster.weights().await, Some((0, 100)));

    // A canary that fails is Failed to Flux, which stops waiting.
    let third = cluster.ship(&cluster.rollout("3", steps)).await;
    cluster
        .rollout_until("the third canary paused", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.canary_revision.as_deref() == Some(third.as_str()) && s.phase == Some(RolloutPhase::Paused)
            })
        })
        .await;
    assert_eq!(selectors(&cluster).await, (Some(canary.clone()), Some(third.clone())));
    steer(&server.client_as("bob"), &cluster.namespace, ROLLOUT, UserAction::Abort, wait)
        .await
        .expect("bob aborts");
    let aborted = cluster.rollout_until("the third canary aborted", |r| flux_health(r) == "Failed").await;
    let status = aborted.status.expect("a status");
    assert_eq!(status.phase, Some(RolloutPhase::Degraded), "{status:?}");
    controller.stop().await;
}
