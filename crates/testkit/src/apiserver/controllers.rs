//! Simulated cluster controllers, so that what the Bellwether controller waits for happens: the
//! ReplicaSet controller's status counts and the Gateway's route status. They write through the store
//! with resourceVersion preconditions, as any other client, and retry on the next tick after a conflict.

use super::resources::{self, Resource};
use super::selector::Selector;
use super::store::{Store, Target};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// The controller name the simulated Gateway writes into route status.
pub const GATEWAY_CONTROLLER: &str = "example.net/gateway-controller";

/// Which pod templates never become available.
const CRASHLOOP_MARKER: &str = "crashloop";

pub async fn run(store: Arc<Store>, tick: Duration, replica_set_delay: Duration) {
    let mut replica_sets = ReplicaSets { delay: replica_set_delay, changed_at: HashMap::new() };
    let mut interval = tokio::time::interval(tick);
    // After a slow tick, catching up with a burst of ticks would only repeat the same writes.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        replica_sets.reconcile(&store);
        for resource in [&resources::HTTP_ROUTES, &resources::GRPC_ROUTES] {
            reconcile_routes(&store, resource);
        }
    }
}

fn write_status(store: &Store, resource: &'static Resource, object: &Value, status: Value) {
    let metadata = &object["metadata"];
    let (namespace, name) =
        (metadata["namespace"].as_str().unwrap_or(""), metadata["name"].as_str().unwrap_or(""));
    let update = json!({
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": metadata["resourceVersion"]},
        "status": status,
    });
    // A conflict or a deletion since the list is retried, or moot, on the next tick.
    let _ = store.replace(resource, namespace, name, update, Target::Status);
}

fn generation(object: &Value) -> i64 {
    object["metadata"]["generation"].as_i64().unwrap_or(0)
}

/// Pods are not simulated: a ReplicaSet's pods are ready `delay` after its spec last changed, unless
/// an image of its template contains "crashloop".
struct ReplicaSets {
    delay: Duration,
    /// When each ReplicaSet's current generation was first seen, by (namespace, name).
    changed_at: HashMap<(String, String), (i64, Instant)>,
}

impl ReplicaSets {
    fn reconcile(&mut self, store: &Store) {
        let (replica_sets, _) = store.list(&resources::REPLICA_SETS, None, &Selector::default());
        let now = Instant::now();
        let mut seen = HashMap::new();
        for replica_set in &replica_sets {
            let metadata = &replica_set["metadata"];
            let key = (
                metadata["namespace"].as_str().unwrap_or("").to_string(),
                metadata["name"].as_str().unwrap_or("").to_string(),
            );
            let generation = generation(replica_set);
            let since = match self.changed_at.get(&key) {
                Some((seen_generation, since)) if *seen_generation == generation => *since,
                _ => now,
            };
            seen.insert(key, (generation, since));
            let desired = replica_set["spec"]["replicas"].as_i64().unwrap_or(1);
            let containers = replica_set["spec"]["template"]["spec"]["containers"].as_array();
            let crashing = containers
                .into_iter()
                .flatten()
                .any(|c| c["image"].as_str().is_some_and(|image| image.contains(CRASHLOOP_MARKER)));
            let previous_ready = replica_set["status"]["readyReplicas"].as_i64().unwrap_or(0);
            let ready = if crashing {
                0
            } else if now.duration_since(since) >= self.delay {
                desired
            } else {
                // Pods of the old spec that are already running stay ready until the new ones start.
                previous_ready.min(desired)
            };
            let status = json!({
                "replicas": desired,
                "fullyLabeledReplicas": desired,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": generation,
            });
            write_status(store, &resources::REPLICA_SETS, replica_set, status);
        }
        self.changed_at = seen;
    }
}

/// Accepts every route for each of its parents, for the route's current generation.
fn reconcile_routes(store: &Store, resource: &'static Resource) {
    let (routes, _) = store.list(resource, None, &Selector::default());
    for route in &routes {
        let generation = generation(route);
        let previous = route["status"]["parents"].as_array().cloned().unwrap_or_default();
        let parents: Vec<Value> = route["spec"]["parentRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parent_ref| {
                let previous = previous.iter().find(|p| p["parentRef"] == *parent_ref);
                let conditions =
                    ["Accepted", "ResolvedRefs"].map(|kind| condition(previous, kind, generation));
                json!({
                    "parentRef": parent_ref,
                    "controllerName": GATEWAY_CONTROLLER,
                    "conditions": conditions,
                })
            })
            .collect();
        write_status(store, resource, route, json!({"parents": parents}));
    }
}

/// A `True` condition; its lastTransitionTime is kept from `previous` when that was already true.
fn condition(previous: Option<&Value>, kind: &str, generation: i64) -> Value {
    let old = previous.and_then(|p| p["conditions"].as_array()?.iter().find(|c| c["type"] == kind));
    let since = match old {
        Some(old) if old["status"] == "True" => old["lastTransitionTime"].clone(),
        _ => Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true).into(),
    };
    json!({
        "type": kind,
        "status": "True",
        "reason": kind,
        "message": "",
        "observedGeneration": generation,
        "lastTransitionTime": since,
    })
}
