//! The cluster model: carries out the engine's actions the way the controller and the Kubernetes
//! controllers would. ReplicaSets get their pods after a delay (or never), Gateways accept a route
//! change at once, and AnalysisRuns appear when asked for.

use crate::api::AnalysisPhase;
use crate::engine::{
    Action, AnalysisRunState, Exposure, Observation, ParentState, ReplicaSetState, RouteState, RouteWeights,
    ServiceRole, spec_hash,
};
use chrono::{DateTime, Duration, Utc};

/// When a ReplicaSet's new pods become available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodStartup {
    After(Duration),
    /// The image crash-loops: its pods never become available.
    Never,
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub observation: Observation,
    /// Pods still starting: (revision, when they become available, how many).
    starting: Vec<(String, DateTime<Utc>, i32)>,
}

impl Cluster {
    /// A cluster with one accepted route that sends all traffic to stable.
    pub fn new(route: &str) -> Self {
        let observation = Observation {
            routes: vec![RouteState {
                name: route.to_string(),
                weights: Some(RouteWeights { canary: 0, stable: 100 }),
                exposure: Some(Exposure::default()),
                generation: 1,
                parents: vec![ParentState {
                    name: "gateway/default/public".into(),
                    accepted: true,
                    observed_generation: 1,
                    refusal: None,
                    partial: None,
                }],
            }],
            ..Observation::default()
        };
        Self { observation, starting: Vec::new() }
    }

    /// Carries out one action at `now`; pods of a scaled-up revision start as `startup` says.
    pub fn apply(&mut self, action: &Action, now: DateTime<Utc>, startup: PodStartup) {
        let obs = &mut self.observation;
        match action {
            Action::SetTraffic(traffic) => {
                for route in &mut obs.routes {
                    route.weights = Some(traffic.weights);
                    route.exposure = Some(traffic.exposure.clone());
                    route.generation += 1;
                    for parent in &mut route.parents {
                        parent.observed_generation = route.generation;
                    }
                }
            }
            Action::PointService { role: ServiceRole::Stable, revision } => {
                obs.services.stable = Some(revision.clone())
            }
            Action::PointService { role: ServiceRole::Canary, revision } => {
                obs.services.canary = Some(revision.clone())
            }
            Action::ScaleReplicaSet { revision, replicas } => {
                let previous = match obs.replica_sets.iter_mut().find(|rs| rs.revision == *revision) {
                    Some(rs) => std::mem::replace(&mut rs.replicas, *replicas),
                    None => {
                        obs.replica_sets.push(ReplicaSetState {
                            revision: revision.clone(),
                            replicas: *replicas,
                            available: 0,
                            created_at: now,
                        });
                        0
                    }
                };
                self.scale(revision, previous, *replicas, now, startup);
            }
            Action::ScaleWorkload { replicas } => {
                if let Some(workload) = &mut obs.workload {
                    workload.replicas = *replicas;
                    workload.available = workload.available.min(*replicas);
                }
            }
            Action::DeleteReplicaSet { revision } => {
                obs.replica_sets.retain(|rs| rs.revision != *revision);
                self.starting.retain(|(r, _, _)| r != revision);
            }
            Action::CreateAnalysisRun(request) => {
                if obs.analysis_run(&request.name).is_none() {
                    obs.analysis_runs.push(AnalysisRunState {
                        name: request.name.clone(),
                        phase: Some(AnalysisPhase::Running),
                        message: None,
                        failed_metric: None,
                        failed_value: None,
                        terminating: false,
                        spec_hash: spec_hash(&request.spec),
                        distrust: None,
                        owned: true,
                        created_at: Some(now),
                    });
                }
            }
            Action::TerminateAnalysisRun { name } => {
                if let Some(run) = obs.analysis_runs.iter_mut().find(|r| r.name == *name) {
                    run.terminating = true;
                }
            }
            Action::DeleteAnalysisRun { name } => obs.analysis_runs.retain(|r| r.name != *name),
        }
    }

    fn scale(&mut self, revision: &str, from: i32, to: i32, now: DateTime<Utc>, startup: PodStartup) {
        if to > from {
            if let PodStartup::After(delay) = startup {
                self.starting.push((revision.to_string(), now + delay, to - from));
            }
            return;
        }
        // Scaling down removes starting pods first, then available ones.
        let mut excess = from - to;
        for (_, _, count) in self.starting.iter_mut().rev().filter(|(r, _, _)| r == revision) {
            let removed = excess.min(*count);
            *count -= removed;
            excess -= removed;
        }
        self.starting.retain(|(_, _, count)| *count > 0);
        if let Some(rs) = self.observation.replica_sets.iter_mut().find(|rs| rs.revision == revision) {
            rs.available = rs.available.min(to);
        }
    }

    /// Makes every pod whose start-up delay is over available.
    pub fn start_pods(&mut self, now: DateTime<Utc>) {
        let (ready, starting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.starting).into_iter().partition(|(_, at, _)| *at <= now);
        self.starting = starting;
        for (revision, _, count) in ready {
            if let Some(rs) = self.observation.replica_sets.iter_mut().find(|rs| rs.revision == revision) {
                rs.available = (rs.available + count).min(rs.replicas);
            }
        }
    }

    /// The canary weight every route carries (the first route's), 0 when unknown.
    pub fn canary_weight(&self) -> i32 {
        self.observation.routes.first().and_then(|r| r.weights).map_or(0, |w| w.canary)
    }

    /// The header routes and mirror the routes carry.
    pub fn exposure(&self) -> Exposure {
        self.observation.routes.first().and_then(|r| r.exposure.clone()).unwrap_or_default()
    }
}
