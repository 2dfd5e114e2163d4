//! Micro-benchmarks of the engine's hot paths: one decision, the analysis judge per measurement and
//! query rendering, on the example Rollout and templates.

#[path = "common/mod.rs"]
mod common;

use bellwether::api::template::{self, Vars};
use bellwether::api::{AnalysisPhase, Measurement, TemplateRef};
use bellwether::engine::{Plan, decide, judge_metric, revision_of};
use bellwether::sim::Setup;
use chrono::{DateTime, Utc};
use common::{Fixture, start};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

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
    }
    group.finish();

    // The two fixed costs every decision pays before any rule runs.
    let fixture = at_analysis_step();
    let mut group = c.benchmark_group("decide parts");
    group.bench_function("revision_of", |b| b.iter(|| revision_of(black_box(&fixture.spec.template))));
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

criterion_group!(benches, bench_decide, bench_judge, bench_template);
criterion_main!(benches);
