//! The engine: pure, synchronous rollout decisions.
//!
//! [`decide`] takes a Rollout's spec and status, an [`Observation`] of the cluster and the current
//! time, and returns a [`Decision`]: the next status, the ordered [`Action`]s that bring the
//! cluster closer to it, and the Events that explain why. It performs no I/O and reads no clock,
//! so every rule is testable as a plain function call.
//!
//! Decisions are level-based: actions are the differences between what the rollout wants now and
//! what the observation shows. Deciding again on the same input yields the same status and no new
//! action, and a lost or failed action is simply derived again next time.

mod action;
mod alerts;
mod analysis;
mod canary;
mod cleanup;
mod observation;
mod pass;
mod plan;
mod pod_defaults;
mod replicas;
mod requests;
mod retreat;
mod revision;
mod scaling;
mod steady;

pub use action::{Action, AnalysisRunRequest, Decision, Event, EventKind, ServiceRole};
pub use alerts::{DEFAULT_MAX_ALERT_ABORTS_PER_HOUR, describe as describe_alert};
pub use analysis::metric::{MAX_MEASUREMENTS, MetricPlan, Problem};
pub use analysis::run::{
    Clock, Entitlement, MAX_ERROR_BYTES, assess, assess_with, deadline, due, due_since, ended, entitlement,
    keep, next_due, record, record_with, refused, spec_hash,
};
pub use analysis::stats::{
    KolmogorovSmirnov, MannWhitney, drop_outliers, kolmogorov_sf, kolmogorov_smirnov, mann_whitney_u,
};
pub use analysis::verdict::{MetricVerdict, Window, format_value, run_phase};
pub use analysis::{Bellwether, Judge, judge_metric};
pub use observation::{
    AnalysisRunState, Exposure, Observation, ParentState, ReplicaSetState, RouteState, RouteWeights,
    ServiceSelectors, Traffic, UserAction, UserRequest, WorkloadState,
};
pub use plan::{
    Background, MAX_HEADER_ROUTES, Origin, Plan, SpecError, Step, StepExposure, Templates,
    check_workload_template, validate_template,
};
pub use pod_defaults::{fill_pod_template_defaults, strip_pod_template_defaults};
pub use replicas::{canary_replicas, share, weight_capacity};
pub use requests::applicable;
pub use revision::revision_of;

use bellwether_api::{PodTemplate, RolloutSpec, RolloutStatus};
use chrono::{DateTime, Utc};

/// Everything one decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The Rollout's name; AnalysisRun names derive from it.
    pub name: &'a str,
    pub generation: Option<i64>,
    pub spec: &'a RolloutSpec,
    pub status: &'a RolloutStatus,
    pub observation: &'a Observation,
    pub now: DateTime<Utc>,
}

/// What every decision derives from a spec and its templates before it looks at the status: the
/// plan (or why there is none) and the revision of the pod template. It depends on nothing else, so
/// it can be kept for as long as neither changes, and [`decide_prepared`] spared the work: about
/// three quarters of a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub revision: String,
    /// The pod template of the revision: the embedded one, or the Deployment's of a
    /// `workloadRef` (empty when there is none).
    pub template: PodTemplate,
    pub plan: Result<Plan, Vec<SpecError>>,
}

impl Prepared {
    /// `workload` is the pod template of the Deployment a `workloadRef` names, if it exists.
    pub fn new(spec: &RolloutSpec, templates: &Templates, workload: Option<&PodTemplate>) -> Self {
        let template = pod_template(spec, workload);
        let mut plan = Plan::from_spec(spec, templates);
        let workload_errors = match spec.template {
            Some(_) => Vec::new(),
            None => check_workload_template(spec, workload.map(PodTemplate::get).as_ref()),
        };
        if !workload_errors.is_empty() {
            plan = Err(plan.err().unwrap_or_default().into_iter().chain(workload_errors).collect());
        }
        let template = template.cloned().unwrap_or_default();
        Self { revision: revision_of(&template.get()), template, plan }
    }
}

/// The pod template the Rollout's current revision is made from: the one it embeds, or with a
/// `workloadRef`, `workload` (the Deployment's, if it exists).
pub fn pod_template<'a>(spec: &'a RolloutSpec, workload: Option<&'a PodTemplate>) -> Option<&'a PodTemplate> {
    match (&spec.template, &spec.workload_ref) {
        (Some(template), _) => Some(template),
        (None, Some(_)) => workload,
        (None, None) => None,
    }
}

/// Decides what the rollout does next. See the module documentation.
pub fn decide(input: Input<'_>) -> Decision {
    let workload = input.observation.workload.as_ref().map(|w| &w.template);
    decide_prepared(input, &Prepared::new(input.spec, &input.observation.templates, workload))
}

/// [`decide`], with what it derives from the spec and the templates already derived: `prepared`
/// must be [`Prepared::new`] of `input.spec`, `input.observation.templates` and the workload's
/// template.
pub fn decide_prepared(input: Input<'_>, prepared: &Prepared) -> Decision {
    match &prepared.plan {
        Ok(plan) => pass::Pass::new(input, plan, &prepared.revision).run(),
        Err(errors) => pass::invalid_spec(input, errors),
    }
}
