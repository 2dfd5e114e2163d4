//! `kubectl bellwether promote|abort|retry|pause|resume`, the real plugin binary against a cluster
//! with the controller running: each request acts once, names who sent it, and a request that makes
//! no sense changes nothing and fails the command.

use crate::harness::{Cluster, Controller, ROLLOUT, eventually};
use crate::rollouts::deploy_stable;
use bellwether::api::RolloutPhase;
use bellwether::controller::requests::REQUEST_PREFIX;
use serde_json::json;
use std::process::{Command, Output};

/// Runs the plugin binary against the cluster, in its namespace.
pub async fn plugin(cluster: &Cluster, kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-bellwether"));
    command.args(args).arg("-n").arg(&cluster.namespace).arg("--kubeconfig").arg(kubeconfig);
    tokio::task::spawn_blocking(move || command.output().expect("running the plugin"))
        .await
        .expect("the plugin ran")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `undo` on the rollout, which must say it went back to `revision`.
pub async fn undo_back_to(cluster: &Cluster, kubeconfig: &std::path::Path, revision: &str) {
    let undone = plugin(cluster, kubeconfig, &["undo", ROLLOUT]).await;
    assert!(undone.status.success(), "{}", stderr(&undone));
    assert!(stdout(&undone).ends_with(&format!("back to revision {revision}\n")), "{}", stdout(&undone));
}

/// Waits until the rollout is Healthy on `stable`, with no canary.
pub async fn healthy_on(cluster: &Cluster, stable: &str) {
    cluster
        .rollout_until("the rollout back on its stable revision", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.canary_revision.is_none()
                    && s.stable_revision.as_deref() == Some(stable)
            })
        })
        .await;
}

pub async fn paused_at_ten(cluster: &Cluster, revision: &str) {
    cluster
        .rollout_until("the canary paused at 10%", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.canary_revision.as_deref() == Some(revision)
                    && s.phase == Some(RolloutPhase::Paused)
                    && s.weights.canary == 10
                    && s.weights.verified
            })
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_abort_and_retry_steer_the_canary_and_nonsense_changes_nothing() {
    let cluster = Cluster::start("steering").await;
    let kubeconfig = cluster.kubeconfig();
    // The test API server authenticates everyone as test-admin; a real cluster, as whoever the
    // kubeconfig names.
    let me = if cluster.server.is_some() { "test-admin" } else { "" };
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;

    // Nothing to promote on a Healthy rollout: refused before anything is written.
    let before = cluster.rollouts().get(ROLLOUT).await.expect("reading the Rollout");
    let refused = plugin(&cluster, kubeconfig.path(), &["promote", ROLLOUT]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("no canary is in progress; nothing was changed"),
        "{}",
        stderr(&refused)
    );
    let after = cluster.rollouts().get(ROLLOUT).await.expect("reading the Rollout");
    assert_eq!(before.metadata.resource_version, after.metadata.resource_version, "a refused request wrote");

    let missing = plugin(&cluster, kubeconfig.path(), &["abort", "no-such-rollout"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("rollout no-such-rollout not found in namespace"),
        "{}",
        stderr(&missing)
    );

    // An indefinite pause waits for a person; promote lets it go on, to promotion.
    let second = cluster.ship(&cluster.rollout("2", steps.clone())).await;
    paused_at_ten(&cluster, &second).await;
    let promoted = plugin(&cluster, kubeconfig.path(), &["promote", ROLLOUT]).await;
    assert!(promoted.status.success(), "{}", stderr(&promoted));
    assert!(stdout(&promoted).starts_with(&format!("promote requested by {me}")), "{}", stdout(&promoted));
    cluster
        .rollout_until("the promoted canary to become stable", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.stable_revision.as_deref() == Some(second.as_str())
            })
        })
        .await;
    eventually("the handled request's annotation to be removed", || async {
        let rollout = cluster.rollouts().get(ROLLOUT).await.ok()?;
        let left =
            rollout.metadata.annotations.unwrap_or_default().keys().any(|k| k.starts_with(REQUEST_PREFIX));
        (!left).then_some(())
    })
    .await;

    // Abort sends traffic back and names who asked; retry starts the canary again.
    let third = cluster.ship(&cluster.rollout("3", steps)).await;
    paused_at_ten(&cluster, &third).await;
    let aborted = plugin(&cluster, kubeconfig.path(), &["abort", ROLLOUT]).await;
    assert!(aborted.status.success(), "{}", stderr(&aborted));
    let degraded = cluster
        .rollout_until("the abort", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let abort = degraded.status.and_then(|s| s.abort).expect("the abort");
    assert_eq!(abort.reason, "UserAbort");
    assert!(abort.by.starts_with(me) && !abort.by.is_empty(), "{abort:?}");
    eventually("all traffic back on stable", || async {
        (cluster.weights().await == Some((0, 100))).then_some(())
    })
    .await;
    let again = plugin(&cluster, kubeconfig.path(), &["abort", ROLLOUT]).await;
    assert_eq!(again.status.code(), Some(1), "aborting an aborted canary: {}", stdout(&again));

    let retried = plugin(&cluster, kubeconfig.path(), &["retry", ROLLOUT]).await;
    assert!(retried.status.success(), "{}", stderr(&retried));
    paused_at_ten(&cluster, &third).await;
    let full = plugin(&cluster, kubeconfig.path(), &["promote", "--full", ROLLOUT]).await;
    assert!(full.status.success(), "{}", stderr(&full));
    cluster
        .rollout_until("the retried canary promoted", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy) && s.stable_revision.as_deref() == Some(third.as_str())
            })
        })
        .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_waits_for_the_rollout_and_says_how_it_ended_in_its_exit_code() {
    let cluster = Cluster::start("status").await;
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {"duration": "3s"}}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;

    let healthy = plugin(&cluster, kubeconfig.path(), &["status", ROLLOUT]).await;
    assert_eq!(healthy.status.code(), Some(0), "{}{}", stdout(&healthy), stderr(&healthy));
    assert!(stdout(&healthy).starts_with("Healthy: "), "{}", stdout(&healthy));

    // Shipped and checked at once: status waits through the timed pause (which needs nobody) and
    // ends at the pause for a person, printing each change on the way with --watch.
    cluster.ship(&cluster.rollout("2", steps.clone())).await;
    let paused = plugin(&cluster, kubeconfig.path(), &["status", ROLLOUT, "--watch"]).await;
    assert_eq!(paused.status.code(), Some(4), "{}{}", stdout(&paused), stderr(&paused));
    let lines = stdout(&paused);
    assert!(lines.contains("pausing for 3s"), "no progress line for the timed pause:\n{lines}");
    assert!(lines.lines().last().is_some_and(|l| l.starts_with("Paused, waiting for a person: ")), "{lines}");
    let accepted = plugin(&cluster, kubeconfig.path(), &["status", ROLLOUT, "--success-on-pause"]).await;
    assert_eq!(accepted.status.code(), Some(0), "{}", stdout(&accepted));

    // Aborted: 1. A third revision still at its timed pause when the timeout passes: 3.
    assert!(plugin(&cluster, kubeconfig.path(), &["abort", ROLLOUT]).await.status.success());
    let degraded = plugin(&cluster, kubeconfig.path(), &["status", ROLLOUT]).await;
    assert_eq!(degraded.status.code(), Some(1), "{}", stdout(&degraded));
    assert!(stdout(&degraded).starts_with("Degraded: "), "{}", stdout(&degraded));
    let slow = cluster.rollout("3", json!([{"setWeight": 10}, {"pause": {"duration": "1h"}}]));
    cluster.ship(&slow).await;
    let timed_out = plugin(&cluster, kubeconfig.path(), &["status", ROLLOUT, "--timeout", "2s"]).await;
    assert_eq!(timed_out.status.code(), Some(3), "{}", stdout(&timed_out));
    assert!(stdout(&timed_out).starts_with("timed out: "), "{}", stdout(&timed_out));

    let usage = plugin(&cluster, kubeconfig.path(), &["status", ROLLOUT, "--timeout", "soon"]).await;
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_starts_a_canary_and_undo_goes_back_to_stable() {
    let cluster = Cluster::start("set-image").await;
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let stable = deploy_stable(&cluster, json!([{"setWeight": 10}, {"pause": {}}])).await;

    let wrong = plugin(&cluster, kubeconfig.path(), &["set", "image", ROLLOUT, "nope=example/app:2"]).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("no container named nope; it has app"), "{}", stderr(&wrong));

    let set =
        plugin(&cluster, kubeconfig.path(), &["set", "image", ROLLOUT, "app=registry.k8s.io/pause:3.9"])
            .await;
    assert!(set.status.success(), "{}", stderr(&set));
    let canary = stdout(&set).trim().rsplit(' ').next().unwrap_or_default().to_string();
    paused_at_ten(&cluster, &canary).await;

    undo_back_to(&cluster, kubeconfig.path(), &stable).await;
    healthy_on(&cluster, &stable).await;

    // And forward again, to a named revision: the canary that was dropped.
    let redo = plugin(&cluster, kubeconfig.path(), &["undo", ROLLOUT, "--to-revision", &canary]).await;
    assert!(redo.status.success(), "{}", stderr(&redo));
    paused_at_ten(&cluster, &canary).await;

    let completion = plugin(&cluster, kubeconfig.path(), &["completion", "bash"]).await;
    assert!(completion.status.success() && stdout(&completion).contains("kubectl-bellwether"));
    controller.stop().await;
}

/// Two people act at once, while the controller is busy: every request sent is handled once, and
/// the rollout ends in the state their order implies, with traffic where that state says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_and_abort_sent_at_once_are_both_handled_and_agree_with_the_outcome() {
    let cluster = Cluster::start("racing").await;
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    let canary = cluster.ship(&cluster.rollout("2", steps)).await;
    paused_at_ten(&cluster, &canary).await;

    let (promoted, aborted) = tokio::join!(
        plugin(&cluster, kubeconfig.path(), &["promote", ROLLOUT]),
        plugin(&cluster, kubeconfig.path(), &["abort", ROLLOUT]),
    );
    // Each command got a verdict: acted on (0), ignored by the controller because of the other (1),
    // or, when the other was handled before this one even read the rollout, refused before it
    // wrote anything (1).
    let mut written = 0;
    for (what, output) in [("promote", &promoted), ("abort", &aborted)] {
        let verdict = format!("{}{}", stdout(output), stderr(output));
        let refused = verdict.contains("nothing was changed");
        assert!(
            output.status.success() || refused || verdict.contains("was ignored by the controller"),
            "{what} got no verdict: {verdict}"
        );
        written += usize::from(!refused);
    }
    assert!(aborted.status.success() || promoted.status.success(), "neither request acted");
    let done = cluster
        .rollout_until("the rollout to settle", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| matches!(s.phase, Some(RolloutPhase::Healthy | RolloutPhase::Degraded)))
        })
        .await;
    let status = done.status.expect("a status");
    let handled = &status.progress.handled_requests;
    assert_eq!(handled.len(), written, "each request sent recorded once: {handled:?}");
    match status.phase {
        Some(RolloutPhase::Degraded) => {
            assert!(aborted.status.success(), "Degraded, but the abort was ignored");
            assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
        }
        _ => {
            assert!(!aborted.status.success(), "Healthy, but the abort acted");
            assert_eq!(status.stable_revision.as_deref(), Some(canary.as_str()));
        }
    }
    eventually("all traffic on the stable revision", || async {
        (cluster.weights().await == Some((0, 100))).then_some(())
    })
    .await;
    eventually("both request annotations removed", || async {
        let rollout = cluster.rollouts().get(ROLLOUT).await.ok()?;
        let left =
            rollout.metadata.annotations.unwrap_or_default().keys().any(|k| k.starts_with(REQUEST_PREFIX));
        (!left).then_some(())
    })
    .await;
    controller.stop().await;
}

/// A person's pause holds the canary past a timed pause's end; resume lets it go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_the_canary_and_resume_lets_it_go_on() {
    let cluster = Cluster::start("pause-resume").await;
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {"duration": "2s"}}, {"setWeight": 50}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;
    cluster.ship(&cluster.rollout("2", steps)).await;
    eventually("the canary at 10%", || async { (cluster.weights().await == Some((10, 90))).then_some(()) })
        .await;

    let paused = plugin(&cluster, kubeconfig.path(), &["pause", ROLLOUT]).await;
    assert!(paused.status.success(), "{}", stderr(&paused));
    let held = cluster
        .rollout_until("the user pause", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.pause_conditions.iter().any(|c| c.reason == bellwether::api::PauseReason::UserPause)
            })
        })
        .await;
    let step = held.status.and_then(|s| s.current_step_index);
    // Well past the timed pause's 2s, the canary has not moved on.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let still = cluster.rollouts().get(ROLLOUT).await.expect("reading the Rollout").status.expect("a status");
    assert_eq!(still.current_step_index, step, "a paused canary moved on");
    assert_eq!(cluster.weights().await, Some((10, 90)));

    let resumed = plugin(&cluster, kubeconfig.path(), &["resume", ROLLOUT]).await;
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    eventually("the canary at 50%", || async { (cluster.weights().await == Some((50, 50))).then_some(()) })
        .await;
    controller.stop().await;
}

/// A user who may read Rollouts but not patch them gets the API server's refusal, and nothing
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_rbac_denies_is_a_clear_error_that_changes_nothing() {
    let cluster = Cluster::start("forbidden").await;
    let Some(server) = cluster.server.as_ref() else {
        println!("skipped: needs the test API server's fault injection");
        return;
    };
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;
    let canary = cluster.ship(&cluster.rollout("2", steps)).await;
    paused_at_ten(&cluster, &canary).await;

    server.forbid_writes("rollouts");
    let before = cluster.rollouts().get(ROLLOUT).await.expect("reading the Rollout");
    let denied = plugin(&cluster, kubeconfig.path(), &["promote", ROLLOUT]).await;
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        stderr(&denied).contains("cannot patch resource \"rollouts\" in API group \"bellwether.dev\""),
        "{}",
        stderr(&denied)
    );
    let after = cluster.rollouts().get(ROLLOUT).await.expect("reading the Rollout");
    assert_eq!(before.metadata.resource_version, after.metadata.resource_version, "a denied request wrote");
    controller.stop().await;
}
