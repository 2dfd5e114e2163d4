//! What the engine asks the controller to do, and what it tells people.

use super::observation::Traffic;
use bellwether_api::{ActionRecord, AnalysisRunSpec, RolloutStatus};

/// A mutation of the cluster. The controller carries actions out in order and stops at the first
/// failure; the next decision re-derives whatever is still missing.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Make every managed route carry this traffic: the weights on the backendRefs of its managed
    /// rules, Bellwether's header-route rules and its mirror filters; one patch per route.
    SetTraffic(Traffic),
    /// Point a Service's selector at a revision.
    PointService {
        role: ServiceRole,
        revision: String,
    },
    /// Create the revision's ReplicaSet when missing, and scale it.
    ScaleReplicaSet {
        revision: String,
        replicas: i32,
    },
    /// Delete an old revision's ReplicaSet (beyond `revisionHistoryLimit`).
    DeleteReplicaSet {
        revision: String,
    },
    /// Scale the Deployment a `workloadRef` names, whose pods Bellwether's have replaced.
    ScaleWorkload {
        replicas: i32,
    },
    CreateAnalysisRun(Box<AnalysisRunRequest>),
    /// Ask a running AnalysisRun to stop.
    TerminateAnalysisRun {
        name: String,
    },
    /// Delete an ended AnalysisRun of this Rollout (beyond `analysisRunHistoryLimit`).
    DeleteAnalysisRun {
        name: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceRole {
    Stable,
    Canary,
}

/// An AnalysisRun to create: its name and the spec the Rollout recorded the hash of. The
/// controller adds the metadata (labels, owner) and nothing else.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisRunRequest {
    pub name: String,
    pub spec: AnalysisRunSpec,
}

/// A Kubernetes Event to record on the Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// CamelCase, for example `StepCompleted`.
    pub reason: String,
    pub message: String,
    /// The action this Event tells of, as `status.actions` records it, when it is one.
    pub record: Option<ActionRecord>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Normal,
    Warning,
}

/// The outcome of one decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: RolloutStatus,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    /// When to decide again if nothing changes before then (a pause or a delay ends).
    pub requeue_after: Option<chrono::Duration>,
}
