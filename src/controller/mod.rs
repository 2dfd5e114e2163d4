//! The controller: the kube-rs shell that turns the cluster into the engine's observation and the
//! engine's actions into API calls. It decides nothing itself.
//!
//! Two reconcilers run side by side, both over the watch caches of [`caches`]:
//! - [`rollouts`]: each pass gathers a Rollout's objects from the caches, asks the engine, writes
//!   the status and carries out the actions;
//! - [`measure`]: each pass measures an AnalysisRun's due metrics and records the verdict; a job
//!   metric's Job runs over several passes ([`jobs`]).
//!
//! The translations between objects and the engine ([`routes`], [`replica_sets`]) are pure
//! functions over the objects, tested without an API server.

pub mod acting;
pub mod alerts;
pub mod caches;
pub mod error;
pub mod events;
pub mod jobs;
pub mod leader;
pub mod measure;
pub mod notify;
pub mod replica_sets;
pub mod requests;
pub mod rollouts;
pub mod routes;
pub mod secrets;
pub mod shards;

use crate::metrics::providers::Providers;
use crate::server::{Health, Metrics};
use acting::Acting;
use caches::{Caches, Watches};
use events::Recorder;
use futures::StreamExt;
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use notify::{Notifier, RetryPolicy};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long the caches may take to list before the controller says which have not.
const UNSYNCED_WARNING: Duration = Duration::from_secs(20);

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
    /// How often a Rollout is reconciled when nothing it reads changes and the engine asks for no
    /// wake-up.
    pub resync: Duration,
    /// Whether job metrics run their Jobs (`--job-metrics`); without it each of their measurements
    /// is an error that says so.
    pub job_metrics: bool,
}

impl Config {
    /// The label selector of the Rollouts (and AnalysisRuns) this instance manages.
    pub fn selector(&self) -> String {
        match &self.instance_id {
            Some(id) => format!("{INSTANCE_LABEL}={id}"),
            None => format!("!{INSTANCE_LABEL}"),
        }
    }

    pub fn api<K>(&self, client: &Client) -> Api<K>
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
    /// Which Rollouts this replica acts on.
    pub acting: Acting,
    /// Tells webhooks what happened to canaries, without holding up the pass.
    pub notifier: Notifier,
    /// The Secrets the controller was granted and may read.
    pub readable_secrets: secrets::ReadableSecrets,
    /// What every pass decides from.
    pub caches: Arc<Caches>,
    /// What decisions derive from each Rollout's spec and templates, kept while neither changes.
    pub plans: rollouts::Plans,
    /// See [`Config::resync`].
    pub resync: Duration,
    /// When this instance first acted as the leader: analysis deadlines and lateness count from no
    /// earlier, so that the time no controller measured is not held against a run.
    measuring_since: std::sync::OnceLock<chrono::DateTime<chrono::Utc>>,
}

impl Context {
    /// The context of the controller `identity`, with its notifier started: webhook notices go out
    /// from a task of its own, to the targets of the cached ConfigMaps, with the Secrets it may read.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        client: Client,
        metrics: Metrics,
        providers: Providers,
        acting: Acting,
        readable_secrets: secrets::ReadableSecrets,
        caches: Arc<Caches>,
        config: &Config,
        identity: &str,
    ) -> Self {
        let notifier = Notifier::start(
            client.clone(),
            metrics.clone(),
            RetryPolicy::default(),
            readable_secrets.clone(),
            caches.notification_config_maps.clone(),
        );
        let reporter = Reporter { controller: "bellwether".into(), instance: Some(identity.into()) };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            providers,
            acting,
            notifier,
            readable_secrets,
            caches,
            plans: rollouts::Plans::default(),
            resync: config.resync,
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
/// Standbys (not the leader, or not holding a shard) keep their watch caches warm and stay ready,
/// but their passes do nothing; on becoming the leader every object is reconciled at once, and on
/// taking a shard every object of the shard.
pub async fn run(
    ctx: Arc<Context>,
    config: Config,
    watches: Watches,
    health: Health,
    shutdown: watch::Receiver<bool>,
) {
    let stopping = |mut shutdown: watch::Receiver<bool>| async move {
        // A dropped sender also means stop.
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let Watches { rollouts, rollout_triggers, run_triggers, others } = watches;
    let caches = ctx.caches.clone();
    // What this replica comes to act on (leadership won, a shard taken) was skipped until then.
    let acquired_rollouts = {
        let caches = caches.clone();
        ctx.acting.acquired().flat_map(move |acquired| futures::stream::iter(caches.rollouts_in(acquired)))
    };
    let acquired_runs = {
        let caches = caches.clone();
        ctx.acting.acquired().flat_map(move |acquired| futures::stream::iter(caches.runs_in(acquired)))
    };

    let runtime_config = kube::runtime::controller::Config::default().concurrency(config.concurrency);
    let rollouts = Controller::for_stream(rollouts, caches.rollouts.clone())
        .reconcile_on(rollout_triggers)
        .reconcile_on(acquired_rollouts)
        .graceful_shutdown_on(stopping(shutdown.clone()))
        .with_config(runtime_config.clone())
        .run(rollouts::reconcile, rollouts::error_policy, ctx.clone())
        .for_each(|result| log_failure("rollouts", result));

    let run_context = Arc::new(measure::Runs {
        ctx: ctx.clone(),
        cluster_secrets_namespace: config.cluster_secrets_namespace.clone(),
        job_metrics: config.job_metrics,
    });
    let runs = Controller::for_stream(futures::stream::empty(), caches.runs())
        .reconcile_on(run_triggers)
        .reconcile_on(acquired_runs)
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
            let started = std::time::Instant::now();
            let all = caches.wait_until_ready();
            tokio::pin!(all);
            // A cache that never lists (a watch the API server keeps refusing, say) keeps the
            // controller unready and every pass waiting: say which, so that it can be fixed.
            while tokio::time::timeout(UNSYNCED_WARNING, &mut all).await.is_err() {
                tracing::warn!(waited = ?started.elapsed(), unsynced = ?caches.unsynced(), "watch caches not listed yet; no pass runs until they are");
            }
            tracing::info!(took = ?started.elapsed(), "watch caches listed");
            health.synced("rollouts");
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
        _ = others => {}
    }
    health.stopped();
}

/// A hash of `text` that is the same in every replica and every release (unlike the standard
/// library's), for splitting work by name.
pub fn stable_hash(text: &str) -> u64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 8 bytes"))
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
