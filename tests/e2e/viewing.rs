//! `kubectl bellwether get rollout` and `list`, the real plugin binary against a cluster with the
//! controller running.

use crate::harness::{Cluster, Controller, ROLLOUT};
use crate::rollouts::deploy_stable;
use bellwether::api::RolloutPhase;
use serde_json::json;
use std::process::{Command, Stdio};

fn plugin(cluster: &Cluster, kubeconfig: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-bellwether"));
    command.args(args).arg("-n").arg(&cluster.namespace).arg("--kubeconfig").arg(kubeconfig);
    command
}

async fn run(mut command: Command) -> (Option<i32>, String, String) {
    let output = tokio::task::spawn_blocking(move || command.output().expect("running the plugin"))
        .await
        .expect("the plugin ran");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_list_show_the_rollout_and_get_watch_ends_when_it_finishes() {
    let cluster = Cluster::start("viewing").await;
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;
    let canary = cluster.ship(&cluster.rollout("2", steps)).await;
    cluster
        .rollout_until("the canary paused at 10%", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Paused) && s.weights.verified)
        })
        .await;

    let (code, tree, err) = run(plugin(&cluster, kubeconfig.path(), &["get", "rollout", ROLLOUT])).await;
    assert_eq!(code, Some(0), "{err}");
    for expected in [&format!("Rollout {ROLLOUT}"), "Paused", "setWeight 10", canary.as_str()] {
        assert!(tree.contains(expected), "no {expected:?} in:\n{tree}");
    }
    let (code, json, _) =
        run(plugin(&cluster, kubeconfig.path(), &["get", "rollout", ROLLOUT, "-o", "json"])).await;
    assert_eq!(code, Some(0));
    let object: serde_json::Value = serde_json::from_str(&json).expect("-o json prints JSON");
    assert_eq!(object["kind"], "Rollout");
    // Bellwether's Rollouts by every name they go by beside Argo Rollouts' own `rollouts`.
    for named in [
        vec!["get", "ro", ROLLOUT],
        vec!["get", "bwro", ROLLOUT],
        vec!["get", "rollouts.bellwether.dev", ROLLOUT],
        vec!["get", &format!("rollout/{ROLLOUT}")],
    ] {
        let (code, tree, err) = run(plugin(&cluster, kubeconfig.path(), &named)).await;
        assert_eq!(code, Some(0), "{named:?}: {err}");
        assert!(tree.starts_with(&format!("Rollout {ROLLOUT}")), "{named:?}: {tree}");
    }
    let (code, line, err) =
        run(plugin(&cluster, kubeconfig.path(), &["status", &format!("bwro/{ROLLOUT}")])).await;
    assert_eq!(code, Some(4), "paused until a person acts: {line}{err}");
    let (code, _, err) = run(plugin(&cluster, kubeconfig.path(), &["get", "rollout", "nope"])).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("rollout nope not found"), "{err}");

    let (code, table, _) = run(plugin(&cluster, kubeconfig.path(), &["list"])).await;
    assert_eq!(code, Some(0));
    assert!(table.lines().any(|l| l.starts_with(ROLLOUT) && l.contains("Paused")), "{table}");
    let (_, everywhere, _) = run(plugin(&cluster, kubeconfig.path(), &["list", "-A"])).await;
    assert!(everywhere.starts_with("NAMESPACE"), "{everywhere}");

    // Watching from a pipeline: frames are appended as the rollout changes, not as its ages tick,
    // and the watch ends on its own once the promoted canary is Healthy.
    let mut watch = plugin(&cluster, kubeconfig.path(), &["get", "rollout", ROLLOUT, "--watch"]);
    watch.stdout(Stdio::piped());
    let watching = tokio::task::spawn_blocking(move || watch.output().expect("running the plugin"));
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let (code, _, err) = run(plugin(&cluster, kubeconfig.path(), &["promote", ROLLOUT])).await;
    assert_eq!(code, Some(0), "{err}");
    let watched = tokio::time::timeout(crate::harness::PATIENCE, watching)
        .await
        .expect("the watch ended on its own")
        .expect("the plugin ran");
    assert!(watched.status.success());
    let frames = String::from_utf8_lossy(&watched.stdout).into_owned();
    assert!(frames.matches(&format!("Rollout {ROLLOUT}")).count() >= 2, "one frame only:\n{frames}");
    assert_eq!(frames.matches("Phase:     Paused").count(), 1, "a frame a second while paused:\n{frames}");
    assert!(
        frames.rsplit(&format!("Rollout {ROLLOUT}")).next().is_some_and(|last| last.contains("Healthy")),
        "{frames}"
    );
    controller.stop().await;
}
