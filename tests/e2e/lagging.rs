//! The controller's watch caches behind the API server: every watch the controller opens lags by
//! a random time per event (the Rollout's up to 1.5 s, the others up to 1 s), so that its caches
//! show each object a random number of events late, and each cache lags by a different amount.
//! Canary after canary still moves each weight once and never back, never goes back a step, and
//! creates each AnalysisRun once, measured from its start to its end without a restart.
//!
//! The delays come from a seeded generator; the seed is printed, and `BELLWETHER_E2E_SEED`
//! repeats a run.

use crate::apiserver::Options;
use crate::faults::wait_promoted;
use crate::harness::{Cluster, Controller, analysed_steps, eventually, real_cluster, seed};
use crate::restarts::{assert_steps_never_back, record_runs, record_steps};
use crate::rollouts::{deploy_stable, record_weights};
use bellwether::api::{AnalysisPhase, AnalysisRun, REVISION_LABEL};
use kube::ResourceExt;
use kube::api::ListParams;
use std::time::Duration;

const CANARIES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_behind_the_api_server_repeat_no_step_and_move_no_weight_back() {
    if real_cluster().is_some() {
        println!("skipped: needs the test API server's lagging watches");
        return;
    }
    let lag = |plural: &str, millis: u64| (plural.to_string(), Duration::from_millis(millis));
    let options = Options {
        watch_delays: vec![
            lag("rollouts", 1500),
            lag("replicasets", 1000),
            lag("analysisruns", 1000),
            lag("httproutes", 1000),
            lag("services", 1000),
        ],
        watch_delay_seed: seed("watch delays"),
        ..Options::default()
    };
    let cluster = Cluster::start_with("lagging", options).await;
    let controller = Controller::start(&cluster, &[]);
    deploy_stable(&cluster, analysed_steps()).await;
    // The test's own watches lag too, but they keep every event, in order.
    let weights = record_weights(&cluster);
    let runs = record_runs(&cluster);
    let step_log = record_steps(&cluster);
    let before = cluster.controller_calls().expect("the test API server's call log");

    let mut shipped = Vec::new();
    for version in 2..2 + CANARIES {
        let revision = cluster.ship(&cluster.rollout(&version.to_string(), analysed_steps())).await;
        wait_promoted(&cluster, &revision).await;
        shipped.push(revision);
    }
    let calls = cluster.controller_calls().expect("the test API server's call log");
    controller.stop().await;

    // Traffic followed each canary's steps once, in order, never back.
    let mut planned = vec![(0, 100)];
    for _ in &shipped {
        planned.extend([(10, 90), (50, 50), (0, 100)]);
    }
    let seen = eventually("the recorded weights to catch up", || async {
        let seen: Vec<(i64, i64)> = weights.lock().unwrap().iter().map(|(w, _)| *w).collect();
        (seen.len() >= planned.len()).then_some(seen)
    })
    .await;
    assert_eq!(seen, planned, "route weights over {CANARIES} canaries");

    // The status never went back a step.
    assert_steps_never_back(&step_log, &shipped);

    // One run per canary, created once, started once, and never losing a measurement.
    let listed = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs");
    for revision in &shipped {
        let of_revision: Vec<&AnalysisRun> =
            listed.items.iter().filter(|run| run.labels().get(REVISION_LABEL) == Some(revision)).collect();
        let [run] = of_revision.as_slice() else {
            panic!("{revision} has {} runs", of_revision.len());
        };
        let name = run.name_any();
        let status = run.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(AnalysisPhase::Successful), "{name}: {:?}", status.message);
        let history = runs.lock().unwrap().get(&name).cloned().unwrap_or_default();
        let starts: Vec<_> = history.iter().filter_map(|(at, _)| *at).collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{name} started more than once: {history:?}");
        assert!(history.windows(2).all(|w| w[0].1 <= w[1].1), "{name} lost measurements: {history:?}");
    }
    // A pass that decided from a cache that had not yet shown its last writes would repeat them:
    // create a run again (and be told it exists), or patch a route again from the copy it already
    // patched (and be refused by the patch's guard). Each is asked for exactly once.
    let made = |group: &str, resource: &str, verb: &str| {
        let key = (group.to_string(), resource.to_string(), verb.to_string());
        calls.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0)
    };
    let canaries = CANARIES as u64;
    assert_eq!(made("bellwether.dev", "analysisruns", "create"), canaries, "runs created: {calls:?}");
    let route_patches = made("gateway.networking.k8s.io", "httproutes", "patch");
    assert_eq!(route_patches, 3 * canaries, "route patches, three weights a canary: {calls:?}");
    println!("controller calls during {CANARIES} canaries: {:?}", difference(&before, &calls));
}

/// The calls made between two snapshots of the call log.
fn difference(
    before: &std::collections::BTreeMap<(String, String, String), u64>,
    after: &std::collections::BTreeMap<(String, String, String), u64>,
) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(key, count)| (format!("{} {}", key.2, key.1), count - before.get(key).copied().unwrap_or(0)))
        .filter(|(_, count)| *count > 0)
        .collect()
}
