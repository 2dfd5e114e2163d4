//! What every end-to-end test starts from: a cluster (the in-process test API server, or a real
//! cluster when `BELLWETHER_E2E_KUBECONFIG` names its kubeconfig), a namespace of its own with the
//! Services, the HTTPRoute and the analysis template, and the controller running in-process.
//!
//! Waits are bounded polls on a condition, never assertions about how long something took.

use crate::apiserver::{CallLog, Options, TestApiServer};
use crate::app::telemetry;
use crate::controller_calls::{CONTROLLER_CALLS, JOB_METRIC_CALLS};
use bellwether::api::{AnalysisTemplate, Rollout};
use bellwether::cli::controller::{ControllerArgs, serve};
use bellwether::engine::revision_of;
use clap::Parser;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const ROLLOUT: &str = "web";
pub const STABLE: &str = "web-stable";
pub const CANARY: &str = "web-canary";
pub const ROUTE: &str = "web";
pub const TEMPLATE: &str = "error-rate";
/// The error ratio of a good revision, within the template's 1% limit, and of a bad one: five
/// times as many errors.
pub const GOOD: f64 = 0.004;
pub const BAD: f64 = GOOD * 5.0;
/// How long any one wait may take before the test fails; generous, for slow machines.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Where the test's objects live, and the client that reaches them.
pub struct Cluster {
    /// The in-process API server; `None` against a real cluster.
    pub server: Option<TestApiServer>,
    pub client: Client,
    pub namespace: String,
}

/// Whether the suite runs against a real cluster; tests that need the test server's fault
/// injection skip themselves then.
pub fn real_cluster() -> Option<String> {
    std::env::var("BELLWETHER_E2E_KUBECONFIG").ok().filter(|path| !path.is_empty())
}

impl Cluster {
    /// A fresh namespace named after `test`, with the Services, the route and the template.
    pub async fn start(test: &str) -> Self {
        Self::start_with(test, Options::default()).await
    }

    /// [`Self::start`] with a test API server that behaves as `options` say (against a real
    /// cluster they do not apply).
    pub async fn start_with(test: &str, options: Options) -> Self {
        // The controller's logs, shown for failed tests; `RUST_LOG` filters them.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("bellwether=debug")),
            )
            .with_test_writer()
            .try_init();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let namespace = format!("e2e-{test}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let (server, client) = match real_cluster() {
            Some(path) => {
                let kubeconfig =
                    kube::config::Kubeconfig::read_from(&path).expect("reading the e2e kubeconfig");
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .expect("a client configuration from the e2e kubeconfig");
                (None, Client::try_from(config).expect("a client for the e2e cluster"))
            }
            None => {
                let server = TestApiServer::start_with(Options {
                    replica_set_delay: Duration::from_millis(300),
                    ..options
                })
                .await;
                let client = server.client();
                (Some(server), client)
            }
        };
        let cluster = Self { server, client, namespace };
        cluster.install().await;
        cluster
    }

    async fn install(&self) {
        let ns = self.namespace.as_str();
        if self.server.is_none() {
            for crd in bellwether::api::crds() {
                let name = crd.metadata.name.clone().unwrap_or_default();
                Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(
                    self.client.clone(),
                )
                .patch(&name, &PatchParams::apply("bellwether-e2e").force(), &Patch::Apply(&crd))
                .await
                .expect("installing a CRD");
            }
            let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
            Api::<Namespace>::all(self.client.clone())
                .create(&PostParams::default(), &namespace)
                .await
                .expect("creating the test namespace");
            // The Gateway that the route's parentRef names, of the cluster's Gateway controller.
            let class = std::env::var("BELLWETHER_E2E_GATEWAY_CLASS").unwrap_or_else(|_| "eg".into());
            let gateway = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                "gateway.networking.k8s.io",
                "v1",
                "Gateway",
            ));
            let object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {"name": "gateway"},
                "spec": {"gatewayClassName": class, "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
            }))
            .unwrap();
            Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &gateway)
                .create(&PostParams::default(), &object)
                .await
                .expect("creating the test Gateway");
        }
        for service in [STABLE, CANARY] {
            create::<Service>(
                &self.client,
                ns,
                json!({
                    "metadata": {"name": service},
                    "spec": {"selector": {"app": ROLLOUT}, "ports": [{"port": 80, "targetPort": 8080}]},
                }),
            )
            .await;
        }
        self.create_route().await;
        let prometheus = telemetry().prometheus.address();
        self.create_template(
            TEMPLATE,
            json!({"metrics": [{
                "name": "error-rate",
                "interval": "1s",
                // The canary's first requests need a couple of scrapes to show in rate().
                "initialDelay": "2s",
                "count": 3,
                "consecutiveErrorLimit": 2,
                "provider": {"prometheus": {
                    "address": prometheus,
                    "timeout": "2s",
                    "query": "sum(rate(http_requests_total{namespace=\"{{rollout.namespace}}\", revision=\"{{revision}}\", code=~\"5..\"}[2s])) / sum(rate(http_requests_total{namespace=\"{{rollout.namespace}}\", revision=\"{{revision}}\"}[2s]))",
                }},
                "threshold": {"max": 0.01},
            }]}),
        )
        .await;
    }

    /// Creates the AnalysisTemplate `name` with `spec`.
    pub async fn create_template(&self, name: &str, spec: Value) {
        create::<AnalysisTemplate>(
            &self.client,
            &self.namespace,
            json!({
                "apiVersion": "bellwether.dev/v1alpha1",
                "kind": "AnalysisTemplate",
                "metadata": {"name": name},
                "spec": spec,
            }),
        )
        .await;
    }

    /// The HTTPRoute splitting traffic between the two Services, all on stable.
    pub async fn create_route(&self) {
        create::<HttpRoute>(
            &self.client,
            &self.namespace,
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": ROUTE},
                "spec": {
                    "parentRefs": [{"name": "gateway"}],
                    "rules": [{"backendRefs": [
                        {"name": STABLE, "port": 80, "weight": 100},
                        {"name": CANARY, "port": 80, "weight": 0},
                    ]}],
                },
            }),
        )
        .await;
    }

    /// A kubeconfig file for a client in another process, such as the plugin binary: the e2e
    /// kubeconfig on a real cluster, one for the test API server otherwise.
    pub fn kubeconfig(&self) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("a temporary kubeconfig");
        let text = match (&self.server, real_cluster()) {
            (Some(server), _) => server.kubeconfig(),
            (None, Some(path)) => std::fs::read_to_string(path).expect("reading the e2e kubeconfig"),
            (None, None) => unreachable!("a cluster without a server is a real cluster"),
        };
        std::fs::write(file.path(), text).expect("writing the kubeconfig");
        file
    }

    pub fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn routes(&self) -> Api<DynamicObject> {
        let resource = bellwether::controller::rollouts::RouteKind::Http.api_resource();
        Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The notes of the Events of `reason` in the test's namespace.
    pub async fn event_notes(&self, reason: &str) -> Vec<String> {
        let events = self
            .api::<k8s_openapi::api::events::v1::Event>()
            .list(&kube::api::ListParams::default())
            .await
            .expect("listing Events");
        events
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.note)
            .collect()
    }

    /// The Rollout `web` at `version` of its image, with `steps`.
    pub fn rollout(&self, version: &str, steps: Value) -> Rollout {
        // A real image, so that the suite also runs on a real cluster; version "crashloop" names a
        // tag that does not exist, whose pods never become ready (the test API server treats any
        // image containing "crashloop" the same way).
        let image = match version {
            "crashloop" => "registry.k8s.io/pause:crashloop",
            _ => "registry.k8s.io/pause:3.10",
        };
        serde_json::from_value(json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": ROLLOUT, "namespace": self.namespace},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": ROLLOUT}},
                "template": {
                    "metadata": {"labels": {"app": ROLLOUT}},
                    "spec": {"containers": [{"name": "app", "image": image, "env": [{"name": "VERSION", "value": version}]}]},
                },
                "progressDeadlineSeconds": 30,
                "strategy": {"canary": {
                    "stableService": STABLE,
                    "canaryService": CANARY,
                    "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": ROUTE}]}},
                    "steps": steps,
                    "scaleDownDelaySeconds": 2,
                    "abortScaleDownDelaySeconds": 2,
                }},
            },
        }))
        .expect("a valid Rollout")
    }

    /// Creates the Rollout or changes its pod template (and steps) to those of `rollout`.
    pub async fn ship(&self, rollout: &Rollout) -> String {
        let revision = revision(rollout);
        telemetry().apps.serve(&self.namespace, &revision, GOOD).await;
        match self.rollouts().get_opt(ROLLOUT).await.expect("reading the Rollout") {
            None => {
                self.rollouts().create(&PostParams::default(), rollout).await.expect("creating the Rollout");
            }
            Some(_) => {
                let patch =
                    json!({"spec": {"template": rollout.spec.template, "strategy": rollout.spec.strategy}});
                self.rollouts()
                    .patch(ROLLOUT, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("changing the Rollout");
            }
        }
        revision
    }

    /// Waits until the Rollout's status satisfies `condition`.
    pub async fn rollout_until(&self, what: &str, condition: impl Fn(&Rollout) -> bool) -> Rollout {
        let last = std::sync::Mutex::new(None);
        let found = eventually_or(what, || async {
            let rollout = self.rollouts().get_opt(ROLLOUT).await.ok().flatten()?;
            let done = condition(&rollout);
            *last.lock().unwrap() = Some(rollout.status.clone());
            done.then_some(rollout)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!("gave up waiting for {what}; the status was {:#?}", last.lock().unwrap())
        })
    }

    /// How many calls of each (group, resource, verb) the controllers of this test made so far;
    /// `None` against a real cluster.
    pub fn controller_calls(&self) -> Option<std::collections::BTreeMap<(String, String, String), u64>> {
        Some(self.server.as_ref()?.call_log().counts_of(CONTROLLER_USER))
    }

    /// The route's (canary, stable) weights.
    pub async fn weights(&self) -> Option<(i64, i64)> {
        let route = self.routes().get_opt(ROUTE).await.ok().flatten()?;
        let route = serde_json::to_value(route).ok()?;
        let refs = route.pointer("/spec/rules/0/backendRefs")?.as_array()?.clone();
        let weight = |name: &str| {
            refs.iter().find(|r| r["name"] == name).and_then(|r| r["weight"].as_i64()).unwrap_or(1)
        };
        Some((weight(CANARY), weight(STABLE)))
    }
}

/// The test is over: its apps stop serving, so that they do not load the machine for the tests
/// still running.
impl Drop for Cluster {
    fn drop(&mut self) {
        telemetry().apps.stop_namespace(&self.namespace);
    }
}

/// The revision of `rollout`'s pod template, as the controller names it.
pub fn revision(rollout: &Rollout) -> String {
    revision_of(&rollout.spec.embedded_template().unwrap_or_default())
}

/// The one of the kstatus conditions `Ready`, `Reconciling` and `Stalled` that is True, with its
/// reason; `None` unless exactly one is.
pub fn kstatus(rollout: &Rollout) -> Option<(String, String)> {
    let conditions = &rollout.status.as_ref()?.conditions;
    let true_ones: Vec<_> = conditions
        .iter()
        .filter(|c| ["Ready", "Reconciling", "Stalled"].contains(&c.type_.as_str()) && c.status == "True")
        .collect();
    match true_ones.as_slice() {
        [one] => Some((one.type_.clone(), one.reason.clone())),
        _ => None,
    }
}

/// Creates an object from JSON in `namespace`.
pub async fn create<K>(client: &Client, namespace: &str, object: Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    K: Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("a valid object");
    Api::<K>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &object)
        .await
        .expect("creating an object");
}

/// Polls `check` until it yields a value, for at most [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_or(what, check).await.unwrap_or_else(|| panic!("gave up waiting for {what}"))
}

/// Polls `check` until it yields a value, or gives up after [`PATIENCE`] with `None`.
async fn eventually_or<T, F, Fut>(what: &str, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Some(value) = check().await {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!("gave up waiting for {what}");
    None
}

/// A controller process running in this test: the same code `bellwether controller` runs.
pub struct Controller {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The test API server's record of calls, to check the controller's against its RBAC.
    calls: Option<CallLog>,
    /// Whether it runs job metrics, which RBAC then grants Jobs for.
    job_metrics: bool,
}

/// The user the controller's client impersonates on the test API server, so that its calls can be
/// told from the test's own.
const CONTROLLER_USER: &str = "system:serviceaccount:bellwether:bellwether";

#[derive(Parser)]
struct Command {
    #[command(flatten)]
    args: ControllerArgs,
}

impl Controller {
    /// Starts a controller for the cluster's namespace, with these extra flags.
    pub fn start(cluster: &Cluster, flags: &[&str]) -> Self {
        let mut argv =
            vec!["bellwether-controller", "--namespace", &cluster.namespace, "--health-addr", "127.0.0.1:0"];
        // A test that reads the controller's metrics gives the address itself.
        if !flags.contains(&"--metrics-addr") {
            argv.extend(["--metrics-addr", "127.0.0.1:0"]);
        }
        argv.extend_from_slice(flags);
        let args = Command::parse_from(argv).args;
        let job_metrics = args.job_metrics;
        let (stop, shutdown) = watch::channel(false);
        let client = match &cluster.server {
            Some(server) => server.client_as(CONTROLLER_USER),
            None => cluster.client.clone(),
        };
        let task = tokio::spawn(async move {
            serve(client, &args, shutdown).await.expect("the controller runs");
        });
        Self { stop, task, calls: cluster.server.as_ref().map(TestApiServer::call_log), job_metrics }
    }

    /// Stops gracefully, as on SIGTERM, and waits for the process to finish.
    /// Then checks that the controller made no API call that the Helm chart's RBAC does not grant.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("a timely shutdown")
            .expect("a clean shutdown");
        let Some(calls) = self.calls else { return };
        let job_calls = if self.job_metrics { JOB_METRIC_CALLS } else { &[] };
        let allowed: BTreeSet<(String, String, String)> = CONTROLLER_CALLS
            .iter()
            .chain(job_calls)
            .flat_map(|(group, resource, verbs)| {
                verbs.iter().map(|verb| (group.to_string(), resource.to_string(), verb.to_string()))
            })
            .collect();
        let made = calls.calls_of(CONTROLLER_USER);
        let ungranted: Vec<_> = made.difference(&allowed).collect();
        assert!(
            ungranted.is_empty(),
            "the controller made calls that crates/testkit/src/controller_calls.rs (and so the chart's RBAC) does not list: {ungranted:?}"
        );
    }

    /// Stops at once, wherever it is, as a killed process would: no pass finishes and the lease is
    /// not given up. The health and metrics servers run beside the main task and stop when the
    /// shutdown signal is sent or dropped; it is kept until the aborted task is gone, so that the
    /// task never sees it and shuts down gracefully instead, and dropped then, so that the servers
    /// go down with the process.
    pub fn kill(self) {
        let Self { stop, task, .. } = self;
        task.abort();
        tokio::spawn(async move {
            let _ = task.await;
            drop(stop);
        });
    }
}

/// Steps through an analysis: 10%, the template's analysis, 50%, a 1 s pause.
pub fn analysed_steps() -> Value {
    json!([
        {"setWeight": 10},
        {"analysis": {"templates": [{"templateName": TEMPLATE}]}},
        {"setWeight": 50},
        {"pause": {"duration": "1s"}},
    ])
}

/// The seed of a test's random `what`: `BELLWETHER_E2E_SEED`, or a fresh one, printed so that a
/// failure can be repeated.
pub fn seed(what: &str) -> u64 {
    let seed = std::env::var("BELLWETHER_E2E_SEED")
        .ok()
        .map(|s| s.parse().expect("BELLWETHER_E2E_SEED is a number"))
        .unwrap_or_else(rand::random);
    println!("{what} from seed {seed}; BELLWETHER_E2E_SEED={seed} repeats them");
    seed
}
