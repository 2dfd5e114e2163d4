//! A bad canary is never promoted, whatever the metrics say and whoever touches the objects: each
//! test is one way that promise was once broken, through the real controller, the test API server
//! and a real Prometheus.

use crate::app::telemetry;
use crate::harness::{Cluster, Controller, ROLLOUT, ROUTE, create, eventually};
use crate::rollouts::deploy_stable;
use bellwether::api::{AnalysisPhase, AnalysisRun, Rollout, RolloutOutcome, RolloutPhase};
use bellwether::controller::requests::annotation_patch;
use bellwether::engine::{UserAction, UserRequest};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// The failed requests of `{{revision}}` per successful one: `+Inf` for a canary that fails every
/// request, as such queries are often written.
const ERRORS_PER_SUCCESS: &str = "sum(rate(http_requests_total{namespace=\"{{rollout.namespace}}\", revision=\"{{revision}}\", code=~\"5..\"}[2s])) / sum(rate(http_requests_total{namespace=\"{{rollout.namespace}}\", revision=\"{{revision}}\", code=\"200\"}[2s]))";

/// A template `name` with one metric `metric` (merged over a 1s-interval Prometheus metric).
async fn template(cluster: &Cluster, name: &str, metric: Value) {
    let mut base = json!({
        "name": "errors",
        "interval": "1s",
        "initialDelay": "2s",
        "consecutiveErrorLimit": 2,
        "provider": {"prometheus": {"address": telemetry().prometheus.address(), "timeout": "2s", "query": ERRORS_PER_SUCCESS}},
    });
    base.as_object_mut().unwrap().extend(metric.as_object().unwrap().clone());
    cluster.create_template(name, json!({"metrics": [base]})).await;
}

/// The Rollout at `version` with these steps and, when given, background analysis by `background`.
fn rollout(cluster: &Cluster, version: &str, steps: Value, background: Option<&str>) -> Rollout {
    let mut rollout = cluster.rollout(version, steps);
    if let Some(template) = background {
        rollout.spec.strategy.canary.analysis = serde_json::from_value(json!({
            "templates": [{"templateName": template}],
        }))
        .unwrap();
    }
    rollout
}

/// Ships revision 2, failing `error_ratio` of its requests, and returns it.
async fn ship_canary(cluster: &Cluster, rollout: &Rollout, error_ratio: f64) -> String {
    let canary = cluster.ship(rollout).await;
    telemetry().apps.serve(&cluster.namespace, &canary, error_ratio).await;
    canary
}

/// Waits for the canary to be aborted; fails at once if it is promoted instead.
async fn aborted(cluster: &Cluster, stable: &str) -> Rollout {
    let done = cluster
        .rollout_until("the canary to end", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Degraded) || s.stable_revision.as_deref() != Some(stable)
            })
        })
        .await;
    let status = done.status.clone().expect("a status");
    assert_eq!(status.stable_revision.as_deref(), Some(stable), "the bad canary was promoted: {status:#?}");
    assert_eq!(status.history[0].outcome, RolloutOutcome::Aborted, "{:?}", status.history);
    done
}

fn abort_message(rollout: &Rollout) -> String {
    rollout.status.as_ref().and_then(|s| s.abort.as_ref()).map(|a| a.message.clone()).unwrap_or_default()
}

async fn runs(cluster: &Cluster) -> Vec<AnalysisRun> {
    cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs").items
}

fn steps_paused_at_ten() -> Value {
    json!([{"setWeight": 10}, {"pause": {"duration": "8s"}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_every_request_is_aborted_by_background_analysis_not_promoted() {
    let cluster = Cluster::start("inf-background").await;
    template(&cluster, "errors-per-success", json!({"threshold": {"max": 0.01}})).await;
    let controller = Controller::start(&cluster, &[]);
    let background = Some("errors-per-success");
    let stable = deploy_stable(&cluster, steps_paused_at_ten()).await;
    ship_canary(&cluster, &rollout(&cluster, "2", steps_paused_at_ten(), background), 1.0).await;

    let done = aborted(&cluster, &stable).await;
    let abort = done.status.and_then(|s| s.abort).expect("an abort");
    assert_eq!(
        (abort.metric.as_deref(), abort.value.as_deref()),
        (Some("errors"), Some("+Inf")),
        "{abort:?}"
    );
    let run =
        runs(&cluster).await.into_iter().find(|r| r.name_any().ends_with("background")).expect("the run");
    let status = run.status.expect("a status");
    assert_eq!(status.phase, Some(AnalysisPhase::Failed), "{:?}", status.message);
    let stored = &status.metric_results[0].measurements;
    assert_eq!(
        stored.last().and_then(|m| m.value),
        Some(f64::INFINITY),
        "the value survives the status: {stored:?}"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_every_request_fails_its_analysis_step_not_inconclusive() {
    let cluster = Cluster::start("inf-step").await;
    template(&cluster, "errors-per-success", json!({"count": 3, "threshold": {"max": 0.01}})).await;
    let controller = Controller::start(&cluster, &[]);
    let steps =
        json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "errors-per-success"}]}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    ship_canary(&cluster, &rollout(&cluster, "2", steps, None), 1.0).await;

    let done = aborted(&cluster, &stable).await;
    assert_eq!(done.status.and_then(|s| s.abort).map(|a| a.reason).as_deref(), Some("AnalysisFailed"));
    let run = runs(&cluster).await.pop().expect("the step's run");
    assert_eq!(run.status.and_then(|s| s.phase), Some(AnalysisPhase::Failed));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_count_that_is_infinite_ends_the_analysis_in_error_not_a_stall() {
    let cluster = Cluster::start("inf-count").await;
    let failed = "sum(increase(http_requests_total{namespace=\"{{rollout.namespace}}\", revision=\"{{revision}}\", code=~\"5..\"}[{{interval}}]))";
    let requests = "sum(increase(http_requests_total{namespace=\"{{rollout.namespace}}\", revision=\"{{revision}}\"}[{{interval}}])) / 0";
    let metric = json!({
        "count": 30,
        "provider": {"prometheus": {"address": telemetry().prometheus.address(), "timeout": "2s", "query": failed}},
        "sequential": {"requestsQuery": requests, "maxIncrease": 0.5},
    });
    template(&cluster, "sequential-broken", metric).await;
    let controller = Controller::start(&cluster, &[]);
    let steps =
        json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "sequential-broken"}]}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    ship_canary(&cluster, &rollout(&cluster, "2", steps, None), 0.05).await;

    aborted(&cluster, &stable).await;
    let status = runs(&cluster).await.pop().and_then(|r| r.status).expect("the run's status");
    assert_eq!(status.phase, Some(AnalysisPhase::Error));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("requestsQuery for the canary: returned +Inf, which is not a count of requests"),
        "{message}"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_that_never_reaches_a_verdict_ends_in_error_at_its_timeout() {
    let cluster = Cluster::start("never-ends").await;
    // No series at all, and no data ignored: without a deadline this would run forever.
    let nothing = "sum(rate(http_requests_total{namespace=\"nowhere\"}[2s]))";
    let metric = json!({
        "count": 3,
        "noData": "ignore",
        "provider": {"prometheus": {"address": telemetry().prometheus.address(), "query": nothing}},
        "threshold": {"max": 0.01},
    });
    template(&cluster, "silent", metric).await;
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "silent"}], "timeout": "5s"}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    ship_canary(&cluster, &rollout(&cluster, "2", steps, None), 0.0).await;

    let done = aborted(&cluster, &stable).await;
    let message = abort_message(&done);
    assert!(message.contains("no verdict within 5s (its timeout)"), "{message}");
    let status = runs(&cluster).await.pop().and_then(|r| r.status).expect("the run's status");
    assert_eq!(status.phase, Some(AnalysisPhase::Error), "the run itself says so: {:?}", status.message);
    controller.stop().await;
}

/// A bad canary whose analysis takes 30s to fail (breachFor), at its analysis step.
async fn bad_canary_breaching(cluster: &Cluster) -> (String, AnalysisRun) {
    let metric = json!({"count": 60, "threshold": {"max": 0.01, "hysteresis": {"breachFor": "30s"}}});
    template(cluster, "slow-to-fail", metric).await;
    let steps = json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "slow-to-fail"}]}}]);
    let stable = deploy_stable(cluster, steps.clone()).await;
    ship_canary(cluster, &rollout(cluster, "2", steps, None), 0.05).await;
    let run = eventually("the run breaching", || async {
        runs(cluster).await.into_iter().find(|run| {
            run.status.as_ref().is_some_and(|s| {
                s.metric_results
                    .iter()
                    .any(|m| m.measurements.iter().any(|x| x.value.is_some_and(|v| v > 0.01)))
            })
        })
    })
    .await;
    (stable, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_phase_written_over_a_bad_canarys_run_is_not_believed() {
    let cluster = Cluster::start("forged-phase").await;
    let controller = Controller::start(&cluster, &[]);
    let (stable, run) = bad_canary_breaching(&cluster).await;

    let mut forged = run.clone();
    let status = forged.status.as_mut().unwrap();
    status.phase = Some(AnalysisPhase::Successful);
    status.message = Some("all good".into());
    cluster
        .api::<AnalysisRun>()
        .replace_status(&run.name_any(), &PostParams::default(), &forged)
        .await
        .expect("writing the run's status as a user with analysisruns/status");

    let done = aborted(&cluster, &stable).await;
    let message = abort_message(&done);
    assert!(message.contains("records Successful, but its measurements say Running"), "{message}");
    let notes = eventually("the AnalysisRunDistrusted Event", || async {
        cluster.event_notes("AnalysisRunDistrusted").await.pop()
    })
    .await;
    assert!(notes.contains(&run.name_any()), "{notes}");
    controller.stop().await;
}

/// Counts the connections made to a local port: where a forged run would send its queries.
async fn listening_sink() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a port");
    let address = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (address, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_changed_to_query_elsewhere_is_neither_measured_nor_believed() {
    let cluster = Cluster::start("forged-spec").await;
    let controller = Controller::start(&cluster, &[]);
    let (stable, run) = bad_canary_breaching(&cluster).await;
    let (address, connections) = listening_sink().await;

    let patch = json!({"spec": {"metrics": [{
        "name": "errors",
        "interval": "1s",
        "count": 3,
        "provider": {"prometheus": {"address": address, "query": "vector(0)"}},
        "threshold": {"max": 0.01},
    }]}});
    cluster
        .api::<AnalysisRun>()
        .patch(&run.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("editing the run's spec");

    let done = aborted(&cluster, &stable).await;
    let message = abort_message(&done);
    assert!(message.contains("spec was changed after Bellwether created it"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 0, "the edited run's address was queried");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_no_rollout_owns_is_never_measured_and_its_secret_never_read() {
    let cluster = Cluster::start("stray-run").await;
    let Some(server) = cluster.server.as_ref() else {
        println!("skipped: needs the test API server's call log");
        return;
    };
    let controller = Controller::start(&cluster, &[]);
    deploy_stable(&cluster, steps_paused_at_ten()).await;
    let (address, connections) = listening_sink().await;
    create::<Secret>(
        &cluster.client,
        &cluster.namespace,
        json!({"metadata": {"name": "prometheus-token"}, "stringData": {"token": "s3cret"}}),
    )
    .await;
    create::<AnalysisRun>(
        &cluster.client,
        &cluster.namespace,
        json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {"name": "stray", "labels": {"bellwether.dev/rollout": ROLLOUT}},
            "spec": {
                "revision": "anything",
                "metrics": [{
                    "name": "exfiltrate",
                    "interval": "1s",
                    "count": 3,
                    "provider": {"prometheus": {
                        "address": address,
                        "query": "vector(0)",
                        "auth": {"bearer": {"name": "prometheus-token", "key": "token"}},
                    }},
                    "threshold": {"max": 1},
                }],
                "sources": [{"metric": "exfiltrate", "template": {"templateName": "anything"}}],
            },
        }),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stray = cluster.api::<AnalysisRun>().get("stray").await.expect("reading the run");
    assert_eq!(stray.status, None, "a run no Rollout owns was measured");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "its address was queried");
    let calls = server.call_log().calls_of("system:serviceaccount:bellwether:bellwether");
    assert!(!calls.iter().any(|(_, resource, _)| resource == "secrets"), "a Secret was read: {calls:?}");
    let rollout = cluster.rollouts().get(ROLLOUT).await.expect("reading the Rollout");
    assert_eq!(rollout.status.and_then(|s| s.phase), Some(RolloutPhase::Healthy));
    controller.stop().await;
}

/// The canary at 10%, paused there by its 8s pause step.
async fn at_ten(cluster: &Cluster) -> String {
    let stable = deploy_stable(cluster, steps_paused_at_ten()).await;
    ship_canary(cluster, &rollout(cluster, "2", steps_paused_at_ten(), None), 0.0).await;
    eventually("the canary at 10%", || async { (cluster.weights().await == Some((10, 90))).then_some(()) })
        .await;
    stable
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_whose_route_writes_are_refused_does_not_say_all_traffic_is_on_stable() {
    let cluster = Cluster::start("route-refused").await;
    let Some(server) = cluster.server.as_ref() else {
        println!("skipped: needs the test API server's fault injection");
        return;
    };
    let controller = Controller::start(&cluster, &[]);
    at_ten(&cluster).await;
    server.forbid_writes("httproutes");
    let request = annotation_patch(&UserRequest {
        id: "abort-1".into(),
        action: UserAction::Abort,
        by: "alice".into(),
        revision: None,
        step: None,
        alert: None,
    });
    cluster
        .rollouts()
        .patch(ROLLOUT, &PatchParams::default(), &Patch::Merge(&request))
        .await
        .expect("asking to abort");

    let degraded = cluster
        .rollout_until("the abort", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let message =
        cluster.rollouts().get(ROLLOUT).await.unwrap().status.and_then(|s| s.message).unwrap_or_default();
    assert!(!message.contains("all traffic on stable"), "while the route still sends 10%: {message}");
    assert!(message.contains("canary=10 stable=90"), "{message}");
    assert_eq!(cluster.weights().await, Some((10, 90)), "the route was not writable");
    assert!(degraded.status.is_some_and(|s| !s.weights.verified));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_rollout_puts_hand_edited_route_weights_back() {
    let cluster = Cluster::start("paused-edit").await;
    let controller = Controller::start(&cluster, &[]);
    at_ten(&cluster).await;
    let pause = json!({"spec": {"paused": true}});
    cluster.rollouts().patch(ROLLOUT, &PatchParams::default(), &Patch::Merge(&pause)).await.expect("pausing");
    cluster
        .rollout_until("Paused", |r| r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Paused)))
        .await;

    let edit = json!([
        {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 40},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 60},
    ]);
    let patch = Patch::<()>::Json(serde_json::from_value(edit).unwrap());
    cluster.routes().patch(ROUTE, &PatchParams::default(), &patch).await.expect("editing the route by hand");
    eventually("the route back at 10%", || async {
        (cluster.weights().await == Some((10, 90))).then_some(())
    })
    .await;
    let rollout = cluster.rollouts().get(ROLLOUT).await.unwrap();
    assert_eq!(rollout.status.and_then(|s| s.phase), Some(RolloutPhase::Paused), "still paused");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_status_the_api_server_refuses_ends_the_run_in_error_and_the_rollout_follows() {
    // A small request limit, so that the run's status outgrows it within seconds, as a big one
    // outgrows the real limit over a long analysis.
    let options = crate::apiserver::Options { max_request_bytes: 8 * 1024, ..Default::default() };
    let cluster = Cluster::start_with("status-refused", options).await;
    if cluster.server.is_none() {
        println!("skipped: needs the test API server's request limit");
        return;
    }
    let metrics: Vec<Value> = (0..10)
        .map(|i| {
            json!({
                "name": format!("m{i}"),
                "interval": "1s",
                "count": 600,
                "provider": {"prometheus": {"address": telemetry().prometheus.address(), "query": "vector(0)"}},
                "threshold": {"max": 1},
            })
        })
        .collect();
    cluster.create_template("many", json!({"metrics": metrics})).await;
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "many"}]}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    ship_canary(&cluster, &rollout(&cluster, "2", steps, None), 0.0).await;

    let done = aborted(&cluster, &stable).await;
    let message = abort_message(&done);
    assert!(message.contains("the API server refused the run's status"), "{message}");
    assert!(message.contains("Request entity too large: limit is 8192"), "{message}");
    let status = runs(&cluster).await.pop().and_then(|r| r.status).expect("the run's status");
    assert_eq!(status.phase, Some(AnalysisPhase::Error));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_the_controller_was_not_granted_is_never_read() {
    let cluster = Cluster::start("secret-not-granted").await;
    let ns = cluster.namespace.clone();
    for name in ["granted-token", "other-token"] {
        create::<Secret>(
            &cluster.client,
            &ns,
            json!({"metadata": {"name": name}, "stringData": {"token": "t"}}),
        )
        .await;
    }
    for (template_name, secret) in [("with-granted", "granted-token"), ("with-other", "other-token")] {
        let metric = json!({
            "count": 3,
            "provider": {"prometheus": {
                "address": telemetry().prometheus.address(),
                "query": "vector(0)",
                "auth": {"bearer": {"name": secret, "key": "token"}},
            }},
            "threshold": {"max": 1},
        });
        template(&cluster, template_name, metric).await;
    }
    let granted = format!("{ns}/granted-token");
    let controller = Controller::start(&cluster, &["--readable-secret", &granted]);
    let steps = |template: &str| json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": template}]}}, {"setWeight": 50}]);
    let stable = deploy_stable(&cluster, steps("with-granted")).await;
    let canary = ship_canary(&cluster, &rollout(&cluster, "2", steps("with-granted"), None), 0.0).await;
    crate::faults::wait_promoted(&cluster, &canary).await;

    ship_canary(&cluster, &rollout(&cluster, "3", steps("with-other"), None), 0.0).await;
    aborted(&cluster, &canary).await;
    let run =
        runs(&cluster).await.into_iter().find(|r| r.spec.revision != canary && r.spec.revision != stable);
    let message = run.and_then(|r| r.status).and_then(|s| s.message).unwrap_or_default();
    assert!(
        message.contains(&format!(
            "Secret {ns}/other-token: is not among the Secrets Bellwether was granted (--readable-secret {ns}/other-token"
        )),
        "{message}"
    );
    controller.stop().await;
}
