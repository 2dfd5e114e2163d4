//! ReplicaSets and Deployments come back from the API server with the defaults it fills into their
//! pod templates (`terminationMessagePath`, `imagePullPolicy`, `dnsPolicy`, ...), as from a real
//! cluster. Going back to a revision through its ReplicaSet's template is that revision, not a new
//! one; a Deployment taken over is the revision of its template as written; and a rollout with
//! nothing to do writes nothing although what it reads differs from what it wrote.

use crate::faults::wait_promoted;
use crate::harness::{Cluster, Controller, ROLLOUT, eventually, real_cluster};
use crate::prometheus::free_port;
use crate::rollouts::deploy_stable;
use crate::steering::{healthy_on, paused_at_ten, plugin, stderr, undo_back_to};
use crate::workload::{deployment, take_over};
use bellwether::api::REVISION_LABEL;
use bellwether::controller::replica_sets::replica_set_name;
use bellwether::engine::revision_of;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

/// Ships version `version`, waits for its canary to pause at 10%, and promotes it with the plugin.
async fn ship_and_promote(cluster: &Cluster, kubeconfig: &Path, version: &str) -> String {
    let revision = cluster.ship(&cluster.rollout(version, json!([{"setWeight": 10}, {"pause": {}}]))).await;
    paused_at_ten(cluster, &revision).await;
    let promoted = plugin(cluster, kubeconfig, &["promote", ROLLOUT]).await;
    assert!(promoted.status.success(), "{}", stderr(&promoted));
    wait_promoted(cluster, &revision).await;
    revision
}

/// The revisions that have a ReplicaSet in the test's namespace.
async fn replica_set_revisions(cluster: &Cluster) -> BTreeSet<String> {
    let listed = cluster.api::<ReplicaSet>().list(&ListParams::default()).await.expect("listing ReplicaSets");
    listed.items.iter().filter_map(|rs| rs.labels().get(REVISION_LABEL).cloned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_through_a_defaulted_replica_set_is_the_old_revision_and_no_new_one() {
    let cluster = Cluster::start("defaults-undo").await;
    let kubeconfig = cluster.kubeconfig();
    let controller = Controller::start(&cluster, &[]);
    let first = deploy_stable(&cluster, json!([{"setWeight": 10}, {"pause": {}}])).await;
    let second = ship_and_promote(&cluster, kubeconfig.path(), "2").await;
    let third = ship_and_promote(&cluster, kubeconfig.path(), "3").await;

    // What undo reads: the template as the server stored it, with what the Rollout's lacks.
    let stored = cluster.api::<ReplicaSet>().get(&replica_set_name(ROLLOUT, &second)).await.unwrap();
    let pod = stored.spec.and_then(|s| s.template).and_then(|t| t.spec).expect("a pod template");
    assert_eq!(pod.containers[0].termination_message_path.as_deref(), Some("/dev/termination-log"));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirst"));
    let shipped = cluster.rollout("2", json!([])).spec.embedded_template().expect("a template");
    assert_eq!(shipped.spec.as_ref().and_then(|s| s.dns_policy.as_deref()), None, "shipped without defaults");

    // Back to the stable revision before the current one: a canary of that revision itself.
    undo_back_to(&cluster, kubeconfig.path(), &second).await;
    paused_at_ten(&cluster, &second).await;

    // Back to stable during that canary: Healthy at once, with no steps.
    undo_back_to(&cluster, kubeconfig.path(), &third).await;
    healthy_on(&cluster, &third).await;

    let revisions = replica_set_revisions(&cluster).await;
    assert_eq!(
        revisions,
        BTreeSet::from([first, second, third]),
        "a ReplicaSet per revision shipped, no other"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_taken_over_is_the_revision_of_its_template_as_written() {
    let cluster = Cluster::start("defaults-workload").await;
    let controller = Controller::start(&cluster, &[]);
    let stable = take_over(&cluster, "never").await;

    let stored = cluster.api::<Deployment>().get(ROLLOUT).await.unwrap().spec.expect("a spec").template;
    let pod = stored.spec.expect("a pod spec");
    assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"), "read back defaulted");
    let written = serde_json::from_value(deployment("1")["spec"]["template"].clone()).unwrap();
    assert_eq!(stable, revision_of(&written), "the revision of the template as written");
    // The same template embedded in a Rollout is the same revision: switching between the two
    // starts no canary.
    let embedded = cluster.rollout("1", json!([])).spec.embedded_template().expect("a template");
    assert_eq!(revision_of(&embedded), stable);
    controller.stop().await;
}

/// How many passes the controller's Rollout reconciler has made, from its metrics.
async fn rollout_passes(metrics_addr: &str) -> Option<u64> {
    let text = reqwest::get(format!("http://{metrics_addr}/metrics")).await.ok()?.text().await.ok()?;
    let count = r#"bellwether_reconcile_duration_seconds_count{controller="rollout"} "#;
    text.lines().find_map(|line| line.strip_prefix(count))?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_rollout_writes_nothing_though_its_replica_sets_read_back_defaulted() {
    if real_cluster().is_some() {
        println!("skipped: needs the test API server's call log");
        return;
    }
    let cluster = Cluster::start("defaults-idle").await;
    let metrics_addr = format!("127.0.0.1:{}", free_port().unwrap());
    // A pass every second while nothing changes, each one a chance to write.
    let flags = ["--metrics-addr", metrics_addr.as_str(), "--resync-seconds", "1"];
    let controller = Controller::start(&cluster, &flags);
    let steps = json!([{"setWeight": 50}, {"pause": {"duration": "1s"}}]);
    let first = deploy_stable(&cluster, steps.clone()).await;
    let second = cluster.ship(&cluster.rollout("2", steps)).await;
    wait_promoted(&cluster, &second).await;
    // Settled: the old revision scaled down, and no scale-down left to do.
    let old = replica_set_name(ROLLOUT, &first);
    eventually("the old revision scaled down", || async {
        let replicas = cluster.api::<ReplicaSet>().get(&old).await.ok()?.spec?.replicas;
        let rollout = cluster.rollouts().get(ROLLOUT).await.ok()?;
        let pending = rollout.status?.progress.scale_downs;
        (replicas == Some(0) && pending.is_empty()).then_some(())
    })
    .await;

    let before = cluster.controller_calls().expect("the test API server's call log");
    let passes = rollout_passes(&metrics_addr).await.expect("the controller's metrics");
    eventually("three more passes", || async {
        (rollout_passes(&metrics_addr).await? >= passes + 3).then_some(())
    })
    .await;
    let after = cluster.controller_calls().expect("the test API server's call log");
    let writes: Vec<_> = after
        .iter()
        .filter(|((_, _, verb), _)| matches!(verb.as_str(), "create" | "update" | "patch" | "delete"))
        .filter(|(call, count)| before.get(*call) != Some(*count))
        .collect();
    assert!(writes.is_empty(), "an idle rollout wrote: {writes:?}");
    // And what those passes read differed from what the controller applied.
    let stored = cluster.api::<ReplicaSet>().get(&old).await.unwrap();
    let pod = stored.spec.and_then(|s| s.template).and_then(|t| t.spec).expect("a pod template");
    assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));
    controller.stop().await;
}
