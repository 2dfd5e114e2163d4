//! Where Bellwether tells people what happened to a canary: outgoing webhooks, configured per
//! Rollout (`spec.notifications`) and per namespace (the [`NAMESPACE_CONFIGMAP`] ConfigMap).

use super::SecretKeyRef;
use kube_derive::KubeSchema;
use serde::{Deserialize, Serialize};

/// The ConfigMap whose [`NAMESPACE_CONFIGMAP_KEY`] lists, as YAML, the notification targets of
/// every Rollout in its namespace.
pub const NAMESPACE_CONFIGMAP: &str = "bellwether-notifications";
/// The key of [`NAMESPACE_CONFIGMAP`] that holds the targets.
pub const NAMESPACE_CONFIGMAP_KEY: &str = "targets";

/// One webhook and what it is told.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationTarget {
    /// Names the target in logs and metrics.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    #[serde(default)]
    pub format: NotificationFormat,
    /// The Secret key (in the Rollout's namespace) that holds the webhook's URL.
    pub url_secret_ref: SecretKeyRef,
    /// The events sent; every event when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotificationEvent>,
}

/// The body a webhook receives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationFormat {
    /// Bellwether's own JSON document, for scripts and chat bridges.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text`), which Mattermost and others accept too.
    Slack,
}

/// What happened to a canary.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, schemars::JsonSchema,
)]
pub enum NotificationEvent {
    StepCompleted,
    Paused,
    Aborted,
    Promoted,
    AnalysisInconclusive,
    /// A firing alert would have aborted the canary, but the hourly limit of alert-driven aborts
    /// was reached: a person must decide.
    AlertAbortEscalated,
}

impl NotificationEvent {
    /// Every event, in the order people read them.
    pub const ALL: [Self; 6] = [
        Self::StepCompleted,
        Self::Paused,
        Self::Aborted,
        Self::Promoted,
        Self::AnalysisInconclusive,
        Self::AlertAbortEscalated,
    ];

    /// The event that an engine Event with `reason` is, if it is one that is notified.
    pub fn from_reason(reason: &str) -> Option<Self> {
        match reason {
            "StepCompleted" => Some(Self::StepCompleted),
            "Paused" => Some(Self::Paused),
            "RolloutAborted" => Some(Self::Aborted),
            "Promoted" => Some(Self::Promoted),
            "AnalysisInconclusive" => Some(Self::AnalysisInconclusive),
            "AlertAbortEscalated" => Some(Self::AlertAbortEscalated),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StepCompleted => "StepCompleted",
            Self::Paused => "Paused",
            Self::Aborted => "Aborted",
            Self::Promoted => "Promoted",
            Self::AnalysisInconclusive => "AnalysisInconclusive",
            Self::AlertAbortEscalated => "AlertAbortEscalated",
        }
    }
}

impl NotificationTarget {
    /// Whether this target is told about `event`.
    pub fn wants(&self, event: NotificationEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }
}
