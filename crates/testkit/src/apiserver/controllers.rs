//! Simulated cluster controllers, so that what the Bellwether controller waits for happens: the
//! ReplicaSet controller's status counts, the Gateway's route status, and Jobs that run (see
//! [`super::jobs`]). They write through the store
//! with resourceVersion preconditions, as any other client, and retry on the next tick after a conflict.
//!
//! Their work is in proportion to change, not to the number of objects: each tick they look at the
//! objects written since their last tick (from the watch history, or a full list when it no longer
//! reaches back that far) and at those they asked to see again, and they write only a status that
//! differs from the stored one.

use super::jobs::Jobs;
use super::resources::{self, Resource};
use super::selector::Selector;
use super::store::{ObjectKey, Store, Target, object_key};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// The controller name the simulated Gateway writes into route status.
pub const GATEWAY_CONTROLLER: &str = "example.net/gateway-controller";

/// Which pod templates never become available.
const CRASHLOOP_MARKER: &str = "crashloop";

pub async fn run(store: Arc<Store>, tick: Duration, replica_set_delay: Duration) {
    let mut controllers = Controllers::new(replica_set_delay);
    let mut interval = tokio::time::interval(tick);
    // After a slow tick, catching up with a burst of ticks would only repeat the same writes.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        controllers.tick(&store);
    }
}

/// The simulated ReplicaSet, Deployment and Job controllers, and Gateway.
struct Controllers {
    pod_owners: [PodOwners; 2],
    routes: [Feed; 2],
    jobs: Jobs,
}

impl Controllers {
    fn new(replica_set_delay: Duration) -> Self {
        let pod_owner = |resource| PodOwners {
            delay: replica_set_delay,
            feed: Feed::new(resource),
            changed_at: HashMap::new(),
            due: BTreeSet::new(),
        };
        Self {
            pod_owners: [pod_owner(&resources::REPLICA_SETS), pod_owner(&resources::DEPLOYMENTS)],
            routes: [Feed::new(&resources::HTTP_ROUTES), Feed::new(&resources::GRPC_ROUTES)],
            jobs: Jobs::new(),
        }
    }

    fn tick(&mut self, store: &Store) {
        for pod_owners in &mut self.pod_owners {
            pod_owners.reconcile(store);
        }
        for routes in &mut self.routes {
            reconcile_routes(store, routes);
        }
        self.jobs.reconcile(store);
    }
}

/// What a simulated controller has yet to look at of one resource: the objects written since it
/// last looked, and those it asked to see again.
pub(super) struct Feed {
    resource: &'static Resource,
    /// The revision up to which every change has been looked at; `None` before the first look.
    seen: Option<u64>,
    again: BTreeSet<ObjectKey>,
}

impl Feed {
    pub(super) fn new(resource: &'static Resource) -> Self {
        Self { resource, seen: None, again: BTreeSet::new() }
    }

    /// Has the object looked at on the next tick, changed or not.
    pub(super) fn revisit(&mut self, key: ObjectKey) {
        self.again.insert(key);
    }

    /// The objects to look at now, each in its current state (`None` once deleted), and whether
    /// they are every object of the resource, as after a full list.
    pub(super) fn take(&mut self, store: &Store) -> (BTreeMap<ObjectKey, Option<Value>>, bool) {
        let changed = self.seen.and_then(|since| store.changed_since(self.resource, since));
        let (mut objects, revision, everything) = match changed {
            Some((changed, revision)) => (changed, revision, false),
            None => {
                let (all, revision) = store.list(self.resource, None, &Selector::default());
                (all.into_iter().map(|object| (object_key(&object), Some(object))).collect(), revision, true)
            }
        };
        self.seen = Some(revision);
        for key in std::mem::take(&mut self.again) {
            if let Entry::Vacant(entry) = objects.entry(key) {
                let (namespace, name) = entry.key();
                let object = store.get(self.resource, namespace, name).ok();
                entry.insert(object);
            }
        }
        (objects, everything)
    }

    /// Writes `status` unless the object already has it: a write that changes nothing would cost
    /// the store a comparison of the whole object. A write that fails, such as one that conflicts
    /// with a newer write, is tried again on the next tick.
    pub(super) fn write_status(&mut self, store: &Store, key: ObjectKey, object: &Value, status: Value) {
        if object["status"] == status {
            return;
        }
        let update = json!({
            "metadata": {"name": key.1, "namespace": key.0, "resourceVersion": object["metadata"]["resourceVersion"]},
            "status": status,
        });
        if store.replace(self.resource, &key.0, &key.1, update, Target::Status).is_err() {
            self.revisit(key);
        }
    }
}

fn generation(object: &Value) -> i64 {
    object["metadata"]["generation"].as_i64().unwrap_or(0)
}

/// Pods are not simulated: a ReplicaSet's or a Deployment's pods are ready `delay` after its spec
/// last changed, unless an image of its template contains "crashloop". (A Deployment's rolling
/// update is not simulated either: its status counts its pods as a ReplicaSet's would.)
struct PodOwners {
    delay: Duration,
    feed: Feed,
    /// When each ReplicaSet's current generation was first seen, by (namespace, name).
    changed_at: HashMap<ObjectKey, (i64, Instant)>,
    /// When the objects whose pods are not ready yet are due to have them ready: nothing else
    /// changes their status until then, unless they change.
    due: BTreeSet<(Instant, ObjectKey)>,
}

impl PodOwners {
    fn reconcile(&mut self, store: &Store) {
        let now = Instant::now();
        while let Some((at, key)) = self.due.pop_first() {
            if at > now {
                self.due.insert((at, key));
                break;
            }
            self.feed.revisit(key);
        }
        let (owners, everything) = self.feed.take(store);
        if everything {
            self.changed_at.retain(|key, _| owners.get(key).is_some_and(Option::is_some));
        }
        for (key, owner) in owners {
            let Some(owner) = owner else {
                self.changed_at.remove(&key);
                continue;
            };
            let generation = generation(&owner);
            let since = match self.changed_at.get(&key) {
                Some((seen_generation, since)) if *seen_generation == generation => *since,
                _ => now,
            };
            self.changed_at.insert(key.clone(), (generation, since));
            let desired = owner["spec"]["replicas"].as_i64().unwrap_or(1);
            let containers = owner["spec"]["template"]["spec"]["containers"].as_array();
            let crashing = containers
                .into_iter()
                .flatten()
                .any(|c| c["image"].as_str().is_some_and(|image| image.contains(CRASHLOOP_MARKER)));
            let previous_ready = owner["status"]["readyReplicas"].as_i64().unwrap_or(0);
            let ready = if crashing {
                0
            } else if now.duration_since(since) >= self.delay {
                desired
            } else {
                self.due.insert((since + self.delay, key.clone()));
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
            self.feed.write_status(store, key, &owner, status);
        }
    }
}

/// The route annotation that makes the simulated Gateway refuse a route: its value,
/// `<Reason>: <message>` (such as `UnsupportedValue: header matches of type RegularExpression are
/// not supported`), becomes the reason and message of an `Accepted=False` condition for every
/// parent, for the route's current generation, for as long as the annotation stays. Removing it
/// has the route accepted again.
///
/// A deliberate simplification, for tests of how Bellwether copes with a refusal: a real Gateway
/// refuses for what the spec holds (an unsupported match, a listener that does not allow the
/// route), may refuse some parents and not others, and may report `ResolvedRefs=False` instead;
/// this one refuses on request, every parent at once, and keeps `ResolvedRefs=True`. A value
/// without `": "` is all reason and no message.
pub const REFUSE_ANNOTATION: &str = "testkit.bellwether.dev/refuse";

/// Accepts every route for each of its parents, for the route's current generation, unless the
/// route asks to be refused ([`REFUSE_ANNOTATION`]).
fn reconcile_routes(store: &Store, feed: &mut Feed) {
    let (routes, _) = feed.take(store);
    for (key, route) in routes {
        let Some(route) = route else { continue };
        let generation = generation(&route);
        let previous = route["status"]["parents"].as_array().cloned().unwrap_or_default();
        let refusal = route["metadata"]["annotations"][REFUSE_ANNOTATION].as_str().map(|value| {
            let (reason, message) = value.split_once(": ").unwrap_or((value, ""));
            (reason.to_string(), message.to_string())
        });
        let parents: Vec<Value> = route["spec"]["parentRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parent_ref| {
                let previous = previous.iter().find(|p| p["parentRef"] == *parent_ref);
                let accepted = match &refusal {
                    Some((reason, message)) => Verdict { status: "False", reason, message },
                    None => Verdict { status: "True", reason: "Accepted", message: "" },
                };
                let resolved = Verdict { status: "True", reason: "ResolvedRefs", message: "" };
                let conditions = [
                    condition(previous, "Accepted", accepted, generation),
                    condition(previous, "ResolvedRefs", resolved, generation),
                ];
                json!({
                    "parentRef": parent_ref,
                    "controllerName": GATEWAY_CONTROLLER,
                    "conditions": conditions,
                })
            })
            .collect();
        feed.write_status(store, key, &route, json!({"parents": parents}));
    }
}

/// What a condition says: its status, reason and message.
#[derive(Clone, Copy)]
struct Verdict<'a> {
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

/// A condition of type `kind` saying `verdict`; its lastTransitionTime is kept from `previous`
/// when that already had the same status.
fn condition(previous: Option<&Value>, kind: &str, verdict: Verdict<'_>, generation: i64) -> Value {
    let old = previous.and_then(|p| p["conditions"].as_array()?.iter().find(|c| c["type"] == kind));
    let since = match old {
        Some(old) if old["status"] == verdict.status => old["lastTransitionTime"].clone(),
        _ => Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true).into(),
    };
    json!({
        "type": kind,
        "status": verdict.status,
        "reason": verdict.reason,
        "message": verdict.message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::store::PatchKind;
    use crate::apiserver::watch::WatchHub;

    const APPS: usize = 10_000;
    const NAMESPACES: usize = 100;
    /// How many apps change between two ticks in the measurement of a busy tick: 1%.
    const CHANGED: usize = 100;

    fn app(i: usize) -> (String, String) {
        (format!("team-{}", i % NAMESPACES), format!("app-{i}"))
    }

    /// What Bellwether keeps per Rollout besides the Rollout: a ReplicaSet, two Services and a route.
    fn store_fleet(store: &Store) {
        for i in 0..APPS {
            let (namespace, name) = app(i);
            let replica_set = json!({
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {
                    "replicas": 3,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
                    },
                },
            });
            store.create(&resources::REPLICA_SETS, &namespace, replica_set).expect("a valid ReplicaSet");
            for role in ["stable", "canary"] {
                let service = json!({
                    "metadata": {"name": format!("{name}-{role}")},
                    "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
                });
                store.create(&resources::SERVICES, &namespace, service).expect("a valid Service");
            }
            let route = json!({
                "metadata": {"name": name},
                "spec": {
                    "parentRefs": [{"name": "public", "namespace": "gateway-infra"}],
                    "hostnames": [format!("{name}.example.com")],
                    "rules": [{"backendRefs": [
                        {"name": format!("{name}-stable"), "port": 80, "weight": 100},
                        {"name": format!("{name}-canary"), "port": 80, "weight": 0},
                    ]}],
                },
            });
            store.create(&resources::HTTP_ROUTES, &namespace, route).expect("a valid HTTPRoute");
        }
    }

    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort();
        samples[samples.len() / 2]
    }

    fn timed(work: impl FnOnce()) -> Duration {
        let started = std::time::Instant::now();
        work();
        started.elapsed()
    }

    /// The conditions the simulated Gateway wrote for the route's one parent, as (type, status,
    /// reason, message, observedGeneration).
    fn parent_conditions(store: &Store, name: &str) -> Vec<(String, String, String, String, i64)> {
        let route = store.get(&resources::HTTP_ROUTES, "team", name).expect("the route");
        let parents = route["status"]["parents"].as_array().cloned().unwrap_or_default();
        assert_eq!(parents.len(), 1, "{route:#}");
        let text = |c: &Value, key: &str| c[key].as_str().unwrap_or_default().to_string();
        parents[0]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let generation = c["observedGeneration"].as_i64().unwrap_or(-1);
                (text(c, "type"), text(c, "status"), text(c, "reason"), text(c, "message"), generation)
            })
            .collect()
    }

    #[test]
    fn a_route_annotated_refuse_is_refused_by_every_parent_until_the_annotation_goes() {
        let store = Store::new(WatchHub::new(100, Vec::new(), 0));
        let route = json!({
            "metadata": {"name": "web", "annotations": {REFUSE_ANNOTATION: "UnsupportedValue: no regex: here"}},
            "spec": {
                "parentRefs": [{"name": "public"}],
                "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
            },
        });
        store.create(&resources::HTTP_ROUTES, "team", route).expect("a valid HTTPRoute");
        let mut controllers = Controllers::new(Duration::ZERO);
        controllers.tick(&store);
        let refused = |generation| {
            vec![
                (
                    "Accepted".into(),
                    "False".into(),
                    "UnsupportedValue".into(),
                    "no regex: here".into(),
                    generation,
                ),
                ("ResolvedRefs".into(), "True".into(), "ResolvedRefs".into(), String::new(), generation),
            ]
        };
        assert_eq!(parent_conditions(&store, "web"), refused(1));

        // A new generation is refused too, for that generation.
        let patch = json!({"spec": {"hostnames": ["web.example.com"]}});
        store.patch(&resources::HTTP_ROUTES, "team", "web", PatchKind::Merge, &patch, Target::Main).unwrap();
        controllers.tick(&store);
        assert_eq!(parent_conditions(&store, "web"), refused(2));

        let patch = json!({"metadata": {"annotations": {REFUSE_ANNOTATION: null}}});
        store.patch(&resources::HTTP_ROUTES, "team", "web", PatchKind::Merge, &patch, Target::Main).unwrap();
        controllers.tick(&store);
        let accepted: Vec<_> =
            parent_conditions(&store, "web").into_iter().map(|c| (c.0, c.1, c.2)).collect();
        assert_eq!(
            accepted,
            [("Accepted", "True", "Accepted"), ("ResolvedRefs", "True", "ResolvedRefs")].map(|(a, b, c)| (
                a.to_string(),
                b.to_string(),
                c.to_string()
            ))
        );
    }

    /// The cost of one tick of the simulated controllers and of one list of one namespace's
    /// Services, with the objects of 10,000 Rollouts stored. A measurement, not a check:
    /// `cargo test -p bellwether-testkit --release --lib -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement; run it in release"]
    fn cost_at_fleet_scale() {
        let store = Store::new(WatchHub::new(10_000, Vec::new(), 0));
        store_fleet(&store);
        let mut controllers = Controllers::new(Duration::ZERO);
        let mut tick = || controllers.tick(&store);
        // Every ReplicaSet available and every route accepted.
        for _ in 0..3 {
            tick();
        }
        let idle = median((0..20).map(|_| timed(&mut tick)).collect());
        // Only what changed is written: the ReplicaSets' status, and the routes' status, whose
        // every write is checked against the Gateway API schema.
        let mut changed_tick = |resource: &'static Resource, change: &dyn Fn(&str, usize) -> Value| {
            let samples = (0..5).map(|round| {
                for i in (0..APPS).step_by(APPS / CHANGED) {
                    let (namespace, name) = app(i);
                    let patch = change(&name, round);
                    store
                        .patch(resource, &namespace, &name, PatchKind::Merge, &patch, Target::Main)
                        .expect("a valid patch");
                }
                let busy = timed(&mut tick);
                for _ in 0..2 {
                    tick();
                }
                busy
            });
            median(samples.collect())
        };
        let scaled =
            changed_tick(&resources::REPLICA_SETS, &|_, round| json!({"spec": {"replicas": 4 + round}}));
        let renamed = changed_tick(
            &resources::HTTP_ROUTES,
            &|name, round| json!({"spec": {"hostnames": [format!("{name}-{round}.example.com")]}}),
        );
        let (namespace, _) = app(7);
        let list = median(
            (0..200)
                .map(|_| {
                    timed(|| {
                        let (services, _) =
                            store.list(&resources::SERVICES, Some(&namespace), &Selector::default());
                        assert_eq!(services.len(), 2 * APPS / NAMESPACES);
                    })
                })
                .collect(),
        );
        println!("tick with nothing changed: {idle:?}");
        println!("tick after {CHANGED} ReplicaSets changed: {scaled:?}");
        println!("tick after {CHANGED} routes changed: {renamed:?}");
        println!("list of one namespace's {} Services: {list:?}", 2 * APPS / NAMESPACES);
    }
}
