//! What a webhook receives: the notice of one engine Event, and its two bodies. Pure functions of
//! the notice, so that the shapes are tested without a server.
//!
//! The JSON document (version [`JSON_VERSION`]) always has every key; what does not apply is
//! `null`:
//!
//! ```json
//! {
//!   "version": 1,
//!   "event": "Aborted",
//!   "reason": "RolloutAborted",
//!   "message": "error-rate 0.021 is above its limit 0.01",
//!   "rollout": {"namespace": "shop", "name": "web"},
//!   "revisions": {"canary": "6d5f7c9b8", "stable": "5b7d9f6c4"},
//!   "phase": "Degraded",
//!   "step": "2/4",
//!   "weights": {"canary": 0, "stable": 100},
//!   "abort": {
//!     "reason": "AnalysisFailed",
//!     "message": "error-rate 0.021 is above its limit 0.01",
//!     "by": "bellwether",
//!     "alert": null
//!   },
//!   "action": {
//!     "action": "Aborted",
//!     "by": "bellwether",
//!     "at": "2026-01-01T12:00:00Z",
//!     "revision": "6d5f7c9b8",
//!     "reason": "AnalysisFailed: error-rate 0.021 is above its limit 0.01"
//!   },
//!   "time": "2026-01-01T12:00:00Z"
//! }
//! ```
//!
//! `action` is the record the Rollout keeps in `status.actions` for what the notice tells of (who
//! asked, for a person's or an alert's action), or `null`.
//! `abort.alert`, for an alert-driven abort, is `{"name", "labels", "generatorURL"}`. New keys may
//! be added within a version; a key is removed or changes meaning only with a new version.

use crate::api::{
    AbortStatus, ActionRecord, FiringAlert, NotificationEvent, Rollout, RolloutPhase, RolloutStatus,
};
use crate::engine;
use chrono::{DateTime, SecondsFormat, Utc};
use kube::ResourceExt;
use serde_json::{Value, json};

/// The version of the JSON document's shape.
pub const JSON_VERSION: u32 = 1;

/// One thing that happened to a Rollout, with the state it left the Rollout in.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub event: NotificationEvent,
    /// The engine Event's reason, finer than `event` (for example `RolloutAborted`).
    pub reason: String,
    pub message: String,
    pub namespace: String,
    pub rollout: String,
    pub canary_revision: Option<String>,
    pub stable_revision: Option<String>,
    pub phase: Option<RolloutPhase>,
    /// `i/N`, 1-based.
    pub step: Option<String>,
    pub canary_weight: i32,
    pub stable_weight: i32,
    pub abort: Option<AbortStatus>,
    /// The action the Event tells of, as `status.actions` records it.
    pub action: Option<ActionRecord>,
    pub at: DateTime<Utc>,
}

impl Notice {
    /// The notice of `event`, which the decision that left `rollout` with `status` emitted at
    /// `at`; `None` when the Event is not one that people are notified of.
    pub fn of(
        event: &engine::Event,
        rollout: &Rollout,
        status: &RolloutStatus,
        at: DateTime<Utc>,
    ) -> Option<Self> {
        Some(Self {
            event: NotificationEvent::from_reason(&event.reason)?,
            reason: event.reason.clone(),
            message: event.message.clone(),
            namespace: rollout.namespace().unwrap_or_default(),
            rollout: rollout.name_any(),
            canary_revision: status.canary_revision.clone(),
            stable_revision: status.stable_revision.clone(),
            phase: status.phase,
            step: status.step.clone(),
            canary_weight: status.weights.canary,
            stable_weight: status.weights.stable,
            abort: status.abort.clone(),
            action: event.record.clone(),
            at,
        })
    }
}

/// Bellwether's own JSON document (see the module's documentation).
pub fn json_body(notice: &Notice) -> Value {
    json!({
        "version": JSON_VERSION,
        "event": notice.event.as_str(),
        "reason": notice.reason,
        "message": notice.message,
        "rollout": {"namespace": notice.namespace, "name": notice.rollout},
        "revisions": {"canary": notice.canary_revision, "stable": notice.stable_revision},
        "phase": notice.phase,
        "step": notice.step,
        "weights": {"canary": notice.canary_weight, "stable": notice.stable_weight},
        "abort": notice.abort.as_ref().map(|abort| json!({
            "reason": abort.reason,
            "message": abort.message,
            "by": abort.by,
            "alert": abort.alert.as_ref().map(alert_json),
        })),
        "action": notice.action,
        "time": notice.at.to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

fn alert_json(alert: &FiringAlert) -> Value {
    json!({"name": alert.name, "labels": alert.labels, "generatorURL": alert.generator_url})
}

/// A Slack incoming-webhook message: a headline, then one line per detail.
pub fn slack_body(notice: &Notice) -> Value {
    let mut lines = vec![format!(
        "*{}/{}*: {} — {}",
        escape(&notice.namespace),
        escape(&notice.rollout),
        headline(notice.event),
        escape(&notice.message)
    )];
    let revision = |r: &Option<String>| r.as_deref().map_or_else(|| "none".to_string(), escape);
    let mut state = format!(
        "Canary {} (stable {}), {}% of traffic",
        revision(&notice.canary_revision),
        revision(&notice.stable_revision),
        notice.canary_weight
    );
    if let Some(step) = &notice.step {
        state.push_str(&format!(", step {}", escape(step)));
    }
    if let Some(phase) = notice.phase {
        state.push_str(&format!(", {}", phase.as_str()));
    }
    lines.push(state);
    if let Some(abort) = &notice.abort {
        lines.push(format!(
            "Aborted by {}: {} — {}",
            escape(&abort.by),
            escape(&abort.reason),
            escape(&abort.message)
        ));
        if let Some(alert) = &abort.alert {
            lines.push(match alert.generator_url.as_str() {
                "" => format!("Alert {}", escape(&alert.name)),
                url => format!("Alert <{}|{}>", escape(url), escape(&alert.name)),
            });
        }
    }
    if let Some(action) = notice.action.as_ref().filter(|a| a.by != AbortStatus::AUTOMATIC) {
        lines.push(format!("Asked by {}: {}", escape(&action.by), escape(&action.action)));
    }
    lines.push(format!("At {}", notice.at.to_rfc3339_opts(SecondsFormat::Secs, true)));
    json!({"text": lines.join("\n")})
}

/// What happened, as the headline says it.
fn headline(event: NotificationEvent) -> &'static str {
    match event {
        NotificationEvent::StepCompleted => "step completed",
        NotificationEvent::Paused => "paused",
        NotificationEvent::Aborted => "aborted",
        NotificationEvent::Promoted => "promoted",
        NotificationEvent::AnalysisInconclusive => "analysis inconclusive",
        NotificationEvent::AlertAbortEscalated => "alert-driven abort escalated, a person must decide",
    }
}

/// Slack reads `&`, `<` and `>` as markup (links, mentions), so text from objects is escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
