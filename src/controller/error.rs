//! What can go wrong in a reconcile pass. Each variant has a short [`Error::kind`], the label of
//! `bellwether_reconcile_errors_total`, so that an operator sees which kind of failure is climbing.
//!
//! None of these is fatal: the pass stops, nothing after the failure is attempted, and the object
//! is reconciled again with backoff. Every decision is re-derived from the caches once they show
//! the pass's own writes, so a retried pass never repeats an action that took effect.

use super::caches::expectations::{Target, Wanted};
use super::routes::RouteError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read or write was refused or failed in transit.
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// Someone else wrote the object since it was read; the next pass waits for the cache to
    /// show the newer copy (`stale`, when known), then decides again.
    #[error("{action}: the object changed since it was read; reconciling again")]
    Conflict { action: String, stale: Option<Box<(Target, Wanted)>> },
    /// A managed route cannot be patched as it is.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A route or Service that the Rollout names does not exist.
    #[error("{kind} {namespace}/{name} does not exist")]
    Missing { kind: &'static str, namespace: String, name: String },
    /// A ReplicaSet must be scaled whose pod template is unknown: neither the Rollout's current
    /// template nor an existing ReplicaSet holds it.
    #[error("cannot scale revision {revision}: no ReplicaSet and no template for it")]
    UnknownRevision { revision: String },
    /// A Secret that Bellwether reads (Prometheus credentials, Datadog's keys, a webhook URL, the
    /// alert receiver's credentials) is missing or lacks the key.
    #[error("Secret {namespace}/{name}: {reason}")]
    Secret { namespace: String, name: String, reason: String },
    /// Adding or removing the Rollout's finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A deleted Rollout waits for its `workloadRef`'s Deployment to serve again before it lets
    /// go of its finalizer (an error, because a finalizer's cleanup that succeeds is final).
    #[error("deleted: waiting for Deployment {namespace}/{name}: {available} of {replicas} pods available")]
    HandingBack { namespace: String, name: String, available: i32, replicas: i32 },
    /// This replica no longer acts on the object: it lost its lease, or is handing the object's
    /// shard to another replica. The pass stops before its next write.
    #[error("this replica no longer acts on the object; the pass stops before its next write")]
    NotActing,
}

impl Error {
    /// A stable, low-cardinality label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::Conflict { .. } => "conflict",
            Self::Route(_) => "route",
            Self::Missing { .. } => "missing",
            Self::UnknownRevision { .. } => "unknown_revision",
            Self::Secret { .. } => "secret",
            Self::Finalizer(_) => "finalizer",
            Self::HandingBack { .. } => "handing_back",
            Self::NotActing => "not_acting",
        }
    }

    /// Wraps the error of a patch guarded by `test` ops: a failed guard (422 without causes) is a
    /// stale read too, like a 409. A 422 that names fields is the object refused as patched (a
    /// schema or CEL rule), which a new read does not change.
    pub fn guarded(action: impl Into<String>, source: kube::Error) -> Self {
        match &source {
            kube::Error::Api(status)
                if status.code == 422 && status.details.as_ref().is_none_or(|d| d.causes.is_empty()) =>
            {
                Self::Conflict { action: action.into(), stale: None }
            }
            _ => Self::kube(action, source),
        }
    }

    /// Wraps a client error, telling a 409 Conflict apart, since it only means that the pass worked
    /// from a stale read.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        let action = action.into();
        match &source {
            kube::Error::Api(status) if status.code == 409 => Self::Conflict { action, stale: None },
            _ => Self::Kube { action, source: Box::new(source) },
        }
    }
}

impl Error {
    /// Names the object a refused write was guarded by, and what its newer copy must show.
    pub fn refused_for(mut self, target: Target, wanted: Wanted) -> Self {
        if let Self::Conflict { stale, .. } = &mut self {
            *stale = Some(Box::new((target, wanted)));
        }
        self
    }
}

/// Whether a client error is a 404 Not Found.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether a client error is a 409 saying the object already exists.
pub fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}
