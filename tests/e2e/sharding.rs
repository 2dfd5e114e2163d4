//! Three controller replicas sharing 300 Rollouts (`--shards`), one killed mid-canary: the survivors
//! take its shards, and every canary finishes exactly once, its weights never moving back.

use crate::harness::{Cluster, Controller, PATIENCE, create};
use crate::rollouts::{on_each_route, weight_to};
use bellwether::api::{Rollout, RolloutOutcome, RolloutPhase};
use bellwether::engine::revision_of;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FLEET: usize = 300;
const SHARDS: &str = "6";

fn app(i: usize) -> String {
    format!("app-{i:03}")
}

fn rollout(cluster: &Cluster, i: usize, version: &str) -> Rollout {
    let app = app(i);
    serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": app, "namespace": cluster.namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "env": [{"name": "VERSION", "value": version}]}]},
            },
            "strategy": {"canary": {
                "stableService": format!("{app}-stable"),
                "canaryService": format!("{app}-canary"),
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": app}]}},
                "steps": [
                    {"setWeight": 20},
                    {"pause": {"duration": "3s"}},
                    {"setWeight": 50},
                    {"pause": {"duration": "3s"}},
                ],
                "scaleDownDelaySeconds": 1,
            }},
        },
    }))
    .expect("a valid Rollout")
}

async fn create_app(cluster: &Cluster, i: usize) {
    let app = app(i);
    for service in [format!("{app}-stable"), format!("{app}-canary")] {
        create::<Service>(
            &cluster.client,
            &cluster.namespace,
            json!({"metadata": {"name": service}, "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}}),
        )
        .await;
    }
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": app},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"backendRefs": [
                {"name": format!("{app}-stable"), "port": 80, "weight": 100},
                {"name": format!("{app}-canary"), "port": 80, "weight": 0},
            ]}],
        },
    }))
    .expect("a valid route");
    cluster.routes().create(&PostParams::default(), &route).await.expect("creating a route");
    cluster
        .rollouts()
        .create(&PostParams::default(), &rollout(cluster, i, "1"))
        .await
        .expect("creating a Rollout");
}

/// Waits until every Rollout of the fleet is Healthy and satisfies `done`, for as long as more of
/// them keep finishing: a slow machine takes longer, a stalled fleet fails after [`PATIENCE`].
async fn fleet_until(cluster: &Cluster, what: &str, done: impl Fn(&Rollout) -> bool) -> Vec<Rollout> {
    let mut progress = (0, Instant::now());
    loop {
        let listed = cluster.rollouts().list(&ListParams::default()).await.expect("listing Rollouts").items;
        let fleet: Vec<Rollout> = listed.into_iter().filter(|r| r.name_any().starts_with("app-")).collect();
        let finished = fleet
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Healthy)) && done(r))
            .count();
        if finished == FLEET {
            return fleet;
        }
        if finished > progress.0 {
            progress = (finished, Instant::now());
        }
        assert!(
            progress.1.elapsed() < PATIENCE,
            "gave up waiting for {what}: {finished} of {FLEET}, none more for {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every distinct (canary, stable) weight of each route, in order, by route.
type WeightLogs = Arc<Mutex<BTreeMap<String, Vec<(i64, i64)>>>>;

fn record_weights(cluster: &Cluster) -> WeightLogs {
    let seen = Arc::new(Mutex::new(BTreeMap::<String, Vec<(i64, i64)>>::new()));
    let log = seen.clone();
    on_each_route(cluster, move |route| {
        let name = route.name_any();
        // The fleet's routes, not the one every test namespace starts with.
        if !name.starts_with("app-") {
            return;
        }
        let weight = |suffix: &str| weight_to(route, &format!("{name}-{suffix}"));
        let (Some(canary), Some(stable)) = (weight("canary"), weight("stable")) else { return };
        let mut log = log.lock().unwrap();
        let weights = log.entry(name).or_default();
        if weights.last() != Some(&(canary, stable)) {
            weights.push((canary, stable));
        }
    });
    seen
}

/// The holder of each shard Lease.
async fn shard_holders(cluster: &Cluster) -> BTreeMap<String, String> {
    let leases: Api<Lease> = cluster.api();
    let listed = leases.list(&ListParams::default()).await.expect("listing Leases").items;
    listed
        .into_iter()
        .filter(|lease| lease.name_any().contains("-shard-"))
        .filter_map(|lease| Some((lease.name_any(), lease.spec?.holder_identity?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_fleet_and_survivors_finish_a_killed_ones_canaries() {
    let cluster = Cluster::start("sharding").await;
    let namespace = cluster.namespace.clone();
    let replica = |identity: &'static str| {
        Controller::start(
            &cluster,
            &[
                "--shards",
                SHARDS,
                "--identity",
                identity,
                "--leader-elect-namespace",
                &namespace,
                "--lease-duration-seconds",
                "6",
            ],
        )
    };
    let (a, b, c) = (replica("a"), replica("b"), replica("c"));
    for i in 0..FLEET {
        create_app(&cluster, i).await;
    }
    fleet_until(&cluster, "the first deploy", |_| true).await;

    // Every shard is held, and all three replicas hold some.
    let holders = shard_holders(&cluster).await;
    assert_eq!(holders.len(), 6, "one Lease per shard: {holders:?}");
    let replicas: BTreeSet<&String> = holders.values().collect();
    assert_eq!(replicas.len(), 3, "the shards are spread over the three replicas: {holders:?}");

    let weights = record_weights(&cluster);
    let mut revisions = BTreeMap::new();
    for i in 0..FLEET {
        let template = rollout(&cluster, i, "2").spec.template;
        revisions.insert(app(i), revision_of(&template.as_ref().map(|t| t.get()).unwrap_or_default()));
        cluster
            .rollouts()
            .patch(&app(i), &PatchParams::default(), &Patch::Merge(&json!({"spec": {"template": template}})))
            .await
            .expect("shipping revision 2");
    }
    // Mid-canary: some Rollouts have moved traffic, none has finished.
    crate::harness::eventually("a canary at 20%", || async {
        let log = weights.lock().unwrap();
        log.values().any(|w| w.contains(&(20, 80))).then_some(())
    })
    .await;
    b.kill();

    let fleet = fleet_until(&cluster, "every canary promoted", |r| {
        r.status.as_ref().and_then(|s| s.stable_revision.as_ref()) == revisions.get(&r.name_any())
    })
    .await;
    let holders = shard_holders(&cluster).await;
    assert!(!holders.values().any(|holder| holder == "b"), "the survivors took b's shards: {holders:?}");

    for rollout in &fleet {
        let name = rollout.name_any();
        let status = rollout.status.clone().expect("a status");
        let finished: Vec<_> = status.history.iter().map(|h| (h.revision.as_str(), h.outcome)).collect();
        assert_eq!(
            finished,
            [(revisions[&name].as_str(), RolloutOutcome::Promoted)],
            "{name} finished its one canary once"
        );
    }
    // The recorder's watch may be behind the last promotions: wait until it has seen them all.
    let planned = [(0, 100), (20, 80), (50, 50), (0, 100)];
    let complete = || {
        let log = weights.lock().unwrap();
        log.len() >= FLEET && log.values().all(|w| w.len() >= planned.len())
    };
    let deadline = Instant::now() + PATIENCE;
    while !complete() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = weights.lock().unwrap().clone();
    let wrong: Vec<_> = seen.iter().filter(|(_, weights)| **weights != planned).collect();
    assert!(
        seen.len() == FLEET && wrong.is_empty(),
        "every route's weights, each once, in order, never back: {} routes recorded, {} of them otherwise: {:?}",
        seen.len(),
        wrong.len(),
        wrong.iter().take(5).collect::<Vec<_>>()
    );
    a.stop().await;
    c.stop().await;
}
