//! Validation of a Rollout spec against the templates that exist, and the checked plan it yields.
//!
//! The API server already enforces the CRD schema and CEL rules; this repeats what matters to the
//! engine (a spec may come from an older CRD, or from `lint` with no API server) and adds what
//! the schema cannot see: references to templates, their args, their metric names and the variables
//! their queries use.

use crate::api::{
    AnalysisArg, AnalysisStep, AnalysisTemplateSpec, Duration, Metric, REVISION_LABEL, RolloutSpec,
    TemplateRef,
};
use crate::metrics::template;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// The shortest metric `interval`: measuring more often would load Prometheus for no gain, since
/// few scrape faster.
const MIN_INTERVAL: chrono::Duration = chrono::Duration::seconds(1);

/// One problem in a spec, located by its field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A spec that passed validation, with defaults applied and durations parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan<'a> {
    pub replicas: i32,
    pub steps: Vec<Step<'a>>,
    pub background: Option<Background<'a>>,
    pub progress_deadline: chrono::Duration,
    pub scale_down_delay: chrono::Duration,
    pub abort_scale_down_delay: chrono::Duration,
    pub revision_history_limit: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step<'a> {
    SetWeight(i32),
    /// `None` waits for a promote.
    Pause(Option<chrono::Duration>),
    Analysis(&'a AnalysisStep),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Background<'a> {
    pub templates: &'a [TemplateRef],
    pub args: &'a [AnalysisArg],
    pub starting_step: usize,
}

impl Plan<'_> {
    /// The canary weight in force at step `index`: the last `setWeight` at or before it.
    pub fn weight_at(&self, index: usize) -> i32 {
        self.steps
            .iter()
            .take(index.saturating_add(1))
            .rev()
            .find_map(|s| match s {
                Step::SetWeight(w) => Some(*w),
                _ => None,
            })
            .unwrap_or(0)
    }
}

pub type Templates = BTreeMap<TemplateRef, AnalysisTemplateSpec>;

/// Checks `spec` and returns its plan, or every problem found.
pub fn validate<'a>(spec: &'a RolloutSpec, templates: &Templates) -> Result<Plan<'a>, Vec<SpecError>> {
    let mut errors = Errors::default();
    let canary = &spec.strategy.canary;
    const CANARY: &str = "spec.strategy.canary";

    if spec.replicas < 0 {
        errors.push("spec.replicas", format!("{} is negative", spec.replicas));
    }
    check_selector(&spec.selector, spec, &mut errors);

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
    for (i, step) in canary.steps.iter().enumerate() {
        let field = format!("{CANARY}.steps[{i}]");
        let kinds = [step.set_weight.is_some(), step.pause.is_some(), step.analysis.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            errors.push(&field, "must have exactly one of setWeight, pause or analysis");
            continue;
        }
        if let Some(weight) = step.set_weight {
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
            steps.push(Step::Analysis(analysis));
        }
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
        Background { templates: &bg.templates, args: &bg.args, starting_step: starting_step.max(0) as usize }
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

    errors.finish(Plan {
        replicas: spec.replicas.max(0),
        steps,
        background,
        progress_deadline,
        scale_down_delay,
        abort_scale_down_delay,
        revision_history_limit: history.max(0) as usize,
    })
}

#[derive(Default)]
struct Errors(Vec<SpecError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecError { field: field.into(), message: message.into() });
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<SpecError>> {
        if self.0.is_empty() { Ok(value) } else { Err(self.0) }
    }
}

fn parse_opt(duration: Option<&Duration>, field: &str, errors: &mut Errors) -> Option<chrono::Duration> {
    duration.and_then(|d| d.parse().map_err(|e| errors.push(field, e.to_string())).ok())
}

fn seconds(value: Option<i32>, default: i32, field: &str, min: i32, errors: &mut Errors) -> chrono::Duration {
    let value = value.unwrap_or(default);
    if value < min {
        errors.push(field, format!("{value} is below the minimum {min}"));
    }
    chrono::Duration::seconds(i64::from(value.max(min)))
}

fn check_selector(selector: &LabelSelector, spec: &RolloutSpec, errors: &mut Errors) {
    let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
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
        let kind = if reference.cluster_scope { "ClusterAnalysisTemplate" } else { "AnalysisTemplate" };
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
        for (m, metric) in template.metrics.iter().enumerate() {
            let metric_field = format!("{kind} {:?} metrics[{m}]", reference.template_name);
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
            check_metric(metric, &declared, &metric_field, errors);
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
        check_metric(metric, &declared, &field, &mut errors);
    }
    errors.finish(())
}

fn check_metric(metric: &Metric, declared_args: &BTreeSet<String>, field: &str, errors: &mut Errors) {
    let durations = [
        ("interval", metric.interval.as_ref()),
        ("initialDelay", metric.initial_delay.as_ref()),
        ("provider.prometheus.timeout", metric.provider.prometheus.as_ref().and_then(|p| p.timeout.as_ref())),
        (
            "threshold.hysteresis.breachFor",
            metric.threshold.as_ref().and_then(|t| t.hysteresis.as_ref()).and_then(|h| h.breach_for.as_ref()),
        ),
        (
            "threshold.hysteresis.recoverFor",
            metric
                .threshold
                .as_ref()
                .and_then(|t| t.hysteresis.as_ref())
                .and_then(|h| h.recover_for.as_ref()),
        ),
    ];
    for (name, duration) in durations {
        parse_opt(duration, &format!("{field}.{name}"), errors);
    }
    if let Some(interval) = metric.interval.as_ref().and_then(|d| d.parse().ok())
        && interval < MIN_INTERVAL
    {
        errors.push(
            format!("{field}.interval"),
            format!(
                "{} is below the minimum of 1s: a metric is measured once an interval",
                metric.interval.as_ref().map(ToString::to_string).unwrap_or_default()
            ),
        );
    }
    match &metric.provider.prometheus {
        None => errors.push(format!("{field}.provider"), "must set prometheus"),
        Some(prometheus) => {
            if let Err(error) = template::check(&prometheus.query, declared_args) {
                errors.push(format!("{field}.provider.prometheus.query"), error.to_string());
            }
        }
    }
    if let Some(sequential) = &metric.sequential
        && let Err(error) = template::check(&sequential.requests_query, declared_args)
    {
        errors.push(format!("{field}.sequential.requestsQuery"), error.to_string());
    }
    // JSON has no NaN or infinity, so these only come from YAML or code; every comparison with NaN
    // is false, which would make a bound of NaN pass every value.
    let recover =
        metric.threshold.as_ref().and_then(|t| t.hysteresis.as_ref()).and_then(|h| h.recover.as_ref());
    let numbers = [
        ("threshold.min", metric.threshold.as_ref().and_then(|t| t.min)),
        ("threshold.max", metric.threshold.as_ref().and_then(|t| t.max)),
        ("threshold.hysteresis.recover.min", recover.and_then(|r| r.min)),
        ("threshold.hysteresis.recover.max", recover.and_then(|r| r.max)),
        ("compare.confidence", metric.compare.as_ref().map(|c| c.confidence)),
        ("compare.maxRatio", metric.compare.as_ref().and_then(|c| c.max_ratio)),
        ("sequential.alpha", metric.sequential.as_ref().and_then(|s| s.alpha)),
        ("sequential.maxIncrease", metric.sequential.as_ref().map(|s| s.max_increase)),
    ];
    for (name, number) in numbers {
        if let Some(number) = number.filter(|n| !n.is_finite()) {
            errors.push(format!("{field}.{name}"), format!("{number} is not a finite number"));
        }
    }
    match (&metric.threshold, &metric.compare, &metric.sequential) {
        (Some(threshold), None, None) => {
            if threshold.min.is_none() && threshold.max.is_none() {
                errors.push(format!("{field}.threshold"), "needs min, max or both");
            }
            if let (Some(min), Some(max)) = (threshold.min, threshold.max)
                && min > max
            {
                errors.push(format!("{field}.threshold"), format!("min {min} exceeds max {max}"));
            }
        }
        (None, Some(_), None) | (None, None, Some(_)) => {}
        _ => errors.push(field, "must have exactly one of threshold, compare or sequential"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
