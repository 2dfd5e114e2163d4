//! A Rollout made from the bundled example, decided by the real engine over the simulation's
//! cluster model, and the moves that bring it to the states the benchmarks decide on.

use bellwether::api::{AnalysisPhase, RolloutSpec, RolloutStatus};
use bellwether::engine::{Decision, Input, decide};
use bellwether::sim::{Cluster, PodStartup, Setup};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

/// Pods are ready as soon as the cluster is told to start them, so that setting a fixture up never
/// waits on a clock.
const AT_ONCE: PodStartup = PodStartup::After(TimeDelta::zero());

/// When every fixture's clock starts.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

/// One Rollout as the controller holds it between decisions, and its cluster.
pub struct Fixture {
    pub name: String,
    pub generation: i64,
    pub spec: RolloutSpec,
    pub status: RolloutStatus,
    pub cluster: Cluster,
    pub now: DateTime<Utc>,
}

impl Fixture {
    /// The first revision of `setup`, deployed and Healthy.
    pub fn deployed(setup: Setup) -> Self {
        let mut cluster = Cluster::new(&format!("HTTPRoute/{}/{}", setup.namespace, setup.name));
        cluster.observation.templates = setup.templates;
        let mut fixture = Self {
            name: setup.name,
            generation: 1,
            spec: setup.spec,
            status: RolloutStatus::default(),
            cluster,
            now: start(),
        };
        fixture.settle();
        fixture
    }

    pub fn input(&self) -> Input<'_> {
        Input {
            name: &self.name,
            generation: Some(self.generation),
            spec: &self.spec,
            status: &self.status,
            observation: &self.cluster.observation,
            now: self.now,
        }
    }

    pub fn decide(&self) -> Decision {
        decide(self.input())
    }

    /// Keeps the decided status and carries out the actions, as the controller and the Gateway would.
    /// New pods wait for [`Self::start_pods`].
    pub fn apply(&mut self, decision: Decision) {
        self.status = decision.status;
        for action in &decision.actions {
            self.cluster.apply(action, self.now, AT_ONCE);
        }
    }

    pub fn start_pods(&mut self) {
        self.cluster.start_pods(self.now);
    }

    /// Decides and carries out the actions, with pods ready each time, until nothing more happens.
    pub fn settle(&mut self) {
        for _ in 0..50 {
            let decision = self.decide();
            let quiet = decision.actions.is_empty();
            self.apply(decision);
            self.start_pods();
            if quiet {
                return;
            }
        }
        panic!("{} did not settle: {:?}", self.name, self.status.message);
    }

    /// Starts a canary: a new image.
    pub fn ship(&mut self) {
        let image = format!("ghcr.io/example/{}:1.1.0", self.name);
        self.spec.template.as_mut().expect("an embedded template").modify(|template| {
            template.spec.as_mut().expect("a pod spec").containers[0].image = Some(image);
        });
        self.generation += 1;
    }

    /// Lets timed pauses run out and step analyses succeed until the canary is at `target`.
    pub fn reach_step(&mut self, target: usize) {
        for _ in 0..20 {
            self.settle();
            let index = self.status.current_step_index.unwrap_or(0) as usize;
            if index >= target {
                return;
            }
            let step = &self.spec.strategy.canary.steps[index];
            if let Some(pause) = &step.pause {
                let duration = pause.duration.as_ref().expect("only timed pauses come before the target");
                self.now += duration.parse().expect("the example's durations parse");
            } else if step.analysis.is_some() {
                self.finish_step_run(AnalysisPhase::Successful);
            }
        }
        panic!("{} did not reach step {target}: {:?}", self.name, self.status.message);
    }

    pub fn finish_step_run(&mut self, phase: AnalysisPhase) {
        let name = &self.status.step_analysis_run.as_ref().expect("a step analysis is running").name;
        let run = self
            .cluster
            .observation
            .analysis_runs
            .iter_mut()
            .find(|r| r.name == *name)
            .expect("the run exists");
        run.phase = Some(phase);
        run.message = Some(format!("{phase:?}"));
        if phase == AnalysisPhase::Failed {
            run.failed_metric = Some("error-rate".into());
            run.failed_value = Some("0.034".into());
        }
    }
}
