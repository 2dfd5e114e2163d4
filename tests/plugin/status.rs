//! `status`, the command CI pipelines wait on: the real plugin binary against the test API server,
//! with the test playing the controller by writing the Rollout's status. Each exit code, failures of
//! the API server that pass and those that do not, and the lines `--watch` writes for a whole
//! canary, counted.

use crate::cluster::{Cluster, Ran, run};
use bellwether::api::Rollout;
use bellwether_testkit::apiserver::CallLog;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use tokio::task::JoinHandle;

const NAMESPACE: &str = "shop";
const NAME: &str = "web";
/// The user the plugin's kubeconfig names, so that its calls can be told from the test's own.
const PLUGIN: &str = "ci";
/// How long any wait of the test may take before it fails; generous, for slow machines.
const PATIENCE: Duration = Duration::from_secs(60);

/// A cluster holding the Rollout `web`, whose status the test writes as the controller would.
struct Canary {
    cluster: Cluster,
    rollouts: Api<Rollout>,
}

impl Canary {
    /// A server holding the Rollout `web`, Healthy at generation 1.
    async fn start() -> Self {
        let cluster = Cluster::start_as(PLUGIN).await;
        let rollouts = Api::<Rollout>::namespaced(cluster.server.client(), NAMESPACE);
        let rollout: Rollout = serde_json::from_value(json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": NAME}},
                "template": {
                    "metadata": {"labels": {"app": NAME}},
                    "spec": {"containers": [{"name": "app", "image": "shop:1"}]}
                },
                "strategy": {"canary": {
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                    "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": NAME}]}},
                    "steps": [
                        {"setWeight": 10},
                        {"analysis": {"templates": [{"templateName": "error-rate"}]}},
                        {"setWeight": 50}
                    ]
                }}
            }
        }))
        .expect("a valid Rollout");
        rollouts.create(&PostParams::default(), &rollout).await.expect("creating the Rollout");
        let canary = Self { cluster, rollouts };
        canary.set_status(healthy("1", 1)).await;
        canary
    }

    /// Writes the Rollout's status, as the controller does.
    async fn set_status(&self, status: Value) {
        self.rollouts
            .patch_status(NAME, &PatchParams::default(), &Patch::Merge(json!({ "status": status })))
            .await
            .expect("writing the Rollout's status");
    }

    /// Changes the pod template, as a pipeline's deploy does: generation 2.
    async fn ship(&self) {
        let patch =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop:2"}]}}}});
        self.rollouts.patch(NAME, &PatchParams::default(), &Patch::Merge(patch)).await.expect("shipping");
    }

    /// Runs `kubectl bellwether status` with `args` in the background.
    fn status(&self, args: &[&str]) -> JoinHandle<Ran> {
        let kubeconfig = self.cluster.kubeconfig().to_path_buf();
        let args: Vec<String> =
            ["status"].iter().chain(args).chain(&["-n", NAMESPACE]).map(|a| a.to_string()).collect();
        tokio::spawn(async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(env!("CARGO_BIN_EXE_kubectl-bellwether"), &kubeconfig, &args).await
        })
    }

    fn calls(&self) -> CallLog {
        self.cluster.server.call_log()
    }
}

/// How many requests of `verb` on Rollouts the plugin made so far.
fn plugin_calls(log: &CallLog, verb: &str) -> u64 {
    log.counts_of(PLUGIN)
        .into_iter()
        .filter(|((group, resource, v), _)| group == "bellwether.dev" && resource == "rollouts" && v == verb)
        .map(|(_, count)| count)
        .sum()
}

/// Waits until the plugin has made `count` watch requests in all: it then follows every change.
async fn watches(canary: &Canary, count: u64) {
    let log = canary.calls();
    let started = tokio::time::Instant::now();
    while plugin_calls(&log, "watch") < count {
        assert!(started.elapsed() < PATIENCE, "the plugin never made watch request {count}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The plugin's result, when it has ended.
async fn finished(run: JoinHandle<Ran>) -> Ran {
    tokio::time::timeout(PATIENCE, run).await.expect("the plugin ended in time").expect("the plugin ran")
}

fn healthy(revision: &str, generation: i64) -> Value {
    json!({
        "phase": "Healthy",
        "message": format!("revision {revision} is stable"),
        "stableRevision": revision,
        "canaryRevision": null,
        "step": null,
        "currentStepIndex": null,
        "weights": {"canary": 0, "stable": 100, "verified": true},
        "stepAnalysisRun": null,
        "observedGeneration": generation
    })
}

/// Generation 2's canary at `step`, with `canary` % of the traffic.
fn progressing(step: &str, canary: i32, verified: bool, message: &str) -> Value {
    json!({
        "phase": "Progressing",
        "message": message,
        "step": step,
        "stableRevision": "1",
        "canaryRevision": "2",
        "weights": {"canary": canary, "stable": 100 - canary, "verified": verified},
        "observedGeneration": 2
    })
}

fn ended(phase: &str, message: &str) -> Value {
    json!({"phase": phase, "message": message, "observedGeneration": 2})
}

/// Whether `line` starts with an RFC 3339 UTC time to the second and a space.
fn stamped(line: &str) -> bool {
    line.get(..21).is_some_and(|stamp| {
        chrono::DateTime::parse_from_rfc3339(stamp.trim_end())
            .is_ok_and(|t| t.offset().local_minus_utc() == 0)
            && stamp.ends_with("Z ")
    })
}

/// A whole canary, with the controller rewriting its status far more often than it moves, and
/// the API server failing on the way: a dropped watch, two 500s, and a watch too old to resume.
/// `--watch` writes one line per move and nothing for the rest, and the command exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_canary_is_a_handful_of_lines_through_api_failures() {
    let canary = Canary::start().await;
    canary.ship().await;
    let run = canary.status(&[NAME, "--watch", "--timeout", "5m"]);
    watches(&canary, 1).await;

    canary.set_status(progressing("1/3", 0, false, "scaling the canary to 1 pod")).await;
    canary.set_status(progressing("1/3", 10, false, "setting weights")).await;
    canary.set_status(progressing("1/3", 10, true, "canary at 10%")).await;
    // What changes each time the controller writes, and is no move: conditions, observations, the
    // audit trail, the latest measurement in an analysis reference.
    for second in 0..20 {
        let condition = json!({"type": "Ready", "status": "False", "reason": "Progressing", "message": "",
            "lastTransitionTime": format!("2026-01-01T12:00:{second:02}Z")});
        canary.set_status(json!({"conditions": [condition], "replicas": 5 + second % 2})).await;
    }

    // The watch drops and the server answers 500 twice: the plugin waits it out.
    let log = canary.calls();
    let before = plugin_calls(&log, "watch");
    canary.cluster.server.fail_requests("rollouts", 500, 2);
    canary.cluster.server.drop_watches();
    // The watch answered 500, the read after it too, and the next read and watch went through.
    watches(&canary, before + 2).await;

    let run_ref = |phase: &str, message: &str| json!({"stepAnalysisRun": {"name": "web-2-1", "phase": phase, "message": message}});
    let mut analysing = progressing("2/3", 10, true, "analysis error-rate running");
    analysing.as_object_mut().unwrap().extend(run_ref("Running", "").as_object().unwrap().clone());
    canary.set_status(analysing).await;
    for value in ["0.001", "0.002", "0.0015"] {
        canary.set_status(run_ref("Running", &format!("error-rate {value}"))).await;
    }

    // The next watch is too old to resume from: the plugin reads the Rollout again.
    let before = plugin_calls(&log, "watch");
    canary.cluster.server.expire_next_watch();
    canary.cluster.server.drop_watches();
    watches(&canary, before + 2).await;

    canary.set_status(run_ref("Successful", "error-rate 0.0015 within max 0.01")).await;
    canary.set_status(progressing("3/3", 50, false, "setting weights")).await;
    canary.set_status(json!({"stepAnalysisRun": null})).await;
    canary.set_status(progressing("3/3", 50, true, "canary at 50%")).await;
    canary.set_status(healthy("2", 2)).await;

    let output = finished(run).await;
    let (out, err) = (output.stdout, output.stderr);
    assert_eq!(output.code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    let expected = [
        "waiting for the controller to act on generation 2 (it has acted on 1)",
        "Progressing, step 1/3, canary 2 at 0% (stable 100%, not verified yet): scaling the canary to 1 pod",
        "Progressing, step 1/3, canary 2 at 10% (stable 90%, not verified yet): setting weights",
        "Progressing, step 1/3, canary 2 at 10% (stable 90%, verified): canary at 10%",
        "Progressing, step 2/3, canary 2 at 10% (stable 90%, verified), step analysis web-2-1 Running: analysis \
         error-rate running",
        "Progressing, step 2/3, canary 2 at 10% (stable 90%, verified), step analysis web-2-1 Successful: \
         analysis error-rate running",
        "Progressing, step 3/3, canary 2 at 50% (stable 50%, not verified yet), step analysis web-2-1 \
         Successful: setting weights",
        "Progressing, step 3/3, canary 2 at 50% (stable 50%, not verified yet): setting weights",
        "Progressing, step 3/3, canary 2 at 50% (stable 50%, verified): canary at 50%",
    ];
    assert_eq!(lines.len(), expected.len() + 1, "one line per move and the last:\n{out}");
    for (line, expected) in lines.iter().zip(expected) {
        assert!(stamped(line), "no RFC 3339 UTC time first: {line}");
        assert_eq!(&line[21..], expected);
    }
    assert_eq!(lines.last(), Some(&"Healthy: revision 2 is stable"));
    // Each outage is said when it starts and when it ends, not at every retry.
    let notices: Vec<&str> = err.lines().collect();
    assert_eq!(notices.len(), 2, "{err}");
    let failed = "reading Rollout shop/web: Internal error occurred: etcdserver: request timed out \
                  (InternalError, HTTP 500); retrying";
    assert!(stamped(notices[0]) && notices[0].ends_with(failed), "the server's own words: {err}");
    assert!(stamped(notices[1]) && notices[1].contains("reading Rollout shop/web again, after "), "{err}");
    // Read at the start, twice after the 500s and once after the watch expired: watched, never
    // polled.
    assert_eq!(plugin_calls(&log, "get"), 4);
}

/// Healthy 0, Degraded 1, paused for a person 4 (or 0 with `--success-on-pause`), and a timed
/// pause waited through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ending_has_its_exit_code() {
    let canary = Canary::start().await;
    let healthy = finished(canary.status(&[NAME])).await;
    assert_eq!(healthy.code, Some(0), "{}", healthy.stderr);
    assert_eq!(healthy.stdout, "Healthy: revision 1 is stable\n");

    canary.ship().await;
    canary.set_status(ended("Paused", "step 2/3: paused until promoted")).await;
    let paused = finished(canary.status(&[NAME])).await;
    assert_eq!(paused.code, Some(4), "{}", paused.stderr);
    assert_eq!(paused.stdout, "Paused, waiting for a person: step 2/3: paused until promoted\n");
    let accepted = finished(canary.status(&[NAME, "--success-on-pause"])).await;
    assert_eq!(accepted.code, Some(0), "{}", accepted.stderr);

    // A timed pause is Progressing: not an ending.
    canary.set_status(progressing("2/3", 10, true, "pausing for 30s")).await;
    let waiting = canary.status(&[NAME]);
    watches(&canary, 1).await;
    canary.set_status(ended("Degraded", "aborted: error-rate 0.034 > max 0.01 for 2m")).await;
    let degraded = finished(waiting).await;
    assert_eq!(degraded.code, Some(1), "{}", degraded.stderr);
    assert_eq!(degraded.stdout, "Degraded: aborted: error-rate 0.034 > max 0.01 for 2m\n");
}

/// Still on its way when `--timeout` passes: 3, with where it is; it was read once and watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_still_going_at_the_timeout_exits_3() {
    let canary = Canary::start().await;
    canary.ship().await;
    canary.set_status(progressing("1/3", 10, true, "pausing for 1h")).await;
    let output = finished(canary.status(&[NAME, "--timeout", "2s"])).await;
    assert_eq!(output.code, Some(3), "{}", output.stderr);
    assert_eq!(
        output.stdout,
        "timed out: Progressing, step 1/3, canary 2 at 10% (stable 90%, verified): pausing for 1h\n"
    );
    let log = canary.calls();
    assert_eq!((plugin_calls(&log, "get"), plugin_calls(&log, "watch")), (1, 1), "read once, then watched");
}

/// An API server that fails at the start and then answers: read when it does. One that fails until
/// `--timeout` passes: 5, with its last words and how long it was retried. One too busy to answer
/// (503, which the client retries within one request) until then: 5 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_failing_until_the_timeout_exits_5() {
    let canary = Canary::start().await;
    canary.cluster.server.fail_requests("rollouts", 500, 2);
    let output = finished(canary.status(&[NAME, "--timeout", "1m"])).await;
    assert_eq!((output.code, output.stdout.as_str()), (Some(0), "Healthy: revision 1 is stable\n"));
    assert!(output.stderr.contains("again, after "), "{}", output.stderr);

    canary.cluster.server.fail_requests("rollouts", 500, usize::MAX);
    let output = finished(canary.status(&[NAME, "--timeout", "3s"])).await;
    let err = output.stderr;
    assert_eq!(output.code, Some(5), "{err}");
    let said = "error: reading Rollout shop/web: Internal error occurred: etcdserver: request timed out \
                (InternalError, HTTP 500) (retried for ";
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with(said) && last.ends_with(", until --timeout passed)"), "{err}");
    assert!(plugin_calls(&canary.calls(), "get") >= 5, "retried");

    canary.cluster.server.fail_requests("rollouts", 503, usize::MAX);
    let output = finished(canary.status(&[NAME, "--timeout", "2s"])).await;
    let err = output.stderr;
    assert_eq!(output.code, Some(5), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: no answer from the Kubernetes API at http://127.0.0.1:"), "{err}");
    assert!(last.ends_with(" before --timeout passed"), "{err}");
}

/// A refusal does not pass by waiting: 5 at once, naming it, whether at the first read or mid-watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_exits_5_naming_it() {
    let canary = Canary::start().await;
    canary.cluster.server.fail_requests("rollouts", 403, 1);
    let started = std::time::Instant::now();
    let refused = finished(canary.status(&[NAME, "--timeout", "10m"])).await;
    let err = refused.stderr;
    assert_eq!(refused.code, Some(5), "{err}");
    assert!(err.starts_with("error: reading Rollout shop/web: "), "{err}");
    assert!(err.contains("cannot get resource \"rollouts\" in API group \"bellwether.dev\""), "{err}");
    assert!(started.elapsed() < PATIENCE, "not retried until the timeout");

    canary.ship().await;
    let run = canary.status(&[NAME, "--watch"]);
    watches(&canary, 1).await;
    canary.cluster.server.fail_requests("rollouts", 403, usize::MAX);
    canary.cluster.server.drop_watches();
    let refused = finished(run).await;
    let err = refused.stderr;
    assert_eq!(refused.code, Some(5), "{err}");
    assert!(err.contains("cannot watch resource \"rollouts\""), "{err}");
}

/// No such rollout, or one deleted while waiting: 5, saying which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_deleted_rollout_exits_5() {
    let canary = Canary::start().await;
    let missing = finished(canary.status(&["nothere"])).await;
    assert_eq!(missing.code, Some(5), "{}", missing.stderr);
    assert_eq!(missing.stderr, "error: rollout nothere not found in namespace shop\n");

    canary.ship().await;
    let run = canary.status(&[NAME]);
    watches(&canary, 1).await;
    canary.rollouts.delete(NAME, &Default::default()).await.expect("deleting the Rollout");
    let deleted = finished(run).await;
    assert_eq!(deleted.code, Some(5), "{}", deleted.stderr);
    assert_eq!(deleted.stderr, "error: rollout web was deleted from namespace shop while waiting for it\n");
}

/// No cluster to reach: 5, like any Rollout that cannot be read. A bad flag: 2.
#[test]
fn no_kubeconfig_exits_5_and_a_bad_flag_2() {
    let run = |args: &[&str]| {
        Ran::from(
            Command::new(env!("CARGO_BIN_EXE_kubectl-bellwether")).arg("status").args(args).output().unwrap(),
        )
    };
    let output = run(&[NAME, "--kubeconfig", "no/such/kubeconfig"]);
    assert_eq!(output.code, Some(5));
    assert!(output.stderr.starts_with("error: cannot read the kubeconfig no/such/kubeconfig"));
    for args in [&[][..], &[NAME, "--timeout", "soon"], &[NAME, "--watch=maybe"]] {
        assert_eq!(run(args).code, Some(2), "{args:?}");
    }
}

/// `--help` lists every exit code.
#[test]
fn help_lists_the_exit_codes() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_kubectl-bellwether")).args(["status", "--help"]).output().unwrap();
    let help = Ran::from(output).stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains(
            "Exit codes: 0 Healthy (or promoted), 1 Degraded (aborted), 2 usage error, 3 timed out, 4 paused \
             until a person acts, 5 could not read the Rollout"
        ),
        "{help}"
    );
}

/// A pipeline that reads only the first line (`status --watch | head -1`) closes standard output
/// early: the exit code still says how the rollout ended, rather than a panic's 101.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_standard_output_keeps_the_exit_code() {
    let canary = Canary::start().await;
    let kubeconfig = canary.cluster.kubeconfig().to_path_buf();
    let code = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-bellwether"))
            .args(["status", NAME, "-n", NAMESPACE, "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the plugin runs");
        drop(child.stdout.take());
        child.wait().expect("the plugin ends").code()
    })
    .await
    .expect("waiting for the plugin");
    assert_eq!(code, Some(0), "Healthy, even with nowhere to say so");
}
