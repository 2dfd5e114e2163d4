//! An autoscaler mid-canary, through the Rollout's `scale` subresource as an HPA uses it, and
//! `dynamicStableScale` through an abort, a retry and a promotion.

use crate::harness::{Cluster, Controller, ROLLOUT, eventually};
use crate::rollouts::{deploy_stable, record_scales, record_weights, scales_of};
use crate::steering::{plugin, stderr};
use bellwether::api::{PauseReason, Rollout, RolloutPhase};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

/// The `spec.replicas` of the ReplicaSet of `revision`.
async fn replicas_of(cluster: &Cluster, revision: &str) -> Option<i32> {
    let name = format!("{ROLLOUT}-{revision}");
    let rs = cluster.api::<ReplicaSet>().get_opt(&name).await.ok()??;
    rs.spec?.replicas
}

/// Waits until the ReplicaSets of `stable` and `canary` are asked for these replicas.
async fn scaled_to(cluster: &Cluster, stable: &str, canary: &str, expected: (i32, i32)) {
    eventually(&format!("stable and canary scaled to {expected:?}"), || async {
        let seen = (replicas_of(cluster, stable).await?, replicas_of(cluster, canary).await?);
        (seen == expected).then_some(())
    })
    .await;
}

/// Sets the Rollout's replicas through its `scale` subresource, reading the Scale first and
/// writing it back whole, as the HPA controller does.
async fn autoscale(cluster: &Cluster, replicas: i32) {
    let mut scale = cluster.rollouts().get_scale(ROLLOUT).await.expect("reading the Rollout's Scale");
    scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
    cluster
        .rollouts()
        .replace_scale(ROLLOUT, &PostParams::default(), &scale)
        .await
        .expect("writing the Scale");
}

fn paused_by(rollout: &Rollout, reason: PauseReason) -> bool {
    rollout.status.as_ref().is_some_and(|s| s.pause_conditions.iter().any(|c| c.reason == reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaler_scales_stable_and_canary_mid_canary_and_to_zero() {
    let cluster = Cluster::start("autoscale").await;
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    let canary = cluster.ship(&cluster.rollout("2", steps)).await;
    cluster
        .rollout_until("the canary paused at 50%", |r| {
            paused_by(r, PauseReason::PauseStep) && r.status.as_ref().is_some_and(|s| s.weights.verified)
        })
        .await;

    // What an HPA reads: the replicas it set, every revision's pods, and a selector for them all.
    let scale = cluster.rollouts().get_scale(ROLLOUT).await.expect("reading the Scale");
    let status = scale.status.expect("a Scale status");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
    assert_eq!((status.replicas, status.selector.as_deref()), (6, Some("app=web")), "4 stable + 2 canary");

    autoscale(&cluster, 9).await;
    scaled_to(&cluster, &stable, &canary, (9, 5)).await;
    assert_eq!(cluster.weights().await, Some((50, 50)), "the weight stays where the step put it");

    // Scaled to zero: no pods to judge the canary on, all traffic on stable, and the canary waits.
    autoscale(&cluster, 0).await;
    let held =
        cluster.rollout_until("the canary held at zero", |r| paused_by(r, PauseReason::ScaledToZero)).await;
    let status = held.status.expect("a status");
    assert_eq!(status.phase, Some(RolloutPhase::Paused));
    assert!(status.message.as_deref().unwrap_or_default().contains("spec.replicas is 0"), "{status:?}");
    assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()), "nothing was promoted");
    scaled_to(&cluster, &stable, &canary, (0, 0)).await;
    assert_eq!(cluster.weights().await, Some((0, 100)));

    autoscale(&cluster, 2).await;
    cluster
        .rollout_until("the canary back at 50%", |r| {
            !paused_by(r, PauseReason::ScaledToZero)
                && r.status.as_ref().is_some_and(|s| s.weights.canary == 50 && s.weights.verified)
        })
        .await;
    scaled_to(&cluster, &stable, &canary, (2, 1)).await;
    assert_eq!(cluster.weights().await, Some((50, 50)));

    // A negative count is refused by the CRD's schema, and changes nothing.
    let refused = cluster
        .rollouts()
        .patch_scale(ROLLOUT, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": -1}})))
        .await;
    assert!(refused.is_err(), "a negative replica count was accepted");
    assert_eq!(cluster.rollouts().get(ROLLOUT).await.expect("the Rollout").spec.replicas, 2);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_stable_scale_spares_stable_pods_and_scales_stable_up_before_an_abort_moves_weight() {
    let cluster = Cluster::start("dynamic-scale").await;
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 75}, {"pause": {}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    let weights = record_weights(&cluster);
    let scales = record_scales(&cluster);

    let mut second = cluster.rollout("2", steps);
    second.spec.strategy.canary.dynamic_stable_scale = true;
    let canary = cluster.ship(&second).await;
    // 75% on 3 canary pods, and stable down to the 1 pod that its 25% needs.
    scaled_to(&cluster, &stable, &canary, (1, 3)).await;
    assert_eq!(cluster.weights().await, Some((75, 25)));

    let aborted = plugin(&cluster, kubeconfig.path(), &["abort", ROLLOUT]).await;
    assert!(aborted.status.success(), "{}", stderr(&aborted));
    cluster
        .rollout_until("all traffic back on stable", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Degraded) && s.weights.canary == 0 && s.weights.verified
            })
        })
        .await;
    let log = scales.lock().unwrap().clone();
    let scaled_down = log.iter().position(|(r, n, _)| *r == stable && *n == 1).expect("stable scaled down");
    let stable_up_at = log[scaled_down..]
        .iter()
        .find(|(r, n, _)| *r == stable && *n == 4)
        .map(|(_, _, at)| *at)
        .expect("stable scaled back up after the abort");
    let seen = weights.lock().unwrap().clone();
    let at_canary = seen.iter().position(|(w, _)| w.0 == 75).expect("the canary had its weight");
    let back_at = seen[at_canary..].iter().find(|(w, _)| w.0 < 75).map(|(_, at)| *at);
    assert!(
        back_at.is_some_and(|at| at > stable_up_at),
        "weight moved before stable scaled up: {seen:?} {log:?}"
    );

    // Again, to promotion: the new stable runs every pod, and the old one goes.
    let retried = plugin(&cluster, kubeconfig.path(), &["retry", ROLLOUT]).await;
    assert!(retried.status.success(), "{}", stderr(&retried));
    scaled_to(&cluster, &stable, &canary, (1, 3)).await;
    let promoted = plugin(&cluster, kubeconfig.path(), &["promote", ROLLOUT]).await;
    assert!(promoted.status.success(), "{}", stderr(&promoted));
    cluster
        .rollout_until("the canary promoted", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.stable_revision.as_deref() == Some(canary.as_str())
            })
        })
        .await;
    scaled_to(&cluster, &stable, &canary, (0, 4)).await;
    assert_eq!(cluster.weights().await, Some((0, 100)));
    let log = scales.lock().unwrap().clone();
    assert_eq!(
        scales_of(&log, &stable),
        [4, 1, 4, 1, 0],
        "stable: full, down beside the canary, up for the abort, down again, gone after promotion"
    );
    controller.stop().await;
}
