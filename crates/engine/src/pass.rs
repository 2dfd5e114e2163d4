//! One decision in progress: the working status, the actions gathered so far, and the small
//! level-based helpers every rule is written with.

use super::Input;
use super::action::{Action, Decision, Event, EventKind, ServiceRole};
use super::observation::{Observation, RouteWeights, Traffic};
use super::plan::{Plan, SpecError, StepExposure};
use bellwether_api::{
    AbortStatus, ActionRecord, Condition, PauseCondition, PauseReason, RolloutOutcome, RolloutPhase,
    RolloutSpec, RolloutStatus, RouteStatus, Weights, format_duration, selector_string,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

pub(super) struct Pass<'a> {
    pub name: &'a str,
    pub spec: &'a RolloutSpec,
    pub plan: &'a Plan,
    pub obs: &'a Observation,
    pub now: DateTime<Utc>,
    /// The revision of the current pod template.
    pub revision: String,
    pub status: RolloutStatus,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    /// Times at which something will change without any watch event.
    pub wakeups: Vec<DateTime<Utc>>,
    /// Derived pause reasons that still hold in this pass; the others are lifted at the end.
    pub pauses_held: BTreeSet<PauseReason>,
    /// What this pass wants every route to carry, once it said so.
    pub wanted_traffic: Option<Traffic>,
}

/// A spec that failed validation: record why, touch nothing.
pub(super) fn invalid_spec(input: Input<'_>, errors: &[SpecError]) -> Decision {
    let mut status = input.status.clone();
    status.observed_generation = input.generation;
    let message =
        format!("invalid spec: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
    let changed = set_condition(&mut status, "InvalidSpec", true, "InvalidSpec", &message, input.now);
    set_kstatus(&mut status, Kstatus::Stalled("InvalidSpec"), &message, input.now);
    status.message = Some(message.clone());
    let events = if changed {
        vec![Event { kind: EventKind::Warning, reason: "InvalidSpec".into(), message, record: None }]
    } else {
        Vec::new()
    };
    Decision { status, actions: Vec::new(), events, requeue_after: None }
}

/// Where a Rollout stands in the kstatus conventions that Flux, `kubectl wait` and other tools read.
pub(super) enum Kstatus<'a> {
    /// Healthy, with all traffic verified on stable: `Ready`.
    Ready,
    /// Work in flight (a canary, a first deploy, stable's pods coming up), with its reason:
    /// `Reconciling`.
    Reconciling(&'a str),
    /// Stopped until someone acts (an aborted canary, an invalid spec), with its reason: `Stalled`.
    Stalled(&'a str),
}

/// Sets `Ready`, `Reconciling` and `Stalled` for `state`: exactly one of them is True.
pub(super) fn set_kstatus(status: &mut RolloutStatus, state: Kstatus<'_>, message: &str, now: DateTime<Utc>) {
    let (ready, reconciling, stalled) = match state {
        Kstatus::Ready => (Some("Healthy"), None, None),
        Kstatus::Reconciling(reason) => (None, Some(reason), None),
        Kstatus::Stalled(reason) => (None, None, Some(reason)),
    };
    let not_ready = reconciling.or(stalled).unwrap_or_default();
    set_condition(status, "Ready", ready.is_some(), ready.unwrap_or(not_ready), message, now);
    set_condition(status, "Reconciling", reconciling.is_some(), reconciling.unwrap_or("Done"), message, now);
    set_condition(status, "Stalled", stalled.is_some(), stalled.unwrap_or("NotStalled"), message, now);
}

/// Sets a standard condition; returns whether its status changed.
pub(super) fn set_condition(
    status: &mut RolloutStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> bool {
    let value = if value { "True" } else { "False" };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let changed = c.status != value;
            if changed {
                c.last_transition_time = now;
            }
            c.status = value.into();
            c.reason = reason.into();
            c.message = message.into();
            changed
        }
        None => {
            status.conditions.push(Condition {
                type_: type_.into(),
                status: value.into(),
                reason: reason.into(),
                message: message.into(),
                last_transition_time: now,
            });
            true
        }
    }
}

impl<'a> Pass<'a> {
    pub fn new(input: Input<'a>, plan: &'a Plan, revision: &str) -> Self {
        let mut status = input.status.clone();
        status.observed_generation = input.generation;
        Self {
            name: input.name,
            spec: input.spec,
            plan,
            obs: input.observation,
            now: input.now,
            revision: revision.to_string(),
            status,
            actions: Vec::new(),
            events: Vec::new(),
            wakeups: Vec::new(),
            pauses_held: BTreeSet::new(),
            wanted_traffic: None,
        }
    }

    pub fn run(mut self) -> Decision {
        set_condition(&mut self.status, "InvalidSpec", false, "Valid", "spec is valid", self.now);
        self.handle_requests();
        self.follow_template();
        self.scale_workload();
        self.clean_up();
        self.settle();
        let requeue_after = self.wakeups.iter().filter(|t| **t > self.now).min().map(|t| *t - self.now);
        Decision { status: self.status, actions: self.actions, events: self.events, requeue_after }
    }

    /// Routes the pass by where the template stands relative to the stable and canary revisions.
    fn follow_template(&mut self) {
        let revision = self.revision.clone();
        let Some(stable) = self.status.stable_revision.clone() else {
            return self.initial_deploy();
        };
        if stable == revision {
            if let Some(canary) = self.status.canary_revision.clone() {
                self.end_canary(&canary, RolloutOutcome::RolledBack);
            }
            return self.steady();
        }
        if self.status.canary_revision.as_deref() != Some(revision.as_str()) {
            if let Some(old) = self.status.canary_revision.clone() {
                self.end_canary(&old, RolloutOutcome::Superseded);
            }
            self.start_canary(&stable);
        }
        if self.status.abort.is_none() && self.plan.replicas == 0 {
            return self.hold_at_zero(&stable);
        }
        if self.status.abort.is_none() {
            self.progress(&stable);
        }
        if self.status.abort.is_some() {
            self.degraded(&stable);
        }
    }

    // ----- messages, events and timers -----

    pub fn say(&mut self, message: impl Into<String>) {
        self.status.message = Some(message.into());
    }

    pub fn event(&mut self, kind: EventKind, reason: &str, message: impl Into<String>) {
        self.events.push(Event { kind, reason: reason.into(), message: message.into(), record: None });
    }

    /// An Event that tells of an action, recorded in `status.actions` too.
    pub fn recorded_event(&mut self, kind: EventKind, reason: &str, message: String, record: ActionRecord) {
        self.events.push(Event { kind, reason: reason.into(), message, record: Some(record) });
    }

    pub fn wake_at(&mut self, at: DateTime<Utc>) {
        self.wakeups.push(at);
    }

    /// `step i/N`, 1-based, for messages.
    pub fn step_label(&self) -> String {
        let n = self.plan.steps.len();
        let i = self.status.current_step_index.unwrap_or(0) as usize;
        format!("step {}/{n}", (i + 1).min(n))
    }

    /// Waits for the cluster to catch up (pods, Services, routes). The progress deadline counts
    /// from the first such wait since the last step change; past it the canary is aborted.
    pub fn wait_for_progress(&mut self, message: String) {
        let since = *self.status.progress.waiting_since.get_or_insert(self.now);
        let deadline = since + self.plan.progress_deadline;
        if self.now >= deadline {
            let limit = format_duration(self.plan.progress_deadline);
            self.abort(
                "ProgressDeadlineExceeded",
                format!("{message}; no progress for {limit} (progressDeadlineSeconds)"),
                None,
                AbortStatus::AUTOMATIC,
            );
        } else {
            self.wake_at(deadline);
            self.say(message);
        }
    }

    // ----- pause conditions -----

    /// Holds a pause for this pass, adding the condition (and an Event) when it is new.
    pub fn hold_pause(&mut self, reason: PauseReason, message: &str) {
        self.pauses_held.insert(reason);
        if !self.has_pause(reason) {
            self.status.pause_conditions.push(PauseCondition { reason, started_at: self.now });
            self.event(EventKind::Normal, "Paused", message);
        }
        self.say(message);
    }

    pub fn has_pause(&self, reason: PauseReason) -> bool {
        self.status.pause_conditions.iter().any(|c| c.reason == reason)
    }

    pub fn lift_pause(&mut self, reason: PauseReason) {
        self.status.pause_conditions.retain(|c| c.reason != reason);
    }

    // ----- level-based helpers: emit an action only where the observation differs -----

    pub fn ensure_scale(&mut self, revision: &str, replicas: i32) {
        if self.obs.replica_set(revision).is_none_or(|rs| rs.replicas != replicas) {
            self.actions.push(Action::ScaleReplicaSet { revision: revision.into(), replicas });
        }
    }

    /// Points a Service at a revision; returns whether the observation already shows it.
    pub fn ensure_service(&mut self, role: ServiceRole, revision: &str) -> bool {
        let observed = match role {
            ServiceRole::Stable => &self.obs.services.stable,
            ServiceRole::Canary => &self.obs.services.canary,
        };
        if observed.as_deref() == Some(revision) {
            return true;
        }
        self.actions.push(Action::PointService { role, revision: revision.into() });
        false
    }

    /// Wants `canary` percent on the canary on every route, and no header route or mirror;
    /// returns whether every route carries that and every parent Gateway accepted it.
    pub fn ensure_weights(&mut self, canary: i32) -> bool {
        self.ensure_traffic(canary, &StepExposure::default())
    }

    /// Wants `canary` percent on the canary and the header routes and mirror of `exposed` on every
    /// route; returns whether every route carries them and every parent Gateway accepted them.
    /// With `dynamicStableScale`, weight moves back to stable only as far as its available pods
    /// carry it ([`Self::servable_canary_weight`]). Header routes and mirrors move with the weight,
    /// in the same patch of each route: an abort withdraws them with its move of weight.
    pub fn ensure_traffic(&mut self, canary: i32, exposed: &StepExposure) -> bool {
        let weights = RouteWeights { canary, stable: 100 - canary };
        if self.status.weights.canary != canary {
            let message = format!("traffic: canary {canary}%, stable {}%", 100 - canary);
            self.event(EventKind::Normal, "WeightChanged", message);
        }
        let exposure = exposed.status();
        if self.status.exposure != exposure {
            let message = format!("canary exposure: {}", exposed.exposure.describe());
            self.event(EventKind::Normal, "ExposureChanged", message);
        }
        self.status.exposure = exposure;
        self.status.weights = Weights { canary, stable: 100 - canary, verified: false };
        let set = self.servable_canary_weight(canary);
        let setting = Traffic {
            weights: RouteWeights { canary: set, stable: 100 - set },
            exposure: exposed.exposure.clone(),
        };
        if self.obs.routes.iter().any(|r| !r.shows(&setting)) {
            self.actions.push(Action::SetTraffic(setting));
        }
        let wanted = Traffic { weights, exposure: exposed.exposure.clone() };
        let verified = self.obs.routes.iter().all(|r| r.carries(&wanted));
        self.wanted_traffic = Some(wanted);
        self.status.weights.verified = verified;
        verified
    }

    /// What this pass wants the routes to carry: what it said, or what the status records.
    fn wanted(&self) -> Traffic {
        self.wanted_traffic.clone().unwrap_or_else(|| Traffic {
            weights: RouteWeights { canary: self.status.weights.canary, stable: self.status.weights.stable },
            exposure: self.exposure_in_force().exposure,
        })
    }

    /// The header routes and mirror the status says are in force: those of the current step, or
    /// of the one before it when the current one had not set them yet, or of the last step while
    /// a promotion is under way; none when they are none of these.
    pub fn exposure_in_force(&self) -> StepExposure {
        let index = self.status.current_step_index.unwrap_or(0).max(0) as usize;
        let last = self.plan.steps.len().checked_sub(1);
        [Some(index), index.checked_sub(1), last]
            .into_iter()
            .flatten()
            .map(|i| self.plan.exposure_at(i))
            .find(|exposed| exposed.status() == self.status.exposure)
            .cloned()
            .unwrap_or_default()
    }

    /// Why the routes do not carry the wanted traffic yet.
    pub fn route_lag(&self) -> String {
        let wanted = self.wanted();
        let lagging: Vec<String> =
            self.obs.routes.iter().filter(|r| !r.carries(&wanted)).map(|r| r.lag(&wanted)).collect();
        lagging.join("; ")
    }

    /// What each route carries, against what the pass wants.
    fn route_statuses(&self) -> Vec<RouteStatus> {
        let wanted = self.wanted();
        self.obs
            .routes
            .iter()
            .map(|route| {
                let ready = route.carries(&wanted);
                let exposure = route.exposure.clone().unwrap_or_default();
                RouteStatus {
                    name: route.name.clone(),
                    canary_weight: route.weights.map(|w| w.canary),
                    header_routes: exposure.header_routes.into_keys().collect(),
                    mirror_percent: exposure.mirror,
                    ready,
                    message: (!ready).then(|| route.lag(&wanted)),
                }
            })
            .collect()
    }

    // ----- the end of a pass -----

    fn settle(&mut self) {
        let reasons_held = self.pauses_held.clone();
        self.status
            .pause_conditions
            .retain(|c| c.reason == PauseReason::UserPause || reasons_held.contains(&c.reason));
        let in_flight = self.status.canary_revision.is_some();
        let stable_ready = self
            .status
            .stable_revision
            .as_deref()
            .is_some_and(|s| self.obs.available(s) >= self.plan.replicas);
        let phase = if self.status.abort.is_some() {
            RolloutPhase::Degraded
        } else if !self.status.pause_conditions.is_empty() {
            RolloutPhase::Paused
        } else if in_flight || !stable_ready {
            RolloutPhase::Progressing
        } else {
            RolloutPhase::Healthy
        };
        self.status.phase = Some(phase);
        self.status.routes = self.route_statuses();
        self.status.replicas = Some(self.obs.replica_sets.iter().map(|rs| rs.replicas.max(0)).sum());
        self.status.selector = Some(selector_string(&self.spec.selector));
        self.status.step = in_flight.then(|| {
            let n = self.plan.steps.len();
            let i = self.status.current_step_index.unwrap_or(0) as usize;
            format!("{}/{n}", (i + 1).min(n))
        });
        if !in_flight {
            self.status.current_step_index = None;
        }
        let message = self.status.message.clone().unwrap_or_default();
        let now = self.now;
        // `Step2Of5`: the step as a condition reason, which allows no `/`.
        let step_reason = self.status.step.as_deref().unwrap_or_default().replace('/', "Of");
        let step_reason = format!("Step{step_reason}");
        set_condition(&mut self.status, "Progressing", in_flight, phase.as_str(), &message, now);
        let available_message = match &self.status.stable_revision {
            Some(s) => format!(
                "stable revision {s}: {}/{} pods available",
                self.obs.available(s),
                self.plan.replicas
            ),
            None => "no stable revision yet".into(),
        };
        set_condition(&mut self.status, "Available", stable_ready, "StablePods", &available_message, now);
        let abort_reason = self.status.abort.as_ref().map(|abort| abort.reason.clone());
        let state = match &abort_reason {
            Some(reason) => Kstatus::Stalled(reason),
            None if in_flight => Kstatus::Reconciling(&step_reason),
            None if !stable_ready => Kstatus::Reconciling("StablePods"),
            None if !(self.status.weights.verified && self.status.weights.canary == 0) => {
                Kstatus::Reconciling("Traffic")
            }
            None => Kstatus::Ready,
        };
        set_kstatus(&mut self.status, state, &message, now);
    }
}
