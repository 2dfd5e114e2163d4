//! A controller killed again and again during canaries, at random points: wherever it stops, the
//! next one resumes from what the cluster shows, with no action repeated, no weight moved back and
//! nothing forgotten.
//!
//! The kill times come from a seeded generator; the seed is printed, and `BELLWETHER_E2E_SEED`
//! repeats a run.

use crate::harness::{Cluster, Controller, ROLLOUT, analysed_steps, seed};
use crate::rollouts::{deploy_stable, record_weights};
use bellwether::api::{AnalysisPhase, AnalysisRun, REVISION_LABEL, RolloutOutcome, RolloutPhase};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many times the controller is killed before one is left to finish.
const KILLS: usize = 20;

/// What an AnalysisRun's status showed at one point: when it started and how many measurements
/// it held.
pub type RunSeen = (Option<DateTime<Utc>>, usize);

/// Every distinct state of each AnalysisRun, in order, by name.
pub fn record_runs(cluster: &Cluster) -> Arc<Mutex<BTreeMap<String, Vec<RunSeen>>>> {
    let seen = Arc::new(Mutex::new(BTreeMap::<String, Vec<RunSeen>>::new()));
    let log = seen.clone();
    // With backoff, so that a watch whose server is gone (at the end of a test) retries
    // with pauses instead of spinning and holding up the runtime.
    let stream = watcher(cluster.api::<AnalysisRun>(), watcher::Config::default()).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let Ok(watcher::Event::Apply(run) | watcher::Event::InitApply(run)) = event else { continue };
            let status = run.status.clone().unwrap_or_default();
            let measured = status.metric_results.iter().map(|m| m.measurements.len()).sum();
            let state = (status.started_at, measured);
            let mut log = log.lock().unwrap();
            let states = log.entry(run.name_any()).or_default();
            if states.last() != Some(&state) {
                states.push(state);
            }
        }
    });
    seen
}

/// Where the Rollout's status showed a canary: its revision and step index.
pub type StepSeen = (Option<String>, Option<i32>);

/// Asserts that the step index of each of the `shipped` canaries never went back in `log`.
pub fn assert_steps_never_back(log: &Mutex<Vec<StepSeen>>, shipped: &[String]) {
    let steps_seen = log.lock().unwrap().clone();
    for revision in shipped {
        let indices: Vec<i32> = steps_seen
            .iter()
            .filter(|(canary, _)| canary.as_deref() == Some(revision.as_str()))
            .filter_map(|(_, step)| *step)
            .collect();
        assert!(indices.is_sorted(), "the step index of {revision} went back: {indices:?} in {steps_seen:?}");
    }
}

/// Every distinct step the Rollout's status showed, in order.
pub fn record_steps(cluster: &Cluster) -> Arc<Mutex<Vec<StepSeen>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let stream = watcher(cluster.rollouts(), watcher::Config::default()).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let Ok(watcher::Event::Apply(rollout) | watcher::Event::InitApply(rollout)) = event else {
                continue;
            };
            let status = rollout.status.unwrap_or_default();
            let step = (status.canary_revision, status.current_step_index);
            let mut log = log.lock().unwrap();
            if log.last() != Some(&step) {
                log.push(step);
            }
        }
    });
    seen
}

async fn promoted(cluster: &Cluster, revision: &str) -> bool {
    let rollout = cluster.rollouts().get(ROLLOUT).await.expect("reading the Rollout");
    rollout.status.is_some_and(|s| {
        s.phase == Some(RolloutPhase::Healthy) && s.stable_revision.as_deref() == Some(revision)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_at_random_points_resumes_without_repeating_or_regressing() {
    let cluster = Cluster::start("restarts").await;
    let mut rng = ChaCha8Rng::seed_from_u64(seed("kill times"));
    let mut controller = Controller::start(&cluster, &[]);
    deploy_stable(&cluster, analysed_steps()).await;
    let weights = record_weights(&cluster);
    let runs = record_runs(&cluster);
    let step_log = record_steps(&cluster);

    // Revision after revision, each killed wherever the controller happens to be, until enough
    // kills happened; the last one may be left mid-canary.
    let mut shipped = Vec::new();
    let mut kills = 0;
    while kills < KILLS {
        let version = (shipped.len() + 2).to_string();
        let revision = cluster.ship(&cluster.rollout(&version, analysed_steps())).await;
        shipped.push(revision.clone());
        while kills < KILLS && !promoted(&cluster, &revision).await {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(50..=1500))).await;
            controller.kill();
            kills += 1;
            controller = Controller::start(&cluster, &[]);
        }
    }
    println!("{kills} kills over {} canaries", shipped.len());
    let last = shipped.last().cloned().expect("a shipped revision");
    let done = cluster
        .rollout_until("the last revision to be promoted", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy) && s.stable_revision.as_deref() == Some(last.as_str())
            })
        })
        .await;
    // Not stopped gracefully: the last controller may be only milliseconds old, and one stopped
    // before its watch caches are synced never finishes shutting down (kube-runtime holds the
    // reconcile runner until the cache is ready, and the shutdown ends the watch that would make
    // it ready).
    controller.kill();

    // Traffic followed each canary's steps once, in order, never back.
    let seen: Vec<(i64, i64)> = weights.lock().unwrap().iter().map(|(w, _)| *w).collect();
    let mut planned = vec![(0, 100)];
    for _ in &shipped {
        planned.extend([(10, 90), (50, 50), (0, 100)]);
    }
    assert_eq!(seen, planned, "route weights over {} canaries", shipped.len());

    // The status never forgot a step it had passed.
    assert_steps_never_back(&step_log, &shipped);

    // One analysis step per canary, one run each, measured from start to end without a restart.
    let listed = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs");
    let mut by_revision = BTreeMap::<String, Vec<&AnalysisRun>>::new();
    for run in &listed.items {
        let revision = run.labels().get(REVISION_LABEL).cloned().unwrap_or_default();
        by_revision.entry(revision).or_default().push(run);
    }
    assert_eq!(
        by_revision.keys().collect::<Vec<_>>(),
        {
            let mut sorted: Vec<_> = shipped.iter().collect();
            sorted.sort();
            sorted
        },
        "runs by revision"
    );
    let states = runs.lock().unwrap().clone();
    for (revision, runs) in &by_revision {
        let [run] = runs.as_slice() else {
            panic!(
                "{revision} has {} runs: {:?}",
                runs.len(),
                runs.iter().map(|r| r.name_any()).collect::<Vec<_>>()
            )
        };
        let name = run.name_any();
        let status = run.status.clone().unwrap_or_default();
        assert_eq!(status.phase, Some(AnalysisPhase::Successful), "{name}: {:?}", status.message);
        let started = status.started_at.expect("a started run records when");
        for result in &status.metric_results {
            let times: Vec<_> = result.measurements.iter().map(|m| m.at).collect();
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{name}/{}: measured at {times:?}", result.name);
            assert!(times.first().is_none_or(|first| started <= *first), "{name} started after measuring");
        }
        let history = &states[&name];
        let starts: Vec<_> = history.iter().filter_map(|(at, _)| *at).collect();
        assert!(starts.iter().all(|at| *at == started), "{name} started more than once: {history:?}");
        assert!(history.windows(2).all(|w| w[0].1 <= w[1].1), "{name} lost measurements: {history:?}");
    }

    let status = done.status.expect("a status");
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(status.stable_revision.as_deref(), Some(last.as_str()));
    assert_eq!((status.weights.canary, status.weights.stable), (0, 100));
    let outcomes: Vec<_> = status.history.iter().map(|h| (h.revision.as_str(), h.outcome)).collect();
    let expected: Vec<_> = shipped.iter().rev().map(|r| (r.as_str(), RolloutOutcome::Promoted)).collect();
    assert_eq!(outcomes, expected, "the history, newest first");

    // Events follow the status write they describe, so a kill between the two may lose one, but
    // none may be published twice. kube's Recorder counts an Event with the reason of one it
    // published in the last minutes as a repeat in that one's `series`, whatever the note, so
    // only counts per reason are comparable: each at most as often as the canaries call for it.
    let events = cluster.api::<Event>().list(&ListParams::default()).await.expect("listing Events");
    let mut published = BTreeMap::<String, i32>::new();
    for event in events.items {
        if event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(ROLLOUT) {
            let times = event.series.as_ref().map_or(1, |s| s.count);
            *published.entry(event.reason.unwrap_or_default()).or_default() += times;
        }
    }
    println!("Events about the Rollout by reason: {published:?}");
    let canaries = shipped.len() as i32;
    let most = BTreeMap::from([
        ("InitialDeploy", 1),
        ("CanaryStarted", canaries),
        ("WeightChanged", 3 * canaries),
        ("StepCompleted", 4 * canaries),
        ("AnalysisCompleted", canaries),
        ("PromotionStarted", canaries),
        ("Promoted", canaries),
    ]);
    for (reason, times) in &published {
        let bound = most.get(reason.as_str()).unwrap_or_else(|| panic!("an unexpected {reason} Event"));
        assert!(times <= bound, "{times} {reason} Events for {canaries} canaries: {published:?}");
    }
}
