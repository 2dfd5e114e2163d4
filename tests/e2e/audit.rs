//! `status.actions`: who promoted and who aborted, still there after the Events are gone, and shown
//! by `history` and `get rollout`.

use crate::harness::{Cluster, Controller, ROLLOUT};
use crate::rollouts::deploy_stable;
use crate::steering::{plugin, stderr};
use bellwether::api::{Rollout, RolloutPhase};
use bellwether::cli::steer::steer;
use bellwether::engine::UserAction;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams};
use serde_json::json;
use std::time::Duration;

fn paused_at_ten(revision: &str) -> impl Fn(&Rollout) -> bool + '_ {
    move |r| {
        r.status.as_ref().is_some_and(|s| {
            s.canary_revision.as_deref() == Some(revision)
                && s.phase == Some(RolloutPhase::Paused)
                && s.weights.canary == 10
                && s.weights.verified
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_promoted_and_who_aborted_outlives_the_events() {
    let cluster = Cluster::start("audit").await;
    // Acting as two people takes impersonation, which the test API server grants anyone.
    let Some(server) = &cluster.server else { return };
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;

    let first = cluster.ship(&cluster.rollout("2", steps.clone())).await;
    cluster.rollout_until("the first canary paused at 10%", paused_at_ten(&first)).await;
    let wait = Duration::from_secs(30);
    steer(&server.client_as("alice"), &cluster.namespace, ROLLOUT, UserAction::Promote, wait)
        .await
        .expect("alice promotes");
    cluster
        .rollout_until("the first canary promoted", |r| {
            r.status.as_ref().is_some_and(|s| s.stable_revision.as_deref() == Some(first.as_str()))
        })
        .await;

    let second = cluster.ship(&cluster.rollout("3", steps)).await;
    cluster.rollout_until("the second canary paused at 10%", paused_at_ten(&second)).await;
    steer(&server.client_as("bob"), &cluster.namespace, ROLLOUT, UserAction::Abort, wait)
        .await
        .expect("bob aborts");
    cluster
        .rollout_until("the second canary aborted", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;

    // Events expire an hour after they were last seen; here they are deleted at once.
    let events = cluster.api::<Event>();
    for event in events.list(&ListParams::default()).await.expect("listing Events").items {
        events.delete(&event.name_any(), &DeleteParams::default()).await.expect("deleting an Event");
    }
    let left = events.list(&ListParams::default()).await.expect("listing Events").items;
    assert!(left.iter().all(|e| e.reason.as_deref() != Some("UserRequest")), "{left:?}");

    let rollout = cluster.rollouts().get(ROLLOUT).await.expect("the Rollout");
    let actions = rollout.status.expect("a status").actions;
    let find = |action: &str, by: &str| actions.iter().find(|r| r.action == action && r.by == by);
    let promote = find("promote", "alice").unwrap_or_else(|| panic!("alice's promote in {actions:?}"));
    assert_eq!(promote.revision.as_deref(), Some(first.as_str()));
    let abort = find("abort", "bob").unwrap_or_else(|| panic!("bob's abort in {actions:?}"));
    assert_eq!(abort.revision.as_deref(), Some(second.as_str()));
    assert!(abort.at > promote.at, "{actions:?}");
    assert!(find("Aborted", "bob").is_some() && find("Promoted", "bellwether").is_some(), "{actions:?}");

    let history = plugin(&cluster, kubeconfig.path(), &["history", ROLLOUT]).await;
    assert!(history.status.success(), "{}", stderr(&history));
    let text = String::from_utf8_lossy(&history.stdout);
    let line = |action: &str, by: &str| text.lines().any(|l| l.contains(action) && l.contains(by));
    assert!(line("promote", "alice") && line("abort", "bob"), "{text}");
    let shown = plugin(&cluster, kubeconfig.path(), &["get", "rollout", ROLLOUT]).await;
    let tree = String::from_utf8_lossy(&shown.stdout);
    assert!(tree.contains("Actions (newest first") && tree.contains("bob"), "{tree}");
    controller.stop().await;
}
