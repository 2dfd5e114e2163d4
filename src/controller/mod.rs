//! The controller: the kube-rs shell that turns the cluster into the engine's observation and the
//! engine's actions into API calls. It decides nothing itself.
//!
//! Two reconcilers run side by side:
//! - [`rollouts`]: each pass fetches a Rollout's objects, asks the engine, writes the status and
//!   carries out the actions;
//! - [`measure`]: each pass measures an AnalysisRun's due metrics and records the verdict.
//!
//! The translations between objects and the engine ([`routes`], [`replica_sets`]) are pure
//! functions over the objects, tested without an API server.

pub mod alerts;
pub mod error;
pub mod leader;
pub mod measure;
pub mod notify;
pub mod replica_sets;
pub mod requests;
pub mod rollouts;
pub mod routes;
pub mod secrets;

use crate::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use crate::metrics::providers::Providers;
use crate::server::{Health, Metrics};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use leader::Leadership;
use notify::Notifier;
use rollouts::RouteKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The label that assigns a Rollout to one controller instance (`--instance-id`). An instance with
/// an id manages only Rollouts labelled with it; one without manages only unlabelled Rollouts.
pub const INSTANCE_LABEL: &str = "bellwether.dev/instance-id";

/// What one controller process manages, from its flags.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// One namespace, or every namespace when `None`.
    pub namespace: Option<String>,
    pub instance_id: Option<String>,
    /// Reconciles in flight at once, per reconciler.
    pub concurrency: u16,
    /// Where the Secrets of ClusterAnalysisTemplates' metrics are read: the controller's own
    /// namespace, since a cluster-wide template belongs to no Rollout's namespace.
    pub cluster_secrets_namespace: String,
}

impl Config {
    /// The label selector of the Rollouts (and AnalysisRuns) this instance manages.
    pub fn selector(&self) -> String {
        match &self.instance_id {
            Some(id) => format!("{INSTANCE_LABEL}={id}"),
            None => format!("!{INSTANCE_LABEL}"),
        }
    }

    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
}

/// Everything a reconcile pass needs, shared by both reconcilers.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub providers: Providers,
    pub leadership: Leadership,
    /// Tells webhooks what happened to canaries, without holding up the pass.
    pub notifier: Notifier,
    /// The Secrets the controller was granted and may read.
    pub readable_secrets: secrets::ReadableSecrets,
    /// When this instance first acted as the leader: analysis deadlines and lateness count from no
    /// earlier, so that the time no controller measured is not held against a run.
    measuring_since: std::sync::OnceLock<chrono::DateTime<chrono::Utc>>,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Metrics,
        providers: Providers,
        leadership: Leadership,
        notifier: Notifier,
        readable_secrets: secrets::ReadableSecrets,
        identity: &str,
    ) -> Self {
        let reporter = Reporter { controller: "bellwether".into(), instance: Some(identity.into()) };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            providers,
            leadership,
            notifier,
            readable_secrets,
            measuring_since: std::sync::OnceLock::new(),
        }
    }

    /// The clock of a pass of the leader, which this instance is when it calls this.
    pub fn clock(&self) -> crate::engine::Clock {
        let now = chrono::Utc::now();
        crate::engine::Clock { now, measuring_since: *self.measuring_since.get_or_init(|| now) }
    }
}

/// Runs both reconcilers until `shutdown` turns true, then lets passes in flight finish.
///
/// Standbys (not the leader) keep their watch caches warm and stay ready, but their passes do
/// nothing; on becoming the leader every object is reconciled at once.
pub async fn run(ctx: Arc<Context>, config: Config, health: Health, shutdown: watch::Receiver<bool>) {
    let client = ctx.client.clone();
    let selected = watcher::Config::default().labels(&config.selector());
    let stopping = |mut shutdown: watch::Receiver<bool>| async move {
        // A dropped sender also means stop.
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    // Losing leadership is final for a process (it exits and restarts as a standby), so each
    // reconciler needs one reconcile-everything, when leadership is won.
    let acquired = |leadership: Leadership| futures::stream::once(async move { leadership.acquired().await });

    let runtime_config = kube::runtime::controller::Config::default().concurrency(config.concurrency);
    let rollouts = Controller::new(config.api::<Rollout>(&client), selected.clone());
    let rollout_store = rollouts.store();
    let route_api = |kind: RouteKind| -> Api<DynamicObject> {
        match &config.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &kind.api_resource()),
            None => Api::all_with(client.clone(), &kind.api_resource()),
        }
    };
    let (http_store, grpc_store) = (rollout_store.clone(), rollout_store.clone());
    let service_store = rollout_store.clone();
    let (template_store, cluster_template_store) = (rollout_store.clone(), rollout_store.clone());
    let rollouts = rollouts
        .owns(config.api::<ReplicaSet>(&client), watcher::Config::default().labels(crate::api::ROLLOUT_LABEL))
        .owns(config.api::<AnalysisRun>(&client), selected.clone())
        .watches_with(
            route_api(RouteKind::Http),
            RouteKind::Http.api_resource(),
            watcher::Config::default(),
            move |route| referencing_route(&http_store, RouteKind::Http, &route),
        )
        .watches_with(
            route_api(RouteKind::Grpc),
            RouteKind::Grpc.api_resource(),
            watcher::Config::default(),
            move |route| referencing_route(&grpc_store, RouteKind::Grpc, &route),
        )
        .watches(config.api::<Service>(&client), watcher::Config::default(), move |service| {
            referencing_service(&service_store, &service)
        })
        .watches(config.api::<AnalysisTemplate>(&client), watcher::Config::default(), move |template| {
            referencing_template(&template_store, &template.name_any(), template.namespace(), false)
        })
        .watches(
            Api::<ClusterAnalysisTemplate>::all(client.clone()),
            watcher::Config::default(),
            move |template| referencing_template(&cluster_template_store, &template.name_any(), None, true),
        )
        .reconcile_all_on(acquired(ctx.leadership.clone()))
        .graceful_shutdown_on(stopping(shutdown.clone()))
        .with_config(runtime_config.clone())
        .run(rollouts::reconcile, rollouts::error_policy, ctx.clone())
        .for_each(|result| log_failure("rollouts", result));

    let runs = Controller::new(config.api::<AnalysisRun>(&client), selected);
    let run_store = runs.store();
    let run_context = Arc::new(measure::Runs {
        ctx: ctx.clone(),
        rollouts: rollout_store.clone(),
        cluster_secrets_namespace: config.cluster_secrets_namespace.clone(),
    });
    let runs = runs
        .reconcile_all_on(acquired(ctx.leadership.clone()))
        .graceful_shutdown_on(stopping(shutdown.clone()))
        .with_config(runtime_config.clone())
        .run(measure::reconcile, measure::error_policy, run_context)
        .for_each(|result| log_failure("analysisruns", result));

    // Readiness follows the caches. The reconcilers start passes only once their caches have
    // synced, and a shutdown ends the watches that would sync them, so a shutdown before then has
    // nothing in flight to wait for and ends the loop at once instead of waiting forever.
    let startup = {
        let health = health.clone();
        let synced = async move {
            rollout_store.wait_until_ready().await.ok();
            health.synced("rollouts");
            run_store.wait_until_ready().await.ok();
            health.synced("analysisruns");
        };
        let shutdown = stopping(shutdown.clone());
        async move {
            tokio::select! {
                _ = synced => std::future::pending::<()>().await,
                _ = shutdown => {}
            }
        }
    };
    let heartbeat = {
        let health = health.clone();
        async move {
            loop {
                health.beat();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tokio::select! {
        _ = futures::future::join(rollouts, runs) => {}
        _ = startup => {}
        _ = heartbeat => {}
    }
    health.stopped();
}

/// Logs what the reconcile loop could not do outside a pass: a watch that failed (it is retried
/// with backoff) or a request for an object that is gone. Failed passes are logged by their error
/// policies.
async fn log_failure<T, E: std::error::Error>(
    reconciler: &'static str,
    result: Result<T, kube::runtime::controller::Error<error::Error, E>>,
) {
    match result {
        Err(kube::runtime::controller::Error::ReconcilerFailed(..)) | Ok(_) => {}
        Err(error) => tracing::warn!(reconciler, %error, "reconcile loop"),
    }
}

/// The Rollouts in `store` that manage the route `route` of `kind`.
fn referencing_route(
    store: &Store<Rollout>,
    kind: RouteKind,
    route: &DynamicObject,
) -> Vec<ObjectRef<Rollout>> {
    let (namespace, name) = (route.namespace().unwrap_or_default(), route.name_any());
    store
        .state()
        .iter()
        .filter(|rollout| {
            rollouts::route_refs(rollout)
                .iter()
                .any(|(k, ns, n)| *k == kind && *ns == namespace && *n == name)
        })
        .map(|rollout| ObjectRef::from_obj(rollout.as_ref()))
        .collect()
}

/// The Rollouts in `store` that refer to the template `name` (in `namespace`, or cluster-scoped),
/// so that creating or fixing a template is acted on at once.
fn referencing_template(
    store: &Store<Rollout>,
    name: &str,
    namespace: Option<String>,
    cluster_scope: bool,
) -> Vec<ObjectRef<Rollout>> {
    store
        .state()
        .iter()
        .filter(|rollout| cluster_scope || rollout.namespace() == namespace)
        .filter(|rollout| {
            rollouts::template_refs(rollout)
                .any(|r| r.template_name == name && r.cluster_scope == cluster_scope)
        })
        .map(|rollout| ObjectRef::from_obj(rollout.as_ref()))
        .collect()
}

/// The Rollouts in `store` whose stable or canary Service is `service`.
fn referencing_service(store: &Store<Rollout>, service: &Service) -> Vec<ObjectRef<Rollout>> {
    let (namespace, name) = (service.namespace(), service.name_any());
    store
        .state()
        .iter()
        .filter(|rollout| {
            let canary = &rollout.spec.strategy.canary;
            rollout.namespace() == namespace
                && (canary.stable_service == name || canary.canary_service == name)
        })
        .map(|rollout| ObjectRef::from_obj(rollout.as_ref()))
        .collect()
}
