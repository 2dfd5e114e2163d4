//! The engine's cost as the fleet grows: fleets of 100, 1,000 and 10,000 distinct Rollouts, each
//! decided once per resync round. Reports decisions per second, decide latency (p50, p99) and the
//! heap each Rollout holds (spec, status and observation), as Markdown tables.
//!
//! `cargo bench --bench scale` runs the full sizes. Without `--bench`, as `cargo test --all-targets`
//! runs it, a small fleet is decided once and checked, so that the fixtures keep up with the engine.

#[path = "common/mod.rs"]
mod common;

use bellwether::api::{AnalysisPhase, RolloutPhase};
use bellwether::engine::{UserAction, UserRequest};
use bellwether::sim::{Setup, percentile};
use chrono::TimeDelta;
use common::Fixture;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const SIZES: [usize; 3] = [100, 1_000, 10_000];
const ROUNDS: usize = 20;
/// Time between resyncs, as a controller's periodic requeue would space them.
const RESYNC_INTERVAL: TimeDelta = TimeDelta::seconds(30);
/// Enough to hold every state of `MIX` at least once in the quick run.
const SMOKE_FLEET: usize = 100;

/// Counts the bytes the process allocates and frees, so that the heap a fleet holds is the
/// difference in what is live before and after building it.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static FREED: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// SAFETY: every call goes to `System` unchanged; the counters only record sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller keeps `GlobalAlloc::alloc`'s contract, which `System` has too.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, hence from `System`, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller keeps `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            FREED.fetch_add(layout.size(), Ordering::Relaxed);
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        new
    }
}

/// Bytes allocated and not yet freed.
fn live_bytes() -> i64 {
    let freed = FREED.load(Ordering::Relaxed) as i64;
    ALLOCATED.load(Ordering::Relaxed) as i64 - freed
}

/// Where a member of the fleet stands when the resync rounds begin.
#[derive(Clone, Copy, Debug)]
enum State {
    /// First revision, never canaried.
    Deployed,
    /// A canary went through every step and was promoted by a person at the final pause.
    Promoted,
    /// A canary just started; its pods are not available yet.
    WaitingForPods,
    /// A canary at this step of the example: 1 and 4 are timed pauses, 2 and 6 analyses (a run is
    /// Running), 7 the final pause that waits for a promote.
    AtStep(usize),
    /// `spec.paused` set during a canary.
    SpecPaused,
    /// A canary aborted by a failed step analysis.
    Degraded,
}

/// The fleet's mix, repeated: 60% steady and Healthy, 25% mid-canary, 10% paused, 5% aborted.
const MIX: [State; 20] = [
    State::Deployed,
    State::Deployed,
    State::Deployed,
    State::Deployed,
    State::Deployed,
    State::Deployed,
    State::Promoted,
    State::Promoted,
    State::Promoted,
    State::Promoted,
    State::Promoted,
    State::Promoted,
    State::WaitingForPods,
    State::AtStep(1),
    State::AtStep(2),
    State::AtStep(4),
    State::AtStep(6),
    State::AtStep(7),
    State::SpecPaused,
    State::Degraded,
];

/// A Rollout named `svc-<index>` made from the example, with its own labels, Services, route and
/// image, brought to `state`.
fn member(index: usize, state: State, example: &Setup) -> Fixture {
    let name = format!("svc-{index:05}");
    let mut setup = example.clone();
    let spec = &mut setup.spec;
    let labels = BTreeMap::from([("app".to_owned(), name.clone())]);
    spec.selector.match_labels = Some(labels.clone());
    spec.template.as_mut().expect("an embedded template").modify(|template| {
        template.metadata.get_or_insert_default().labels = Some(labels);
        let container = &mut template.spec.as_mut().expect("the example has a pod spec").containers[0];
        container.name = name.clone();
        container.image = Some(format!("ghcr.io/example/{name}:1.0.0"));
    });
    let canary = &mut spec.strategy.canary;
    canary.stable_service = format!("{name}-stable");
    canary.canary_service = format!("{name}-canary");
    canary.traffic_routing.gateway_api.http_routes[0].name = name.clone();
    setup.name = name;
    let mut member = Fixture::deployed(setup);
    bring_to(&mut member, state);
    member
}

fn bring_to(member: &mut Fixture, state: State) {
    match state {
        State::Deployed => {}
        State::Promoted => {
            member.ship();
            member.reach_step(7);
            member.cluster.observation.requests.push(UserRequest {
                id: "promote-1".into(),
                action: UserAction::Promote,
                by: "alice".into(),
                revision: member.status.canary_revision.clone(),
                step: member.status.current_step_index,
                alert: None,
            });
            member.settle();
            member.now += TimeDelta::minutes(1);
            member.settle();
        }
        State::WaitingForPods => {
            member.ship();
            let decision = member.decide();
            member.apply(decision);
        }
        State::AtStep(step) => {
            member.ship();
            member.reach_step(step);
        }
        State::SpecPaused => {
            member.ship();
            member.reach_step(4);
            member.spec.paused = true;
            member.generation += 1;
            member.settle();
        }
        State::Degraded => {
            member.ship();
            member.reach_step(2);
            member.finish_step_run(AnalysisPhase::Failed);
            member.settle();
        }
    }
}

fn build_fleet(size: usize, example: &Setup) -> Vec<Fixture> {
    (0..size).map(|i| member(i, MIX[i % MIX.len()], example)).collect()
}

/// Decides every member once per round and returns each decision's latency.
///
/// Between rounds the cluster catches up as it would between resyncs: the actions are carried out,
/// pods become available, routes are accepted and the clock moves on by the resync interval. Timed
/// pauses therefore run out and canaries move on, while analyses stay Running and paused or aborted
/// rollouts stay where they are, so each round decides a mix of unchanged and changing Rollouts.
/// Each member keeps its own clock: the engine only compares times within one Rollout.
fn resync(fleet: &mut [Fixture], rounds: usize) -> Vec<TimeDelta> {
    let mut latencies = Vec::with_capacity(fleet.len() * rounds);
    for _ in 0..rounds {
        for member in fleet.iter_mut() {
            let started = Instant::now();
            let decision = member.decide();
            let latency = started.elapsed();
            latencies.push(TimeDelta::from_std(latency).expect("a latency fits a TimeDelta"));
            member.apply(decision);
            member.start_pods();
            member.now += RESYNC_INTERVAL;
        }
    }
    latencies
}

/// The fleet holds every kind of state, and the weights every Rollout wants add up to 100.
fn check(fleet: &[Fixture]) {
    for phase in
        [RolloutPhase::Healthy, RolloutPhase::Progressing, RolloutPhase::Paused, RolloutPhase::Degraded]
    {
        assert!(fleet.iter().any(|m| m.status.phase == Some(phase)), "no Rollout of the fleet is {phase:?}");
    }
    for member in fleet {
        let weights = member.status.weights;
        assert_eq!(weights.canary + weights.stable, 100, "{}: {weights:?}", member.name);
    }
}

/// The heap that copies of one part of every member hold, per member.
fn heap_per_member<T>(fleet: &[Fixture], part: impl Fn(&Fixture) -> T) -> i64 {
    let before = live_bytes();
    let copies: Vec<T> = fleet.iter().map(part).collect();
    let bytes = live_bytes() - before;
    drop(copies);
    bytes / fleet.len() as i64
}

fn micros(d: TimeDelta) -> String {
    format!("{:.1} µs", d.as_seconds_f64() * 1e6)
}

fn kib(bytes: i64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// `10000` as `10,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Row {
    size: usize,
    decisions: usize,
    per_second: f64,
    p50: TimeDelta,
    p99: TimeDelta,
    heap: i64,
    spec: i64,
    status: i64,
    observation: i64,
    templates: i64,
}

fn measure(size: usize, example: &Setup) -> Row {
    let before = live_bytes();
    let mut fleet = build_fleet(size, example);
    let heap = (live_bytes() - before) / size as i64;
    check(&fleet);
    let spec = heap_per_member(&fleet, |m| m.spec.clone());
    let status = heap_per_member(&fleet, |m| m.status.clone());
    let observation = heap_per_member(&fleet, |m| m.cluster.observation.clone());
    let templates = heap_per_member(&fleet, |m| m.cluster.observation.templates.clone());
    let mut latencies = resync(&mut fleet, ROUNDS);
    check(&fleet);
    let total: TimeDelta = latencies.iter().sum();
    latencies.sort_unstable();
    let quantile = |q| percentile(&latencies, q).expect("every round decides");
    Row {
        size,
        decisions: latencies.len(),
        per_second: latencies.len() as f64 / total.as_seconds_f64(),
        p50: quantile(0.50),
        p99: quantile(0.99),
        heap,
        spec,
        status,
        observation,
        templates,
    }
}

fn main() {
    let example = Setup::example();
    if !std::env::args().any(|a| a == "--bench") {
        let mut fleet = build_fleet(SMOKE_FLEET, &example);
        check(&fleet);
        let latencies = resync(&mut fleet, 1);
        assert_eq!(latencies.len(), SMOKE_FLEET);
        check(&fleet);
        return;
    }

    // Whatever the engine initialises on first use would otherwise count as the first fleet's heap.
    resync(&mut build_fleet(MIX.len(), &example), 1);

    let rows: Vec<Row> = SIZES.iter().map(|&size| measure(size, &example)).collect();
    let base = rows[0].p50.as_seconds_f64();
    println!(
        "Engine decisions by fleet size: {ROUNDS} resync rounds {}s apart, every Rollout decided once a round.\n",
        RESYNC_INTERVAL.num_seconds()
    );
    println!(
        "| Rollouts | Decisions | Decisions/s | p50 | p99 | p50 / p50 at {} | Heap per Rollout |",
        SIZES[0]
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {} |",
            grouped(row.size as u64),
            grouped(row.decisions as u64),
            grouped(row.per_second as u64),
            micros(row.p50),
            micros(row.p99),
            row.p50.as_seconds_f64() / base,
            kib(row.heap),
        );
    }
    println!("\nHeap per Rollout by part, measured on copies:\n");
    println!("| Rollouts | Spec | Status | Observation | of which templates |");
    println!("|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            grouped(row.size as u64),
            kib(row.spec),
            kib(row.status),
            kib(row.observation),
            kib(row.templates),
        );
    }
}
