//! The deterministic simulation: the real engine and judge, driven by a simulated clock over a
//! model of the cluster ([`cluster`]) and of the traffic each revision serves ([`traffic`]).
//!
//! A run deploys the Rollout's stable revision, ships the new one at time zero and then advances
//! in ticks of [`TICK`]. Each tick the revisions serve traffic split by the route weights, the
//! AnalysisRuns measure what is due, the engine decides on what the cluster shows, and the cluster
//! carries out the actions. A seeded generator makes every run reproducible, and nothing waits on
//! a real clock, so an hour of rollout takes milliseconds.

mod analysis;
mod cluster;
pub mod invariants;
mod policy;
mod scenario;
mod setup;
mod summary;
mod traffic;

pub use analysis::{AnalysisRun, Signal};
pub use cluster::{Cluster, PodStartup};
pub use policy::{Bellwether, Policy};
pub use scenario::{Expect, Scenario};
pub use setup::{Setup, SetupError};
pub use summary::{Summary, percentile, summarize};
pub use traffic::{BUCKETS, Behaviour, Served, histogram_quantile, minute_jitter};

use crate::api::{HysteresisState, PauseReason, RolloutPhase, RolloutSpec, RolloutStatus};
use crate::engine::{Action, Decision, Exposure, Input, UserAction, UserRequest, decide, revision_of};
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The simulation's time step: traffic is generated, and the engine may decide, once per tick.
pub const TICK: Duration = Duration::seconds(10);
/// The share of requests that carry a header route's headers: the testers it sends to the canary.
pub const HEADER_ROUTE_SHARE: f64 = 0.01;

/// How a simulation runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Requests per second across both revisions.
    pub rps: f64,
    pub seed: u64,
    /// How long a healthy pod takes to become available.
    pub pod_ready_after: Duration,
    /// How long the simulated person takes to promote an indefinite `pause: {}`.
    pub approve_after: Duration,
    /// When to give up on a rollout that neither finished nor waits for a person.
    pub max_duration: Duration,
    /// Check every decision against the engine's invariants (it doubles the cost of deciding).
    pub check_invariants: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rps: 200.0,
            seed: 1,
            pod_ready_after: Duration::seconds(30),
            approve_after: Duration::minutes(1),
            max_duration: Duration::hours(3),
            check_invariants: true,
        }
    }
}

/// How a simulated rollout ended, timed from the moment the new revision shipped.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Promoted {
        after: Duration,
    },
    /// All traffic went back to stable `after` the start.
    Aborted {
        after: Duration,
        reason: String,
    },
    /// It stopped and waits for a person (an inconclusive analysis), or ran out of time.
    Held {
        after: Duration,
        reason: String,
    },
}

impl Outcome {
    pub fn after(&self) -> Duration {
        match self {
            Self::Promoted { after } | Self::Aborted { after, .. } | Self::Held { after, .. } => *after,
        }
    }
}

/// One metric's latest measurement, as shown on a timeline row.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub metric: String,
    pub value: Option<f64>,
    pub error: Option<String>,
    pub state: HysteresisState,
}

/// One line of the timeline: where the rollout is, what the metrics say and what was decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub at: Duration,
    /// `3/9`, or `None` outside a canary.
    pub step: Option<String>,
    pub weight: i32,
    /// The header routes and mirror the routes carry.
    pub exposure: Exposure,
    pub cells: Vec<Cell>,
    /// The Events of the decisions taken at this time.
    pub decisions: Vec<String>,
}

/// A finished simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub outcome: Outcome,
    pub timeline: Vec<Row>,
    /// How many times the engine decided.
    pub decisions: usize,
    /// Every broken invariant, with the time of the decision that broke it.
    pub violations: Vec<(Duration, String)>,
    /// The pods every revision was asked to run, summed over each second from the ship to the
    /// outcome: what the canary cost.
    pub pod_seconds: f64,
    /// How long the run took, from the ship to the outcome.
    pub elapsed: Duration,
}

/// The instant the new revision ships in every run, so that timelines read the same.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).single().expect("a valid time")
}

/// Simulates one rollout of `setup` in `scenario`, judged by `policy`.
pub fn run(setup: &Setup, scenario: &Scenario, options: &Options, policy: &dyn Policy) -> Run {
    let mut sim = Simulation::new(setup, scenario, options, policy);
    sim.deploy_stable();
    sim.ship();
    let outcome = loop {
        if let Some(outcome) = sim.tick() {
            break outcome;
        }
    };
    let elapsed = sim.elapsed();
    Run {
        outcome,
        timeline: sim.timeline,
        decisions: sim.decisions,
        violations: sim.violations,
        pod_seconds: sim.pod_seconds,
        elapsed,
    }
}

struct Simulation<'a> {
    setup: &'a Setup,
    scenario: &'a Scenario,
    options: &'a Options,
    policy: &'a dyn Policy,
    spec: RolloutSpec,
    status: RolloutStatus,
    cluster: Cluster,
    runs: Vec<AnalysisRun>,
    rng: ChaCha8Rng,
    now: DateTime<Utc>,
    canary: Served,
    stable: Served,
    /// This minute's error-rate factor, shared by both revisions: what moves a service's error rate
    /// from minute to minute (its callers, its dependencies) moves it for both.
    jitter: f64,
    /// The observation and time of the last decision, and when the engine asked to decide again.
    decided_on: Option<crate::engine::Observation>,
    requeue_at: Option<DateTime<Utc>>,
    timeline: Vec<Row>,
    decisions: usize,
    violations: Vec<(Duration, String)>,
    next_request: u32,
    pod_seconds: f64,
}

impl<'a> Simulation<'a> {
    fn new(setup: &'a Setup, scenario: &'a Scenario, options: &'a Options, policy: &'a dyn Policy) -> Self {
        let route = setup
            .spec
            .strategy
            .canary
            .traffic_routing
            .gateway_api
            .http_routes
            .first()
            .map(|r| format!("HTTPRoute/{}/{}", setup.namespace, r.name))
            .unwrap_or_else(|| format!("GRPCRoute/{}/{}", setup.namespace, setup.name));
        let mut cluster = Cluster::new(&route);
        cluster.observation.templates = setup.templates.clone();
        Self {
            setup,
            scenario,
            options,
            policy,
            spec: setup.spec.clone(),
            status: RolloutStatus::default(),
            cluster,
            runs: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            now: start() - Duration::hours(1),
            canary: Served::default(),
            stable: Served::default(),
            jitter: 1.0,
            decided_on: None,
            requeue_at: None,
            timeline: Vec::new(),
            decisions: 0,
            violations: Vec::new(),
            next_request: 0,
            pod_seconds: 0.0,
        }
    }

    /// The Rollout as it was before the release: the same template, one revision earlier.
    fn deploy_stable(&mut self) {
        self.spec.template.get_or_insert_with(Default::default).modify(|template| {
            template
                .metadata
                .get_or_insert_with(Default::default)
                .annotations
                .get_or_insert_with(Default::default)
                .insert("simulate.bellwether.dev/revision".into(), "previous".into());
        });
        for _ in 0..20 {
            let decision = self.decide();
            self.carry_out(&decision);
            self.cluster.start_pods(self.now + self.options.pod_ready_after);
            if decision.actions.is_empty() && self.status.phase == Some(RolloutPhase::Healthy) {
                return;
            }
        }
        panic!("the stable revision did not deploy: {:?}", self.status.message);
    }

    /// Ships the new revision at the start time.
    fn ship(&mut self) {
        self.spec = self.setup.spec.clone();
        self.now = start();
        self.decided_on = None;
    }

    fn elapsed(&self) -> Duration {
        self.now - start()
    }

    fn decide(&mut self) -> Decision {
        let decision = decide(Input {
            name: &self.setup.name,
            generation: Some(1),
            spec: &self.spec,
            status: &self.status,
            observation: &self.cluster.observation,
            now: self.now,
        });
        self.decisions += 1;
        if self.options.check_invariants {
            let decided = invariants::Decided {
                name: &self.setup.name,
                spec: &self.spec,
                input: &self.status,
                observation: &self.cluster.observation,
                now: self.now,
                decision: &decision,
            };
            if let Err(violation) = invariants::check(&decided) {
                self.violations.push((self.elapsed(), violation));
            }
        }
        self.status = decision.status.clone();
        let handled = &self.status.progress.handled_requests;
        self.cluster.observation.requests.retain(|r| !handled.contains(&r.id));
        self.decided_on = Some(self.cluster.observation.clone());
        self.requeue_at = decision.requeue_after.map(|after| self.now + after);
        decision
    }

    fn carry_out(&mut self, decision: &Decision) {
        let canary = revision_of(&self.spec.embedded_template().unwrap_or_default());
        for action in &decision.actions {
            let is_canary = self.status.stable_revision.as_deref() != Some(canary.as_str())
                && matches!(action, Action::ScaleReplicaSet { revision, .. } if *revision == canary);
            let startup = if is_canary {
                self.scenario.canary_startup(self.options.pod_ready_after)
            } else {
                PodStartup::After(self.options.pod_ready_after)
            };
            self.cluster.apply(action, self.now, startup);
            match action {
                Action::CreateAnalysisRun(request) => {
                    let run = AnalysisRun::new(&request.name, request.spec.clone(), self.now, self.policy);
                    self.runs.push(run);
                }
                Action::TerminateAnalysisRun { name } => {
                    let (now, policy) = (self.now, self.policy);
                    self.runs.iter_mut().filter(|r| r.name == *name).for_each(|r| r.terminate(now, policy));
                }
                Action::DeleteAnalysisRun { name } => self.runs.retain(|r| r.name != *name),
                _ => {}
            }
        }
    }

    /// Advances one tick; returns the outcome once the rollout is over.
    fn tick(&mut self) -> Option<Outcome> {
        self.cluster.start_pods(self.now);
        self.serve();
        self.measure();
        self.operator();
        let mut decisions = Vec::new();
        let mut aborted_at = None;
        for _ in 0..10 {
            let due = self.requeue_at.is_some_and(|at| at <= self.now);
            if !due && self.decided_on.as_ref() == Some(&self.cluster.observation) {
                break;
            }
            let decision = self.decide();
            decisions.extend(decision.events.iter().map(|e| e.message.clone()));
            if decision.actions.iter().any(|a| matches!(a, Action::SetTraffic(t) if t.weights.canary == 0)) {
                aborted_at = Some(self.elapsed());
            }
            self.carry_out(&decision);
            if decision.actions.is_empty() {
                break;
            }
        }
        let outcome = self.outcome(aborted_at);
        let pods: i32 = self.cluster.observation.replica_sets.iter().map(|rs| rs.replicas).sum();
        self.pod_seconds += f64::from(pods) * TICK.num_milliseconds() as f64 / 1000.0;
        if !decisions.is_empty() || self.now.timestamp() % 60 == 0 || outcome.is_some() {
            self.record(decisions);
        }
        self.now += TICK;
        outcome
    }

    fn serve(&mut self) {
        if self.now.timestamp() % 60 == 0 {
            self.jitter = traffic::minute_jitter(&mut self.rng);
        }
        let rps = self.options.rps * self.scenario.traffic();
        let exposure = self.cluster.exposure();
        // The testers a header route sends: a small, fixed share of the requests, whatever the
        // weight. A mirror's copies reach the canary's metrics and no user.
        let headers = (exposure.header_routes.len() as f64 * HEADER_ROUTE_SHARE).min(1.0);
        let weight = f64::from(self.cluster.canary_weight()) / 100.0;
        let canary_share = headers + (1.0 - headers) * weight;
        // A mirror copies every request of the managed rules, whichever revision serves it; the
        // header routes' requests go through Bellwether's own rules, which carry no mirror.
        let mirrored = f64::from(exposure.mirror.unwrap_or(0)) / 100.0 * (1.0 - headers);
        let seconds = TICK.num_milliseconds() as f64 / 1000.0;
        let elapsed = self.elapsed();
        let (canary, stable) = (self.scenario.canary(elapsed), self.scenario.stable());
        let canary_rps = rps * (canary_share + mirrored);
        self.canary.serve(&mut self.rng, self.now, canary_rps, seconds, canary, self.jitter);
        self.stable.serve(&mut self.rng, self.now, rps * (1.0 - canary_share), seconds, stable, self.jitter);
    }

    fn measure(&mut self) {
        let up = self.scenario.source_up(self.elapsed());
        for run in &mut self.runs {
            run.measure(self.now, &self.canary, &self.stable, up, self.policy);
            if let Some(state) =
                self.cluster.observation.analysis_runs.iter_mut().find(|s| s.name == run.name)
            {
                *state = run.assess(self.now, self.policy);
            }
        }
    }

    /// The person who promotes an indefinite pause once `approve_after` has passed.
    fn operator(&mut self) {
        let Some(index) = self.status.current_step_index else { return };
        let indefinite = self
            .spec
            .strategy
            .canary
            .steps
            .get(index as usize)
            .and_then(|s| s.pause.as_ref())
            .is_some_and(|p| p.duration.is_none());
        let waiting = self
            .status
            .pause_conditions
            .iter()
            .find(|c| c.reason == PauseReason::PauseStep)
            .is_some_and(|c| self.now - c.started_at >= self.options.approve_after);
        if indefinite && waiting && self.cluster.observation.requests.is_empty() {
            self.next_request += 1;
            self.cluster.observation.requests.push(UserRequest {
                id: format!("simulated-{}", self.next_request),
                action: UserAction::Promote,
                by: "simulated operator".into(),
                revision: self.status.canary_revision.clone(),
                step: Some(index),
                alert: None,
            });
        }
    }

    fn outcome(&self, aborted_at: Option<Duration>) -> Option<Outcome> {
        let elapsed = self.elapsed();
        let message = self.status.message.clone().unwrap_or_default();
        let shipped = revision_of(&self.setup.spec.embedded_template().unwrap_or_default());
        if let Some(abort) = &self.status.abort {
            let after = aborted_at.unwrap_or(elapsed);
            return Some(Outcome::Aborted { after, reason: abort.message.clone() });
        }
        if self.status.phase == Some(RolloutPhase::Healthy)
            && self.status.stable_revision.as_deref() == Some(&shipped)
        {
            return Some(Outcome::Promoted { after: elapsed });
        }
        let needs_person = self
            .status
            .pause_conditions
            .iter()
            .any(|c| matches!(c.reason, PauseReason::InconclusiveAnalysis | PauseReason::AnalysisFailed));
        if needs_person {
            return Some(Outcome::Held { after: elapsed, reason: message });
        }
        (elapsed >= self.options.max_duration).then(|| Outcome::Held {
            after: elapsed,
            reason: format!("still not finished after {}: {message}", crate::api::format_duration(elapsed)),
        })
    }

    fn record(&mut self, decisions: Vec<String>) {
        let cells = self
            .runs
            .iter()
            .map(|run| &run.status)
            .filter(|status| {
                !status.phase.is_some_and(|p| p.is_terminal())
                    || status
                        .metric_results
                        .iter()
                        .any(|m| m.measurements.last().is_some_and(|s| s.at == self.now))
            })
            .flat_map(|status| &status.metric_results)
            .filter_map(|result| {
                let sample = result.measurements.last()?;
                Some(Cell {
                    metric: result.name.clone(),
                    value: sample.value,
                    error: sample.error.clone(),
                    state: result.hysteresis.as_ref().map_or(HysteresisState::Healthy, |h| h.state),
                })
            })
            .collect();
        self.timeline.push(Row {
            at: self.elapsed(),
            step: self.status.step.clone().filter(|_| self.status.canary_revision.is_some()),
            weight: self.cluster.canary_weight(),
            exposure: self.cluster.exposure(),
            cells,
            decisions,
        });
    }
}
