//! The controller process at fleet size: the `bellwether controller` binary against the in-process
//! test API server, with 1,000 Rollouts (each with its Services and HTTPRoute), measured through a
//! first deploy of every Rollout and then a canary of every Rollout.
//!
//! Reports the controller's resident memory idle (its own baseline, measured in the same run), with
//! the fleet deployed, and at its peak, with the increase per Rollout; and the controller's CPU time
//! per Rollout in each phase. The API server runs in this process, so the figures are the
//! controller's alone; wall times are given too, but they are bounded by the test API server.
//!
//! `cargo bench --bench controller` runs the full fleet. Without `--bench`, as `cargo test
//! --all-targets` runs it, a fleet of 5 goes through the same phases, so that the bench keeps up
//! with the controller.

use bellwether_testkit::apiserver;

use apiserver::{Options, TestApiServer};
use bellwether::api::{Rollout, RolloutPhase};
use bellwether::engine::revision_of;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "fleet";
const FULL_FLEET: usize = 1_000;
const SMOKE_FLEET: usize = 5;
/// How long a phase may take before the bench gives up; generous, for slow machines.
const PATIENCE: Duration = Duration::from_secs(600);

fn main() {
    let fleet = if std::env::args().any(|a| a == "--bench") { FULL_FLEET } else { SMOKE_FLEET };
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    runtime.block_on(bench(fleet));
}

async fn bench(fleet: usize) {
    let server = TestApiServer::start_with(Options {
        tick: Duration::from_millis(100),
        replica_set_delay: Duration::from_millis(200),
        ..Options::default()
    })
    .await;
    let client = server.client();
    let kubeconfig = tempfile::NamedTempFile::new().expect("a temporary kubeconfig");
    std::fs::write(kubeconfig.path(), server.kubeconfig()).expect("writing the kubeconfig");
    let mut controller = Controller::start(kubeconfig.path());

    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = controller.usage();

    let started = Instant::now();
    for i in 0..fleet {
        create_app(&client, i).await;
    }
    let created = started.elapsed();
    let deployed = wait_all(&client, fleet, |_| true).await;
    let with_fleet = controller.usage();

    let started = Instant::now();
    let mut revisions = Vec::with_capacity(fleet);
    for i in 0..fleet {
        revisions.push(ship(&client, i, "2").await);
    }
    let canaries = wait_all(&client, fleet, |rollout| {
        rollout.status.as_ref().and_then(|s| s.stable_revision.as_ref()) == revisions.get(index(rollout))
    })
    .await;
    let canaries = canaries.max(started.elapsed());
    let after = controller.usage();
    controller.stop();

    let per_rollout = |rss: u64| (rss.saturating_sub(idle.rss) as f64 / fleet as f64) / 1024.0;
    let cpu_ms = |from: &Usage, to: &Usage| (to.cpu - from.cpu) * 1000.0 / fleet as f64;
    println!("## Controller with {fleet} Rollouts (test API server)\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| resident memory, idle (baseline) | {:.1} MiB |", mib(idle.rss));
    println!(
        "| resident memory, fleet deployed | {:.1} MiB ({:.1} KiB per Rollout over the baseline) |",
        mib(with_fleet.rss),
        per_rollout(with_fleet.rss)
    );
    println!(
        "| resident memory after a canary of every Rollout | {:.1} MiB ({:.1} KiB per Rollout over the baseline) |",
        mib(after.rss),
        per_rollout(after.rss)
    );
    println!(
        "| peak resident memory | {:.1} MiB ({:.2}× the baseline) |",
        mib(after.peak),
        after.peak as f64 / idle.rss as f64
    );
    println!(
        "| controller CPU per first deploy | {:.1} ms (all Healthy {:.1?} after the last Rollout was created; creating them took {:.1?}) |",
        cpu_ms(&idle, &with_fleet),
        deployed,
        created
    );
    println!(
        "| controller CPU per canary (setWeight 20, pause 1s, promote) | {:.1} ms (all promoted after {:.1?}) |",
        cpu_ms(&with_fleet, &after),
        canaries
    );
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn name(i: usize) -> String {
    format!("app-{i:04}")
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

fn rollout(i: usize, version: &str) -> Rollout {
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
                "steps": [{"setWeight": 20}, {"pause": {"duration": "1s"}}],
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
        .create(&PostParams::default(), &rollout(i, "1"))
        .await
        .expect("creating a Rollout");
}

/// Changes the Rollout's pod template to `version`; returns the new revision.
async fn ship(client: &Client, i: usize, version: &str) -> String {
    let next = rollout(i, version);
    let patch = json!({"spec": {"template": next.spec.template}});
    Api::<Rollout>::namespaced(client.clone(), NAMESPACE)
        .patch(&name(i), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("changing a Rollout");
    revision_of(&next.spec.template)
}

/// Waits until every Rollout is Healthy and satisfies `done`; returns how long it took.
async fn wait_all(client: &Client, fleet: usize, done: impl Fn(&Rollout) -> bool) -> Duration {
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
            return started.elapsed();
        }
        assert!(started.elapsed() < PATIENCE, "only {finished} of {fleet} Rollouts finished");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

/// The controller binary, run as its own process so that its memory is its own.
struct Controller {
    child: Child,
}

/// What the controller process has used so far.
struct Usage {
    rss: u64,
    peak: u64,
    /// User and system CPU time, in seconds.
    cpu: f64,
}

impl Controller {
    fn start(kubeconfig: &std::path::Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_bellwether"))
            .args([
                "controller",
                "--namespace",
                NAMESPACE,
                "--health-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the controller");
        Self { child }
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
