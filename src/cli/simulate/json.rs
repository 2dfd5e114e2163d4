//! `simulate -o json`: the simulation as one JSON object, for pipelines and tools. Its shape is
//! part of the command's contract (docs/ci.md describes it): fields are added, never renamed or
//! removed. Every key is always present, `null` or empty where it does not apply; times are whole
//! seconds from the moment the new revision shipped; measured values are strings as Prometheus
//! writes them, so that `+Inf` and `NaN` keep their meaning.

use super::{Simulated, Simulation, ratio_to_stable_alone};
use crate::api::HysteresisState;
use crate::sim::{self, Expect, Outcome, Row, percentile};
use chrono::Duration;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    rollout: Rollout,
    requests_per_second: f64,
    seed: u64,
    /// Runs per scenario.
    runs: u64,
    metrics: Vec<SimulatedMetric>,
    /// Every scenario as expected: what exit code 0 says.
    as_expected: bool,
    scenarios: Vec<Scenario>,
}

#[derive(Serialize)]
struct Rollout {
    namespace: String,
    name: String,
    steps: usize,
    replicas: i32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SimulatedMetric {
    name: String,
    /// What the simulation measures for it, such as `error ratio over 1m`.
    simulated_as: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Scenario {
    name: String,
    /// `promote`, `abort` or `notPromote`: what a correct judge does.
    expect: &'static str,
    as_expected: bool,
    /// With one run: how it ended.
    outcome: Option<RunOutcome>,
    /// With one run: each moment something was measured or decided.
    timeline: Vec<Moment>,
    /// With one run: what the canary cost in pods.
    cost: Option<Cost>,
    /// With one run: each invariant of the engine it broke.
    invariant_violations: Vec<Violation>,
    /// With many runs: how they ended.
    distribution: Option<Distribution>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunOutcome {
    /// `promoted`, `aborted` or `held` (waiting for a person, or out of time).
    result: &'static str,
    after_seconds: i64,
    /// Why it was aborted or held; `null` when promoted.
    reason: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Moment {
    at_seconds: i64,
    /// `3/9`, or `null` outside a canary.
    step: Option<String>,
    canary_weight: i32,
    /// The header routes in force, by name.
    header_routes: Vec<String>,
    /// The percent mirrored to the canary, or `null`.
    mirror_percent: Option<i32>,
    metrics: Vec<Measured>,
    /// What was decided, each with its reason, as the Events say it.
    decisions: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Measured {
    name: String,
    #[serde(with = "crate::api::sample")]
    value: Option<f64>,
    error: Option<String>,
    /// The hysteresis state after the measurement.
    state: HysteresisState,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    pod_seconds: f64,
    /// Pod-seconds against stable's replicas alone over the same time; `null` for a run of no time.
    ratio_to_stable_alone: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Violation {
    at_seconds: i64,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Distribution {
    runs: usize,
    promoted: usize,
    aborted: usize,
    held: usize,
    /// Runs that ended otherwise than a correct judge would, as a share of all.
    wrong_rate: f64,
    invariants_broken: u64,
    /// From the onset of the fault to the abort, over the aborted runs.
    detect_seconds: Option<Percentiles>,
    /// From the ship to the promotion, over the promoted runs.
    promote_seconds: Option<Percentiles>,
}

#[derive(Serialize)]
struct Percentiles {
    p50: i64,
    p95: i64,
}

fn percentiles(sorted: &[Duration]) -> Option<Percentiles> {
    Some(Percentiles {
        p50: percentile(sorted, 0.5)?.num_seconds(),
        p95: percentile(sorted, 0.95)?.num_seconds(),
    })
}

fn expect(expect: Expect) -> &'static str {
    match expect {
        Expect::Promote => "promote",
        Expect::Abort => "abort",
        Expect::NotPromote => "notPromote",
    }
}

fn outcome(outcome: &Outcome) -> RunOutcome {
    let (result, after, reason) = match outcome {
        Outcome::Promoted { after } => ("promoted", after, None),
        Outcome::Aborted { after, reason } => ("aborted", after, Some(reason.clone())),
        Outcome::Held { after, reason } => ("held", after, Some(reason.clone())),
    };
    RunOutcome { result, after_seconds: after.num_seconds(), reason }
}

fn moment(row: &Row) -> Moment {
    Moment {
        at_seconds: row.at.num_seconds(),
        step: row.step.clone(),
        canary_weight: row.weight,
        header_routes: row.exposure.header_routes.keys().cloned().collect(),
        mirror_percent: row.exposure.mirror,
        metrics: row
            .cells
            .iter()
            .map(|cell| Measured {
                name: cell.metric.clone(),
                value: cell.value,
                error: cell.error.clone(),
                state: cell.state,
            })
            .collect(),
        decisions: row.decisions.clone(),
    }
}

fn cost(run: &sim::Run, replicas: i32) -> Cost {
    Cost { pod_seconds: run.pod_seconds, ratio_to_stable_alone: ratio_to_stable_alone(run, replicas) }
}

fn scenario(simulated: &Simulated, replicas: i32) -> Scenario {
    let as_expected = simulated.as_expected();
    match simulated {
        Simulated::Once { scenario, run } => Scenario {
            name: scenario.name().to_string(),
            expect: expect(scenario.expect()),
            as_expected,
            outcome: Some(outcome(&run.outcome)),
            timeline: run.timeline.iter().map(moment).collect(),
            cost: Some(cost(run, replicas)),
            invariant_violations: run
                .violations
                .iter()
                .map(|(at, message)| Violation { at_seconds: at.num_seconds(), message: message.clone() })
                .collect(),
            distribution: None,
        },
        Simulated::Many { summary, invariants_broken, .. } => Scenario {
            name: summary.scenario.clone(),
            expect: expect(summary.expect),
            as_expected,
            outcome: None,
            timeline: Vec::new(),
            cost: None,
            invariant_violations: Vec::new(),
            distribution: Some(Distribution {
                runs: summary.runs,
                promoted: summary.promoted,
                aborted: summary.aborted,
                held: summary.held,
                wrong_rate: summary.wrong_rate(),
                invariants_broken: *invariants_broken,
                detect_seconds: percentiles(&summary.detect_times),
                promote_seconds: percentiles(&summary.promote_times),
            }),
        },
    }
}

impl Report {
    pub fn of(simulation: &Simulation) -> Self {
        let setup = &simulation.setup;
        let replicas = setup.spec.replicas;
        Self {
            rollout: Rollout {
                namespace: setup.namespace.clone(),
                name: setup.name.clone(),
                steps: setup.spec.strategy.canary.steps.len(),
                replicas,
            },
            requests_per_second: simulation.options.rps,
            seed: simulation.options.seed,
            runs: simulation.runs,
            metrics: setup
                .signals()
                .into_iter()
                .map(|(name, signal)| SimulatedMetric { name, simulated_as: signal.describe() })
                .collect(),
            as_expected: simulation.exit_code() == super::exit::AS_EXPECTED,
            scenarios: simulation.scenarios.iter().map(|s| scenario(s, replicas)).collect(),
        }
    }
}
