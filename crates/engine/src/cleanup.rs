//! Housekeeping after every pass: stop unwanted analysis, delete ended AnalysisRuns beyond
//! `analysisRunHistoryLimit`, scale down old revisions when their delay is over, and delete
//! ReplicaSets beyond `revisionHistoryLimit`.

use super::action::Action;
use super::pass::Pass;
use bellwether_api::AnalysisPhase;

impl Pass<'_> {
    pub fn clean_up(&mut self) {
        self.terminate_unwanted_runs();
        self.trim_runs();
        self.scale_down_old_revisions();
        self.trim_history();
    }

    fn wanted_runs(&self) -> Vec<&str> {
        [&self.status.step_analysis_run, &self.status.background_analysis_run]
            .into_iter()
            .flatten()
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Stops the Rollout's own runs that it no longer waits for; a run someone else labelled for
    /// it is theirs to stop.
    fn terminate_unwanted_runs(&mut self) {
        let wanted = self.wanted_runs();
        let stop: Vec<String> = self
            .obs
            .analysis_runs
            .iter()
            .filter(|run| run.owned && !wanted.contains(&run.name.as_str()))
            .filter(|run| !run.terminating && !run.phase.is_some_and(|p| p.is_terminal()))
            .map(|run| run.name.clone())
            .collect();
        self.actions.extend(stop.into_iter().map(|name| Action::TerminateAnalysisRun { name }));
    }

    /// Deletes the oldest ended runs of each outcome beyond `analysisRunHistoryLimit`. Only runs
    /// this Rollout owns: one that merely carries its label may be someone else's.
    fn trim_runs(&mut self) {
        let wanted = self.wanted_runs();
        let mut ended: Vec<_> = self
            .obs
            .analysis_runs
            .iter()
            .filter(|run| run.owned && !wanted.contains(&run.name.as_str()))
            .filter_map(|run| run.phase.filter(|p| p.is_terminal()).map(|phase| (phase, run)))
            .collect();
        // Newest first; a run without a creation time counts as the oldest.
        ended.sort_by(|(_, a), (_, b)| b.created_at.cmp(&a.created_at).then_with(|| a.name.cmp(&b.name)));
        let limits = self.plan.analysis_run_history_limit;
        let (mut successful, mut unsuccessful) = (0, 0);
        let mut delete = Vec::new();
        for (phase, run) in ended {
            let (kept, limit) = if phase == AnalysisPhase::Successful {
                (&mut successful, limits.successful)
            } else {
                (&mut unsuccessful, limits.unsuccessful)
            };
            if *kept < limit {
                *kept += 1;
            } else {
                delete.push(run.name.clone());
            }
        }
        self.actions.extend(delete.into_iter().map(|name| Action::DeleteAnalysisRun { name }));
    }

    /// The stable revision, or a canary that is not aborted: revisions whose pods are wanted.
    fn is_current(&self, revision: &str) -> bool {
        self.status.stable_revision.as_deref() == Some(revision)
            || (self.status.canary_revision.as_deref() == Some(revision) && self.status.abort.is_none())
    }

    /// Scales down old revisions once their delay is over and no Service selects them any more.
    fn scale_down_old_revisions(&mut self) {
        let orphans: Vec<String> = self
            .obs
            .replica_sets
            .iter()
            .filter(|rs| rs.replicas > 0 && !self.is_current(&rs.revision))
            .map(|rs| rs.revision.clone())
            .collect();
        for orphan in orphans {
            self.schedule_scale_down(&orphan, chrono::Duration::zero());
        }
        let mut scheduled = std::mem::take(&mut self.status.progress.scale_downs);
        scheduled.retain(|entry| {
            if self.is_current(&entry.revision) {
                return false;
            }
            let Some(rs) = self.obs.replica_set(&entry.revision) else { return false };
            if rs.replicas == 0 {
                return false;
            }
            let selected = [&self.obs.services.stable, &self.obs.services.canary]
                .iter()
                .any(|s| s.as_deref() == Some(entry.revision.as_str()));
            if self.now < entry.at {
                self.wakeups.push(entry.at);
            } else if !selected {
                self.actions.push(Action::ScaleReplicaSet { revision: entry.revision.clone(), replicas: 0 });
            }
            true
        });
        self.status.progress.scale_downs = scheduled;
    }

    /// Deletes the oldest scaled-down ReplicaSets beyond `revisionHistoryLimit`.
    fn trim_history(&mut self) {
        let mut idle: Vec<_> = self
            .obs
            .replica_sets
            .iter()
            .filter(|rs| rs.replicas == 0 && rs.available == 0 && !self.is_current(&rs.revision))
            .filter(|rs| !self.status.progress.scale_downs.iter().any(|s| s.revision == rs.revision))
            .collect();
        idle.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.revision.cmp(&b.revision)));
        let delete: Vec<String> =
            idle.iter().skip(self.plan.revision_history_limit).map(|rs| rs.revision.clone()).collect();
        self.actions.extend(delete.into_iter().map(|revision| Action::DeleteReplicaSet { revision }));
    }
}
