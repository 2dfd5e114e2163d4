//! The watch caches every pass decides from: one watch per kind, feeding a reflector store, the
//! indexes that answer "which objects belong to this Rollout" and "which Rollouts read this object",
//! and the triggers that reconcile exactly the Rollouts an event touches.
//!
//! A pass makes no reads of its own: the API server is shared by everything in the cluster, and
//! the watches already deliver every change. Staleness is handled where it matters:
//! - the Rollout's status write is guarded by the resourceVersion the pass decided from, so a pass
//!   on a stale Rollout is refused (409) before any action;
//! - every patch of a route is guarded by `test` ops of what the pass read;
//! - after its own writes, a Rollout's next pass waits until the caches show them
//!   ([`expectations`]), so that it never decides twice from the state it already acted on.
//!
//! Passes start only once every cache has listed once ([`Caches::wait_until_ready`]).

mod deployment;
pub mod expectations;
mod index;
mod listing;
mod replica_set;
mod route;
mod service;
mod slim;

use crate::api::{
    AnalysisRun, AnalysisTemplate, AnalysisTemplateSpec, ClusterAnalysisTemplate, NAMESPACE_CONFIGMAP,
    ROLLOUT_LABEL, Rollout, TemplateRef,
};
use crate::controller::Config;
use crate::controller::acting::Acquired;
use crate::controller::rollouts::{RouteKind, route_refs, template_refs};
pub use deployment::CachedDeployment;
use expectations::{Expectations, Kind, Seen, Target, Wanted};
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use index::{Index, ObjectKey};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use listing::{Cached, Listing};
pub use replica_set::CachedReplicaSet;
pub use route::CachedRoute;
use serde::de::DeserializeOwned;
pub use service::CachedService;
use slim::Slim;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// What a Rollout reads besides its own objects, as the reverse index keys it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    Route {
        kind: RouteKind,
        namespace: String,
        name: String,
    },
    Service {
        namespace: String,
        name: String,
    },
    /// The Deployment of a `workloadRef`.
    Deployment {
        namespace: String,
        name: String,
    },
    /// An AnalysisTemplate (with its namespace) or a ClusterAnalysisTemplate (without).
    Template {
        namespace: Option<String>,
        name: String,
    },
}

/// Everything a Rollout refers to by name.
fn references(rollout: &Rollout) -> Vec<Reference> {
    let namespace = rollout.namespace().unwrap_or_default();
    let canary = &rollout.spec.strategy.canary;
    let routes = route_refs(rollout).into_iter().map(|(kind, namespace, name)| Reference::Route {
        kind,
        namespace,
        name,
    });
    let services = [&canary.stable_service, &canary.canary_service]
        .into_iter()
        .map(|name| Reference::Service { namespace: namespace.clone(), name: name.clone() });
    let templates = template_refs(rollout).map(|r| Reference::Template {
        namespace: (!r.cluster_scope).then(|| namespace.clone()),
        name: r.template_name.clone(),
    });
    let workload = rollout
        .spec
        .workload_ref
        .iter()
        .map(|workload| Reference::Deployment { namespace: namespace.clone(), name: workload.name.clone() });
    routes.chain(services).chain(workload).chain(templates).collect()
}

/// The Rollout a ReplicaSet or AnalysisRun is labelled for.
fn labelled_for(object: &impl ResourceExt) -> Vec<ObjectKey> {
    let rollout = object.labels().get(ROLLOUT_LABEL);
    rollout.map(|name| (object.namespace().unwrap_or_default(), name.clone())).into_iter().collect()
}

/// The objects of `store` labelled for the Rollout `name` in `namespace`, found through `index` and
/// checked (the index may return an object of another Rollout whose key has the same hash), sorted
/// by name so that every pass sees them in one order.
fn labelled<K>(index: &RwLock<Index<ObjectKey>>, store: &Store<K>, namespace: &str, name: &str) -> Vec<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    let owner = (namespace.to_string(), name.to_string());
    let mut names: Vec<ObjectKey> = read(index).objects(&owner).cloned().collect();
    names.sort();
    names
        .iter()
        .filter_map(|(ns, n)| store.get(&ObjectRef::new(n).within(ns)))
        .filter(|object| labelled_for(object.as_ref()).contains(&owner))
        .collect()
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The caches, indexes and expectations; shared by both reconcilers.
pub struct Caches {
    pub rollouts: Store<Rollout>,
    replica_sets: Store<CachedReplicaSet>,
    runs: Store<AnalysisRun>,
    services: Store<CachedService>,
    deployments: Store<CachedDeployment>,
    http_routes: Store<CachedRoute>,
    grpc_routes: Store<CachedRoute>,
    templates: Store<AnalysisTemplate>,
    cluster_templates: Store<ClusterAnalysisTemplate>,
    /// The namespaces' notification targets: their `bellwether-notifications` ConfigMaps.
    pub notification_config_maps: Store<ConfigMap>,
    replica_sets_by_rollout: RwLock<Index<ObjectKey>>,
    runs_by_rollout: RwLock<Index<ObjectKey>>,
    /// The reverse index: which Rollouts read each route, Service and template.
    referenced_by: RwLock<Index<Reference>>,
    /// What each Rollout's next pass waits to see, by Rollout.
    rollout_writes: Mutex<Expectations<ObjectKey>>,
    /// What each AnalysisRun's next pass waits to see, by run.
    run_writes: Mutex<Expectations<ObjectKey>>,
    /// Which caches have listed once.
    listing: Listing,
}

/// The streams that drive the reconcilers, and the future that keeps every other watch going.
pub struct Watches {
    /// Rollouts as their watch delivers them: each is reconciled.
    pub rollouts: BoxStream<'static, Result<Rollout, watcher::Error>>,
    /// Rollouts to reconcile because an object they read changed.
    pub rollout_triggers: BoxStream<'static, ObjectRef<Rollout>>,
    /// AnalysisRuns to reconcile.
    pub run_triggers: BoxStream<'static, ObjectRef<AnalysisRun>>,
    /// Runs the watches of every other kind, until dropped.
    pub others: BoxFuture<'static, ()>,
}

/// Starts a watch of every kind a decision reads; nothing runs until the returned streams and
/// future are polled.
pub fn watch(client: &Client, config: &Config) -> (Arc<Caches>, Watches) {
    let (rollouts, rollout_writer) = reflector::store::<Rollout>();
    let (replica_sets, replica_set_writer) = reflector::store::<CachedReplicaSet>();
    let (runs, run_writer) = reflector::store::<AnalysisRun>();
    let (services, service_writer) = reflector::store::<CachedService>();
    let (deployments, deployment_writer) = reflector::store::<CachedDeployment>();
    let route_writer = |kind: RouteKind| Writer::<CachedRoute>::new(kind.api_resource());
    let (http_writer, grpc_writer) = (route_writer(RouteKind::Http), route_writer(RouteKind::Grpc));
    let (templates, template_writer) = reflector::store::<AnalysisTemplate>();
    let (cluster_templates, cluster_template_writer) = reflector::store::<ClusterAnalysisTemplate>();
    let (notification_config_maps, config_map_writer) = reflector::store::<ConfigMap>();
    let caches = Arc::new(Caches {
        rollouts,
        replica_sets,
        runs,
        services,
        deployments,
        http_routes: http_writer.as_reader(),
        grpc_routes: grpc_writer.as_reader(),
        templates,
        cluster_templates,
        notification_config_maps,
        replica_sets_by_rollout: RwLock::default(),
        runs_by_rollout: RwLock::default(),
        referenced_by: RwLock::default(),
        rollout_writes: Mutex::default(),
        run_writes: Mutex::default(),
        listing: Listing::default(),
    });
    let (trigger, rollout_triggers) = mpsc::unbounded::<ObjectRef<Rollout>>();
    let (run_trigger, run_triggers) = mpsc::unbounded::<ObjectRef<AnalysisRun>>();
    let selected = watcher::Config::default().labels(&config.selector());
    let everything = watcher::Config::default;

    let rollout_stream = {
        let caches = caches.clone();
        let stream = watcher(config.api::<Rollout>(client), selected.clone());
        reflector::reflector(rollout_writer, stream)
            .inspect_ok(move |event| {
                write(&caches.referenced_by).apply(event, references);
                caches.note_listed(event, Cached::Rollouts);
            })
            .applied_objects()
            .boxed()
    };

    let mut others: Vec<BoxFuture<'static, ()>> = Vec::new();
    let owned = watcher::Config::default().labels(ROLLOUT_LABEL);
    let replica_sets = config.api::<CachedReplicaSet>(client);
    others.push(drive(&caches, Cached::ReplicaSets, replica_sets, owned, replica_set_writer, {
        let trigger = trigger.clone();
        move |caches, event| {
            write(&caches.replica_sets_by_rollout).apply(event, labelled_for);
            caches.trigger_owners(event, &trigger);
        }
    }));
    let runs = config.api::<AnalysisRun>(client);
    others.push(drive(&caches, Cached::AnalysisRuns, runs, selected, run_writer, {
        let trigger = trigger.clone();
        move |caches, event| {
            write(&caches.runs_by_rollout).apply(event, labelled_for);
            caches.trigger_owners(event, &trigger);
            if let Some(run) = touched(event) {
                let _ = run_trigger.unbounded_send(ObjectRef::from_obj(run));
            }
        }
    }));
    let services = config.api::<CachedService>(client);
    others.push(drive(&caches, Cached::Services, services, everything(), service_writer, {
        let trigger = trigger.clone();
        move |caches, event: &Event<CachedService>| {
            caches.trigger_referencing(event, &trigger, |service| Reference::Service {
                namespace: service.namespace().unwrap_or_default(),
                name: service.name_any(),
            })
        }
    }));
    let deployments = config.api::<CachedDeployment>(client);
    others.push(drive(&caches, Cached::Deployments, deployments, everything(), deployment_writer, {
        let trigger = trigger.clone();
        move |caches, event: &Event<CachedDeployment>| {
            caches.trigger_referencing(event, &trigger, |deployment| Reference::Deployment {
                namespace: deployment.namespace().unwrap_or_default(),
                name: deployment.name_any(),
            })
        }
    }));
    let routes = [
        (RouteKind::Http, http_writer, Cached::HttpRoutes),
        (RouteKind::Grpc, grpc_writer, Cached::GrpcRoutes),
    ];
    for (kind, writer, cached) in routes {
        let resource = kind.api_resource();
        let api = match &config.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let trigger = trigger.clone();
        others.push(drive(
            &caches,
            cached,
            api,
            everything(),
            writer,
            move |caches, event: &Event<CachedRoute>| {
                caches.trigger_referencing(event, &trigger, |route| Reference::Route {
                    kind,
                    namespace: route.namespace().unwrap_or_default(),
                    name: route.name_any(),
                })
            },
        ));
    }
    let templates = config.api::<AnalysisTemplate>(client);
    others.push(drive(&caches, Cached::AnalysisTemplates, templates, everything(), template_writer, {
        let trigger = trigger.clone();
        move |caches, event: &Event<AnalysisTemplate>| {
            caches.trigger_referencing(event, &trigger, |template| Reference::Template {
                namespace: template.namespace(),
                name: template.name_any(),
            })
        }
    }));
    let cluster_templates = Api::<ClusterAnalysisTemplate>::all(client.clone());
    others.push(drive(
        &caches,
        Cached::ClusterAnalysisTemplates,
        cluster_templates,
        everything(),
        cluster_template_writer,
        move |caches, event: &Event<ClusterAnalysisTemplate>| {
            caches.trigger_referencing(event, &trigger, |template| Reference::Template {
                namespace: None,
                name: template.name_any(),
            })
        },
    ));

    let notifications = watcher::Config::default().fields(&format!("metadata.name={NAMESPACE_CONFIGMAP}"));
    let config_maps = config.api::<ConfigMap>(client);
    others.push(drive(&caches, Cached::ConfigMaps, config_maps, notifications, config_map_writer, |_, _| {}));

    let watches = Watches {
        rollouts: rollout_stream,
        rollout_triggers: rollout_triggers.boxed(),
        run_triggers: run_triggers.boxed(),
        others: futures::future::join_all(others).map(drop).boxed(),
    };
    (caches, watches)
}

/// A watch of `api` with the fields no decision reads removed, restarted with backoff after an
/// error.
fn watcher<K>(api: Api<K>, config: watcher::Config) -> impl futures::Stream<Item = watcher::Result<Event<K>>>
where
    K: Slim + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, config).default_backoff().modify(K::slim)
}

/// Runs a watch of `api` into `writer`, the cache of `kind`, calling `on_event` after each event is
/// stored and noting when the cache has listed. A failed watch is logged and restarted with
/// backoff, so the future never ends on its own.
fn drive<K>(
    caches: &Arc<Caches>,
    kind: Cached,
    api: Api<K>,
    config: watcher::Config,
    mut writer: Writer<K>,
    mut on_event: impl FnMut(&Caches, &Event<K>) + Send + 'static,
) -> BoxFuture<'static, ()>
where
    K: Slim + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let caches = caches.clone();
    watcher(api, config)
        .for_each(move |event| {
            match event {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    on_event(&caches, &event);
                    caches.note_listed(&event, kind);
                }
                Err(error) => tracing::warn!(%error, "a watch failed; retrying"),
            }
            futures::future::ready(())
        })
        .boxed()
}

/// The object an event adds, changes or removes.
fn touched<K>(event: &Event<K>) -> Option<&K> {
    match event {
        Event::Apply(object) | Event::Delete(object) | Event::InitApply(object) => Some(object),
        Event::Init | Event::InitDone => None,
    }
}

/// What a cache shows of an object: its UID and resourceVersion.
fn seen(object: &impl Resource) -> Option<Seen> {
    let metadata = object.meta();
    Some(Seen { uid: metadata.uid.clone()?, version: metadata.resource_version.clone()? })
}

/// `object` as an expectation's target.
pub fn target(kind: Kind, object: &impl Resource) -> Target {
    let metadata = object.meta();
    Target {
        kind,
        namespace: metadata.namespace.clone().unwrap_or_default(),
        name: metadata.name.clone().unwrap_or_default(),
    }
}

/// What a cache must show after a write that returned `written`: it, or a later version. `existed`
/// is false for a create.
pub fn written(written: &impl Resource, existed: bool) -> Wanted {
    let metadata = written.meta();
    Wanted::Written {
        uid: metadata.uid.clone().unwrap_or_default(),
        version: metadata.resource_version.clone().unwrap_or_default(),
        existed,
    }
}

/// What a cache must show after a write guarded by `read` was refused: a newer version.
pub fn newer_than(read: &impl Resource) -> Wanted {
    Wanted::NewerThan { version: read.meta().resource_version.clone().unwrap_or_default() }
}

impl Caches {
    /// Waits until every cache has listed once.
    pub async fn wait_until_ready(&self) {
        self.listing.wait().await;
    }

    /// The kinds whose cache has not listed yet.
    pub fn unsynced(&self) -> Vec<&'static str> {
        self.listing.unlisted()
    }

    /// Notes that the cache of `kind` has listed, once `event` (already stored) says so.
    fn note_listed<K>(&self, event: &Event<K>, kind: Cached) {
        if matches!(event, Event::InitDone) {
            self.listing.listed(kind);
        }
    }

    /// Sends the Rollout an event's ReplicaSet or AnalysisRun is labelled for, if it is cached.
    fn trigger_owners<K: ResourceExt>(
        &self,
        event: &Event<K>,
        trigger: &mpsc::UnboundedSender<ObjectRef<Rollout>>,
    ) {
        for (namespace, name) in touched(event).into_iter().flat_map(labelled_for) {
            let rollout = ObjectRef::new(&name).within(&namespace);
            if self.rollouts.get(&rollout).is_some() {
                let _ = trigger.unbounded_send(rollout);
            }
        }
    }

    /// Sends every Rollout that reads the object of an event.
    fn trigger_referencing<K>(
        &self,
        event: &Event<K>,
        trigger: &mpsc::UnboundedSender<ObjectRef<Rollout>>,
        reference: impl Fn(&K) -> Reference,
    ) {
        let Some(object) = touched(event) else { return };
        for rollout in self.referencing(&reference(object)) {
            let _ = trigger.unbounded_send(rollout);
        }
    }

    /// The Rollouts that read `reference`, and rarely one that reads another object whose key has
    /// the same hash ([`index`]): a pass too many, which decides nothing new.
    pub fn referencing(&self, reference: &Reference) -> Vec<ObjectRef<Rollout>> {
        read(&self.referenced_by)
            .objects(reference)
            .map(|(namespace, name)| ObjectRef::new(name).within(namespace))
            .collect()
    }

    /// The Rollouts that `acquired` covers.
    pub fn rollouts_in(&self, acquired: Acquired) -> Vec<ObjectRef<Rollout>> {
        let covered = |rollout: &Arc<Rollout>| {
            acquired.covers(&rollout.namespace().unwrap_or_default(), &rollout.name_any())
        };
        self.rollouts.state().iter().filter(|r| covered(r)).map(|r| ObjectRef::from_obj(r.as_ref())).collect()
    }

    /// The AnalysisRuns of the Rollouts that `acquired` covers.
    pub fn runs_in(&self, acquired: Acquired) -> Vec<ObjectRef<AnalysisRun>> {
        let covered = |run: &Arc<AnalysisRun>| {
            labelled_for(run.as_ref()).iter().any(|(namespace, name)| acquired.covers(namespace, name))
        };
        self.runs.state().iter().filter(|r| covered(r)).map(|r| ObjectRef::from_obj(r.as_ref())).collect()
    }

    /// The ReplicaSets labelled for the Rollout `name` in `namespace`.
    pub fn replica_sets_of(&self, namespace: &str, name: &str) -> Vec<Arc<CachedReplicaSet>> {
        labelled(&self.replica_sets_by_rollout, &self.replica_sets, namespace, name)
    }

    /// The AnalysisRuns labelled for the Rollout `name` in `namespace`.
    pub fn runs_of(&self, namespace: &str, name: &str) -> Vec<Arc<AnalysisRun>> {
        labelled(&self.runs_by_rollout, &self.runs, namespace, name)
    }

    pub fn run(&self, namespace: &str, name: &str) -> Option<Arc<AnalysisRun>> {
        self.runs.get(&ObjectRef::new(name).within(namespace))
    }

    pub fn runs(&self) -> Store<AnalysisRun> {
        self.runs.clone()
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<CachedService>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Arc<CachedDeployment>> {
        self.deployments.get(&ObjectRef::new(name).within(namespace))
    }

    pub fn route(&self, kind: RouteKind, namespace: &str, name: &str) -> Option<Arc<CachedRoute>> {
        let store = match kind {
            RouteKind::Http => &self.http_routes,
            RouteKind::Grpc => &self.grpc_routes,
        };
        store.get(&ObjectRef::new_with(name, kind.api_resource()).within(namespace))
    }

    /// The template `reference` names, for a Rollout in `namespace`, with its resourceVersion.
    pub fn template(
        &self,
        reference: &TemplateRef,
        namespace: &str,
    ) -> Option<(AnalysisTemplateSpec, Option<String>)> {
        let name = &reference.template_name;
        if reference.cluster_scope {
            let template = self.cluster_templates.get(&ObjectRef::new(name))?;
            Some((template.spec.clone().into(), template.resource_version()))
        } else {
            let template = self.templates.get(&ObjectRef::new(name).within(namespace))?;
            Some((template.spec.clone(), template.resource_version()))
        }
    }

    /// What the caches show of `target`.
    fn seen(&self, target: &Target) -> Option<Seen> {
        let (namespace, name) = (target.namespace.as_str(), target.name.as_str());
        match target.kind {
            Kind::Rollout => seen(self.rollouts.get(&ObjectRef::new(name).within(namespace))?.as_ref()),
            Kind::ReplicaSet => {
                seen(self.replica_sets.get(&ObjectRef::new(name).within(namespace))?.as_ref())
            }
            Kind::AnalysisRun => seen(self.run(namespace, name)?.as_ref()),
            Kind::Service => seen(self.service(namespace, name)?.as_ref()),
            Kind::Deployment => seen(self.deployment(namespace, name)?.as_ref()),
            Kind::HttpRoute => seen(self.route(RouteKind::Http, namespace, name)?.as_ref()),
            Kind::GrpcRoute => seen(self.route(RouteKind::Grpc, namespace, name)?.as_ref()),
        }
    }

    /// The next pass of the Rollout waits, for at most `patience`, until `target` is `wanted`.
    pub fn expect_for_rollout(&self, rollout: &Rollout, target: Target, wanted: Wanted, patience: Duration) {
        let subject = (rollout.namespace().unwrap_or_default(), rollout.name_any());
        lock(&self.rollout_writes).expect(subject, target, wanted, Instant::now(), patience);
    }

    /// The next pass of the AnalysisRun waits, for at most `patience`, until it is `wanted`.
    pub fn expect_for_run(&self, run: &AnalysisRun, wanted: Wanted, patience: Duration) {
        let subject = (run.namespace().unwrap_or_default(), run.name_any());
        let target =
            Target { kind: Kind::AnalysisRun, namespace: subject.0.clone(), name: subject.1.clone() };
        lock(&self.run_writes).expect(subject, target, wanted, Instant::now(), patience);
    }

    /// Whether the Rollout may be decided on now: see [`expectations`].
    pub fn check_rollout(&self, rollout: &Rollout) -> expectations::Check {
        let subject = (rollout.namespace().unwrap_or_default(), rollout.name_any());
        lock(&self.rollout_writes).check(&subject, Instant::now(), |target| self.seen(target))
    }

    /// Whether the AnalysisRun may be measured now: see [`expectations`].
    pub fn check_run(&self, run: &AnalysisRun) -> expectations::Check {
        let subject = (run.namespace().unwrap_or_default(), run.name_any());
        lock(&self.run_writes).check(&subject, Instant::now(), |target| self.seen(target))
    }

    /// Forgets what a Rollout that is gone waited for.
    pub fn forget_rollout(&self, rollout: &Rollout) {
        let subject = (rollout.namespace().unwrap_or_default(), rollout.name_any());
        lock(&self.rollout_writes).forget(&subject);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
