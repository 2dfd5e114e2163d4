//! Rollouts through the faults a controller meets in a real cluster: watches that end or expire,
//! writes refused with 409 Conflict, a route deleted by a user mid-canary, a Prometheus that goes
//! away or rejects the query, and Rollouts that are malformed.
//!
//! Whatever goes wrong, a canary is never promoted on evidence it does not have, and the status
//! says why it waits or stopped.

use crate::app::telemetry;
use crate::harness::{Cluster, Controller, ROLLOUT, ROUTE, TEMPLATE, eventually};
use crate::rollouts::{deploy_stable, record_weights};
use bellwether::api::{AnalysisPhase, AnalysisRun, Rollout, RolloutOutcome, RolloutPhase};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

fn steps_with_analysis(template: &str) -> Value {
    json!([
        {"setWeight": 10},
        {"analysis": {"templates": [{"templateName": template}]}},
        {"setWeight": 50},
        {"pause": {"duration": "2s"}},
    ])
}

fn is_promoted(rollout: &Rollout, revision: &str) -> bool {
    rollout.status.as_ref().is_some_and(|s| {
        s.phase == Some(RolloutPhase::Healthy) && s.stable_revision.as_deref() == Some(revision)
    })
}

pub async fn wait_promoted(cluster: &Cluster, revision: &str) -> Rollout {
    cluster.rollout_until("the canary to be promoted", |r| is_promoted(r, revision)).await
}

/// The weights the route's watch has shown, once the last of them is `last`: the watch may lag the
/// read that saw the route at `last`.
async fn weights_ending(
    log: &std::sync::Mutex<Vec<((i64, i64), std::time::Instant)>>,
    last: (i64, i64),
) -> Vec<(i64, i64)> {
    eventually("the route's watch to show the last weights", || async {
        let seen: Vec<(i64, i64)> = log.lock().unwrap().iter().map(|(w, _)| *w).collect();
        (seen.last() == Some(&last)).then_some(seen)
    })
    .await
}

async fn analysis_runs(cluster: &Cluster) -> Vec<AnalysisRun> {
    cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing AnalysisRuns").items
}

/// Checks `hold` on the Rollout every 100ms for `period`, failing at the first time it does not.
async fn holds_for(cluster: &Cluster, period: Duration, what: &str, hold: impl Fn(&Rollout) -> bool) {
    let end = tokio::time::Instant::now() + period;
    while tokio::time::Instant::now() < end {
        let rollout = cluster.rollouts().get(ROLLOUT).await.expect("reading the Rollout");
        assert!(hold(&rollout), "{what}; the status was {:#?}", rollout.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_dropped_watches_mid_canary_neither_stall_nor_regress_it() {
    let cluster = Cluster::start("watch-reset").await;
    let Some(server) = cluster.server.as_ref() else {
        println!("skipped: needs the test API server's fault injection");
        return;
    };
    let controller = Controller::start(&cluster, &[]);
    deploy_stable(&cluster, steps_with_analysis(TEMPLATE)).await;
    let weights = record_weights(&cluster);

    let canary = cluster.ship(&cluster.rollout("2", steps_with_analysis(TEMPLATE))).await;
    // Each moment of the canary loses its watches once: as it starts, at 10%, while the analysis
    // measures, and at 50%.
    server.expire_next_watch();
    server.drop_watches();
    eventually("the canary at 10%", || async { (cluster.weights().await == Some((10, 90))).then_some(()) })
        .await;
    server.drop_watches();
    server.expire_next_watch();
    eventually("the step's AnalysisRun measuring", || async {
        let runs = analysis_runs(&cluster).await;
        runs.iter()
            .any(|run| {
                run.status
                    .as_ref()
                    .is_some_and(|s| s.metric_results.iter().any(|m| !m.measurements.is_empty()))
            })
            .then_some(())
    })
    .await;
    server.expire_next_watch();
    server.drop_watches();
    eventually("the canary at 50%", || async { (cluster.weights().await == Some((50, 50))).then_some(()) })
        .await;
    server.drop_watches();
    server.expire_next_watch();

    let done = wait_promoted(&cluster, &canary).await;
    let history = done.status.expect("a status").history;
    assert_eq!(history[0].outcome, RolloutOutcome::Promoted, "{history:?}");
    assert_eq!(
        weights_ending(&weights, (0, 100)).await,
        [(0, 100), (10, 90), (50, 50), (0, 100)],
        "route weights"
    );
    assert_eq!(analysis_runs(&cluster).await.len(), 1, "one analysis step, one run");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_writes_at_the_start_of_a_canary_repeat_no_step() {
    let cluster = Cluster::start("conflicts").await;
    let Some(server) = cluster.server.as_ref() else {
        println!("skipped: needs the test API server's fault injection");
        return;
    };
    let controller = Controller::start(&cluster, &[]);
    deploy_stable(&cluster, steps_with_analysis(TEMPLATE)).await;
    let weights = record_weights(&cluster);

    let canary = cluster.ship(&cluster.rollout("2", steps_with_analysis(TEMPLATE))).await;
    for plural in ["rollouts", "analysisruns", "httproutes", "replicasets"] {
        server.inject_conflicts(plural, 3);
    }

    wait_promoted(&cluster, &canary).await;
    assert_eq!(
        weights_ending(&weights, (0, 100)).await,
        [(0, 100), (10, 90), (50, 50), (0, 100)],
        "each weight change once, in order"
    );
    let runs = analysis_runs(&cluster).await;
    assert_eq!(runs.len(), 1, "one analysis step, one run: {:?}", runs.iter().map(|r| r.name_any()));
    assert_eq!(runs[0].status.as_ref().and_then(|s| s.phase), Some(AnalysisPhase::Successful));
    controller.stop().await;
}

/// The route goes while the canary bakes at 10%. The pause holds the canary, naming the missing
/// route, and does not end until the route carries the canary's weight again (or the progress
/// deadline passes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_deleted_mid_canary_holds_it_until_the_route_is_back() {
    let cluster = Cluster::start("route-gone").await;
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([
        {"setWeight": 10},
        {"pause": {"duration": "4s"}},
        {"setWeight": 50},
        {"pause": {"duration": "1s"}},
    ]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    let canary = cluster.ship(&cluster.rollout("2", steps)).await;
    // Deleted once the 10% is verified, so that no status from before (which names the route while
    // it waits for the weights) is mistaken for the hold: the next setWeight must wait for the route.
    cluster
        .rollout_until("the canary pausing at a verified 10%", |r| {
            r.status.as_ref().is_some_and(|s| s.step.as_deref() == Some("2/4") && s.weights.verified)
        })
        .await;

    cluster.routes().delete(ROUTE, &DeleteParams::default()).await.expect("deleting the route");
    let route = format!("HTTPRoute/{}/{ROUTE}", cluster.namespace);
    let waiting = cluster
        .rollout_until("the status to name the missing route", |r| {
            r.status.as_ref().and_then(|s| s.message.as_deref()).is_some_and(|m| m.contains(&route))
        })
        .await;
    println!("while the route is missing: {:?}", waiting.status.as_ref().and_then(|s| s.message.as_deref()));
    holds_for(&cluster, Duration::from_secs(3), "the canary went on without its route", |r| {
        r.status.as_ref().is_some_and(|s| {
            s.stable_revision.as_deref() == Some(stable.as_str())
                && s.phase != Some(RolloutPhase::Healthy)
                && s.message.as_deref().is_some_and(|m| m.contains(&route))
        })
    })
    .await;

    let weights = record_weights(&cluster);
    cluster.create_route().await;
    let done = wait_promoted(&cluster, &canary).await;
    assert_eq!(done.status.expect("a status").history[0].outcome, RolloutOutcome::Promoted);
    let seen = weights_ending(&weights, (0, 100)).await;
    let (last, rising) = seen.split_last().expect("weights seen");
    assert_eq!(*last, (0, 100), "promoted: all traffic on the new stable");
    assert!(
        rising.windows(2).all(|w| w[0].0 < w[1].0) && rising.iter().all(|(c, s)| c + s == 100),
        "the recreated route's weights only rose until the promotion: {seen:?}"
    );
    controller.stop().await;
}

/// A TCP proxy that the test can take away: once stopped, the port refuses connections and every
/// connection through it is closed.
struct Proxy {
    address: String,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a 127.0.0.1 port");
        let address = format!("http://{}", listener.local_addr().expect("a bound listener"));
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it closes the listener and every connection at once.
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Self { address, task }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// An AnalysisTemplate named `name` measuring the canary's error ratio at `address` with `query`,
/// with `count` measurements a second: long enough to still be running when the test breaks it.
async fn create_template(cluster: &Cluster, name: &str, address: &str, query: &str, count: u32) {
    cluster
        .create_template(
            name,
            json!({"metrics": [{
                "name": "error-rate",
                "interval": "1s",
                "initialDelay": "2s",
                "count": count,
                "consecutiveErrorLimit": 2,
                "provider": {"prometheus": {"address": address, "timeout": "1s", "query": query}},
                "threshold": {"max": 0.01},
            }]}),
        )
        .await;
}

const ERROR_RATIO: &str = "sum(rate(http_requests_total{namespace=\"{{rollout.namespace}}\", revision=\"{{revision}}\", code=~\"5..\"}[2s])) / sum(rate(http_requests_total{namespace=\"{{rollout.namespace}}\", revision=\"{{revision}}\"}[2s]))";

/// Waits for the analysis to end the rollout: the run terminal, the rollout Degraded and all
/// traffic back on stable; returns the run.
async fn analysis_aborts(cluster: &Cluster, stable: &str) -> AnalysisRun {
    let run = eventually("the AnalysisRun to end", || async {
        let runs = analysis_runs(cluster).await;
        runs.into_iter()
            .find(|run| run.status.as_ref().and_then(|s| s.phase).is_some_and(|p| p.is_terminal()))
    })
    .await;
    let degraded = cluster
        .rollout_until("the rollout to abort", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let status = degraded.status.expect("a status");
    assert_eq!(status.stable_revision.as_deref(), Some(stable), "the canary was promoted");
    assert!(status.history.iter().all(|h| h.outcome != RolloutOutcome::Promoted), "{:?}", status.history);
    eventually("all traffic back on stable", || async {
        (cluster.weights().await == Some((0, 100))).then_some(())
    })
    .await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_going_away_mid_analysis_never_promotes_the_canary() {
    let cluster = Cluster::start("prometheus-gone").await;
    let proxy = Proxy::start(telemetry().prometheus.address()).await;
    let template = "error-rate-proxied";
    create_template(&cluster, template, &proxy.address, ERROR_RATIO, 60).await;
    let controller = Controller::start(&cluster, &[]);
    let stable = deploy_stable(&cluster, steps_with_analysis(template)).await;
    let weights = record_weights(&cluster);
    cluster.ship(&cluster.rollout("2", steps_with_analysis(template))).await;

    eventually("a measured value through the proxy", || async {
        let runs = analysis_runs(&cluster).await;
        runs.iter()
            .any(|run| {
                run.status.as_ref().is_some_and(|s| {
                    s.metric_results.iter().any(|m| m.measurements.iter().any(|x| x.value.is_some()))
                })
            })
            .then_some(())
    })
    .await;
    proxy.stop().await;

    let run = analysis_aborts(&cluster, &stable).await;
    let status = run.status.expect("a status");
    let phase = status.phase.expect("a phase");
    assert!(matches!(phase, AnalysisPhase::Error | AnalysisPhase::Inconclusive), "{phase:?}");
    let message = status.message.unwrap_or_default();
    let host = proxy_host(&run.spec);
    assert!(message.contains(&host), "the message does not name {host}: {message}");
    let seen = weights_ending(&weights, (0, 100)).await;
    assert!(seen.iter().all(|(canary, _)| *canary <= 10), "the canary went past the analysis: {seen:?}");
    controller.stop().await;
}

/// The `host:port` of the run's first metric's Prometheus.
fn proxy_host(spec: &bellwether::api::AnalysisRunSpec) -> String {
    let address = spec.metrics[0].provider.prometheus.as_ref().map(|p| p.address.clone()).unwrap_or_default();
    address.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_prometheus_cannot_parse_ends_the_analysis_in_error() {
    let cluster = Cluster::start("bad-query").await;
    let template = "error-rate-experimental";
    // Well-formed PromQL that Prometheus cannot parse: sort_by_label is experimental, and off by default.
    let broken = concat!(
        r#"sort_by_label(sum by (namespace) (rate(http_requests_total{namespace="{{rollout.namespace}}"}[2s])),"#,
        r#" "namespace")"#
    );
    create_template(&cluster, template, telemetry().prometheus.address(), broken, 3).await;
    let controller = Controller::start(&cluster, &[]);
    let stable = deploy_stable(&cluster, steps_with_analysis(template)).await;
    let weights = record_weights(&cluster);
    cluster.ship(&cluster.rollout("2", steps_with_analysis(template))).await;

    let run = analysis_aborts(&cluster, &stable).await;
    let status = run.status.expect("a status");
    assert_eq!(status.phase, Some(AnalysisPhase::Error), "{:?}", status.message);
    let message = status.message.unwrap_or_default();
    assert!(message.contains("parse error"), "Prometheus's parse error is not in: {message}");
    let seen = weights_ending(&weights, (0, 100)).await;
    assert!(seen.iter().all(|(canary, _)| *canary <= 10), "the canary went past the analysis: {seen:?}");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_with_two_actions_is_refused_by_the_schema() {
    let cluster = Cluster::start("two-actions").await;
    let rollout = cluster.rollout("1", json!([{"setWeight": 10}, {"setWeight": 20, "pause": {}}]));
    let error = cluster
        .rollouts()
        .create(&PostParams::default(), &rollout)
        .await
        .expect_err("a step with both setWeight and pause is refused");
    let kube::Error::Api(status) = error else { panic!("not an API error: {error}") };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status.message.contains("steps[1]")
            && status.message.contains(
                "a step must have exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute"
            ),
        "{}",
        status.message
    );
    assert!(cluster.rollouts().get_opt(ROLLOUT).await.expect("reading the Rollout").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_step_naming_a_missing_template_is_an_invalid_spec_that_touches_nothing() {
    let cluster = Cluster::start("missing-template").await;
    let controller = Controller::start(&cluster, &[]);
    let stable = deploy_stable(&cluster, steps_with_analysis(TEMPLATE)).await;
    let replica_sets = || async {
        let list =
            cluster.api::<ReplicaSet>().list(&ListParams::default()).await.expect("listing ReplicaSets");
        list.items.into_iter().map(|rs| rs.name_any()).collect::<Vec<_>>()
    };
    let before = replica_sets().await;

    cluster.ship(&cluster.rollout("2", steps_with_analysis("no-such-template"))).await;
    let invalid = cluster
        .rollout_until("the InvalidSpec condition", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "InvalidSpec" && c.status == "True"))
        })
        .await;
    assert_eq!(crate::harness::kstatus(&invalid), Some(("Stalled".into(), "InvalidSpec".into())));
    let status = invalid.status.expect("a status");
    let condition = status.conditions.iter().find(|c| c.type_ == "InvalidSpec").expect("the condition");
    assert!(
        condition.message.contains("steps[1].analysis.templates[0].templateName")
            && condition.message.contains("AnalysisTemplate \"no-such-template\" not found"),
        "{}",
        condition.message
    );
    holds_for(&cluster, Duration::from_secs(2), "an invalid spec changed the rollout", |r| {
        r.status.as_ref().is_some_and(|s| {
            s.stable_revision.as_deref() == Some(stable.as_str()) && s.canary_revision.is_none()
        })
    })
    .await;
    assert_eq!(replica_sets().await, before, "no ReplicaSet for the invalid revision");
    assert_eq!(cluster.weights().await, Some((0, 100)), "the route is untouched");
    controller.stop().await;
}
