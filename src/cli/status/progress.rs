//! What `status --watch` says about a rollout on its way: only what a person acts on, so that a
//! line is written when the rollout moves, not each time the controller rewrites its status (a
//! condition's time, a measurement, the audit trail).

use crate::api::{AnalysisPhase, AnalysisRunRef, Rollout, RolloutPhase, Weights};

/// The parts of a rollout's state that a line of `status --watch` shows; a line is written each
/// time they change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The generation of the spec, and the one the controller has acted on.
    generation: Option<i64>,
    observed: Option<i64>,
    phase: Option<RolloutPhase>,
    step: Option<String>,
    canary: Option<String>,
    weights: Weights,
    step_analysis: Option<(String, Option<AnalysisPhase>)>,
    background_analysis: Option<(String, Option<AnalysisPhase>)>,
    message: String,
}

fn verdict(run: &Option<AnalysisRunRef>) -> Option<(String, Option<AnalysisPhase>)> {
    run.as_ref().map(|run| (run.name.clone(), run.phase))
}

impl Progress {
    pub fn of(rollout: &Rollout) -> Self {
        let status = rollout.status.clone().unwrap_or_default();
        Self {
            generation: rollout.metadata.generation,
            observed: status.observed_generation,
            phase: status.phase,
            step: status.step,
            canary: status.canary_revision,
            weights: status.weights,
            step_analysis: verdict(&status.step_analysis_run),
            background_analysis: verdict(&status.background_analysis_run),
            message: status.message.unwrap_or_default(),
        }
    }

    /// One line: `Progressing, step 2/5, canary 7f8e2a1c at 10% (stable 90%, verified), step
    /// analysis web-7f8e2a1c-2 Running: analysis error-rate running`.
    pub fn describe(&self) -> String {
        if self.observed < self.generation {
            let seen = self.observed.map_or("none".to_string(), |g| g.to_string());
            return format!(
                "waiting for the controller to act on generation {} (it has acted on {seen})",
                self.generation.unwrap_or_default()
            );
        }
        let mut parts = vec![self.phase.map_or("Pending", RolloutPhase::as_str).to_string()];
        if let Some(step) = &self.step {
            parts.push(format!("step {step}"));
        }
        let routes = if self.weights.verified { "verified" } else { "not verified yet" };
        let weights = format!("{}% (stable {}%, {routes})", self.weights.canary, self.weights.stable);
        parts.push(match &self.canary {
            Some(canary) => format!("canary {canary} at {weights}"),
            None => format!("canary {weights}"),
        });
        for (role, run) in [("step", &self.step_analysis), ("background", &self.background_analysis)] {
            if let Some((name, phase)) = run {
                let phase = phase.map_or("Pending".to_string(), |p| format!("{p:?}"));
                parts.push(format!("{role} analysis {name} {phase}"));
            }
        }
        let mut line = parts.join(", ");
        if !self.message.is_empty() {
            line = format!("{line}: {}", self.message);
        }
        line
    }
}
