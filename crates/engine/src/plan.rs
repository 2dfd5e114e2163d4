//! A Rollout's plan: its spec checked against the templates that exist, with defaults applied and
//! durations parsed. [`Plan::from_spec`] is the one validation of a Rollout: the controller decides
//! from its plan, and `lint`, `simulate` and `analyze` report its errors.
//!
//! The API server already enforces the CRD schema and CEL rules; this repeats what matters to the
//! engine (a spec may come from an older CRD, or from `lint` with no API server) and adds what
//! the schema cannot see: references to templates, their args, their metric names and the variables
//! their queries use. Each error says where it is: the Rollout, or a template it names, and the
//! field's path in that object.

use crate::analysis::metric::{MetricPlan, duration};
use crate::observation::Exposure;
use bellwether_api::template;
use bellwether_api::{
    AnalysisArg, AnalysisStep, AnalysisTemplateSpec, CanaryStep, Duration, ExposureStatus, Metric,
    MirrorStatus, REVISION_LABEL, RolloutSpec, TemplateRef,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// Ended AnalysisRuns kept per outcome, as Argo Rollouts keeps them; and the most the API accepts.
const DEFAULT_RUN_HISTORY_LIMIT: i32 = 5;
const MAX_RUN_HISTORY_LIMIT: i32 = 100;

/// One problem in a spec: where it is, the field's path in that object, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub origin: Origin,
    /// The path within the origin's object, such as `spec.strategy.canary.steps[2].setWeight` or,
    /// in a template, `spec.metrics[0].interval`.
    pub field: String,
    pub message: String,
}

/// The object a [`SpecError`] is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The object being checked: the Rollout, or the template that [`validate_template`] checks.
    Object,
    /// A template the Rollout names.
    Template(TemplateRef),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Object => write!(f, "{}: {}", self.field, self.message),
            Origin::Template(reference) => {
                let field = self.field.strip_prefix("spec.").unwrap_or(&self.field);
                write!(f, "{} {:?} {field}: {}", reference.kind(), reference.template_name, self.message)
            }
        }
    }
}

/// A spec that passed validation, with defaults applied and durations parsed. It owns what it
/// holds, so that it can be kept for as long as the spec and its templates do not change.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub replicas: i32,
    pub steps: Vec<Step>,
    /// Per step, the header routes and mirror in force there: those the steps up to it added and
    /// did not remove.
    pub exposures: Vec<StepExposure>,
    pub background: Option<Background>,
    pub progress_deadline: chrono::Duration,
    pub scale_down_delay: chrono::Duration,
    pub abort_scale_down_delay: chrono::Duration,
    pub revision_history_limit: usize,
    pub analysis_run_history_limit: RunHistoryLimit,
}

/// How many ended AnalysisRuns of each outcome the Rollout keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunHistoryLimit {
    pub successful: usize,
    pub unsuccessful: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    SetWeight(i32),
    /// `None` waits for a promote.
    Pause(Option<chrono::Duration>),
    Analysis(AnalysisStep),
    /// Adds (`true`) or removes the header route of this name.
    SetHeaderRoute {
        name: String,
        adds: bool,
    },
    /// Sets the mirror of this name to a percent, or removes it (`None`).
    SetMirrorRoute {
        name: String,
        percent: Option<i32>,
    },
}

/// The header routes and mirror in force at one step, with the mirror's name for people.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepExposure {
    pub exposure: Exposure,
    pub mirror_name: Option<String>,
}

impl StepExposure {
    /// As the Rollout's status records it.
    pub fn status(&self) -> ExposureStatus {
        ExposureStatus {
            header_routes: self.exposure.header_routes.keys().cloned().collect(),
            mirror: self
                .exposure
                .mirror
                .map(|percent| MirrorStatus { name: self.mirror_name.clone().unwrap_or_default(), percent }),
        }
    }
}

/// Header routes active at once, at most: each adds a rule per managed rule to every route, and
/// a route holds at most 16 rules.
pub const MAX_HEADER_ROUTES: usize = 4;

#[derive(Clone, Debug, PartialEq)]
pub struct Background {
    pub templates: Vec<TemplateRef>,
    pub args: Vec<AnalysisArg>,
    pub starting_step: usize,
}

pub type Templates = BTreeMap<TemplateRef, AnalysisTemplateSpec>;

impl Plan {
    /// The header routes and mirror in force at step `index` (none past the last step).
    pub fn exposure_at(&self, index: usize) -> &StepExposure {
        static NONE: std::sync::OnceLock<StepExposure> = std::sync::OnceLock::new();
        self.exposures.get(index).unwrap_or_else(|| NONE.get_or_init(StepExposure::default))
    }

    /// Checks `spec` and returns its plan, or every problem found. A `workloadRef`'s Deployment is
    /// not checked here: see [`check_workload_template`].
    pub fn from_spec(spec: &RolloutSpec, templates: &Templates) -> Result<Self, Vec<SpecError>> {
        plan(spec, templates)
    }
}

/// A `setHeaderRoute` or `setMirrorRoute` step: checked against what the steps before it left in
/// force (`exposure`), which it then changes.
fn expose(step: &CanaryStep, field: &str, exposure: &mut StepExposure, errors: &mut Errors) -> Step {
    if let Some(route) = &step.set_header_route {
        let field = format!("{field}.setHeaderRoute");
        let routes = &mut exposure.exposure.header_routes;
        if route.headers.is_empty() {
            if routes.remove(&route.name).is_none() {
                errors.push(
                    format!("{field}.name"),
                    format!("removes header route {:?}, which no earlier step added", route.name),
                );
            }
            return Step::SetHeaderRoute { name: route.name.clone(), adds: false };
        }
        for (i, header) in route.headers.iter().enumerate() {
            let repeated = route.headers[..i].iter().any(|h| h.name.eq_ignore_ascii_case(&header.name));
            if repeated {
                errors.push(
                    format!("{field}.headers[{i}].name"),
                    format!("{:?} is matched twice", header.name),
                );
            }
            if header.value.is_empty() {
                errors.push(format!("{field}.headers[{i}].value"), "must not be empty");
            }
        }
        if routes.contains_key(&route.name) {
            errors.push(
                format!("{field}.name"),
                format!(
                    "header route {:?} is already in force: remove it first, or give this one another name",
                    route.name
                ),
            );
        }
        routes.insert(route.name.clone(), route.headers.clone());
        if routes.len() > MAX_HEADER_ROUTES {
            errors.push(
                format!("{field}.name"),
                format!(
                    "{} header routes would be in force at once, more than {MAX_HEADER_ROUTES}: remove one first",
                    routes.len()
                ),
            );
        }
        return Step::SetHeaderRoute { name: route.name.clone(), adds: true };
    }
    let Some(mirror) = &step.set_mirror_route else { unreachable!("expose is called for route steps") };
    let field = format!("{field}.setMirrorRoute");
    let active = exposure.mirror_name.clone();
    match (mirror.percent, active) {
        (Some(percent), _) if !(1..=100).contains(&percent) => {
            errors.push(format!("{field}.percent"), format!("{percent} is outside 1..100"));
        }
        (Some(_), Some(active)) if active != mirror.name => errors.push(
            format!("{field}.name"),
            format!("mirror {active:?} is still in force: remove it first, or set its percent"),
        ),
        (Some(percent), _) => {
            exposure.exposure.mirror = Some(percent);
            exposure.mirror_name = Some(mirror.name.clone());
        }
        (None, Some(active)) if active == mirror.name => {
            exposure.exposure.mirror = None;
            exposure.mirror_name = None;
        }
        (None, _) => errors.push(
            format!("{field}.name"),
            format!("removes mirror {:?}, which no earlier step added", mirror.name),
        ),
    }
    Step::SetMirrorRoute { name: mirror.name.clone(), percent: mirror.percent }
}

/// Checks the pod template of the Deployment a `workloadRef` names (`None` when it does not
/// exist) against the Rollout's selector.
pub fn check_workload_template(spec: &RolloutSpec, template: Option<&PodTemplateSpec>) -> Vec<SpecError> {
    let mut errors = Errors::default();
    let Some(workload) = &spec.workload_ref else { return Vec::new() };
    match template {
        None => errors.push("spec.workloadRef.name", format!("Deployment {:?} not found", workload.name)),
        Some(template) => check_selector(&spec.selector, template, &mut errors),
    }
    errors.0
}

fn plan(spec: &RolloutSpec, templates: &Templates) -> Result<Plan, Vec<SpecError>> {
    let mut errors = Errors::default();
    let canary = &spec.strategy.canary;
    const CANARY: &str = "spec.strategy.canary";

    if spec.replicas < 0 {
        errors.push("spec.replicas", format!("{} is negative", spec.replicas));
    }
    match (&spec.template, &spec.workload_ref) {
        (Some(_), Some(_)) => {
            errors.push("spec.workloadRef", "must not be set with spec.template: set one of them")
        }
        (None, None) => {
            errors.push("spec.template", "must be set, or spec.workloadRef must name a Deployment")
        }
        (Some(template), None) => check_selector(&spec.selector, &template.get(), &mut errors),
        (None, Some(workload)) => {
            if workload.api_version != "apps/v1" || workload.kind != "Deployment" {
                errors.push(
                    "spec.workloadRef",
                    format!(
                        "must name an apps/v1 Deployment, not {} {}",
                        workload.api_version, workload.kind
                    ),
                );
            }
            if workload.name.is_empty() {
                errors.push("spec.workloadRef.name", "must name a Deployment");
            }
        }
    }

    if canary.stable_service.is_empty() {
        errors.push(format!("{CANARY}.stableService"), "must name a Service");
    }
    if canary.canary_service.is_empty() {
        errors.push(format!("{CANARY}.canaryService"), "must name a Service");
    }
    if !canary.stable_service.is_empty() && canary.stable_service == canary.canary_service {
        errors.push(
            format!("{CANARY}.canaryService"),
            format!("must differ from stableService (both are {:?})", canary.stable_service),
        );
    }
    let routing = &canary.traffic_routing.gateway_api;
    if routing.http_routes.is_empty() && routing.grpc_routes.is_empty() {
        errors.push(
            format!("{CANARY}.trafficRouting.gatewayAPI"),
            "must name at least one HTTPRoute or GRPCRoute",
        );
    }

    if canary.steps.is_empty() {
        errors.push(format!("{CANARY}.steps"), "must have at least one step");
    }
    let mut steps = Vec::with_capacity(canary.steps.len());
    let mut exposures = Vec::with_capacity(canary.steps.len());
    let mut exposure = StepExposure::default();
    for (i, step) in canary.steps.iter().enumerate() {
        let field = format!("{CANARY}.steps[{i}]");
        let kinds = [
            step.set_weight.is_some(),
            step.pause.is_some(),
            step.analysis.is_some(),
            step.set_header_route.is_some(),
            step.set_mirror_route.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            errors.push(
                &field,
                "must have exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute",
            );
            exposures.push(exposure.clone());
            continue;
        }
        if step.set_header_route.is_some() || step.set_mirror_route.is_some() {
            steps.push(expose(step, &field, &mut exposure, &mut errors));
        } else if let Some(weight) = step.set_weight {
            if !(0..=100).contains(&weight) {
                errors.push(format!("{field}.setWeight"), format!("{weight} is outside 0..100"));
            }
            steps.push(Step::SetWeight(weight));
        } else if let Some(pause) = &step.pause {
            let duration =
                parse_opt(pause.duration.as_ref(), &format!("{field}.pause.duration"), &mut errors);
            steps.push(Step::Pause(duration));
        } else if let Some(analysis) = &step.analysis {
            let duration =
                parse_opt(analysis.duration.as_ref(), &format!("{field}.analysis.duration"), &mut errors);
            let metrics = check_analysis(
                &analysis.templates,
                &analysis.args,
                templates,
                &format!("{field}.analysis"),
                &mut errors,
            );
            if duration.is_none() {
                for metric in metrics.iter().filter(|m| m.count.is_none()) {
                    errors.push(
                        format!("{field}.analysis.duration"),
                        format!(
                            "metric {:?} has no count, so the step needs a duration to know when it passed",
                            metric.name
                        ),
                    );
                }
            }
            steps.push(Step::Analysis(analysis.clone()));
        }
        exposures.push(exposure.clone());
    }

    for (i, matcher) in canary.abort_on_alerts.iter().enumerate() {
        if matcher.match_labels.is_empty() {
            errors.push(
                format!("{CANARY}.abortOnAlerts[{i}].matchLabels"),
                "must name at least one label: an empty matcher would match every alert",
            );
        }
    }
    let background = canary.analysis.as_ref().map(|bg| {
        let field = format!("{CANARY}.analysis");
        for metric in check_analysis(&bg.templates, &bg.args, templates, &field, &mut errors) {
            if metric.compare.is_some() && metric.count.is_none() {
                errors.push(
                    format!("{field}.templates"),
                    format!(
                        "metric {:?} compares the canary with stable, which needs a fixed sample: give it a \
                         count to run in background analysis",
                        metric.name
                    ),
                );
            }
        }
        let starting_step = bg.starting_step.unwrap_or(0);
        if starting_step < 0 || starting_step as usize >= canary.steps.len().max(1) {
            errors.push(
                format!("{field}.startingStep"),
                format!("{starting_step} is not the index of a step (there are {})", canary.steps.len()),
            );
        }
        Background {
            templates: bg.templates.clone(),
            args: bg.args.clone(),
            starting_step: starting_step.max(0) as usize,
        }
    });

    let progress_deadline = seconds(
        spec.progress_deadline_seconds,
        DEFAULT_PROGRESS_DEADLINE_SECONDS,
        "spec.progressDeadlineSeconds",
        1,
        &mut errors,
    );
    let scale_down_delay = seconds(
        canary.scale_down_delay_seconds,
        DEFAULT_SCALE_DOWN_DELAY_SECONDS,
        &format!("{CANARY}.scaleDownDelaySeconds"),
        0,
        &mut errors,
    );
    let abort_scale_down_delay = seconds(
        canary.abort_scale_down_delay_seconds,
        DEFAULT_SCALE_DOWN_DELAY_SECONDS,
        &format!("{CANARY}.abortScaleDownDelaySeconds"),
        0,
        &mut errors,
    );
    let history = spec.revision_history_limit.unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT);
    if history < 0 {
        errors.push("spec.revisionHistoryLimit", format!("{history} is negative"));
    }
    let runs = spec.analysis_run_history_limit.clone().unwrap_or_default();
    let mut run_limit = |field: &str, limit: Option<i32>| {
        let limit = limit.unwrap_or(DEFAULT_RUN_HISTORY_LIMIT);
        if !(0..=MAX_RUN_HISTORY_LIMIT).contains(&limit) {
            errors.push(
                format!("spec.analysisRunHistoryLimit.{field}"),
                format!("{limit} is not from 0 to {MAX_RUN_HISTORY_LIMIT}"),
            );
        }
        limit.clamp(0, MAX_RUN_HISTORY_LIMIT) as usize
    };
    let analysis_run_history_limit = RunHistoryLimit {
        successful: run_limit("successful", runs.successful),
        unsuccessful: run_limit("unsuccessful", runs.unsuccessful),
    };

    errors.finish(Plan {
        replicas: spec.replicas.max(0),
        steps,
        exposures,
        background,
        progress_deadline,
        scale_down_delay,
        abort_scale_down_delay,
        revision_history_limit: history.max(0) as usize,
        analysis_run_history_limit,
    })
}

#[derive(Default)]
struct Errors(Vec<SpecError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push_at(&Origin::Object, field, message);
    }

    fn push_at(&mut self, origin: &Origin, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecError { origin: origin.clone(), field: field.into(), message: message.into() });
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<SpecError>> {
        if self.0.is_empty() { Ok(value) } else { Err(self.0) }
    }
}

fn parse_opt(value: Option<&Duration>, field: &str, errors: &mut Errors) -> Option<chrono::Duration> {
    let mut problems = Vec::new();
    let parsed = duration(value, field, &mut problems);
    for problem in problems {
        errors.push(problem.field, problem.message);
    }
    parsed
}

fn seconds(value: Option<i32>, default: i32, field: &str, min: i32, errors: &mut Errors) -> chrono::Duration {
    let value = value.unwrap_or(default);
    if value < min {
        errors.push(field, format!("{value} is below the minimum {min}"));
    }
    chrono::Duration::seconds(i64::from(value.max(min)))
}

/// Checks that `selector` selects the pods of `template`, and that the template leaves the revision
/// label to Bellwether.
fn check_selector(selector: &LabelSelector, template: &PodTemplateSpec, errors: &mut Errors) {
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let match_labels = selector.match_labels.clone().unwrap_or_default();
    let expressions = selector.match_expressions.clone().unwrap_or_default();
    if match_labels.is_empty() && expressions.is_empty() {
        errors.push("spec.selector", "must not be empty: it would select every pod in the namespace");
        return;
    }
    if labels.contains_key(REVISION_LABEL) {
        errors.push(
            "spec.template.metadata.labels",
            format!("{REVISION_LABEL} is set by Bellwether and must not be in the template"),
        );
    }
    for (key, value) in &match_labels {
        if labels.get(key) != Some(value) {
            errors.push(
                "spec.selector.matchLabels",
                format!("{key}={value} does not match the template's labels"),
            );
        }
    }
    for (i, expr) in expressions.iter().enumerate() {
        let values = expr.values.clone().unwrap_or_default();
        let label = labels.get(&expr.key);
        let matches = match expr.operator.as_str() {
            "In" => label.is_some_and(|v| values.contains(v)),
            "NotIn" => label.is_none_or(|v| !values.contains(v)),
            "Exists" => label.is_some(),
            "DoesNotExist" => label.is_none(),
            other => {
                errors.push(
                    format!("spec.selector.matchExpressions[{i}].operator"),
                    format!("{other:?} is not one of In, NotIn, Exists, DoesNotExist"),
                );
                continue;
            }
        };
        if !matches {
            errors.push(
                format!("spec.selector.matchExpressions[{i}]"),
                format!("{} {} does not match the template's labels", expr.key, expr.operator),
            );
        }
    }
}

/// Checks one analysis (step or background) and returns the metrics it will run.
fn check_analysis<'t>(
    refs: &[TemplateRef],
    args: &[AnalysisArg],
    templates: &'t Templates,
    field: &str,
    errors: &mut Errors,
) -> Vec<&'t Metric> {
    if refs.is_empty() {
        errors.push(format!("{field}.templates"), "must name at least one template");
    }
    let mut metrics: Vec<&Metric> = Vec::new();
    let mut metric_owner: BTreeMap<&str, &str> = BTreeMap::new();
    let mut declared_args: BTreeSet<&str> = BTreeSet::new();
    let mut seen_args: BTreeSet<&str> = BTreeSet::new();
    for (i, arg) in args.iter().enumerate() {
        if !seen_args.insert(arg.name.as_str()) {
            errors.push(format!("{field}.args[{i}]"), format!("arg {:?} is given twice", arg.name));
        }
    }
    for (i, reference) in refs.iter().enumerate() {
        let kind = reference.kind();
        let Some(template) = templates.get(reference) else {
            errors.push(
                format!("{field}.templates[{i}].templateName"),
                format!("{kind} {:?} not found", reference.template_name),
            );
            continue;
        };
        for spec_arg in &template.args {
            declared_args.insert(spec_arg.name.as_str());
            if spec_arg.value.is_none() && !seen_args.contains(spec_arg.name.as_str()) {
                errors.push(
                    format!("{field}.args"),
                    format!("{kind} {:?} requires arg {:?}", reference.template_name, spec_arg.name),
                );
            }
        }
        let origin = Origin::Template(reference.clone());
        for (m, metric) in template.metrics.iter().enumerate() {
            let metric_field = format!("spec.metrics[{m}]");
            if let Some(owner) = metric_owner.insert(&metric.name, &reference.template_name) {
                errors.push(
                    format!("{field}.templates[{i}]"),
                    format!(
                        "metric {:?} is defined twice (in {owner:?} and {:?})",
                        metric.name, reference.template_name
                    ),
                );
            }
            let declared: BTreeSet<String> = template.args.iter().map(|a| a.name.clone()).collect();
            check_metric(metric, &declared, &origin, &metric_field, errors);
            metrics.push(metric);
        }
    }
    for (i, arg) in args.iter().enumerate() {
        if !declared_args.is_empty() && !declared_args.contains(arg.name.as_str()) {
            errors.push(
                format!("{field}.args[{i}]"),
                format!("arg {:?} is not declared by any of the templates", arg.name),
            );
        }
    }
    metrics
}

/// Checks a template on its own, as the controller does before it runs any of its metrics: every
/// metric's durations, provider, queries and judgment, located as `spec.metrics[i].field`. A
/// Rollout's validation runs the same checks on each template it names, with its args.
pub fn validate_template(spec: &AnalysisTemplateSpec) -> Result<(), Vec<SpecError>> {
    let mut errors = Errors::default();
    let declared: BTreeSet<String> = spec.args.iter().map(|a| a.name.clone()).collect();
    let mut args: BTreeSet<&str> = BTreeSet::new();
    for (i, arg) in spec.args.iter().enumerate() {
        if !args.insert(arg.name.as_str()) {
            errors.push(format!("spec.args[{i}]"), format!("arg {:?} is declared twice", arg.name));
        }
    }
    if spec.metrics.is_empty() {
        errors.push("spec.metrics", "must have at least one metric");
    }
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (m, metric) in spec.metrics.iter().enumerate() {
        let field = format!("spec.metrics[{m}]");
        if !names.insert(metric.name.as_str()) {
            errors.push(format!("{field}.name"), format!("metric {:?} is defined twice", metric.name));
        }
        check_metric(metric, &declared, &Origin::Object, &field, &mut errors);
    }
    errors.finish(())
}

/// Checks one metric: its plan (durations, judgment) and its provider's queries, at `field` of
/// `origin`.
fn check_metric(
    metric: &Metric,
    declared_args: &BTreeSet<String>,
    origin: &Origin,
    field: &str,
    errors: &mut Errors,
) {
    let at =
        |relative: &str| if relative.is_empty() { field.to_string() } else { format!("{field}.{relative}") };
    if let Err(problems) = MetricPlan::new(metric, None) {
        for problem in problems {
            errors.push_at(origin, at(&problem.field), problem.message);
        }
    }
    let provider = &metric.provider;
    let set = [
        ("prometheus", provider.prometheus.is_some()),
        ("influxdb", provider.influxdb.is_some()),
        ("datadog", provider.datadog.is_some()),
        ("web", provider.web.is_some()),
        ("job", provider.job.is_some()),
    ];
    let kinds: Vec<&str> = set.iter().filter(|(_, set)| *set).map(|(kind, _)| *kind).collect();
    let wrong = match kinds.as_slice() {
        [] => Some("must set one of prometheus, influxdb, datadog, web or job".to_owned()),
        [_] => None,
        several => Some(format!(
            "must set only one of prometheus, influxdb, datadog, web or job, not {}",
            several.join(" and ")
        )),
    };
    if let Some(message) = wrong {
        errors.push_at(origin, at("provider"), message);
    } else if let Some(prometheus) = &provider.prometheus {
        let mut problems = Vec::new();
        duration(prometheus.timeout.as_ref(), "provider.prometheus.timeout", &mut problems);
        if holds_credentials(&prometheus.address) {
            // Without the address: every message about the server would quote the password.
            errors.push_at(
                origin,
                at("provider.prometheus.address"),
                "must not hold credentials (user:password@): set auth, read from a Secret, instead",
            );
        }
        for problem in problems {
            errors.push_at(origin, at(&problem.field), problem.message);
        }
        if let Err(error) = template::check(&prometheus.query, declared_args) {
            errors.push_at(origin, at("provider.prometheus.query"), error.to_string());
        }
        for (i, header) in prometheus.headers.iter().enumerate() {
            if header.value.is_some() == header.value_from.is_some() {
                errors.push_at(
                    origin,
                    at(&format!("provider.prometheus.headers[{i}]")),
                    "must have exactly one of value or valueFrom",
                );
            }
        }
    } else if let Some(influxdb) = &provider.influxdb {
        check_influxdb(influxdb, declared_args, &mut |field, message| {
            errors.push_at(origin, at(field), message)
        });
    } else if let Some(web) = &provider.web {
        check_web(metric, web, declared_args, &mut |field, message| {
            errors.push_at(origin, at(field), message)
        });
    } else if let Some(datadog) = &provider.datadog {
        check_datadog(datadog, declared_args, &mut |field, message| {
            errors.push_at(origin, at(field), message)
        });
    } else if let Some(job) = &provider.job {
        check_job(metric, job, declared_args, &mut |field, message| {
            errors.push_at(origin, at(field), message)
        });
    }
    if let Some(sequential) = &metric.sequential {
        // The count of all requests runs on the metric's provider, in its query language.
        let check = if provider.influxdb.is_some() {
            template::check_influxql
        } else if provider.datadog.is_some() {
            template::check_datadog
        } else {
            template::check
        };
        if let Err(error) = check(&sequential.requests_query, declared_args) {
            errors.push_at(origin, at("sequential.requestsQuery"), error.to_string());
        }
    }
}

/// Checks an `influxdb` provider: its query template, its timeout and its headers. Every judgment
/// applies, since the query names the revision it measures.
fn check_influxdb(
    influxdb: &bellwether_api::InfluxDbProvider,
    declared_args: &BTreeSet<String>,
    push: &mut dyn FnMut(&str, String),
) {
    let mut problems = Vec::new();
    duration(influxdb.timeout.as_ref(), "provider.influxdb.timeout", &mut problems);
    for problem in problems {
        push(&problem.field, problem.message);
    }
    if let Err(error) = template::check_influxql(&influxdb.query, declared_args) {
        push("provider.influxdb.query", error.to_string());
    }
    for (i, header) in influxdb.headers.iter().enumerate() {
        if header.value.is_some() == header.value_from.is_some() {
            push(
                &format!("provider.influxdb.headers[{i}]"),
                "must have exactly one of value or valueFrom".into(),
            );
        }
    }
}

/// Checks a `datadog` provider: its query template, its address, and its window and timeout.
fn check_datadog(
    datadog: &bellwether_api::DatadogProvider,
    declared_args: &BTreeSet<String>,
    push: &mut dyn FnMut(&str, String),
) {
    let mut problems = Vec::new();
    let window = duration(datadog.window.as_ref(), "provider.datadog.window", &mut problems);
    duration(datadog.timeout.as_ref(), "provider.datadog.timeout", &mut problems);
    for problem in problems {
        push(&problem.field, problem.message);
    }
    if window.is_some_and(|window| window < chrono::Duration::seconds(1)) {
        push("provider.datadog.window", "must be at least 1s".into());
    }
    if let Err(error) = template::check_datadog(&datadog.query, declared_args) {
        push("provider.datadog.query", error.to_string());
    }
    if let Some(address) = &datadog.address {
        let rest = address.strip_prefix("https://").or_else(|| address.strip_prefix("http://"));
        let host = rest.map(|rest| &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())]);
        if host.is_none_or(str::is_empty) || holds_credentials(address) || address.contains(['?', '#']) {
            // Without the address, which may hold credentials.
            push(
                "provider.datadog.address",
                "must be an http:// or https:// URL with a host, and no credentials, query or fragment"
                    .into(),
            );
        }
    }
}

/// Whether a URL's authority holds credentials (`user:password@`).
fn holds_credentials(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())].contains('@')
}

/// Checks a `web` provider: its templates, its JSONPath, its timeout, and that its metric judges by
/// threshold, since compare and sequential need a query per revision and counts, which one URL does
/// not give.
fn check_web(
    metric: &Metric,
    web: &bellwether_api::WebProvider,
    declared_args: &BTreeSet<String>,
    push: &mut dyn FnMut(&str, String),
) {
    if metric.compare.is_some() || metric.sequential.is_some() {
        let kind = if metric.compare.is_some() { "compare" } else { "sequential" };
        push(
            "provider.web",
            format!(
                "a web metric supports only threshold: {kind} needs a query per revision (and sequential \
                 counts of requests), which one web request does not give; use prometheus"
            ),
        );
    }
    let mut problems = Vec::new();
    duration(web.timeout.as_ref(), "provider.web.timeout", &mut problems);
    for problem in problems {
        push(&problem.field, problem.message);
    }
    if let Err(error) = template::check_url(&web.url, declared_args) {
        push("provider.web.url", error.to_string());
    }
    for (i, header) in web.headers.iter().enumerate() {
        if header.value.is_some() == header.value_from.is_some() {
            push(&format!("provider.web.headers[{i}]"), "must have exactly one of value or valueFrom".into());
        }
    }
    if let Some(body) = &web.body {
        if web.method != bellwether_api::WebMethod::Post {
            push("provider.web.body", "a body needs method POST".into());
        }
        if let Err(error) = template::check_json_body(body, declared_args) {
            push("provider.web.body", error.to_string());
        }
    }
    if let Err(error) = serde_json_path::JsonPath::parse(&web.json_path) {
        push("provider.web.jsonPath", format!("{:?} is not an RFC 9535 JSONPath: {error}", web.json_path));
    }
}

/// Checks a `job` provider: that its metric judges by threshold, that its spec reads as a batch/v1
/// JobSpec, and that every string of its metadata and spec is a template of known variables and
/// declared args.
fn check_job(
    metric: &Metric,
    job: &bellwether_api::JobProvider,
    declared_args: &BTreeSet<String>,
    push: &mut dyn FnMut(&str, String),
) {
    if metric.compare.is_some() || metric.sequential.is_some() {
        let kind = if metric.compare.is_some() { "compare" } else { "sequential" };
        push(
            "provider.job",
            format!(
                "a job metric supports only threshold: {kind} needs a query per revision (and sequential \
                 counts of requests), while a Job only succeeds or fails; use prometheus"
            ),
        );
    }
    match job.job_spec() {
        Err(error) => push("provider.job.spec", format!("is not a batch/v1 JobSpec: {error}")),
        Ok(spec) => {
            if spec.template.spec.as_ref().is_none_or(|pod| pod.containers.is_empty()) {
                push("provider.job.spec.template.spec.containers", "a Job needs a container to run".into());
            }
            if spec.ttl_seconds_after_finished.is_some() {
                push(
                    "provider.job.spec.ttlSecondsAfterFinished",
                    "must not be set: Bellwether deletes each Job once its end is measured, and a Job \
                     deleted sooner could end unread and run again"
                        .into(),
                );
            }
        }
    }
    let metadata = job.metadata.as_ref().map(|m| serde_json::to_value(m).unwrap_or_default());
    let documents = [("provider.job.metadata", metadata.as_ref()), ("provider.job.spec", Some(&job.spec))];
    for (prefix, document) in documents {
        if let Some(Err(error)) = document.map(|d| template::check_strings(d, prefix, declared_args)) {
            push(&error.path, error.error.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(metric: serde_json::Value) -> Vec<(String, String)> {
        let metric: Metric = serde_json::from_value(metric).unwrap();
        let spec = AnalysisTemplateSpec {
            args: vec![bellwether_api::ArgSpec { name: "q".into(), value: None }],
            metrics: vec![metric],
        };
        match validate_template(&spec) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
        }
    }

    #[test]
    fn a_prometheus_address_may_not_hold_credentials() {
        let with = |address: &str| {
            fields_of(serde_json::json!({
                "name": "m",
                "provider": {"prometheus": {"address": address, "query": "x"}},
                "threshold": {"max": 1},
            }))
        };
        let refused = vec![(
            "spec.metrics[0].provider.prometheus.address".to_owned(),
            "must not hold credentials (user:password@): set auth, read from a Secret, instead".to_owned(),
        )];
        assert_eq!(with("http://reader:s3cret@p:9090"), refused);
        assert_eq!(with("https://token@p/prometheus"), refused);
        assert_eq!(with("http://p:9090/tenant@team"), [], "an @ in the path is no credential");
    }

    #[test]
    fn a_metric_sets_exactly_one_provider() {
        let prometheus = serde_json::json!({"address": "http://p:9090", "query": "x"});
        let web = serde_json::json!({"url": "http://slo/api?q={{args.q}}", "jsonPath": "$.v"});
        let with = |provider: serde_json::Value| {
            fields_of(serde_json::json!({"name": "m", "provider": provider, "threshold": {"max": 1}}))
        };
        let job = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "t"}]}}}});
        let datadog = serde_json::json!({
            "query": "sum:errors{version:{{revision}}}",
            "apiKey": {"name": "datadog", "key": "api-key"},
            "applicationKey": {"name": "datadog", "key": "app-key"},
        });
        let field = |message: &str| vec![("spec.metrics[0].provider".to_owned(), message.to_owned())];
        let influxdb =
            serde_json::json!({"address": "http://i:8086", "database": "d", "query": "SELECT x FROM r"});
        assert_eq!(
            with(serde_json::json!({})),
            field("must set one of prometheus, influxdb, datadog, web or job")
        );
        assert_eq!(
            with(serde_json::json!({"prometheus": prometheus, "web": web})),
            field("must set only one of prometheus, influxdb, datadog, web or job, not prometheus and web")
        );
        assert_eq!(
            with(serde_json::json!({"prometheus": prometheus, "web": web, "datadog": datadog})),
            field(
                "must set only one of prometheus, influxdb, datadog, web or job, not prometheus and datadog and web"
            )
        );
        assert_eq!(with(serde_json::json!({"web": web})), []);
        assert_eq!(with(serde_json::json!({"datadog": datadog})), []);
        assert_eq!(
            with(serde_json::json!({"web": web, "job": job})),
            field("must set only one of prometheus, influxdb, datadog, web or job, not web and job")
        );
        assert_eq!(with(serde_json::json!({"job": job})), []);
        assert_eq!(
            with(serde_json::json!({"influxdb": influxdb, "datadog": datadog})),
            field("must set only one of prometheus, influxdb, datadog, web or job, not influxdb and datadog")
        );
        assert_eq!(with(serde_json::json!({"influxdb": influxdb})), []);
    }

    #[test]
    fn influxdb_providers_are_checked_field_by_field() {
        let metric = |influxdb: serde_json::Value, judgment: (&str, serde_json::Value)| {
            let mut metric = serde_json::json!({"name": "m", "provider": {"influxdb": influxdb}});
            metric[judgment.0] = judgment.1;
            fields_of(metric)
        };
        let threshold = ("threshold", serde_json::json!({"max": 1}));
        let found = metric(
            serde_json::json!({
                "address": "http://influxdb:8086",
                "database": "app",
                "query": "SELECT x FROM r; DROP DATABASE app",
                "timeout": "soon",
                "headers": [{"name": "X-Tenant"}],
            }),
            threshold.clone(),
        );
        let fields: Vec<&str> = found.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.metrics[0].provider.influxdb.timeout",
                "spec.metrics[0].provider.influxdb.query",
                "spec.metrics[0].provider.influxdb.headers[0]",
            ]
        );
        assert!(found[1].1.starts_with("';' at byte 15 ends the statement"), "{found:?}");
        // A sequential metric counts all requests in InfluxQL too, and compare is allowed.
        let sequential = |requests_query: &str| {
            metric(
                serde_json::json!({
                    "address": "http://influxdb:8086",
                    "database": "app",
                    "query": "SELECT sum(\"n\") FROM r WHERE rev = '{{revision}}' AND code =~ /^5/ AND time > now() - {{interval}}",
                }),
                ("sequential", serde_json::json!({"requestsQuery": requests_query, "maxIncrease": 0.5})),
            )
        };
        assert_eq!(
            sequential("SELECT sum(\"n\") FROM r WHERE rev = '{{revision}}' AND time > now() - 1m"),
            []
        );
        let promql = sequential("sum(increase(requests_total{revision=\"{{revision}}\"}[1m]))");
        assert_eq!(
            promql,
            [(
                "spec.metrics[0].sequential.requestsQuery".to_owned(),
                "the query must be one InfluxQL SELECT statement".to_owned()
            )]
        );
        let compare = metric(
            serde_json::json!({"address": "http://i:8086", "database": "d", "query": "SELECT mean(v) FROM r WHERE rev = '{{revision}}'"}),
            ("compare", serde_json::json!({"confidence": 0.95})),
        );
        assert_eq!(compare, []);
    }

    #[test]
    fn job_providers_are_checked_field_by_field() {
        let metric = |job: serde_json::Value, judgment: (&str, serde_json::Value)| {
            let mut metric = serde_json::json!({"name": "smoke", "provider": {"job": job}});
            metric[judgment.0] = judgment.1;
            fields_of(metric)
        };
        let threshold = ("threshold", serde_json::json!({"min": 1}));
        let containers = |container: serde_json::Value| serde_json::json!({"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}});
        let good = metric(
            serde_json::json!({
                "metadata": {"labels": {"example.com/suite": "{{args.q}}"}, "annotations": {"rev": "{{revision}}"}},
                "spec": containers(serde_json::json!({
                    "name": "smoke",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", "test \"$REVISION\" != bad"],
                    "env": [{"name": "REVISION", "value": "{{revision}}"}, {"name": "Q", "value": "{{args.q}}"}],
                })),
            }),
            threshold.clone(),
        );
        assert_eq!(good, []);

        let malformed = metric(
            serde_json::json!({"spec": {"backoffLimit": "twice", "template": {"spec": {"containers": [{"name": "t"}]}}}}),
            threshold.clone(),
        );
        assert_eq!(malformed.len(), 1, "{malformed:?}");
        assert_eq!(malformed[0].0, "spec.metrics[0].provider.job.spec");
        assert!(
            malformed[0].1.starts_with("is not a batch/v1 JobSpec: invalid type: string \"twice\""),
            "{malformed:?}"
        );
        let ttl = metric(
            serde_json::json!({"spec": {
                "ttlSecondsAfterFinished": 0,
                "template": {"spec": {"containers": [{"name": "t"}]}},
            }}),
            threshold.clone(),
        );
        assert_eq!(ttl.len(), 1, "{ttl:?}");
        assert_eq!(ttl[0].0, "spec.metrics[0].provider.job.spec.ttlSecondsAfterFinished");
        for spec in [
            serde_json::json!({"backoffLimit": 0}),
            serde_json::json!({"template": {"spec": {"containers": []}}}),
        ] {
            assert_eq!(
                metric(serde_json::json!({"spec": spec}), threshold.clone()),
                [(
                    "spec.metrics[0].provider.job.spec.template.spec.containers".to_owned(),
                    "a Job needs a container to run".to_owned()
                )],
                "{spec}"
            );
        }

        let templated = metric(
            serde_json::json!({
                "metadata": {"labels": {"suite": "{{args.r}}"}},
                "spec": containers(serde_json::json!({"name": "smoke", "image": "busybox", "args": ["{{revison}}"]})),
            }),
            threshold.clone(),
        );
        assert_eq!(
            templated,
            [
                (
                    "spec.metrics[0].provider.job.metadata.labels.suite".to_owned(),
                    "arg \"r\" is not declared by the template; did you mean \"q\"?".to_owned()
                ),
                (
                    "spec.metrics[0].provider.job.spec.template.spec.containers[0].args[0]".to_owned(),
                    "unknown variable {{revison}}; did you mean {{revision}}?".to_owned()
                ),
            ]
        );

        let spec = containers(serde_json::json!({"name": "smoke", "image": "busybox"}));
        for (kind, judgment) in [
            ("compare", serde_json::json!({"confidence": 0.95})),
            ("sequential", serde_json::json!({"requestsQuery": "sum(x)", "maxIncrease": 0.5})),
        ] {
            let found = metric(serde_json::json!({"spec": spec}), (kind, judgment));
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].0, "spec.metrics[0].provider.job");
            assert!(
                found[0].1.starts_with(&format!("a job metric supports only threshold: {kind} needs")),
                "{found:?}"
            );
        }
    }

    #[test]
    fn web_providers_are_checked_field_by_field() {
        let metric = |web: serde_json::Value, judgment: (&str, serde_json::Value)| {
            let mut metric = serde_json::json!({"name": "m", "provider": {"web": web}});
            metric[judgment.0] = judgment.1;
            fields_of(metric)
        };
        let threshold = ("threshold", serde_json::json!({"max": 1}));
        let fields =
            |found: Vec<(String, String)>| -> Vec<String> { found.into_iter().map(|(f, _)| f).collect() };
        assert_eq!(
            fields(metric(
                serde_json::json!({
                    "url": "http://slo/{{args.q}}",
                    "body": "{\"q\": {{args.q}}}",
                    "jsonPath": "$[",
                    "timeout": "soon",
                    "headers": [{"name": "X-Tenant"}],
                }),
                threshold.clone()
            )),
            [
                "spec.metrics[0].provider.web.timeout",
                "spec.metrics[0].provider.web.url",
                "spec.metrics[0].provider.web.headers[0]",
                "spec.metrics[0].provider.web.body",
                "spec.metrics[0].provider.web.body",
                "spec.metrics[0].provider.web.jsonPath",
            ]
        );
        let found = metric(
            serde_json::json!({"url": "http://slo/?q={{args.r}}", "jsonPath": "$.v"}),
            threshold.clone(),
        );
        assert_eq!(
            found,
            [(
                "spec.metrics[0].provider.web.url".to_owned(),
                "arg \"r\" is not declared by the template; did you mean \"q\"?".to_owned()
            )]
        );
        let compare = metric(
            serde_json::json!({"url": "http://slo/", "jsonPath": "$.v"}),
            ("compare", serde_json::json!({"confidence": 0.95})),
        );
        assert_eq!(fields(compare.clone()), ["spec.metrics[0].provider.web"]);
        assert!(
            compare[0].1.starts_with("a web metric supports only threshold: compare needs"),
            "{compare:?}"
        );
        let good = metric(
            serde_json::json!({
                "url": "https://slo/api?rev={{revision}}&q={{args.q}}",
                "method": "POST",
                "body": "{\"q\": \"{{args.q}}\"}",
                "jsonPath": "$.data[?@.name == 'errors'].value",
                "timeout": "10s",
            }),
            threshold,
        );
        assert_eq!(good, []);
    }

    #[test]
    fn datadog_providers_are_checked_field_by_field() {
        let keys = |datadog: &mut serde_json::Value| {
            datadog["apiKey"] = serde_json::json!({"name": "datadog", "key": "api-key"});
            datadog["applicationKey"] = serde_json::json!({"name": "datadog", "key": "app-key"});
        };
        let metric = |mut datadog: serde_json::Value, judgment: (&str, serde_json::Value)| {
            keys(&mut datadog);
            let mut metric = serde_json::json!({"name": "m", "provider": {"datadog": datadog}});
            metric[judgment.0] = judgment.1;
            fields_of(metric)
        };
        let threshold = ("threshold", serde_json::json!({"max": 1}));
        let found = metric(
            serde_json::json!({
                "address": "https://key@api.datadoghq.com",
                "query": "sum:errors{{{args.q}}}",
                "window": "500ms",
                "timeout": "soon",
            }),
            threshold.clone(),
        );
        let fields: Vec<&str> = found.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.metrics[0].provider.datadog.timeout",
                "spec.metrics[0].provider.datadog.window",
                "spec.metrics[0].provider.datadog.query",
                "spec.metrics[0].provider.datadog.address",
            ],
            "{found:?}"
        );
        // A sequential metric's requestsQuery is a Datadog query too, checked as one.
        let sequential = metric(
            serde_json::json!({"query": "sum:errors{version:{{revision}}}.as_count()"}),
            (
                "sequential",
                serde_json::json!({"requestsQuery": "sum:hits{version:{{revision}}}.as_count()", "maxIncrease": 0.5}),
            ),
        );
        assert_eq!(sequential, []);
        let misplaced = metric(
            serde_json::json!({"query": "sum:errors{version:{{revision}}}.as_count()"}),
            (
                "sequential",
                serde_json::json!({"requestsQuery": "sum:hits{{{revision}}}.as_count()", "maxIncrease": 0.5}),
            ),
        );
        assert_eq!(misplaced.len(), 1, "{misplaced:?}");
        assert_eq!(misplaced[0].0, "spec.metrics[0].sequential.requestsQuery");
        let good = metric(
            serde_json::json!({
                "address": "https://api.datadoghq.eu",
                "query": "sum:errors{service:{{args.q}},version:{{revision}}}.as_count().rollup(sum, {{interval}})",
                "window": "10m",
                "timeout": "10s",
            }),
            ("compare", serde_json::json!({"confidence": 0.95})),
        );
        assert_eq!(good, []);
    }

    /// A bound of NaN would let every value pass, and infinity is no bound at all.
    #[test]
    fn non_finite_bounds_are_refused() {
        let metric = |threshold: serde_json::Value| -> Metric {
            serde_json::from_value(serde_json::json!({
                "name": "probe",
                "provider": {"prometheus": {"address": "http://p:9090", "query": "x"}},
                "threshold": threshold,
            }))
            .unwrap()
        };
        let mut nan = metric(serde_json::json!({"max": 1, "hysteresis": {"recover": {"max": 1}}}));
        let threshold = nan.threshold.as_mut().unwrap();
        threshold.max = Some(f64::NAN);
        threshold.hysteresis.as_mut().unwrap().recover.as_mut().unwrap().max = Some(f64::INFINITY);
        let spec = AnalysisTemplateSpec { args: Vec::new(), metrics: vec![nan] };
        let errors = validate_template(&spec).unwrap_err();
        let fields: Vec<(&str, &str)> =
            errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(
            fields,
            [
                ("spec.metrics[0].threshold.max", "NaN is not a finite number"),
                ("spec.metrics[0].threshold.hysteresis.recover.max", "inf is not a finite number"),
            ]
        );
        let finite =
            AnalysisTemplateSpec { args: Vec::new(), metrics: vec![metric(serde_json::json!({"max": 1}))] };
        assert_eq!(validate_template(&finite), Ok(()));
    }

    /// A header has its value written in the template or read from a Secret, not both, not neither.
    #[test]
    fn a_header_has_exactly_one_value() {
        let metric = |header: serde_json::Value| -> Metric {
            serde_json::from_value(serde_json::json!({
                "name": "probe",
                "provider": {"prometheus": {"address": "http://p:9090", "query": "x", "headers": [header]}},
                "threshold": {"max": 1},
            }))
            .unwrap()
        };
        let secret = serde_json::json!({"name": "mimir", "key": "tenant"});
        let cases = [
            (serde_json::json!({"name": "X-Scope-OrgID", "value": "team-a"}), true),
            (serde_json::json!({"name": "X-Scope-OrgID", "valueFrom": secret}), true),
            (serde_json::json!({"name": "X-Scope-OrgID", "value": "team-a", "valueFrom": secret}), false),
            (serde_json::json!({"name": "X-Scope-OrgID"}), false),
        ];
        for (header, valid) in cases {
            let spec = AnalysisTemplateSpec { args: Vec::new(), metrics: vec![metric(header.clone())] };
            match validate_template(&spec) {
                Ok(()) => assert!(valid, "{header} was accepted"),
                Err(errors) => {
                    assert!(!valid, "{header}: {errors:?}");
                    let fields: Vec<(&str, &str)> =
                        errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
                    assert_eq!(
                        fields,
                        [(
                            "spec.metrics[0].provider.prometheus.headers[0]",
                            "must have exactly one of value or valueFrom"
                        )]
                    );
                }
            }
        }
    }
}
