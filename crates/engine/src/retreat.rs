//! Leaving a canary: aborts, the Degraded state, retries, and canaries that a newer template
//! replaced.

use super::action::{EventKind, ServiceRole};
use super::pass::Pass;
use bellwether_api::{
    AbortStatus, ActionRecord, HistoryEntry, PauseReason, Progress, RolloutOutcome, ScheduledScaleDown,
    format_duration,
};

/// Finished canaries kept in `status.history`.
const HISTORY_LIMIT: usize = 10;
/// Actions kept in `status.actions`.
const ACTIONS_LIMIT: usize = 20;

impl Pass<'_> {
    /// Aborts the canary. Whatever this pass gathered for the canary is dropped: the first
    /// mutation after an abort must be the move of all traffic to stable, which [`Self::degraded`]
    /// emits.
    pub fn abort(
        &mut self,
        reason: &str,
        message: String,
        metric: Option<(String, Option<String>)>,
        by: &str,
    ) {
        let Some(canary) = self.status.canary_revision.clone() else { return };
        self.actions.clear();
        let (metric, value) = metric.map_or((None, None), |(m, v)| (Some(m), v));
        self.status.abort = Some(AbortStatus {
            reason: reason.into(),
            message: message.clone(),
            metric,
            value,
            at: self.now,
            by: by.into(),
            alert: None,
        });
        self.record_history(&canary, RolloutOutcome::Aborted, Some(message.clone()));
        self.schedule_scale_down(&canary, self.plan.abort_scale_down_delay);
        self.status.pause_conditions.retain(|c| c.reason == PauseReason::SpecPaused);
        self.status.step_analysis_run = None;
        self.status.background_analysis_run = None;
        self.status.progress.promote_full = false;
        self.status.progress.promoting = false;
        self.status.progress.waiting_since = None;
        let record = self.record_action("Aborted", by, format!("{reason}: {message}"));
        let message = format!("canary {canary} aborted ({reason}): {message}");
        self.recorded_event(EventKind::Warning, "RolloutAborted", message, record);
    }

    /// An aborted canary: all traffic on stable, analysis stopped, the canary scaled down after
    /// `abortScaleDownDelaySeconds`. Stays here until a retry or a new template.
    pub fn degraded(&mut self, stable: &str) {
        let traffic_off = self.ensure_weights(0);
        // Before anything else stable may need: with dynamicStableScale, its pods are what lets
        // the rest of the weight move back.
        self.ensure_scale(stable, self.plan.replicas);
        self.ensure_service(ServiceRole::Stable, stable);
        if traffic_off {
            self.ensure_service(ServiceRole::Canary, stable);
        }
        let Some(abort) = self.status.abort.clone() else { return };
        let canary = self.status.canary_revision.clone().unwrap_or_default();
        let action = if abort.by == AbortStatus::AUTOMATIC { "aborted" } else { "aborted by" };
        let by = if abort.by == AbortStatus::AUTOMATIC { String::new() } else { format!(" {}", abort.by) };
        // Said only once every route was read back with the canary at 0: a route the controller
        // cannot write (a refused patch, a deleted route) may still send the canary traffic.
        let traffic = if traffic_off {
            format!("all traffic on stable {stable}")
        } else {
            let lag = self.stable_lag(0).unwrap_or_else(|| self.route_lag());
            format!("moving all traffic to stable {stable}, not done yet: {lag}")
        };
        self.say(format!(
            "canary {canary} {action}{by}: {}; {traffic}; retry or change the template",
            abort.message
        ));
    }

    /// Starts a canary of the template's revision against `stable`.
    pub fn start_canary(&mut self, stable: &str) {
        let revision = self.revision.clone();
        self.status.canary_revision = Some(revision.clone());
        self.status.current_step_index = Some(0);
        self.status.abort = None;
        self.status.step_analysis_run = None;
        self.status.background_analysis_run = None;
        self.status.pause_conditions.retain(|c| c.reason == PauseReason::SpecPaused);
        self.status.progress = Progress {
            canary_started_at: Some(self.now),
            step_started_at: Some(self.now),
            attempt: self.next_attempt(),
            scale_downs: std::mem::take(&mut self.status.progress.scale_downs),
            handled_requests: std::mem::take(&mut self.status.progress.handled_requests),
            ..Progress::default()
        };
        self.status.progress.scale_downs.retain(|s| s.revision != revision);
        let n = self.plan.steps.len();
        let message = format!("canary {revision} started against stable {stable} ({n} steps)");
        let record = self.record_action("CanaryStarted", AbortStatus::AUTOMATIC, message.clone());
        self.recorded_event(EventKind::Normal, "CanaryStarted", message, record);
    }

    /// The first attempt number whose AnalysisRuns do not exist yet. A revision that comes back
    /// after being superseded starts a new canary, and must not inherit the verdicts of the runs
    /// its earlier canary left behind under the same names.
    fn next_attempt(&self) -> i32 {
        let prefix = format!("{}-{}-", self.name, self.revision);
        self.obs
            .analysis_runs
            .iter()
            .filter_map(|run| run.name.strip_prefix(&prefix)?.split('-').next()?.parse::<i32>().ok())
            .map(|attempt| attempt + 1)
            .max()
            .unwrap_or(0)
    }

    /// Starts an aborted canary again from its first step.
    pub fn retry(&mut self, by: &str) {
        let attempt = (self.status.progress.attempt + 1).max(self.next_attempt());
        let revision = self.revision.clone();
        self.status.abort = None;
        self.status.current_step_index = Some(0);
        self.status.pause_conditions.retain(|c| c.reason == PauseReason::SpecPaused);
        self.status.progress.attempt = attempt;
        self.status.progress.canary_started_at = Some(self.now);
        self.status.progress.step_started_at = Some(self.now);
        self.status.progress.waiting_since = None;
        self.status.progress.scale_downs.retain(|s| s.revision != revision);
        self.event(
            EventKind::Normal,
            "Retried",
            format!("canary {revision} retried by {by} (attempt {attempt})"),
        );
    }

    /// Ends a canary that the template no longer asks for, quietly: its traffic goes back to
    /// stable through the path that follows, and it is scaled down after the abort delay.
    pub fn end_canary(&mut self, canary: &str, outcome: RolloutOutcome) {
        self.actions.clear();
        if self.status.abort.is_none() {
            self.record_history(canary, outcome, None);
        }
        self.schedule_scale_down(canary, self.plan.abort_scale_down_delay);
        let (reason, message) = match outcome {
            RolloutOutcome::RolledBack => {
                ("RolledBack", format!("template returned to the stable revision; canary {canary} dropped"))
            }
            _ => ("Superseded", format!("canary {canary} replaced by revision {}", self.revision)),
        };
        let record = self.record_action(reason, AbortStatus::AUTOMATIC, message.clone());
        self.recorded_event(EventKind::Normal, reason, message, record);
        self.status.canary_revision = None;
        self.status.current_step_index = None;
        self.status.abort = None;
        self.status.step_analysis_run = None;
        self.status.background_analysis_run = None;
        self.status.pause_conditions.retain(|c| c.reason == PauseReason::SpecPaused);
        self.status.progress = Progress {
            scale_downs: std::mem::take(&mut self.status.progress.scale_downs),
            handled_requests: std::mem::take(&mut self.status.progress.handled_requests),
            attempt: 0,
            ..Progress::default()
        };
    }

    /// Records what moved the canary, and who asked, in `status.actions`: of the canary in
    /// flight, or with [`Self::record_action_for`], of another revision.
    pub fn record_action(&mut self, action: &str, by: &str, reason: impl Into<String>) -> ActionRecord {
        let revision = self.status.canary_revision.clone();
        self.record_action_for(revision, action, by, reason)
    }

    pub fn record_action_for(
        &mut self,
        revision: Option<String>,
        action: &str,
        by: &str,
        reason: impl Into<String>,
    ) -> ActionRecord {
        let record = ActionRecord {
            action: action.into(),
            by: by.into(),
            at: self.now,
            revision,
            reason: reason.into(),
        };
        self.status.actions.insert(0, record.clone());
        self.status.actions.truncate(ACTIONS_LIMIT);
        record
    }

    pub fn record_history(&mut self, revision: &str, outcome: RolloutOutcome, reason: Option<String>) {
        let started_at = self.status.progress.canary_started_at.unwrap_or(self.now);
        self.status.history.insert(
            0,
            HistoryEntry {
                revision: revision.into(),
                outcome,
                started_at,
                finished_at: self.now,
                duration_seconds: (self.now - started_at).num_seconds(),
                reason,
            },
        );
        self.status.history.truncate(HISTORY_LIMIT);
    }

    pub fn schedule_scale_down(&mut self, revision: &str, delay: chrono::Duration) {
        if !self.status.progress.scale_downs.iter().any(|s| s.revision == revision) {
            self.status
                .progress
                .scale_downs
                .push(ScheduledScaleDown { revision: revision.into(), at: self.now + delay });
        }
    }

    /// Human form of a time span, for messages.
    pub fn elapsed_since(&self, start: chrono::DateTime<chrono::Utc>) -> String {
        format_duration(self.now - start)
    }
}
