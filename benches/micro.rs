//! Micro-benchmarks of the engine's hot paths: one decision, the analysis judge per measurement and
//! query rendering, on the example Rollout and templates; and one scrape of the controller's metrics.

#[path = "common/mod.rs"]
mod common;

use bellwether::api::template::{self, Vars};
use bellwether::api::{AnalysisPhase, Measurement, RolloutPhase, TemplateRef};
use bellwether::engine::{Plan, Prepared, decide, decide_prepared, judge_metric, revision_of};
use bellwether::server::Metrics;
use bellwether::sim::Setup;
use chrono::{DateTime, Utc};
use common::{Fixture, start};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::Duration;

fn healthy() -> Fixture {
    Fixture::deployed(Setup::example())
}

/// A canary at 5% at its first analysis step: a step run and a background run are Running, and
/// there are two ReplicaSets.
fn at_analysis_step() -> Fixture {
    let mut fixture = healthy();
    fixture.ship();
    fixture.reach_step(2);
    assert_eq!(fixture.status.current_step_index, Some(2), "{:?}", fixture.status.message);
    let observation = &fixture.cluster.observation;
    assert_eq!(observation.replica_sets.len(), 2);
    assert_eq!(observation.analysis_runs.len(), 2);
    fixture
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for (label, fixture) in [("healthy", healthy()), ("analysis step", at_analysis_step())] {
        group.bench_function(label, |b| b.iter(|| decide(black_box(fixture.input()))));
        // What the controller runs while the spec and its templates are unchanged: the plan and
        // revision kept from an earlier pass.
        let prepared = Prepared::new(&fixture.spec, &fixture.cluster.observation.templates, None);
        group.bench_function(format!("{label}, plan kept"), |b| {
            b.iter(|| decide_prepared(black_box(fixture.input()), &prepared))
        });
    }
    group.finish();

    // The two fixed costs every decision pays before any rule runs.
    let fixture = at_analysis_step();
    let mut group = c.benchmark_group("decide parts");
    let template = fixture.spec.embedded_template().unwrap_or_default();
    group.bench_function("revision_of", |b| b.iter(|| revision_of(black_box(&template))));
    group.bench_function("validate", |b| {
        b.iter(|| Plan::from_spec(black_box(&fixture.spec), &fixture.cluster.observation.templates).is_ok())
    });
    group.finish();
}

/// `count` measurements a minute apart from `from`, in a cycle that walks the example error-rate
/// metric through its hysteresis without a verdict: two breaches (shorter than `breachFor`), a
/// marginal value, then clear values that recover it after `recoverFor` and keep it Healthy.
fn measurements(count: usize, from: DateTime<Utc>) -> Vec<Measurement> {
    const CYCLE: [f64; 12] =
        [0.02, 0.02, 0.005, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001];
    (0..count)
        .map(|i| Measurement {
            at: from + chrono::TimeDelta::minutes(i as i64),
            value: Some(CYCLE[i % CYCLE.len()]),
            ..Measurement::default()
        })
        .collect()
}

fn bench_judge(c: &mut Criterion) {
    let templates = Setup::example().templates;
    let reference = TemplateRef { template_name: "error-rate".into(), cluster_scope: false };
    let metric = &templates[&reference].metrics[0];
    let started = start();
    let first =
        started + metric.initial_delay.as_ref().expect("an initial delay").parse().expect("it parses");
    let mut group = c.benchmark_group("judge_metric");
    for count in [10, 100, 1_000] {
        let measurements = measurements(count, first);
        // Without a verdict the judge folds every measurement, which makes the cost per measurement
        // the slope between sizes. Background analysis has no window, so nothing ends the fold early.
        assert_eq!(judge_metric(metric, &measurements, started, None).phase, AnalysisPhase::Running);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &measurements, |b, measurements| {
            b.iter(|| judge_metric(metric, black_box(measurements), started, None))
        });
    }
    group.finish();
}

fn bench_template(c: &mut Criterion) {
    let setup = Setup::example();
    let canary = &setup.spec.strategy.canary;
    let vars = Vars {
        args: BTreeMap::from([("service".to_owned(), setup.name.clone())]),
        rollout_name: setup.name.clone(),
        rollout_namespace: setup.namespace.clone(),
        revision: "6lwq5wt6c9".into(),
        canary_revision: "6lwq5wt6c9".into(),
        stable_revision: "ld2b2j4qdb".into(),
        canary_service: canary.canary_service.clone(),
        stable_service: canary.stable_service.clone(),
        interval: "1m".into(),
    };
    let mut group = c.benchmark_group("template");
    for spec in setup.templates.values() {
        let declared: BTreeSet<String> = spec.args.iter().map(|a| a.name.clone()).collect();
        for metric in &spec.metrics {
            let query = &metric.provider.prometheus.as_ref().expect("a Prometheus metric").query;
            template::render(query, &vars).expect("the example query renders");
            group.bench_with_input(BenchmarkId::new("render", &metric.name), query, |b, query| {
                b.iter(|| template::render(black_box(query), &vars))
            });
            group.bench_with_input(BenchmarkId::new("check", &metric.name), query, |b, query| {
                b.iter(|| template::check(black_box(query), &declared))
            });
        }
    }
    group.finish();
}

/// A registry as a controller of `rollouts` Rollouts holds it: each Rollout with its phase, weight,
/// a promotion and an AnalysisRun of three metrics, and reconcile timings from both controllers.
fn fleet_metrics(rollouts: usize) -> Metrics {
    const PHASES: [RolloutPhase; 4] =
        [RolloutPhase::Healthy, RolloutPhase::Progressing, RolloutPhase::Paused, RolloutPhase::Degraded];
    let metrics = Metrics::new();
    for i in 0..rollouts {
        let (namespace, rollout) = (format!("team-{}", i % 20), format!("app-{i}"));
        metrics.rollout_phase(&namespace, &rollout, PHASES[i % PHASES.len()]);
        metrics.canary_weight(&namespace, &rollout, (i % 5) as i32 * 20);
        metrics.promotion(&namespace, &rollout);
        let run = format!("{rollout}-{}", i % 7);
        for (metric, value) in [("error-rate", 0.001), ("latency-p99", 0.25), ("request-rate", 120.5)] {
            metrics.analysis_value(&namespace, &run, metric, Some(value * (i + 1) as f64));
        }
        for controller in ["rollout", "analysisrun"] {
            metrics.reconcile(controller, Duration::from_micros(500 + i as u64 * 37), None);
        }
    }
    metrics
}

fn bench_metrics(c: &mut Criterion) {
    let metrics = fleet_metrics(1_000);
    let text = metrics.render();
    // 4 phase series, a weight, a promotion and 3 analysis values for each Rollout.
    assert_eq!(text.lines().filter(|line| line.contains("rollout=\"app-7\"")).count(), 6, "{text}");
    assert_eq!(text.lines().filter(|line| line.contains("analysis_run=\"app-7-0\"")).count(), 3);
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("render, 1,000 rollouts", |b| b.iter(|| black_box(&metrics).render()));
    group.finish();
}

criterion_group!(benches, bench_decide, bench_judge, bench_template, bench_metrics);
criterion_main!(benches);
