//! The report phase: the Events the engine wrote for people, the notifications sent for some of
//! them, and the metrics for dashboards and alerts. It runs only after the new status is stored,
//! so that a pass that stopped at a conflict reports nothing and the retried pass reports once.

use super::Context;
use crate::api::{Rollout, RolloutOutcome, RolloutPhase, RolloutStatus};
use crate::controller::error::Error;
use crate::controller::notify::Notice;
use crate::controller::requests::Malformed;
use crate::engine::{Decision, EventKind};
use chrono::Utc;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

/// The longest `action` an Event may have.
const MAX_ACTION: usize = 128;

pub async fn report(ctx: &Context, rollout: &Rollout, before: &RolloutStatus, decision: &Decision) {
    let reference = rollout.object_ref(&());
    for event in &decision.events {
        let published = ctx
            .recorder
            .publish(
                &Event {
                    type_: match event.kind {
                        EventKind::Normal => EventType::Normal,
                        EventKind::Warning => EventType::Warning,
                    },
                    reason: event.reason.clone(),
                    note: Some(event.message.clone()),
                    // The Recorder folds Events with the same reason and action into one series
                    // and keeps the first note, so an action of the message itself keeps distinct
                    // Events (step 2 completed, step 3 completed) apart and folds only repeats.
                    action: event.message.chars().take(MAX_ACTION).collect(),
                    secondary: None,
                },
                &reference,
            )
            .await;
        // An Event is for people; failing to record one must not hold up the rollout.
        if let Err(error) = published {
            tracing::warn!(rollout = %rollout.name_any(), reason = %event.reason, %error, "cannot record an Event");
        }
        if let Some(notice) = Notice::of(event, rollout, &decision.status, Utc::now()) {
            ctx.notifier.notify(notice, rollout.spec.notifications.clone());
        }
    }
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let after = &decision.status;
    ctx.metrics.rollout_phase(&namespace, &name, after.phase.unwrap_or(RolloutPhase::Healthy));
    ctx.metrics.canary_weight(&namespace, &name, after.weights.canary);
    if after.abort.is_some() && before.abort != after.abort {
        let reason = after.abort.as_ref().map_or("", |a| a.reason.as_str());
        ctx.metrics.abort(&namespace, &name, reason);
    }
    // The history's newest entry is a canary that finished in this decision.
    if let Some(finished) = after.history.first().filter(|entry| before.history.first() != Some(*entry)) {
        if finished.outcome == RolloutOutcome::Promoted {
            ctx.metrics.promotion(&namespace, &name);
        }
        if matches!(finished.outcome, RolloutOutcome::Promoted | RolloutOutcome::Aborted) {
            let duration = (finished.finished_at - finished.started_at).to_std().unwrap_or_default();
            ctx.metrics.canary_finished(outcome_label(finished.outcome), duration);
        }
    }
}

/// A Warning Event for each request annotation that cannot be read; the annotation is removed
/// after, so each is reported once.
pub async fn malformed_requests(ctx: &Context, rollout: &Rollout, malformed: &[Malformed]) {
    for request in malformed {
        let note = format!("request annotation {} ignored: {}", request.key, request.reason);
        warn(ctx, rollout, "InvalidRequest", note).await;
    }
}

/// A Warning Event for a pass that failed on something a person can act on: a write the API server
/// refused, a route that cannot carry a step, an object that is missing. Repeats of it join one
/// Event's series. Stale reads, and waits that are not failures, are not reported.
pub async fn failed(ctx: &Context, rollout: &Rollout, error: &Error) {
    if !matches!(error, Error::Kube { .. } | Error::Route(_) | Error::Missing { .. } | Error::Secret { .. }) {
        return;
    }
    warn(ctx, rollout, "ActionFailed", error.to_string()).await;
}

/// Records a Warning Event of `reason` on `rollout`; repeats join one Event's series.
async fn warn(ctx: &Context, rollout: &Rollout, reason: &str, note: String) {
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        action: note.chars().take(MAX_ACTION).collect(),
        note: Some(note),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &rollout.object_ref(&())).await {
        tracing::warn!(rollout = %rollout.name_any(), %error, "cannot record an Event");
    }
}

/// The Rollout is going away: its series go with it.
pub fn deleted(ctx: &Context, rollout: &Rollout) {
    ctx.metrics.forget_rollout(&rollout.namespace().unwrap_or_default(), &rollout.name_any());
}

fn outcome_label(outcome: RolloutOutcome) -> &'static str {
    match outcome {
        RolloutOutcome::Promoted => "promoted",
        RolloutOutcome::Aborted => "aborted",
        RolloutOutcome::Superseded => "superseded",
        RolloutOutcome::RolledBack => "rolled_back",
    }
}
