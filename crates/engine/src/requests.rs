//! User actions: promote, promote --full, abort, retry, pause and resume.
//!
//! Requests arrive through the Rollout's metadata, never its spec, so they cause no GitOps drift.
//! Each carries a unique ID that status records once handled, which makes a request act once no
//! matter how often it is seen. A request names the canary revision (and, for promote, the step)
//! its sender saw; if the rollout has moved on since, the request is stale and is ignored rather
//! than applied to something the sender never looked at.

use super::action::EventKind;
use super::canary::Slot;
use super::observation::{UserAction, UserRequest};
use super::pass::Pass;
use bellwether_api::{PauseReason, RolloutStatus};

/// Request IDs remembered in status.
const HANDLED_LIMIT: usize = 32;

/// Whether `action` makes sense for a rollout in `status` at all, whatever the request: the
/// controller checks it before acting, and the plugin before it writes a request.
pub fn applicable(action: UserAction, status: &RolloutStatus) -> Result<(), String> {
    let Some(canary) = &status.canary_revision else {
        return Err("no canary is in progress".into());
    };
    match (action, status.abort.is_some()) {
        (UserAction::Retry, false) => Err(format!("canary {canary} was not aborted")),
        (UserAction::Retry, true) | (_, false) => Ok(()),
        (_, true) => Err(format!("canary {canary} is aborted; retry it first")),
    }
}

impl Pass<'_> {
    pub fn handle_requests(&mut self) {
        let handled = &self.status.progress.handled_requests;
        let fresh: Vec<UserRequest> =
            self.obs.requests.iter().filter(|r| !handled.contains(&r.id)).cloned().collect();
        for request in fresh {
            let progress = &mut self.status.progress;
            progress.handled_requests.push(request.id.clone());
            let excess = progress.handled_requests.len().saturating_sub(HANDLED_LIMIT);
            progress.handled_requests.drain(..excess);
            if let Some(alert) = request.alert.as_ref().filter(|_| request.action == UserAction::Abort) {
                self.handle_alert(&request, alert);
                continue;
            }
            let revision = self.status.canary_revision.clone();
            let (kind, text) = match self.apply(&request) {
                Ok(done) => (EventKind::Normal, done),
                Err(why) => (EventKind::Warning, format!("ignored: {why}")),
            };
            let verb = request.action.verb();
            // Recorded against the canary the request was for, though it may have ended it.
            let record = self.record_action_for(revision, verb, &request.by, text.clone());
            let message = format!("{verb} requested by {}: {text}", request.by);
            self.recorded_event(kind, "UserRequest", message, record);
        }
    }

    /// Applies one request; `Err` says why it does not apply.
    fn apply(&mut self, request: &UserRequest) -> Result<String, String> {
        let Some(canary) = self.status.canary_revision.clone() else {
            return Err("no canary is in progress".into());
        };
        if let Some(wanted) = request.revision.as_deref().filter(|r| *r != canary) {
            return Err(format!("it was for revision {wanted}, but the canary is now {canary}"));
        }
        applicable(request.action, &self.status)?;
        match request.action {
            UserAction::Retry => {
                if canary != self.revision {
                    return Err(format!(
                        "the template moved on from {canary}; the new revision starts on its own"
                    ));
                }
                self.retry(&request.by);
                Ok(format!("canary {canary} starts again from step 1"))
            }
            UserAction::Abort => {
                self.abort("UserAbort", format!("aborted by {}", request.by), None, &request.by);
                Ok("all traffic goes back to stable".into())
            }
            UserAction::Pause => {
                if self.has_pause(PauseReason::UserPause) {
                    return Err("already paused".into());
                }
                self.status.pause_conditions.push(bellwether_api::PauseCondition {
                    reason: PauseReason::UserPause,
                    started_at: self.now,
                });
                Ok(format!("holding at {}", self.step_label()))
            }
            UserAction::Resume => self.resume(),
            UserAction::Promote => {
                if let Some(step) = request.step.filter(|s| *s as usize != self.current_step()) {
                    return Err(format!(
                        "it was for step {}, but the canary is at {}",
                        step + 1,
                        self.step_label()
                    ));
                }
                self.lift_user_pause();
                if self.slot_went_wrong(Slot::Background) {
                    self.rerun(Slot::Background);
                    return Ok("background analysis result accepted; it starts over".into());
                }
                if self.status.progress.promoting || self.current_step() >= self.plan.steps.len() {
                    return Err("the canary is already being promoted".into());
                }
                let label = self.step_label();
                self.advance(&format!("skipped by {}", request.by));
                Ok(format!("{label} skipped"))
            }
            UserAction::PromoteFull => {
                self.lift_user_pause();
                self.status.progress.promote_full = true;
                Ok("skipping every remaining step and analysis".into())
            }
        }
    }

    /// Lifts a user pause; the clock of a timed pause step does not run while paused.
    fn lift_user_pause(&mut self) {
        let Some(pause) = self.status.pause_conditions.iter().find(|c| c.reason == PauseReason::UserPause)
        else {
            return;
        };
        let held_for = self.now - pause.started_at;
        if let Some(started) = self.status.progress.step_started_at.as_mut() {
            *started += held_for;
        }
        self.lift_pause(PauseReason::UserPause);
    }

    fn resume(&mut self) -> Result<String, String> {
        if self.has_pause(PauseReason::UserPause) {
            self.lift_user_pause();
            return Ok(format!("continuing from {}", self.step_label()));
        }
        for (slot, what) in [(Slot::Background, "background analysis"), (Slot::Step, "step analysis")] {
            if self.slot_went_wrong(slot) {
                self.rerun(slot);
                return Ok(format!("{what} runs again"));
            }
        }
        Err("nothing is paused by a user or waiting on a failed or inconclusive analysis".into())
    }
}
