//! A small model of the cluster: it applies the engine's actions the way the controller and the
//! Kubernetes controllers would, with pods, Gateways and analyses that catch up when told to.

use bellwether::api::{AnalysisPhase, FiringAlert, RolloutSpec, RolloutStatus};
use bellwether::engine::{
    Action, Decision, Input, UserAction, UserRequest, decide, pod_template, revision_of,
};
use bellwether::sim::{Cluster, PodStartup};
use chrono::{DateTime, Utc};

pub struct World {
    pub cluster: Cluster,
    pub spec: RolloutSpec,
    pub status: RolloutStatus,
    pub now: DateTime<Utc>,
    /// Every action the engine emitted, in order, with the time.
    pub log: Vec<(DateTime<Utc>, Action)>,
    next_request: u32,
}

impl World {
    /// A cluster with the route `web` (all traffic on stable, accepted) and the given templates.
    pub fn new(spec: RolloutSpec, now: DateTime<Utc>) -> Self {
        let mut cluster = Cluster::new("HTTPRoute/default/web");
        cluster.observation.templates = super::fixtures::templates();
        Self { cluster, spec, status: RolloutStatus::default(), now, log: Vec::new(), next_request: 0 }
    }

    /// The revision of the pod template: the embedded one, or the `workloadRef`'s Deployment's.
    pub fn revision(&self) -> String {
        let workload = self.cluster.observation.workload.as_ref().map(|w| &w.template);
        revision_of(&pod_template(&self.spec, workload).map(|t| t.get()).unwrap_or_default())
    }

    /// Decides on the current world without carrying anything out; status is kept.
    pub fn decide(&mut self) -> Decision {
        let decision = decide(Input {
            name: "web",
            generation: Some(1),
            spec: &self.spec,
            status: &self.status,
            observation: &self.cluster.observation,
            now: self.now,
        });
        self.status = decision.status.clone();
        decision
    }

    /// Decides and carries out the actions; pods do not become ready by themselves.
    pub fn step(&mut self) -> Decision {
        let decision = self.decide();
        for action in &decision.actions {
            self.apply(action);
        }
        decision
    }

    /// Steps, making pods ready and letting Gateways accept, until nothing more happens.
    pub fn settle(&mut self) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for _ in 0..50 {
            let decision = self.step();
            self.pods_become_ready();
            let quiet = decision.actions.is_empty();
            decisions.push(decision);
            if quiet {
                return decisions;
            }
        }
        panic!("the rollout did not settle in 50 decisions: {:?}", self.status.message);
    }

    pub fn advance(&mut self, minutes: f64) {
        self.now += chrono::Duration::milliseconds((minutes * 60_000.0) as i64);
    }

    /// Carries out an action; pods start only when a test says so.
    pub fn apply(&mut self, action: &Action) {
        self.log.push((self.now, action.clone()));
        self.cluster.apply(action, self.now, PodStartup::Never);
    }

    pub fn pods_become_ready(&mut self) {
        for rs in &mut self.cluster.observation.replica_sets {
            rs.available = rs.replicas;
        }
    }

    pub fn pods_become_ready_up_to(&mut self, revision: &str, available: i32) {
        for rs in self.cluster.observation.replica_sets.iter_mut().filter(|rs| rs.revision == revision) {
            rs.available = available.min(rs.replicas);
        }
    }

    /// Ends the newest run whose name contains `slot` (`step2`, `background`).
    pub fn finish_run(&mut self, slot: &str, phase: AnalysisPhase, message: &str) {
        let run = self
            .cluster
            .observation
            .analysis_runs
            .iter_mut()
            .rev()
            .find(|r| r.name.contains(slot))
            .unwrap_or_else(|| panic!("no analysis run for {slot}"));
        run.phase = Some(phase);
        run.message = Some(message.into());
        if phase == AnalysisPhase::Failed {
            run.failed_metric = Some("error-rate".into());
            run.failed_value = Some("0.034".into());
        }
    }

    /// Queues a user request for the canary the requester sees now.
    pub fn request(&mut self, action: UserAction, by: &str) -> String {
        self.next_request += 1;
        let id = format!("req-{}", self.next_request);
        self.cluster.observation.requests.push(UserRequest {
            id: id.clone(),
            action,
            by: by.into(),
            revision: self.status.canary_revision.clone(),
            step: self.status.current_step_index,
            alert: None,
        });
        id
    }

    /// Queues the abort that a firing alert asks for, as the alert receiver sends it: for the
    /// canary it sees now, with an ID of the alert, that canary and its attempt.
    pub fn alert(&mut self, alert: &FiringAlert) -> String {
        let canary = self.status.canary_revision.clone();
        let attempt = self.status.progress.attempt;
        let id = format!("alert-{}-{}-{attempt}", alert.name, canary.clone().unwrap_or_default());
        self.cluster.observation.requests.push(UserRequest {
            id: id.clone(),
            action: UserAction::Abort,
            by: "alertmanager".into(),
            revision: canary,
            step: None,
            alert: Some(alert.clone()),
        });
        id
    }

    pub fn canary_weight(&self) -> i32 {
        self.cluster.observation.routes[0].weights.map_or(-1, |w| w.canary)
    }

    pub fn replicas_of(&self, revision: &str) -> Option<i32> {
        self.cluster.observation.replica_set(revision).map(|rs| rs.replicas)
    }

    /// Deploys the current spec as the first revision and settles: a Healthy stable baseline.
    pub fn deployed(spec: RolloutSpec) -> Self {
        let mut world = Self::new(spec, super::fixtures::at_minute(0.0));
        world.settle();
        world
    }

    /// Ships a new image, in the embedded template or the `workloadRef`'s Deployment, and returns
    /// its revision.
    pub fn ship(&mut self, image: &str) -> String {
        let template = match (&mut self.spec.template, &mut self.cluster.observation.workload) {
            (Some(template), _) => template,
            (None, Some(workload)) => &mut workload.template,
            (None, None) => panic!("neither a template nor a Deployment to ship"),
        };
        template.modify(|template| {
            template.spec.as_mut().unwrap().containers[0].image = Some(image.into());
        });
        self.revision()
    }
}
