//! A canary in flight: background analysis, the steps, and promotion.

use super::action::{Action, AnalysisRunRequest, EventKind, ServiceRole};
use super::analysis::run::spec_hash;
use super::observation::AnalysisRunState;
use super::pass::Pass;
use super::plan::{Step, StepExposure};
use super::replicas::canary_replicas;
use bellwether_api::{
    AbortStatus, AnalysisArg, AnalysisFailurePolicy, AnalysisPhase, AnalysisRunRef, AnalysisRunSpec,
    Duration, InconclusivePolicy, PauseReason, Progress, RolloutOutcome, RunContext, TemplateRef,
    format_duration, format_time,
};

/// The share of traffic the canary's pods must serve: its weight, plus the percent mirrored to it,
/// since a mirror copies the requests of the managed rules whichever backend serves them. Header
/// routes need no more than the one pod every canary has.
fn load(weight: i32, mirror: Option<i32>) -> i32 {
    (weight + mirror.unwrap_or(0)).min(100)
}

/// Where an AnalysisRun stands, as far as the rollout is concerned.
enum Verdict {
    Running,
    Passed,
    Failed(AnalysisRunState),
    Inconclusive(AnalysisRunState),
}

/// Which analysis a run is for: a step (its index and the step's `duration` and `timeout`), or
/// background analysis.
enum AnalysisKind {
    Step { index: usize, duration: Option<Duration>, timeout: Option<Duration> },
    Background,
}

/// `run` as far as the Rollout can believe it: an Error when its spec is not the one the Rollout
/// created it with (`recorded`), or when someone else terminated it before it decided. The
/// Rollout never terminates a run it still waits for.
fn trusted(mut run: AnalysisRunState, recorded: Option<&str>) -> AnalysisRunState {
    let why = match recorded {
        None => Some(format!(
            "AnalysisRun {} exists, but this Rollout recorded no spec for it: it was not created by this \
             Rollout (or by an older Bellwether, which recorded none); retry to run the analysis again",
            run.name
        )),
        Some(hash) if hash != run.spec_hash => Some(format!(
            "AnalysisRun {}'s spec was changed after Bellwether created it (spec hash {} is not the {hash} \
             recorded); its measurements are not of the metrics the templates define",
            run.name, run.spec_hash
        )),
        _ if run.terminating
            && !matches!(run.phase, Some(AnalysisPhase::Failed | AnalysisPhase::Error))
            && run.distrust.is_none() =>
        {
            Some(format!(
                "AnalysisRun {} was terminated by someone else before it reached a verdict",
                run.name
            ))
        }
        _ => None,
    };
    if let Some(why) = why {
        run.phase = Some(AnalysisPhase::Error);
        run.message = Some(why.clone());
        run.distrust = Some(why);
    }
    run
}

/// Which of the rollout's two analysis slots a run fills.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Step,
    Background,
}

impl Pass<'_> {
    /// Takes the canary as far as it can go in this pass, then sizes stable for the traffic it
    /// carries or is about to carry, following `spec.replicas` at every step, paused or not.
    pub fn progress(&mut self, stable: &str) {
        self.take_steps(stable);
        // Once a promotion points the stable Service at the canary, the old stable serves nothing
        // and waits for its scale-down.
        let serves = self.obs.services.stable.as_deref().is_none_or(|s| s == stable);
        if self.status.abort.is_none() && self.status.canary_revision.is_some() && serves {
            let replicas = self.stable_replicas();
            self.ensure_scale(stable, replicas);
        }
    }

    fn take_steps(&mut self, stable: &str) {
        let n = self.plan.steps.len();
        let finishing =
            self.status.progress.promoting || self.status.progress.promote_full || self.current_step() >= n;
        let mut held = false;
        if !finishing {
            held = self.watch_background();
            if self.status.abort.is_some() {
                return;
            }
        }
        if self.spec.paused {
            self.hold_pause(PauseReason::SpecPaused, "paused: spec.paused is set");
            held = true;
        }
        if let Some(pause) = self.status.pause_conditions.iter().find(|c| c.reason == PauseReason::UserPause)
        {
            let since = format_time(pause.started_at);
            self.say(format!("{}: paused by a user since {since}; resume to continue", self.step_label()));
            held = true;
        }
        if held {
            self.hold_paused_traffic();
            return;
        }
        if finishing {
            return self.promote(stable);
        }
        self.ensure_service(ServiceRole::Stable, stable);
        if !self.point_canary_service() {
            return;
        }
        self.run_steps();
        if self.status.abort.is_none() && self.current_step() >= n {
            return self.promote(stable);
        }
        // The steps may have reached `startingStep`: background analysis starts in this pass.
        if self.status.abort.is_none() && self.status.background_analysis_run.is_none() {
            self.watch_background();
        }
    }

    pub fn current_step(&self) -> usize {
        self.status.current_step_index.unwrap_or(0).max(0) as usize
    }

    /// Points the canary Service at the new revision, but only once no route can send traffic to
    /// it: a superseded canary may still hold weight, and its replacement has no pods yet.
    fn point_canary_service(&mut self) -> bool {
        let revision = self.revision.clone();
        if self.obs.services.canary.as_deref() == Some(revision.as_str()) {
            return true;
        }
        if self.obs.canary_traffic_possible() {
            self.ensure_weights(0);
            let lag = self.route_lag();
            let service = self.spec.strategy.canary.canary_service.clone();
            self.wait_for_progress(format!(
                "moving traffic off the canary Service {service} before it selects revision {revision}: {lag}"
            ));
            return false;
        }
        self.ensure_service(ServiceRole::Canary, &revision);
        true
    }

    fn run_steps(&mut self) {
        loop {
            let i = self.current_step();
            if i >= self.plan.steps.len() || self.status.progress.promote_full {
                return;
            }
            let plan = self.plan;
            let passed = match &plan.steps[i] {
                Step::SetWeight(_) | Step::SetHeaderRoute { .. } | Step::SetMirrorRoute { .. } => {
                    self.expose(i)
                }
                Step::Pause(Some(duration)) => {
                    let duration = *duration;
                    let started = self.status.progress.step_started_at.unwrap_or(self.now);
                    let end = started + duration;
                    if self.now < end {
                        let held = self.hold_traffic(i);
                        self.wake_at(end);
                        let but = if held { String::new() } else { format!(", but {}", self.traffic_lag()) };
                        // The end, not the time left: a status that changed with the clock alone
                        // would be written again at every pass.
                        self.say(format!(
                            "{}: pausing for {} until {}{but}",
                            self.step_label(),
                            format_duration(duration),
                            format_time(end)
                        ));
                        false
                    } else if !self.hold_traffic(i) {
                        // A pause bakes the canary at its weight; time without that weight on
                        // every route (one deleted or edited, or the canary's pods gone) did not
                        // bake it, so the pause ends only once the traffic is back.
                        let why = self.traffic_lag();
                        self.wait_for_progress(format!("{}: pause over, but {why}", self.step_label()));
                        false
                    } else {
                        true
                    }
                }
                Step::Pause(None) => {
                    self.hold_traffic(i);
                    let message = format!("{}: paused until promoted", self.step_label());
                    self.hold_pause(PauseReason::PauseStep, &message);
                    false
                }
                Step::Analysis(step) => {
                    let kind = AnalysisKind::Step {
                        index: i,
                        duration: step.duration.clone(),
                        timeout: step.timeout.clone(),
                    };
                    let what = format!("{}: analysis", self.step_label());
                    let passed = self.judge(Slot::Step, kind, &step.templates, &step.args, &what);
                    if !passed && self.status.abort.is_none() {
                        self.hold_traffic(i);
                    }
                    passed
                }
            };
            if !passed || self.status.abort.is_some() {
                return;
            }
            self.advance("completed");
        }
    }

    /// Moves to the next step.
    pub fn advance(&mut self, how: &str) {
        let label = self.step_label();
        let kind = match self.plan.steps.get(self.current_step()) {
            Some(Step::SetWeight(w)) => format!("setWeight {w}"),
            Some(Step::Pause(Some(d))) => format!("pause {}", format_duration(*d)),
            Some(Step::Pause(None)) => "pause".into(),
            Some(Step::Analysis(_)) => "analysis".into(),
            Some(Step::SetHeaderRoute { name, adds: true }) => format!("setHeaderRoute {name}"),
            Some(Step::SetHeaderRoute { name, adds: false }) => format!("setHeaderRoute {name}, removed"),
            Some(Step::SetMirrorRoute { name, percent: Some(p) }) => format!("setMirrorRoute {name} {p}%"),
            Some(Step::SetMirrorRoute { name, percent: None }) => format!("setMirrorRoute {name}, removed"),
            None => "promotion".into(),
        };
        let message = format!("{label} ({kind}) {how}");
        let record = self.record_action("StepCompleted", AbortStatus::AUTOMATIC, message.clone());
        self.recorded_event(EventKind::Normal, "StepCompleted", message, record);
        self.status.current_step_index = Some(self.current_step() as i32 + 1);
        self.status.progress.step_started_at = Some(self.now);
        self.status.progress.waiting_since = None;
        self.status.step_analysis_run = None;
    }

    /// `setWeight`, `setHeaderRoute` and `setMirrorRoute` at step `index`: scale the canary for the
    /// traffic in force there, wait for its pods, then move the weight, header routes and mirror,
    /// and verify them.
    fn expose(&mut self, index: usize) -> bool {
        let revision = self.revision.clone();
        let label = self.step_label();
        let weight = self.spec.strategy.canary.weight_at(index);
        let exposed = self.plan.exposure_at(index).clone();
        let replicas = self.plan.replicas;
        let needed = canary_replicas(replicas, load(weight, exposed.exposure.mirror));
        // Going down in weight, keep the pods for the traffic the routes still carry.
        let carried = self.carried_load();
        self.ensure_scale(
            &revision,
            needed.max(canary_replicas(replicas, carried.max(weight))).min(replicas),
        );
        let available = self.obs.available(&revision);
        if available < needed {
            self.wait_for_progress(format!(
                "{label}: waiting for {needed} canary pods to become available ({available} available)"
            ));
            return false;
        }
        if self.obs.services.canary.as_deref() != Some(revision.as_str()) {
            let service = self.spec.strategy.canary.canary_service.clone();
            self.wait_for_progress(format!(
                "{label}: waiting for Service {service} to select revision {revision}"
            ));
            return false;
        }
        if !self.ensure_traffic(weight, &exposed) {
            let lag = self.stable_lag(weight).unwrap_or_else(|| self.route_lag());
            let what = match exposed.exposure.is_empty() {
                true => String::new(),
                false => format!(" and {}", exposed.exposure.describe()),
            };
            self.wait_for_progress(format!(
                "{label}: waiting for routes to carry canary weight {weight}{what}: {lag}"
            ));
            return false;
        }
        true
    }

    /// Keeps the canary's pods and traffic as the steps up to `index` left them, at the pause or
    /// analysis step where the rollout waits (a step passed within this decision holds nothing).
    /// Returns whether every route carries that traffic, to pods that can serve it.
    fn hold_traffic(&mut self, index: usize) -> bool {
        let revision = self.revision.clone();
        let weight = self.spec.strategy.canary.weight_at(index);
        let exposed = self.plan.exposure_at(index).clone();
        self.ensure_scale(
            &revision,
            canary_replicas(self.plan.replicas, load(weight, exposed.exposure.mirror)),
        );
        let servable = self.obs.available(&revision) > 0
            && self.obs.services.canary.as_deref() == Some(revision.as_str());
        if !servable {
            // Its pods are gone (a crash loop, an eviction): nothing goes to them meanwhile, and a
            // step with a deadline waits for them no longer than it allows.
            let off = self.ensure_weights(0);
            return off && weight == 0 && exposed.exposure.is_empty();
        }
        self.ensure_traffic(weight, &exposed)
    }

    /// A paused canary keeps the traffic it was paused at: a route edited by hand goes back to it.
    /// Traffic is put back on the canary only while it has pods that can serve it; otherwise all
    /// of it goes to stable, which is always safe.
    fn hold_paused_traffic(&mut self) {
        // A promotion in flight has sized the canary for all traffic and may have pointed the
        // stable Service at it: a pause holds it where it is.
        if self.status.progress.promoting {
            return;
        }
        let index = self.current_step();
        let step_weight = self.spec.strategy.canary.weight_at(index);
        // Never more than the step allows: a promote while paused moves on to a step whose weight
        // may be lower than the one held, and the traffic follows it down at once, which is
        // always safe; a higher step's weight waits for the pause to end.
        let weight = self.status.weights.canary.min(step_weight);
        let exposed = self.plan.exposure_at(index).clone();
        let revision = self.revision.clone();
        if let Some(current) = self.obs.replica_set(&revision).map(|rs| rs.replicas) {
            // Sized for the step, as it was before the pause: the traffic held may drop to none
            // within this pass, and the pods must not follow it down and up again. Going down to
            // a lower step, the pods there stay until the routes carry less; a hand edit that
            // asks for more is put back, not scaled for.
            let replicas = self.plan.replicas;
            let step = canary_replicas(replicas, load(step_weight, exposed.exposure.mirror));
            let carried = canary_replicas(replicas, self.carried_load()).min(current);
            self.ensure_scale(&revision, step.max(carried));
        }
        let servable = self.obs.available(&revision) > 0
            && self.obs.services.canary.as_deref() == Some(revision.as_str());
        let held = if servable { self.exposure_in_force() } else { StepExposure::default() };
        self.ensure_traffic(if servable { weight } else { 0 }, &held);
    }

    /// The most any route asks of the canary's pods now: its weight plus the percent it mirrors.
    fn carried_load(&self) -> i32 {
        self.obs
            .routes
            .iter()
            .filter_map(|r| r.weights.map(|w| load(w.canary, r.exposure.as_ref().and_then(|e| e.mirror))))
            .max()
            .unwrap_or(0)
    }

    /// Why the canary's traffic is not where the step holds it, for messages.
    fn traffic_lag(&self) -> String {
        if self.obs.available(&self.revision) == 0 {
            format!("canary revision {} has no available pods", self.revision)
        } else {
            format!("the routes do not carry its weight: {}", self.route_lag())
        }
    }

    /// Background analysis from `startingStep`; returns whether it holds the rollout.
    fn watch_background(&mut self) -> bool {
        let plan = self.plan;
        let Some(background) = &plan.background else { return false };
        if self.current_step() < background.starting_step {
            return false;
        }
        !self.judge(
            Slot::Background,
            AnalysisKind::Background,
            &background.templates,
            &background.args,
            "background analysis",
        )
    }

    /// Runs one analysis slot and applies the failure policies. Returns whether it passed.
    fn judge(
        &mut self,
        slot: Slot,
        kind: AnalysisKind,
        templates: &[TemplateRef],
        args: &[AnalysisArg],
        what: &str,
    ) -> bool {
        let name = self.run_ref(slot).map(|r| r.name.clone()).unwrap_or_else(|| self.run_name(&kind, 0));
        let recorded_hash = self.run_ref(slot).and_then(|r| r.spec_hash.clone());
        let observed =
            self.obs.analysis_run(&name).cloned().map(|run| trusted(run, recorded_hash.as_deref()));
        let previous = self.run_ref(slot).and_then(|r| r.phase);
        let wanted = match &observed {
            Some(_) => None,
            None => self.run_spec(&kind, templates, args),
        };
        let current = AnalysisRunRef {
            name: name.clone(),
            // The hash of the spec this pass creates the run with; once the run exists, the one it
            // was created with.
            spec_hash: wanted.as_ref().map(spec_hash).or(recorded_hash),
            phase: observed.as_ref().and_then(|r| r.phase),
            message: observed.as_ref().and_then(|r| r.message.clone()),
        };
        if current.phase != previous && current.phase.is_some_and(AnalysisPhase::is_terminal) {
            let phase = current.phase.map(|p| format!("{p:?}")).unwrap_or_default();
            let detail = current.message.clone().unwrap_or_default();
            let distrusted = observed.as_ref().is_some_and(|r| r.distrust.is_some());
            let (kind, reason) = match current.phase {
                _ if distrusted => (EventKind::Warning, "AnalysisRunDistrusted"),
                Some(AnalysisPhase::Successful) => (EventKind::Normal, "AnalysisCompleted"),
                // Its own reason: an inconclusive analysis waits for a person, who is notified.
                Some(AnalysisPhase::Inconclusive) => (EventKind::Warning, "AnalysisInconclusive"),
                _ => (EventKind::Warning, "AnalysisCompleted"),
            };
            self.event(kind, reason, format!("{what} {name}: {phase}: {detail}"));
        }
        *self.run_ref_mut(slot) = Some(current);
        let Some(run) = observed else {
            if let Some(spec) = wanted {
                self.actions.push(Action::CreateAnalysisRun(Box::new(AnalysisRunRequest {
                    name: name.clone(),
                    spec,
                })));
            }
            if slot == Slot::Step {
                // A run that cannot be created holds the step no longer than any other wait.
                self.wait_for_progress(format!("{what}: starting {name}"));
            }
            return slot == Slot::Background;
        };
        let verdict = match run.phase {
            None | Some(AnalysisPhase::Pending | AnalysisPhase::Running) => Verdict::Running,
            Some(AnalysisPhase::Successful) => Verdict::Passed,
            Some(AnalysisPhase::Failed | AnalysisPhase::Error) => Verdict::Failed(run),
            Some(AnalysisPhase::Inconclusive) => Verdict::Inconclusive(run),
        };
        match verdict {
            Verdict::Running => {
                if slot == Slot::Step {
                    let detail = self.run_ref(slot).and_then(|r| r.message.clone());
                    self.say(format!(
                        "{what} {name} running{}",
                        detail.map(|d| format!(": {d}")).unwrap_or_default()
                    ));
                }
                slot == Slot::Background
            }
            Verdict::Passed => true,
            Verdict::Failed(run) => {
                self.went_wrong(what, &run, true);
                false
            }
            Verdict::Inconclusive(run) => {
                self.went_wrong(what, &run, false);
                false
            }
        }
    }

    fn went_wrong(&mut self, what: &str, run: &AnalysisRunState, failed: bool) {
        let canary = &self.spec.strategy.canary;
        let abort = if failed {
            canary.on_analysis_failure == AnalysisFailurePolicy::Abort
        } else {
            canary.on_inconclusive == InconclusivePolicy::Abort
        };
        let verb = if failed { "failed" } else { "was inconclusive" };
        let detail = run.message.clone().unwrap_or_else(|| "no reason given".into());
        let message = format!("{what} {} {verb}: {detail}", run.name);
        if abort {
            let reason = if failed { "AnalysisFailed" } else { "AnalysisInconclusive" };
            let metric = run.failed_metric.clone().map(|m| (m, run.failed_value.clone()));
            self.abort(reason, message, metric, AbortStatus::AUTOMATIC);
        } else {
            let reason = if failed { PauseReason::AnalysisFailed } else { PauseReason::InconclusiveAnalysis };
            self.hold_pause(
                reason,
                &format!(
                    "{message}; paused: promote to accept it, resume to run it again, abort to roll back"
                ),
            );
        }
    }

    pub fn run_ref(&self, slot: Slot) -> Option<&AnalysisRunRef> {
        match slot {
            Slot::Step => self.status.step_analysis_run.as_ref(),
            Slot::Background => self.status.background_analysis_run.as_ref(),
        }
    }

    fn run_ref_mut(&mut self, slot: Slot) -> &mut Option<AnalysisRunRef> {
        match slot {
            Slot::Step => &mut self.status.step_analysis_run,
            Slot::Background => &mut self.status.background_analysis_run,
        }
    }

    /// The run an analysis slot asks for, as [`build_spec`] makes it for this canary.
    fn run_spec(
        &self,
        kind: &AnalysisKind,
        templates: &[TemplateRef],
        args: &[AnalysisArg],
    ) -> Option<AnalysisRunSpec> {
        let (duration, timeout) = match kind {
            AnalysisKind::Step { duration, timeout, .. } => (duration.clone(), timeout.clone()),
            AnalysisKind::Background => (None, None),
        };
        let canary = &self.spec.strategy.canary;
        let context = RunContext {
            rollout: self.name.to_string(),
            stable_revision: self.status.stable_revision.clone().unwrap_or_default(),
            canary_service: canary.canary_service.clone(),
            stable_service: canary.stable_service.clone(),
        };
        build_spec(&self.obs.templates, templates, args, &self.revision, duration, timeout, context)
    }

    /// `<rollout>-<revision>-<attempt>-<step N|background>[-rerun K]`: unique per canary attempt,
    /// and the same on every decision so that a lost create is simply repeated.
    fn run_name(&self, kind: &AnalysisKind, rerun: i32) -> String {
        let slot = match kind {
            AnalysisKind::Step { index, .. } => format!("step{index}"),
            AnalysisKind::Background => "background".into(),
        };
        let attempt = self.status.progress.attempt;
        let suffix = if rerun > 0 { format!("-rerun{rerun}") } else { String::new() };
        format!("{}-{}-{attempt}-{slot}{suffix}", self.name, self.revision)
    }

    /// Sends a finished analysis back for another run under a new name.
    pub fn rerun(&mut self, slot: Slot) {
        self.status.progress.analysis_restarts += 1;
        let kind = match slot {
            Slot::Step => AnalysisKind::Step { index: self.current_step(), duration: None, timeout: None },
            Slot::Background => AnalysisKind::Background,
        };
        let name = self.run_name(&kind, self.status.progress.analysis_restarts);
        *self.run_ref_mut(slot) = Some(AnalysisRunRef { name, spec_hash: None, phase: None, message: None });
        self.lift_pause(PauseReason::AnalysisFailed);
        self.lift_pause(PauseReason::InconclusiveAnalysis);
    }

    /// Whether a slot's run ended badly and holds the rollout.
    pub fn slot_went_wrong(&self, slot: Slot) -> bool {
        self.run_ref(slot).is_some_and(|r| {
            let run = self.obs.analysis_run(&r.name).cloned().map(|run| trusted(run, r.spec_hash.as_deref()));
            run.and_then(|run| run.phase).is_some_and(|p| {
                matches!(p, AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive)
            })
        })
    }

    /// Every step passed: bring the canary to full scale, make it stable, then move all traffic.
    fn promote(&mut self, stable: &str) {
        let revision = self.revision.clone();
        if !self.status.progress.promoting {
            self.status.progress.promoting = true;
            self.status.progress.waiting_since = None;
            let how = if self.status.progress.promote_full { "promote --full" } else { "all steps passed" };
            self.event(EventKind::Normal, "PromotionStarted", format!("{how}: promoting canary {revision}"));
        }
        self.status.step_analysis_run = None;
        self.status.background_analysis_run = None;
        let replicas = self.plan.replicas;
        self.ensure_scale(&revision, replicas);
        let available = self.obs.available(&revision);
        if available < replicas {
            self.wait_for_progress(format!(
                "promoting: waiting for {replicas} canary pods to become available ({available} available)"
            ));
            return;
        }
        if !self.ensure_service(ServiceRole::Stable, &revision) {
            let service = self.spec.strategy.canary.stable_service.clone();
            self.wait_for_progress(format!(
                "promoting: waiting for Service {service} to select revision {revision}"
            ));
            return;
        }
        if !self.ensure_weights(0) {
            let lag = self.route_lag();
            self.wait_for_progress(format!(
                "promoting: waiting for routes to send all traffic to stable: {lag}"
            ));
            return;
        }
        let took = self.elapsed_since(self.status.progress.canary_started_at.unwrap_or(self.now));
        let promoted = format!("revision {revision} promoted to stable in {took}");
        let record = self.record_action("Promoted", AbortStatus::AUTOMATIC, promoted.clone());
        self.record_history(&revision, RolloutOutcome::Promoted, None);
        self.schedule_scale_down(stable, self.plan.scale_down_delay);
        self.status.stable_revision = Some(revision.clone());
        self.status.canary_revision = None;
        self.status.current_step_index = None;
        self.status.progress = Progress {
            scale_downs: std::mem::take(&mut self.status.progress.scale_downs),
            handled_requests: std::mem::take(&mut self.status.progress.handled_requests),
            ..Progress::default()
        };
        self.recorded_event(EventKind::Normal, "Promoted", promoted, record);
        self.steady();
    }
}

/// The run that analysis of `revision` with `templates` (their metrics in order, `args` over their
/// defaults) asks for; `None` when a template is missing, which validation reports first.
fn build_spec(
    templates: &super::Templates,
    refs: &[bellwether_api::TemplateRef],
    args: &[bellwether_api::AnalysisArg],
    revision: &str,
    duration: Option<bellwether_api::Duration>,
    timeout: Option<bellwether_api::Duration>,
    context: bellwether_api::RunContext,
) -> Option<AnalysisRunSpec> {
    let mut metrics = Vec::new();
    let mut sources = Vec::new();
    let mut values = std::collections::BTreeMap::new();
    for reference in refs {
        let template = templates.get(reference)?;
        for metric in &template.metrics {
            metrics.push(metric.clone());
            sources.push(bellwether_api::MetricSource {
                metric: metric.name.clone(),
                template: reference.clone(),
            });
        }
        for arg in &template.args {
            if let Some(value) = &arg.value {
                values.entry(arg.name.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    values.extend(args.iter().map(|a| (a.name.clone(), a.value.clone())));
    Some(AnalysisRunSpec {
        metrics,
        args: values.into_iter().map(|(name, value)| bellwether_api::AnalysisArg { name, value }).collect(),
        revision: revision.to_string(),
        duration,
        timeout,
        terminate: false,
        context: Some(context),
        sources,
    })
}
