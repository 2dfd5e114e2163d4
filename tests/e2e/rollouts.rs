//! Whole rollouts, driven by the controller: a good canary promoted, a bad one aborted, one whose
//! pods never start, and one replaced by a newer revision.

use crate::app::telemetry;
use crate::argocd::argocd_health;
use crate::harness::{
    BAD, CANARY, Cluster, Controller, ROLLOUT, ROUTE, STABLE, TEMPLATE, eventually, kstatus,
};
use bellwether::api::{AnalysisRun, AnalysisRunHistoryLimit, ROLLOUT_LABEL, RolloutOutcome, RolloutPhase};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn steps_good() -> Value {
    json!([
        {"setWeight": 10},
        {"analysis": {"templates": [{"templateName": TEMPLATE}]}},
        {"setWeight": 50},
        {"pause": {"duration": "2s"}},
    ])
}

/// Every distinct (canary, stable) weight pair a route showed, in order, with when it was seen.
pub type WeightLog = Arc<Mutex<Vec<((i64, i64), Instant)>>>;

/// Calls `seen` with every version of every route in the namespace that a watch shows, for the
/// whole test.
pub fn on_each_route(cluster: &Cluster, mut seen: impl FnMut(&DynamicObject) + Send + 'static) {
    // With backoff, so that a watch whose server is gone (at the end of a test) retries
    // with pauses instead of spinning and holding up the runtime.
    let stream = watcher(cluster.routes(), watcher::Config::default()).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(route) | watcher::Event::InitApply(route)) = event {
                seen(&route);
            }
        }
    });
}

/// The weight of the route's first rule's backendRef to `service`.
pub fn weight_to(route: &DynamicObject, service: &str) -> Option<i64> {
    let route = serde_json::to_value(route).unwrap_or_default();
    let refs = route.pointer("/spec/rules/0/backendRefs")?.as_array()?.clone();
    refs.iter().find(|r| r["name"] == service).and_then(|r| r["weight"].as_i64())
}

/// Records the route's weights from a watch, for the whole test.
pub fn record_weights(cluster: &Cluster) -> WeightLog {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    on_each_route(cluster, move |route| {
        if route.name_any() != ROUTE {
            return;
        }
        let weight = |service: &str| weight_to(route, service).unwrap_or(1);
        let weights = (weight(CANARY), weight(STABLE));
        let mut log = log.lock().unwrap();
        if log.last().map(|(w, _)| *w) != Some(weights) {
            log.push((weights, Instant::now()));
        }
    });
    seen
}

/// Every distinct `spec.replicas` of each ReplicaSet, in order, by revision label.
pub fn record_scales(cluster: &Cluster) -> Arc<Mutex<Vec<(String, i32, Instant)>>> {
    let seen = Arc::new(Mutex::new(Vec::<(String, i32, Instant)>::new()));
    let log = seen.clone();
    let stream = watcher(cluster.api::<ReplicaSet>(), watcher::Config::default()).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let Ok(watcher::Event::Apply(rs) | watcher::Event::InitApply(rs)) = event else { continue };
            let revision = rs.labels().get(bellwether::api::REVISION_LABEL).cloned().unwrap_or_default();
            let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let mut log = log.lock().unwrap();
            if log.iter().rev().find(|(r, _, _)| *r == revision).map(|(_, n, _)| *n) != Some(replicas) {
                log.push((revision, replicas, Instant::now()));
            }
        }
    });
    seen
}

pub fn scales_of(log: &[(String, i32, Instant)], revision: &str) -> Vec<i32> {
    log.iter().filter(|(r, _, _)| r == revision).map(|(_, n, _)| *n).collect()
}

async fn selector(cluster: &Cluster, service: &str) -> Option<String> {
    let service = cluster.api::<Service>().get(service).await.expect("reading a Service");
    service.spec?.selector?.get(bellwether::api::REVISION_LABEL).cloned()
}

async fn event_reasons(cluster: &Cluster) -> Vec<String> {
    let events = cluster.api::<Event>().list(&ListParams::default()).await.expect("listing Events");
    events
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(ROLLOUT))
        .filter_map(|e| e.reason)
        .collect()
}

/// Ships revision 1 and waits until it is the stable revision.
pub async fn deploy_stable(cluster: &Cluster, steps: Value) -> String {
    let stable = cluster.ship(&cluster.rollout("1", steps)).await;
    cluster
        .rollout_until("the first revision to become stable", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.stable_revision.as_deref() == Some(stable.as_str())
            })
        })
        .await;
    stable
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_canary_goes_through_every_step_and_is_promoted() {
    let cluster = Cluster::start("good").await;
    let controller = Controller::start(&cluster, &[]);
    let stable = deploy_stable(&cluster, steps_good()).await;
    let weights = record_weights(&cluster);
    let scales = record_scales(&cluster);

    let canary = cluster.ship(&cluster.rollout("2", steps_good())).await;
    let moving = cluster
        .rollout_until("the canary in flight", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.canary_revision.as_deref() == Some(canary.as_str())
                    && s.phase == Some(RolloutPhase::Progressing)
            })
        })
        .await;
    assert_eq!(argocd_health(&serde_json::to_value(&moving).expect("a Rollout serializes")).0, "Progressing");
    let done = cluster
        .rollout_until("the canary to be promoted", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.stable_revision.as_deref() == Some(canary.as_str())
            })
        })
        .await;

    let ready = cluster.rollout_until("Ready", |r| kstatus(r).is_some_and(|(kind, _)| kind == "Ready")).await;
    assert_eq!(kstatus(&ready), Some(("Ready".into(), "Healthy".into())));
    assert_eq!(argocd_health(&serde_json::to_value(&ready).expect("a Rollout serializes")).0, "Healthy");
    let status = done.status.expect("a status");
    assert_eq!(status.history[0].outcome, RolloutOutcome::Promoted, "{:?}", status.history);
    assert_eq!(status.history[0].revision, canary);
    assert_eq!((status.weights.canary, status.weights.stable, status.weights.verified), (0, 100, true));
    let seen: Vec<(i64, i64)> = weights.lock().unwrap().iter().map(|(w, _)| *w).collect();
    assert_eq!(seen, [(0, 100), (10, 90), (50, 50), (0, 100)], "route weights over the rollout");
    assert_eq!(selector(&cluster, STABLE).await.as_deref(), Some(canary.as_str()));
    let runs = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs");
    assert_eq!(runs.items.len(), 1, "one analysis step, one run");
    assert_eq!(
        runs.items[0].status.as_ref().and_then(|s| s.phase),
        Some(bellwether::api::AnalysisPhase::Successful)
    );

    // The old stable revision is scaled down after scaleDownDelaySeconds, not before.
    eventually("the old stable ReplicaSet to be scaled down", || async {
        let log = scales.lock().unwrap();
        scales_of(&log, &stable).last().is_some_and(|n| *n == 0).then_some(())
    })
    .await;
    let log = scales.lock().unwrap().clone();
    assert_eq!(scales_of(&log, &canary), [1, 2, 4], "the canary's ReplicaSet follows its traffic share");
    let promoted_at = weights.lock().unwrap().last().map(|(_, at)| *at).expect("a final weight");
    let stable_down_at = log.iter().find(|(r, n, _)| *r == stable && *n == 0).map(|(_, _, at)| *at).unwrap();
    assert!(stable_down_at >= promoted_at, "stable was scaled down before the promotion");

    let reasons = event_reasons(&cluster).await;
    for reason in ["CanaryStarted", "WeightChanged", "AnalysisCompleted", "StepCompleted", "Promoted"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} Event in {reasons:?}");
    }
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_canary_is_aborted_traffic_first() {
    let cluster = Cluster::start("bad").await;
    let steps = json!([{"setWeight": 10}, {"pause": {}}]);
    let mut with_background = cluster.rollout("1", steps.clone());
    with_background.spec.strategy.canary.analysis =
        Some(serde_json::from_value(json!({"templates": [{"templateName": TEMPLATE}]})).unwrap());
    let controller = Controller::start(&cluster, &[]);
    cluster.ship(&with_background).await;
    cluster
        .rollout_until("the first revision to become stable", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.phase == Some(RolloutPhase::Healthy) && s.stable_revision.is_some())
        })
        .await;
    let weights = record_weights(&cluster);
    let scales = record_scales(&cluster);

    let mut next = cluster.rollout("2", steps);
    next.spec.strategy.canary.analysis = with_background.spec.strategy.canary.analysis.clone();
    let canary = cluster.ship(&next).await;
    // The canary is good at first: it reaches its step, and the background analysis measures it.
    eventually("the canary at 10% under background analysis", || async {
        let at_ten = cluster.weights().await == Some((10, 90));
        let runs = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.ok()?;
        let measured = runs.items.iter().any(|run| {
            run.status.as_ref().is_some_and(|s| s.metric_results.iter().any(|m| !m.measurements.is_empty()))
        });
        (at_ten && measured).then_some(())
    })
    .await;
    let paused = cluster.rollouts().get(ROLLOUT).await.expect("the Rollout");
    assert_eq!(kstatus(&paused), Some(("Reconciling".into(), "Step2Of2".into())), "paused at its step");
    let object = serde_json::to_value(&paused).expect("a Rollout serializes");
    assert_eq!(argocd_health(&object).0, "Suspended", "paused for a person");

    // Then it starts failing five times as many requests.
    telemetry().apps.serve(&cluster.namespace, &canary, BAD).await;
    let visible = breach_visible(&cluster.namespace, &canary).await;
    let aborted = cluster
        .rollout_until("the rollout to abort", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let back_to_stable = eventually("weight back on stable", || async {
        let log = weights.lock().unwrap();
        let canary_from = log.iter().position(|(w, _)| *w == (10, 90))?;
        log[canary_from..].iter().find(|(w, _)| *w == (0, 100)).map(|(_, at)| *at)
    })
    .await;
    println!(
        "breach visible in Prometheus to canary weight 0: {:?}",
        back_to_stable.saturating_duration_since(visible)
    );

    assert_eq!(kstatus(&aborted), Some(("Stalled".into(), "AnalysisFailed".into())));
    let health = argocd_health(&serde_json::to_value(&aborted).expect("a Rollout serializes"));
    assert_eq!(
        (health.0.as_str(), Some(health.1)),
        ("Degraded", aborted.status.as_ref().and_then(|s| s.message.clone()))
    );
    let status = aborted.status.expect("a status");
    let abort = status.abort.expect("the abort is recorded");
    assert_eq!(abort.metric.as_deref(), Some("error-rate"), "{abort:?}");
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("error-rate") && abort.value.as_ref().is_some_and(|v| message.contains(v.as_str())),
        "{message}"
    );

    // Traffic moved before anything else changed, and the canary's pods stay for the delay.
    eventually("the canary ReplicaSet scaled down after the delay", || async {
        let log = scales.lock().unwrap();
        scales_of(&log, &canary).last().is_some_and(|n| *n == 0).then_some(())
    })
    .await;
    let canary_down = scales
        .lock()
        .unwrap()
        .iter()
        .find(|(r, n, _)| *r == canary && *n == 0)
        .map(|(_, _, at)| *at)
        .unwrap();
    assert!(canary_down > back_to_stable, "the canary was scaled down before traffic left it");
    let seen: Vec<(i64, i64)> = weights.lock().unwrap().iter().map(|(w, _)| *w).collect();
    assert_eq!(seen, [(0, 100), (10, 90), (0, 100)]);
    let reasons = event_reasons(&cluster).await;
    assert!(reasons.iter().any(|r| r == "RolloutAborted"), "{reasons:?}");
    controller.stop().await;
}

/// Waits until Prometheus shows the canary's error ratio above the template's limit, and returns
/// when it first did.
async fn breach_visible(namespace: &str, revision: &str) -> Instant {
    let provider = bellwether::metrics::prometheus::PrometheusProvider::new(
        telemetry().prometheus.address(),
        std::time::Duration::from_secs(2),
        &Default::default(),
    )
    .expect("a provider");
    let query = format!(
        "sum(rate(http_requests_total{{namespace=\"{namespace}\", revision=\"{revision}\", code=~\"5..\"}}[2s])) / sum(rate(http_requests_total{{namespace=\"{namespace}\", revision=\"{revision}\"}}[2s]))"
    );
    eventually("the breach to show in Prometheus", || async {
        let value = provider.instant(&query, None).await.ok().flatten()?;
        (value > 0.01).then(Instant::now)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_pods_never_start_aborts_on_the_progress_deadline() {
    let cluster = Cluster::start("deadline").await;
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;
    let mut broken = cluster.rollout("crashloop", steps);
    broken.spec.progress_deadline_seconds = Some(2);
    cluster.ship(&broken).await;
    let aborted = cluster
        .rollout_until("the progress deadline to abort the rollout", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let abort = aborted.status.and_then(|s| s.abort).expect("an abort");
    assert_eq!(abort.reason, "ProgressDeadlineExceeded", "{abort:?}");
    assert_eq!(cluster.weights().await, Some((0, 100)), "no traffic ever reached the canary");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_revision_supersedes_the_canary_and_reverting_is_healthy_at_once() {
    let cluster = Cluster::start("supersede").await;
    let controller = Controller::start(&cluster, &[]);
    let steps = json!([{"setWeight": 10}, {"pause": {}}]);
    let stable = deploy_stable(&cluster, steps.clone()).await;
    let second = cluster.ship(&cluster.rollout("2", steps.clone())).await;
    eventually("the second revision at 10%", || async {
        (cluster.weights().await == Some((10, 90))
            && selector(&cluster, CANARY).await == Some(second.clone()))
        .then_some(())
    })
    .await;

    let third = cluster.ship(&cluster.rollout("3", steps.clone())).await;
    let superseded = cluster
        .rollout_until("the third revision to take over the canary", |r| {
            r.status.as_ref().is_some_and(|s| s.canary_revision.as_deref() == Some(third.as_str()))
        })
        .await;
    let history = superseded.status.expect("a status").history;
    assert!(
        history.iter().any(|h| h.revision == second && h.outcome == RolloutOutcome::Superseded),
        "{history:?}"
    );
    eventually("the third revision at 10%", || async {
        (cluster.weights().await == Some((10, 90)) && selector(&cluster, CANARY).await == Some(third.clone()))
            .then_some(())
    })
    .await;

    // Back to the stable template: no steps, all traffic on stable at once.
    cluster.ship(&cluster.rollout("1", steps)).await;
    let healthy = cluster
        .rollout_until("the rollout to be healthy on the stable revision", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.phase == Some(RolloutPhase::Healthy) && s.canary_revision.is_none())
        })
        .await;
    let status = healthy.status.expect("a status");
    assert_eq!(status.stable_revision.as_deref(), Some(stable.as_str()));
    // The status is written before the actions it calls for, so the route follows it.
    eventually("all traffic back on stable", || async {
        (cluster.weights().await == Some((0, 100))).then_some(())
    })
    .await;
    assert!(status.history.iter().any(|h| h.revision == third && h.outcome == RolloutOutcome::RolledBack));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_analysis_runs_beyond_the_history_limit_are_deleted_and_only_the_rollouts_own() {
    let cluster = Cluster::start("run-history").await;
    let controller = Controller::start(&cluster, &[]);
    let limited = |version: &str| {
        let mut rollout = cluster.rollout(version, steps_good());
        rollout.spec.analysis_run_history_limit =
            Some(AnalysisRunHistoryLimit { successful: Some(1), unsuccessful: Some(0) });
        rollout
    };
    let runs = || async {
        let runs = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs");
        runs.items.into_iter().map(|run| run.name_any()).collect::<Vec<_>>()
    };
    cluster.ship(&limited("1")).await;
    cluster
        .rollout_until("the first revision to become stable", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Healthy))
        })
        .await;
    // A run labelled for the Rollout that it does not own: someone else's, never deleted.
    let mut foreign: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "someone-elses-run"},
        "spec": {"revision": "someone-else", "terminate": true, "metrics": [{
            "name": "m",
            "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "vector(0)"}},
            "threshold": {"max": 1},
        }]},
    }))
    .unwrap();
    foreign.metadata.namespace = Some(cluster.namespace.clone());
    foreign.metadata.labels = Some([(ROLLOUT_LABEL.to_string(), ROLLOUT.to_string())].into());
    cluster.api::<AnalysisRun>().create(&PostParams::default(), &foreign).await.expect("creating a run");

    let mut promoted = Vec::new();
    for version in ["2", "3"] {
        let canary = cluster.ship(&limited(version)).await;
        cluster
            .rollout_until("the canary to be promoted", |r| {
                r.status.as_ref().is_some_and(|s| {
                    s.phase == Some(RolloutPhase::Healthy)
                        && s.stable_revision.as_deref() == Some(canary.as_str())
                })
            })
            .await;
        promoted.push(canary);
    }
    let kept = eventually("the older canary's run to be deleted", || async {
        let names = runs().await;
        (names.len() == 2).then_some(names)
    })
    .await;
    assert!(kept.iter().any(|n| n.contains(&promoted[1])), "the newest successful run is kept: {kept:?}");
    assert!(kept.iter().all(|n| !n.contains(&promoted[0])), "the older one is deleted: {kept:?}");
    assert!(kept.iter().any(|n| n == "someone-elses-run"), "a run the Rollout does not own stays: {kept:?}");
    controller.stop().await;
}
