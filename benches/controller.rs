//! The controller process at fleet size: the `bellwether controller` binary against the in-process
//! test API server, with a fleet of Rollouts (each with its Services and HTTPRoute), measured
//! through a first deploy of every Rollout, an idle stretch, a canary of every Rollout, and a canary
//! with an analysis step, measured by a real Prometheus behind a counting proxy.
//!
//! For each phase it reports the API calls the controller made per Rollout, by verb and resource
//! (from the test API server's call log), the reconciles per Rollout and their p99 (from the
//! controller's own `/metrics`), and the controller's CPU time; and the controller's resident
//! memory idle (its own baseline, measured in the same run), with the fleet deployed, and at its
//! peak; and for the analysed canary, the Prometheus queries per measurement and how the queries
//! spread over time. The API server runs in this process, so the figures are the controller's alone; wall
//! times are given too, but they are bounded by the test API server.
//!
//! `cargo bench --bench controller` runs a fleet of 1,000; `-- --fleet N` another size;
//! `-- --baseline PATH` first runs the same phases with another build of the controller binary
//! (such as one built from an older commit), and then prints the two side by side with their
//! ratios. Without `--bench`, as `cargo test --all-targets` runs it, a fleet of 5 goes through
//! the same phases, so that the bench keeps up with the controller.

#[path = "controller/prometheus_proxy.rs"]
mod prometheus_proxy;

use bellwether_testkit::apiserver;
use bellwether_testkit::prometheus::Prometheus;
use prometheus_proxy::Proxy;

use apiserver::{Options, TestApiServer};
use bellwether::api::{AnalysisRun, AnalysisTemplate, Rollout, RolloutPhase};
use bellwether::engine::revision_of;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "fleet";
/// The analysis template of the analysed canary.
const TEMPLATE: &str = "bench-errors";
const FULL_FLEET: usize = 1_000;
const SMOKE_FLEET: usize = 5;
/// How long a phase may take before the bench gives up; generous, for slow machines and big fleets.
const PATIENCE: Duration = Duration::from_secs(3600);
/// Who the controller says it is, so that its calls can be told from the bench's own.
const CONTROLLER_USER: &str = "system:serviceaccount:bellwether:bellwether";
/// The resync the controller runs with by default, for the idle cost per hour.
const DEFAULT_RESYNC: Duration = Duration::from_secs(600);
/// The resync of the baseline, which has no `--resync-seconds` and reconciles every Rollout every
/// 60 s.
const BASELINE_RESYNC: Duration = Duration::from_secs(60);

struct Args {
    fleet: usize,
    baseline: Option<PathBuf>,
    /// How long the deployed fleet is left alone; long enough for a few resyncs of every Rollout.
    idle: Duration,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |flag: &str| argv.iter().position(|a| a == flag).and_then(|i| argv.get(i + 1)).cloned();
    let full = argv.iter().any(|a| a == "--bench");
    let fleet = value("--fleet")
        .map(|n| n.parse().expect("--fleet takes a number of Rollouts"))
        .unwrap_or(if full { FULL_FLEET } else { SMOKE_FLEET });
    let idle = value("--idle-seconds").map(|s| s.parse().expect("--idle-seconds takes a number"));
    Args {
        fleet,
        baseline: value("--baseline").map(PathBuf::from),
        idle: Duration::from_secs(idle.unwrap_or(if full { 70 } else { 3 })),
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let baseline = args.baseline.as_ref().map(|binary| {
        let report = runtime.block_on(run(Binary { path: binary.clone(), baseline: true }, &args));
        report.print(&format!("baseline ({})", binary.display()));
        report
    });
    let current = Binary { path: PathBuf::from(env!("CARGO_BIN_EXE_bellwether")), baseline: false };
    let report = runtime.block_on(run(current, &args));
    report.print("this tree");
    if let Some(baseline) = baseline {
        compare(&baseline, &report);
    }
}

/// A controller binary to measure.
struct Binary {
    path: PathBuf,
    /// A build without `--resync-seconds`, which resyncs every 60 s.
    baseline: bool,
}

/// What one phase cost the controller.
#[derive(Default)]
struct Phase {
    calls: BTreeMap<(String, String, String), u64>,
    reconciles: Histogram,
    cpu: f64,
    wall: Duration,
}

/// What a run of every phase measured.
struct Report {
    fleet: usize,
    idle_rss: u64,
    deployed_rss: u64,
    after_rss: u64,
    peak_rss: u64,
    deploy: Phase,
    idle: Phase,
    canary: Phase,
    analysed: Phase,
    queries: QueryLoad,
    /// Resyncs an hour at the binary's default resync period.
    resyncs_per_hour: f64,
    /// How long creating the fleet's objects took the bench.
    created: Duration,
}

async fn run(binary: Binary, args: &Args) -> Report {
    let fleet = args.fleet;
    let server = TestApiServer::start_with(Options {
        tick: Duration::from_millis(100),
        replica_set_delay: Duration::from_millis(200),
        ..Options::default()
    })
    .await;
    let client = server.client();
    let calls = || server.call_log().counts_of(CONTROLLER_USER);
    let kubeconfig = tempfile::NamedTempFile::new().expect("a temporary kubeconfig");
    std::fs::write(kubeconfig.path(), server.kubeconfig_as(CONTROLLER_USER)).expect("writing the kubeconfig");
    let prometheus =
        Prometheus::start("# EOF").unwrap_or_else(|error| panic!("cannot start Prometheus: {error}"));
    let proxy = Proxy::start(prometheus.address()).await;
    create_template(&client, &proxy.address).await;
    let mut controller = Controller::start(&binary, kubeconfig.path());

    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_usage = controller.usage();

    // The fleet is created while the controller runs, as Rollouts arrive in a cluster.
    let started = Instant::now();
    let (calls_before, metrics_before) = (calls(), controller.metrics().await);
    for i in 0..fleet {
        create_app(&client, i).await;
    }
    let created = started.elapsed();
    wait_all(&client, fleet, |_| true).await;
    let deployed_usage = controller.usage();
    let deploy = Phase::between(
        (&calls_before, &calls()),
        (&metrics_before, &controller.metrics().await),
        (&idle_usage, &deployed_usage),
        started.elapsed(),
    );

    let (calls_before, metrics_before) = (calls(), controller.metrics().await);
    tokio::time::sleep(args.idle).await;
    let idle_done = controller.usage();
    let idle = Phase::between(
        (&calls_before, &calls()),
        (&metrics_before, &controller.metrics().await),
        (&deployed_usage, &idle_done),
        args.idle,
    );

    let started = Instant::now();
    let (calls_before, metrics_before) = (calls(), controller.metrics().await);
    let mut revisions = Vec::with_capacity(fleet);
    for i in 0..fleet {
        revisions.push(ship(&client, i, "2", plain_steps()).await);
    }
    wait_all(&client, fleet, |rollout| {
        rollout.status.as_ref().and_then(|s| s.stable_revision.as_ref()) == revisions.get(index(rollout))
    })
    .await;
    let after = controller.usage();
    let canary = Phase::between(
        (&calls_before, &calls()),
        (&metrics_before, &controller.metrics().await),
        (&idle_done, &after),
        started.elapsed(),
    );

    // A canary with an analysis step, measured through the proxy.
    let started = Instant::now();
    let (calls_before, metrics_before) = (calls(), controller.metrics().await);
    let queried_before = proxy.queries().len();
    let mut revisions = Vec::with_capacity(fleet);
    for i in 0..fleet {
        revisions.push(ship(&client, i, "3", analysed_steps()).await);
    }
    wait_all(&client, fleet, |rollout| {
        rollout.status.as_ref().and_then(|s| s.stable_revision.as_ref()) == revisions.get(index(rollout))
    })
    .await;
    let analysed_usage = controller.usage();
    let analysed = Phase::between(
        (&calls_before, &calls()),
        (&metrics_before, &controller.metrics().await),
        (&after, &analysed_usage),
        started.elapsed(),
    );
    let queries = QueryLoad::of(&proxy.queries()[queried_before..], &revisions, &client).await;
    controller.stop();
    let resync = if binary.baseline { BASELINE_RESYNC } else { DEFAULT_RESYNC };
    Report {
        fleet,
        idle_rss: idle_usage.rss,
        deployed_rss: deployed_usage.rss,
        after_rss: after.rss,
        peak_rss: after.peak,
        deploy,
        idle,
        canary,
        analysed,
        queries,
        resyncs_per_hour: 3600.0 / resync.as_secs_f64(),
        created,
    }
}

/// Two snapshots of the call log.
type CallCounts = BTreeMap<(String, String, String), u64>;

impl Phase {
    fn between(
        calls: (&CallCounts, &CallCounts),
        metrics: (&Histogram, &Histogram),
        usage: (&Usage, &Usage),
        wall: Duration,
    ) -> Self {
        let (before, after) = calls;
        let calls = after
            .iter()
            .map(|(key, n)| (key.clone(), n - before.get(key).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Self { calls, reconciles: metrics.1.minus(metrics.0), cpu: usage.1.cpu - usage.0.cpu, wall }
    }

    fn total(&self, verbs: &[&str]) -> u64 {
        self.calls.iter().filter(|((_, _, verb), _)| verbs.contains(&verb.as_str())).map(|(_, n)| n).sum()
    }

    /// Every call but the watches the caches are fed by.
    fn requests(&self) -> u64 {
        self.total(&["get", "list", "create", "update", "patch", "delete"])
    }

    fn reads(&self) -> u64 {
        self.total(&["get", "list"])
    }
}

impl Report {
    fn per_rollout(&self, n: u64) -> f64 {
        n as f64 / self.fleet as f64
    }

    fn rss_per_rollout(&self, rss: u64) -> f64 {
        (rss.saturating_sub(self.idle_rss) as f64 / self.fleet as f64) / 1024.0
    }

    /// Resync rounds the idle stretch held, from the reconciles it counted.
    fn idle_rounds(&self) -> f64 {
        self.per_rollout(self.idle.reconciles.count)
    }

    /// Requests per Rollout in an idle hour: what one resync round costs, times the rounds of an hour.
    fn idle_requests_per_hour(&self) -> f64 {
        let rounds = self.idle_rounds();
        if rounds == 0.0 {
            0.0
        } else {
            self.per_rollout(self.idle.requests()) / rounds * self.resyncs_per_hour
        }
    }

    fn print(&self, label: &str) {
        let fleet = self.fleet;
        println!("## Controller with {fleet} Rollouts (test API server): {label}\n");
        println!(
            "| phase | requests per Rollout | of which reads | reconciles per Rollout | reconcile p99 | CPU per Rollout | wall |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let phases = [
            ("first deploy", &self.deploy),
            ("a canary", &self.canary),
            ("an analysed canary", &self.analysed),
        ];
        for (name, phase) in phases {
            println!(
                "| {name} | {:.1} | {:.1} | {:.1} | {} | {:.1} ms | {:.1?} |",
                self.per_rollout(phase.requests()),
                self.per_rollout(phase.reads()),
                self.per_rollout(phase.reconciles.count),
                phase.reconciles.p99(),
                phase.cpu * 1000.0 / fleet as f64,
                phase.wall,
            );
        }
        println!(
            "| idle {:.0?} ({:.1} resyncs of each Rollout) | {:.2} ({:.1} an hour at the default resync) | {:.2} | {:.1} | {} | {:.2} ms | |",
            self.idle.wall,
            self.idle_rounds(),
            self.per_rollout(self.idle.requests()),
            self.idle_requests_per_hour(),
            self.per_rollout(self.idle.reads()),
            self.idle_rounds(),
            self.idle.reconciles.p99(),
            self.idle.cpu * 1000.0 / fleet as f64,
        );
        println!("\nRequests per Rollout by verb and resource (watches are the caches' own):\n");
        println!("| call | first deploy | idle | a canary | an analysed canary |");
        println!("|---|---:|---:|---:|---:|");
        let mut keys: Vec<&(String, String, String)> =
            [&self.deploy, &self.idle, &self.canary, &self.analysed]
                .into_iter()
                .flat_map(|phase| phase.calls.keys())
                .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let cell = |phase: &Phase| {
                phase.calls.get(key).map_or(String::new(), |n| format!("{:.2}", self.per_rollout(*n)))
            };
            let (group, resource, verb) = key;
            let group = if group.is_empty() { String::new() } else { format!("{group} ") };
            println!(
                "| {verb} {group}{resource} | {} | {} | {} | {} |",
                cell(&self.deploy),
                cell(&self.idle),
                cell(&self.canary),
                cell(&self.analysed)
            );
        }
        let load = &self.queries;
        println!("\nPrometheus, in the analysed canary (through the counting proxy):\n");
        println!("| measure | value |");
        println!("|---|---|");
        println!(
            "| queries per measurement | {:.2} ({} queries, {} measurements) |",
            load.per_measurement(),
            load.queries,
            load.measurements
        );
        println!(
            "| queries in the busiest second, over the mean of the seconds with queries | {} / {:.1} = {:.1}× |",
            load.busiest_second,
            load.mean_per_second(),
            load.peak_ratio()
        );
        println!("\n| memory | value |");
        println!("|---|---|");
        println!("| resident memory, idle (baseline) | {:.1} MiB |", mib(self.idle_rss));
        println!(
            "| resident memory, fleet deployed | {:.1} MiB ({:.1} KiB per Rollout over the baseline) |",
            mib(self.deployed_rss),
            self.rss_per_rollout(self.deployed_rss)
        );
        println!(
            "| resident memory after a canary of every Rollout | {:.1} MiB ({:.1} KiB per Rollout over the baseline) |",
            mib(self.after_rss),
            self.rss_per_rollout(self.after_rss)
        );
        println!(
            "| peak resident memory | {:.1} MiB ({:.2}× the baseline) |",
            mib(self.peak_rss),
            self.peak_rss as f64 / self.idle_rss as f64
        );
        println!("| creating the fleet's objects (the bench's own calls) | {:.1?} |\n", self.created);
    }
}

/// The two runs side by side: how many times fewer requests, and the CPU and memory ratios.
fn compare(baseline: &Report, current: &Report) {
    println!("## This tree against the baseline, {} Rollouts, one run of the bench\n", current.fleet);
    println!("| measure | this tree | baseline | ratio (baseline / this tree) |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, now: f64, before: f64, unit: &str| {
        let ratio = if now > 0.0 { format!("{:.1}×", before / now) } else { "–".into() };
        println!("| {name} | {now:.1}{unit} | {before:.1}{unit} | {ratio} |");
    };
    let requests = |r: &Report, p: &Phase| r.per_rollout(p.requests());
    let reads = |r: &Report, p: &Phase| r.per_rollout(p.reads());
    let cpu = |r: &Report, p: &Phase| p.cpu * 1000.0 / r.fleet as f64;
    let (now, before) = (current, baseline);
    row(
        "requests per Rollout, first deploy",
        requests(now, &now.deploy),
        requests(before, &before.deploy),
        "",
    );
    row("of which reads", reads(now, &now.deploy), reads(before, &before.deploy), "");
    row("requests per Rollout, a canary", requests(now, &now.canary), requests(before, &before.canary), "");
    row("of which reads", reads(now, &now.canary), reads(before, &before.canary), "");
    row(
        "requests per Rollout, an idle hour",
        now.idle_requests_per_hour(),
        before.idle_requests_per_hour(),
        "",
    );
    row(
        "requests per Rollout, an analysed canary",
        requests(now, &now.analysed),
        requests(before, &before.analysed),
        "",
    );
    row(
        "Prometheus queries per measurement",
        now.queries.per_measurement(),
        before.queries.per_measurement(),
        "",
    );
    row(
        "Prometheus queries in the busiest second, over the mean",
        now.queries.peak_ratio(),
        before.queries.peak_ratio(),
        "×",
    );
    row("CPU per first deploy", cpu(now, &now.deploy), cpu(before, &before.deploy), " ms");
    row("CPU per canary", cpu(now, &now.canary), cpu(before, &before.canary), " ms");
    row(
        "resident memory after a canary, per Rollout over idle",
        now.rss_per_rollout(now.after_rss),
        before.rss_per_rollout(before.after_rss),
        " KiB",
    );
    println!();
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn name(i: usize) -> String {
    format!("app-{i:05}")
}

fn index(rollout: &Rollout) -> usize {
    rollout
        .metadata
        .name
        .as_deref()
        .and_then(|n| n.strip_prefix("app-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// The canary's steps without analysis.
fn plain_steps() -> Value {
    json!([{"setWeight": 20}, {"pause": {"duration": "1s"}}])
}

/// The canary's steps with an analysis of the bench's template.
fn analysed_steps() -> Value {
    json!([{"setWeight": 20}, {"analysis": {"templates": [{"templateName": TEMPLATE}]}}])
}

fn rollout(i: usize, version: &str, steps: Value) -> Rollout {
    let app = name(i);
    serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": app, "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "app", "image": format!("registry.example/app:{version}")}]},
            },
            "strategy": {"canary": {
                "stableService": format!("{app}-stable"),
                "canaryService": format!("{app}-canary"),
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": app}]}},
                "steps": steps,
                "scaleDownDelaySeconds": 1,
            }},
        },
    }))
    .expect("a valid Rollout")
}

async fn create_app(client: &Client, i: usize) {
    let app = name(i);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    for service in [format!("{app}-stable"), format!("{app}-canary")] {
        let object: Service = from(json!({
            "metadata": {"name": service},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80}]},
        }));
        services.create(&PostParams::default(), &object).await.expect("creating a Service");
    }
    let resource = bellwether::controller::rollouts::RouteKind::Http.api_resource();
    let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    let route: DynamicObject = from(json!({
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
    }));
    routes.create(&PostParams::default(), &route).await.expect("creating an HTTPRoute");
    Api::<Rollout>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &rollout(i, "1", plain_steps()))
        .await
        .expect("creating a Rollout");
}

/// Changes the Rollout's pod template to `version`, and its steps to `steps`; returns the new
/// revision.
async fn ship(client: &Client, i: usize, version: &str, steps: Value) -> String {
    let next = rollout(i, version, steps.clone());
    let patch = json!({"spec": {"template": next.spec.template, "strategy": {"canary": {"steps": steps}}}});
    Api::<Rollout>::namespaced(client.clone(), NAMESPACE)
        .patch(&name(i), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("changing a Rollout");
    revision_of(&next.spec.embedded_template().unwrap_or_default())
}

/// The analysis template of the analysed canary: three measurements 2 s apart, of a query that
/// names the revision (so that the proxy can tell runs apart) and always answers a passing value.
async fn create_template(client: &Client, prometheus: &str) {
    let template: AnalysisTemplate = from(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": TEMPLATE, "namespace": NAMESPACE},
        "spec": {"metrics": [{
            "name": "errors",
            "interval": "2s",
            "count": 3,
            "provider": {"prometheus": {
                "address": prometheus,
                "timeout": "5s",
                "query": "absent(bench_requests_total{revision=\"{{revision}}\"}) * 0.001",
            }},
            "threshold": {"max": 0.01},
        }]},
    }));
    Api::<AnalysisTemplate>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &template)
        .await
        .expect("creating the analysis template");
}

/// What the analysed canary asked of Prometheus.
#[derive(Default)]
struct QueryLoad {
    queries: usize,
    /// The measurements the runs of the canary recorded.
    measurements: usize,
    /// The most queries that arrived within one second.
    busiest_second: usize,
    /// The seconds in which queries arrived.
    seconds_with_queries: usize,
}

impl QueryLoad {
    /// The load of the queries that name one of `revisions`, against the measurements their runs
    /// recorded.
    async fn of(queries: &[prometheus_proxy::Query], revisions: &[String], client: &Client) -> Self {
        let ours: Vec<&prometheus_proxy::Query> =
            queries.iter().filter(|q| revisions.iter().any(|r| q.asked.contains(r.as_str()))).collect();
        let runs = Api::<AnalysisRun>::namespaced(client.clone(), NAMESPACE)
            .list(&ListParams::default())
            .await
            .expect("listing the AnalysisRuns");
        let measurements = runs
            .items
            .iter()
            .filter(|run| revisions.contains(&run.spec.revision))
            .flat_map(|run| run.status.iter().flat_map(|s| &s.metric_results))
            .map(|result| result.measurements.len())
            .sum();
        let mut per_second = BTreeMap::<u64, usize>::new();
        if let Some(first) = ours.iter().map(|q| q.at).min() {
            for query in &ours {
                *per_second.entry((query.at - first).as_secs()).or_default() += 1;
            }
        }
        Self {
            queries: ours.len(),
            measurements,
            busiest_second: per_second.values().copied().max().unwrap_or(0),
            seconds_with_queries: per_second.len(),
        }
    }

    fn per_measurement(&self) -> f64 {
        self.queries as f64 / self.measurements.max(1) as f64
    }

    fn mean_per_second(&self) -> f64 {
        self.queries as f64 / self.seconds_with_queries.max(1) as f64
    }

    /// The busiest second over the mean: 1 when the queries are spread evenly.
    fn peak_ratio(&self) -> f64 {
        self.busiest_second as f64 / self.mean_per_second().max(f64::MIN_POSITIVE)
    }
}

/// Waits until every Rollout is Healthy and satisfies `done`.
async fn wait_all(client: &Client, fleet: usize, done: impl Fn(&Rollout) -> bool) {
    let started = Instant::now();
    let api: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    loop {
        let rollouts = api.list(&ListParams::default()).await.expect("listing Rollouts");
        let finished = rollouts
            .items
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Healthy)) && done(r))
            .count();
        if finished == fleet {
            return;
        }
        // A Degraded Rollout waits for a person: the bench has failed.
        let degraded = rollouts
            .items
            .iter()
            .find(|r| r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded)));
        if let Some(rollout) = degraded {
            let message = rollout.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
            panic!("{} is Degraded: {message}", rollout.metadata.name.as_deref().unwrap_or_default());
        }
        assert!(started.elapsed() < PATIENCE, "only {finished} of {fleet} Rollouts finished");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

/// The Rollout reconciler's `bellwether_reconcile_duration_seconds` histogram.
#[derive(Clone, Default)]
struct Histogram {
    /// Cumulative counts by upper bound, in ascending order of the bound.
    buckets: Vec<(f64, u64)>,
    count: u64,
}

impl Histogram {
    /// Reads the Rollout reconciler's histogram from a `/metrics` page.
    fn parse(text: &str) -> Self {
        let prefix = "bellwether_reconcile_duration_seconds_bucket{controller=\"rollout\",le=\"";
        let mut buckets: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(prefix)?;
                let (bound, count) = rest.split_once("\"} ")?;
                let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? };
                Some((bound, count.trim().parse().ok()?))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let count = buckets.last().map_or(0, |(_, n)| *n);
        Self { buckets, count }
    }

    fn minus(&self, earlier: &Self) -> Self {
        let buckets = self
            .buckets
            .iter()
            .map(|(bound, n)| {
                let before = earlier.buckets.iter().find(|(b, _)| b == bound).map_or(0, |(_, n)| *n);
                (*bound, n - before)
            })
            .collect();
        Self { buckets, count: self.count - earlier.count }
    }

    /// The bucket bound the 99th percentile falls under.
    fn p99(&self) -> String {
        if self.count == 0 {
            return "–".into();
        }
        let wanted = (self.count as f64 * 0.99).ceil() as u64;
        match self.buckets.iter().find(|(_, n)| *n >= wanted) {
            Some((bound, _)) if bound.is_finite() => format!("≤ {} ms", bound * 1000.0),
            _ => "> 10 s".into(),
        }
    }
}

/// The controller binary, run as its own process so that its memory is its own.
struct Controller {
    child: Child,
    metrics: String,
}

/// What the controller process has used so far.
struct Usage {
    rss: u64,
    peak: u64,
    /// User and system CPU time, in seconds.
    cpu: f64,
}

impl Controller {
    fn start(binary: &Binary, kubeconfig: &Path) -> Self {
        // A port that was free a moment ago; the controller binds it at once.
        let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let mut args = vec![
            "controller".to_string(),
            "--namespace".into(),
            NAMESPACE.into(),
            "--health-addr".into(),
            "127.0.0.1:0".into(),
            "--metrics-addr".into(),
            metrics_addr.to_string(),
        ];
        if !binary.baseline {
            // Resyncs every 10 s, so that the idle stretch holds several rounds; what a round costs
            // is then scaled to the default period.
            args.extend(["--resync-seconds".into(), "10".into()]);
        }
        let child = Command::new(&binary.path)
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the controller");
        Self { child, metrics: format!("http://{metrics_addr}/metrics") }
    }

    async fn metrics(&self) -> Histogram {
        let text = reqwest::get(&self.metrics)
            .await
            .expect("reading the controller's metrics")
            .text()
            .await
            .expect("the controller's metrics");
        Histogram::parse(&text)
    }

    /// VmRSS and VmHWM, in bytes, and CPU time, from /proc.
    fn usage(&self) -> Usage {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        // utime and stime are the 12th and 13th fields after the command name, in clock ticks of
        // USER_HZ, which is 100 on Linux.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ticks: Vec<f64> =
            after_name.split_whitespace().skip(11).take(2).filter_map(|t| t.parse().ok()).collect();
        Usage { rss: field("VmRSS:"), peak: field("VmHWM:"), cpu: ticks.iter().sum::<f64>() / 100.0 }
    }

    fn stop(&mut self) {
        // SIGTERM, as Kubernetes stops a pod, then wait for the graceful exit.
        // The shell's own `kill`, since a minimal system may have no kill binary.
        let _ =
            Command::new("sh").args(["-c", "kill -TERM \"$0\""]).arg(self.child.id().to_string()).status();
        let status = self.child.wait().expect("waiting for the controller");
        assert!(status.success(), "the controller did not shut down cleanly on SIGTERM: {status}");
    }
}
