//! What the controller saw in the cluster, handed to the engine as plain data.

use bellwether_api::{
    AnalysisPhase, AnalysisTemplateSpec, FiringAlert, HeaderMatch, PodTemplate, TemplateRef,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Everything the engine knows about the world for one decision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// The ReplicaSets owned by the Rollout, one per revision.
    pub replica_sets: Vec<ReplicaSetState>,
    /// The managed routes, in the order the spec lists them.
    pub routes: Vec<RouteState>,
    /// Which revision each Service selects.
    pub services: ServiceSelectors,
    /// The AnalysisRuns owned by the Rollout.
    pub analysis_runs: Vec<AnalysisRunState>,
    /// The (Cluster)AnalysisTemplates that exist, by reference.
    pub templates: BTreeMap<TemplateRef, AnalysisTemplateSpec>,
    /// User actions (promote, abort, ...) not yet known to be handled.
    pub requests: Vec<UserRequest>,
    /// The Deployment a `workloadRef` names; `None` without one, or when it does not exist.
    pub workload: Option<WorkloadState>,
}

/// A Deployment whose pod template a Rollout uses, and whose pods served before Bellwether did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadState {
    pub template: PodTemplate,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSetState {
    pub revision: String,
    /// `spec.replicas`: what the ReplicaSet was asked to run.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteState {
    /// `kind/namespace/name`, for messages.
    pub name: String,
    /// The weights on the backendRefs to the canary and stable Services, the same on every rule;
    /// `None` when the route is missing or its rules disagree.
    pub weights: Option<RouteWeights>,
    /// The header routes and mirror Bellwether's rules and filters carry; `None` when they do not
    /// match the managed rules (one edited by hand, or a managed rule changed under them).
    pub exposure: Option<Exposure>,
    pub generation: i64,
    pub parents: Vec<ParentState>,
}

/// A canary and a stable weight: what a route carries, or what the engine asks every route to carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteWeights {
    pub canary: i32,
    pub stable: i32,
}

/// What exposes the canary besides its weight: header routes, which send the requests that match
/// them to it, and a mirror, which copies a percent of the requests to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// By name, the headers each header route matches.
    pub header_routes: BTreeMap<String, Vec<HeaderMatch>>,
    /// The percent of requests mirrored to the canary.
    pub mirror: Option<i32>,
}

impl Exposure {
    /// Nothing but weight reaches the canary.
    pub fn is_empty(&self) -> bool {
        self.header_routes.is_empty() && self.mirror.is_none()
    }

    /// `header route a, b; mirror 10%`, or `none`, for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.header_routes.is_empty() {
            let names: Vec<&str> = self.header_routes.keys().map(String::as_str).collect();
            parts.push(format!("header route {}", names.join(", ")));
        }
        if let Some(percent) = self.mirror {
            parts.push(format!("mirror {percent}%"));
        }
        if parts.is_empty() { "no header route or mirror".into() } else { parts.join("; ") }
    }
}

/// Everything a managed route carries for the canary: what the engine asks every route to carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub weights: RouteWeights,
    pub exposure: Exposure,
}

impl Traffic {
    /// `canary` percent to the canary, the rest to stable, and no header route or mirror.
    pub fn split(canary: i32) -> Self {
        Self { weights: RouteWeights { canary, stable: 100 - canary }, exposure: Exposure::default() }
    }

    /// Whether any request reaches the canary: weight, a header route or a mirror.
    pub fn exposes(&self) -> bool {
        self.weights.canary > 0 || !self.exposure.is_empty()
    }
}

impl Default for RouteWeights {
    fn default() -> Self {
        Self { canary: 0, stable: 100 }
    }
}

/// One parent (Gateway) of a route, as its `status.parents[]` entry reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParentState {
    pub name: String,
    pub accepted: bool,
    pub observed_generation: i64,
    /// Why the parent refused the route's current generation: its `Accepted` condition is
    /// `False` (`Accepted=False, NotAllowedByListeners: ...`). None of the route is in force.
    pub refusal: Option<String>,
    /// Why part of the route's current generation may not be in force: `ResolvedRefs` is `False`
    /// (a backend it cannot use) or `PartiallyInvalid` is `True` (a rule it dropped, such as one
    /// with a header match it does not support). It holds only traffic that exposes the canary:
    /// the part may be Bellwether's rule, or a rule of someone else's that a move back to stable
    /// does not depend on.
    pub partial: Option<String>,
}

impl RouteState {
    /// Whether the route carries `traffic` and every parent accepted this generation of it (all of
    /// it, when `traffic` exposes the canary).
    pub fn carries(&self, traffic: &Traffic) -> bool {
        self.shows(traffic)
            && self.accepted()
            && (!traffic.exposes() || self.parents.iter().all(|p| p.partial.is_none()))
    }

    /// Whether the route's spec shows `traffic`, accepted or not.
    pub fn shows(&self, traffic: &Traffic) -> bool {
        self.weights == Some(traffic.weights) && self.exposure.as_ref() == Some(&traffic.exposure)
    }

    /// Every parent reports `Accepted=True` for the route's current generation, and none refused
    /// its references.
    pub fn accepted(&self) -> bool {
        !self.parents.is_empty()
            && self
                .parents
                .iter()
                .all(|p| p.accepted && p.refusal.is_none() && p.observed_generation >= self.generation)
    }

    /// Whether the route may send requests to the canary: weight, a header route or a mirror, or
    /// rules that cannot be read.
    pub fn exposes_canary(&self) -> bool {
        self.weights.is_none_or(|w| w.canary > 0) || self.exposure.as_ref().is_none_or(|e| !e.is_empty())
    }

    /// Why the route does not (yet) carry `traffic`, for messages.
    pub fn lag(&self, traffic: &Traffic) -> String {
        let weights = traffic.weights;
        match (&self.weights, &self.exposure) {
            (None, _) => format!("{} not found or its rules do not reference both Services", self.name),
            (Some(w), _) if *w != weights => {
                format!("{} has canary={} stable={}", self.name, w.canary, w.stable)
            }
            (_, None) => format!("{}: Bellwether's rules or mirror filters were changed", self.name),
            (_, Some(e)) if *e != traffic.exposure => format!("{} has {}", self.name, e.describe()),
            _ if self.parents.is_empty() => format!("{} has no parent Gateway status yet", self.name),
            _ => {
                let exposes = traffic.exposes();
                let refused: Vec<String> = self
                    .parents
                    .iter()
                    .filter_map(|p| {
                        let why = p.refusal.as_ref().or(p.partial.as_ref().filter(|_| exposes))?;
                        Some(format!("{} refused it: {why}", p.name))
                    })
                    .collect();
                if !refused.is_empty() {
                    return format!("{}: {}", self.name, refused.join("; "));
                }
                let waiting: Vec<&str> = self
                    .parents
                    .iter()
                    .filter(|p| !p.accepted || p.observed_generation < self.generation)
                    .map(|p| p.name.as_str())
                    .collect();
                format!("{} not yet accepted by {}", self.name, waiting.join(", "))
            }
        }
    }
}

/// The revision in each Service's selector (`bellwether.dev/revision`), `None` when unset or missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceSelectors {
    pub stable: Option<String>,
    pub canary: Option<String>,
}

/// What the engine believes of one AnalysisRun, from [`super::assess`]: its verdict judged from its
/// measurements, not from the phase it records.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisRunState {
    pub name: String,
    /// `None` until the AnalysisRun controller first writes status.
    pub phase: Option<AnalysisPhase>,
    pub message: Option<String>,
    /// The metric that decided a failed run, and its last value.
    pub failed_metric: Option<String>,
    pub failed_value: Option<String>,
    /// `spec.terminate` is already set.
    pub terminating: bool,
    /// The hash of the run's spec as observed ([`super::spec_hash`]), checked against the one the
    /// Rollout recorded when it created the run.
    pub spec_hash: String,
    /// Why the run's own status is not believed, when it is not: it is then an Error.
    pub distrust: Option<String>,
    /// Its controller owner reference names this Rollout's UID: the run is the Rollout's to delete.
    pub owned: bool,
    /// When it was created; the newest ended runs are the ones kept.
    pub created_at: Option<DateTime<Utc>>,
}

/// A request from a person or a pipeline, delivered through the Rollout's request annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRequest {
    /// Unique per request; the engine acts on each ID once.
    pub id: String,
    pub action: UserAction,
    /// Who asked, as the API server authenticated them.
    pub by: String,
    /// The canary revision the requester saw; a request for another revision is stale and ignored.
    pub revision: Option<String>,
    /// For `promote`: the step index the requester saw; a request for another step is stale.
    pub step: Option<i32>,
    /// For an abort that a firing alert asked for: the alert. Such aborts are limited per hour.
    pub alert: Option<FiringAlert>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAction {
    /// Skip the current step (or accept a paused analysis) and go on.
    Promote,
    /// Skip every remaining step and analysis and promote now.
    PromoteFull,
    /// Send all traffic back to stable and stop the canary.
    Abort,
    /// Start an aborted canary again from step 1.
    Retry,
    /// Hold the canary where it is.
    Pause,
    /// Lift a user pause, or run a paused analysis again.
    Resume,
}

impl UserAction {
    /// Every action, in the order the plugin lists them.
    pub const ALL: [UserAction; 6] = [
        UserAction::Promote,
        UserAction::PromoteFull,
        UserAction::Abort,
        UserAction::Retry,
        UserAction::Pause,
        UserAction::Resume,
    ];

    pub fn verb(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::PromoteFull => "promote --full",
            Self::Abort => "abort",
            Self::Retry => "retry",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }
}

impl Observation {
    pub fn replica_set(&self, revision: &str) -> Option<&ReplicaSetState> {
        self.replica_sets.iter().find(|rs| rs.revision == revision)
    }

    pub fn available(&self, revision: &str) -> i32 {
        self.replica_set(revision).map_or(0, |rs| rs.available)
    }

    pub fn analysis_run(&self, name: &str) -> Option<&AnalysisRunState> {
        self.analysis_runs.iter().find(|run| run.name == name)
    }

    /// Whether any managed route may still send traffic to the canary Service.
    pub fn canary_traffic_possible(&self) -> bool {
        self.routes.iter().any(RouteState::exposes_canary)
    }
}
