//! Flagger's `Canary` with the Gateway API provider, and the `MetricTemplate`s its metrics use, as
//! Bellwether objects.
//!
//! Flagger generates the objects that carry traffic: the Services `<name>`, `<name>-primary` and
//! `<name>-canary`, the HTTPRoute `<name>` and a `<name>-primary` Deployment, all owned by the
//! Canary and deleted with it (`<name>` is the service name, by default the target's). Bellwether
//! does not take those over: while Flagger runs, it would fight over their selectors and weights.
//! So convert writes objects of Bellwether's own beside them, for a cut-over with traffic flowing:
//! the Services `<name>-bw-stable` and `<name>-bw-canary`, and the HTTPRoute `<name>-bw` with the
//! same parents, hostnames and timeout as Flagger's. Newer than Flagger's route, it loses to it
//! where both match the same requests (the Gateway API's rule for conflicts), until the Canary, and
//! its route with it, is deleted.
//!
//! A MetricTemplate holds a query and no threshold, and its `{{ interval }}` and variables are the
//! Canary's, so each Canary's metrics become one AnalysisTemplate of its own, named after it.

use super::argo::{address, note_regex_args, threshold};
use super::expressions::{self, Judgment, NoData, bellwether_duration, go_duration};
use super::output::{Map, Object};
use super::source::{Source, Unsupported};
use super::{API_VERSION, Context, converted};
use serde_yaml::Value as Yaml;
use std::collections::BTreeMap;

/// The providers that mean the Gateway API.
const GATEWAY_PROVIDERS: [&str; 3] = ["gatewayapi", "gatewayapi:v1", "gatewayapi:v1beta1"];

/// What the names of Bellwether's own Services and route add to Flagger's service name.
const STABLE_SUFFIX: &str = "-bw-stable";
const CANARY_SUFFIX: &str = "-bw-canary";
const ROUTE_SUFFIX: &str = "-bw";

/// The longest Service name, a DNS label.
const MAX_SERVICE_NAME: usize = 63;

/// Flagger checks no more often than this.
const MIN_INTERVAL_MS: u64 = 10_000;

/// Bellwether's most steps; each Flagger weight takes two (the weight, then its analysis).
const MAX_STEPS: usize = 100;

/// The built-in metrics, as Istio's standard metrics of the requests the Gateway sends to the
/// canary's Service (`reporter="source"`), in Flagger's units: percent and milliseconds.
const SUCCESS_RATE_QUERY: &str = r#"sum(rate(istio_requests_total{reporter="source", destination_service_namespace="{{rollout.namespace}}", destination_service_name="{{canary.service}}", response_code!~"5.*"}[WINDOW])) / sum(rate(istio_requests_total{reporter="source", destination_service_namespace="{{rollout.namespace}}", destination_service_name="{{canary.service}}"}[WINDOW])) * 100"#;
const DURATION_QUERY: &str = r#"histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="source", destination_service_namespace="{{rollout.namespace}}", destination_service_name="{{canary.service}}"}[WINDOW])))"#;

const CANARY_UNSUPPORTED: &[Unsupported] = &[
    ("ingressRef", "Bellwether shifts traffic with Gateway API routes only"),
    ("upstreamRef", "Bellwether shifts traffic with Gateway API routes only"),
];

const SERVICE_UNSUPPORTED: &[Unsupported] = &[
    ("portDiscovery", "the Services convert writes carry the one port given"),
    ("match", "the route convert writes matches every path; add matches to it by hand"),
    ("rewrite", "add a URLRewrite filter to the route by hand"),
    ("headers", "add header filters to the route by hand"),
    ("retries", "add retries to the route by hand, where the Gateway supports them"),
    ("corsPolicy", "add a CORS filter to the route by hand, where the Gateway supports one"),
    ("trafficPolicy", "it is Istio's DestinationRule, which the Gateway API provider does not use"),
    ("gateways", "it is Istio's, which the Gateway API provider does not use; use gatewayRefs"),
    ("mirror", "Bellwether does not mirror traffic"),
    ("apex", "the labels and annotations of Flagger's own objects are not carried over"),
    ("primary", "the metadata and filters of Flagger's own objects are not carried over"),
    ("canary", "the metadata and filters of Flagger's own objects are not carried over"),
    ("delegation", "it is Istio's, which the Gateway API provider does not use"),
    ("backends", "it is App Mesh's, which the Gateway API provider does not use"),
    ("meshName", "it is App Mesh's, which the Gateway API provider does not use"),
];

const ANALYSIS_UNSUPPORTED: &[Unsupported] = &[
    ("stepWeightPromotion", "Bellwether promotes in one move: the canary to full scale, then all traffic"),
    ("mirror", "Bellwether does not mirror traffic"),
    ("mirrorWeight", "Bellwether does not mirror traffic"),
    ("match", "Bellwether routes by weight only, not by header or cookie (no A/B testing)"),
    ("sessionAffinity", "Bellwether routes by weight only, without sticky sessions"),
    (
        "webhooks",
        "Bellwether calls no webhooks during an analysis: run load tests on their own, gate on metrics, and get events from spec.notifications",
    ),
    ("alerts", "Bellwether's notifications are spec.notifications, each a webhook URL read from a Secret"),
    ("primaryReadyThreshold", "Bellwether waits for every pod to be available"),
    ("canaryReadyThreshold", "Bellwether waits for every pod to be available"),
];

/// The names Flagger's query variables and Bellwether's objects take from a Canary.
struct Names {
    canary: String,
    target: String,
    /// `spec.service.name` when set: Flagger's `{{ service }}`.
    service: Option<String>,
    /// The service name Flagger derives its objects' names from.
    apex: String,
}

/// A Flagger Canary: a Rollout, its AnalysisTemplate, and the Services and route it shifts.
pub fn canary(src: &mut Source, ctx: &Context) -> Vec<Object> {
    src.only(
        "spec",
        &[
            "provider",
            "metricsServer",
            "targetRef",
            "autoscalerRef",
            "service",
            "analysis",
            "canaryAnalysis",
            "progressDeadlineSeconds",
            "skipAnalysis",
            "revertOnDeletion",
            "suspend",
        ],
        CANARY_UNSUPPORTED,
    );
    match src.string("spec.provider") {
        Some(provider) if GATEWAY_PROVIDERS.contains(&provider.as_str()) => {}
        Some(provider) => src.refuse(
            "spec.provider",
            format!("{provider:?} is not converted: Bellwether shifts traffic with Gateway API routes (gatewayapi:v1)"),
        ),
        None => src.refuse(
            "spec",
            "has no provider, so Flagger used its -mesh-provider flag; set provider: gatewayapi:v1 if that is the one",
        ),
    }
    if src.boolean("spec.skipAnalysis") == Some(true) {
        src.refuse("spec.skipAnalysis", "promotes without analysis; Bellwether's canary steps always run");
    }
    if src.boolean("spec.suspend") == Some(true) {
        src.refuse("spec.suspend", "is not converted: hold a Bellwether Rollout with spec.paused instead");
    }
    if src.has("spec.revertOnDeletion") {
        src.note("revertOnDeletion is dropped: it is what Flagger does when its Canary is deleted.");
    }
    if let Some(autoscaler) = src.string("spec.autoscalerRef.name") {
        src.note(format!(
            "autoscalerRef: point HorizontalPodAutoscaler {autoscaler} at this Rollout (scaleTargetRef apiVersion \
             bellwether.dev/v1alpha1, kind Rollout, name {}): a Bellwether Rollout has the scale subresource, and its \
             stable and canary follow the autoscaler at every step.",
            src.doc.name()
        ));
    }
    let names = names(src);
    let deadline = src.integer("spec.progressDeadlineSeconds", 1, i64::from(i32::MAX));
    let service = service(src, names.as_ref());
    let analysis = match (src.has("spec.analysis"), src.has("spec.canaryAnalysis")) {
        (true, true) => {
            src.refuse("spec.canaryAnalysis", "is given beside spec.analysis, which replaced it");
            return Vec::new();
        }
        (_, true) => "spec.canaryAnalysis",
        _ => "spec.analysis",
    };
    let plan = names.as_ref().and_then(|names| plan(src, analysis, names, ctx));
    let (Some(names), Some(service), Some(plan)) = (names, service, plan) else { return Vec::new() };
    if src.is_refused() {
        return Vec::new();
    }
    let Some(deployment) = ctx.deployment(&names.target, src.doc.namespace()) else {
        src.refuse(
            "spec.targetRef.name",
            format!(
                "Deployment {:?} is not among the files: the Rollout takes its selector and replicas from it, so \
                 convert it together with the Canary",
                names.target
            ),
        );
        return Vec::new();
    };
    let Some(selector) = deployment.selector() else {
        src.refuse(
            "spec.targetRef.name",
            format!("Deployment {:?} ({}) has no selector", names.target, deployment.location()),
        );
        return Vec::new();
    };
    let replicas = deployment.replicas();
    if replicas.is_none() {
        src.note(format!(
            "Deployment {} ({}) sets no replicas, and neither does the Rollout, which runs Bellwether's default of 1: \
             set spec.replicas to what {}-primary runs before applying.",
            names.target,
            deployment.location(),
            names.target
        ));
    }
    let spec = Map::new().set_some("replicas", replicas).set("selector", selector.clone());
    let stable_service = format!("{}{STABLE_SUFFIX}", names.apex);
    let canary_service = format!("{}{CANARY_SUFFIX}", names.apex);
    let route = format!("{}{ROUTE_SUFFIX}", names.apex);
    let spec = spec
        .set(
            "workloadRef",
            Map::new()
                .set("apiVersion", "apps/v1")
                .set("kind", "Deployment")
                .set("name", names.target.as_str())
                .set("scaleDown", "never"),
        )
        .set_some("progressDeadlineSeconds", deadline)
        .set(
            "strategy",
            Map::new().set(
                "canary",
                Map::new()
                    .set("stableService", stable_service.as_str())
                    .set("canaryService", canary_service.as_str())
                    .set(
                        "trafficRouting",
                        Map::new().set(
                            "gatewayAPI",
                            Map::new()
                                .set("httpRoutes", vec![Yaml::from(Map::new().set("name", route.as_str()))]),
                        ),
                    )
                    .set("steps", plan.steps)
                    .set("onInconclusive", "abort"),
            ),
        );
    let namespace = src.doc.namespace().map(str::to_string);
    let named = |kind: &str, api_version: &str, name: &str| {
        Map::new()
            .set("apiVersion", api_version)
            .set("kind", kind)
            .set("metadata", Map::new().set("name", name).set_some("namespace", namespace.clone()))
    };
    let from = format!("Written by convert for {}.", src.describe());
    let selector_labels = selector.get("matchLabels").cloned();
    let services = [&stable_service, &canary_service].map(|name| Object {
        comments: vec![from.clone()],
        value: named("Service", "v1", name)
            .set(
                "spec",
                Map::new()
                    .set_some("selector", selector_labels.clone())
                    .set("ports", vec![Yaml::from(service.port.clone())]),
            )
            .into(),
    });
    let backend = |name: &str, weight: i64| -> Yaml {
        Map::new().set("name", name).set("port", service.number).set("weight", weight).into()
    };
    let rule = Map::new()
        .set(
            "matches",
            vec![Yaml::from(Map::new().set("path", Map::new().set("type", "PathPrefix").set("value", "/")))],
        )
        .set_some("timeouts", service.timeout.clone().map(|timeout| Map::new().set("request", timeout)))
        .set("backendRefs", vec![backend(&stable_service, 100), backend(&canary_service, 0)]);
    let http_route = Object {
        comments: vec![from.clone()],
        value: named("HTTPRoute", "gateway.networking.k8s.io/v1", &route)
            .set(
                "spec",
                Map::new()
                    .set("parentRefs", service.parents.clone())
                    .set_some("hostnames", service.hosts.clone())
                    .set("rules", vec![Yaml::from(rule)]),
            )
            .into(),
    };
    let rollout = converted(src, "Rollout", spec);
    let template = Object {
        comments: vec![from],
        value: named("AnalysisTemplate", API_VERSION, &names.canary)
            .set(
                "spec",
                Map::new()
                    .set_some("args", (!plan.args.is_empty()).then_some(plan.args))
                    .set("metrics", plan.metrics),
            )
            .into(),
    };
    let [stable, canary] = services;
    vec![rollout, template, stable, canary, http_route]
}

fn names(src: &mut Source) -> Option<Names> {
    src.only("spec.targetRef", &["apiVersion", "kind", "name"], &[]);
    let kind = src.string("spec.targetRef.kind");
    let api_version = src.string("spec.targetRef.apiVersion").unwrap_or_else(|| "apps/v1".into());
    if (api_version.as_str(), kind.as_deref()) != ("apps/v1", Some("Deployment")) {
        src.refuse(
            "spec.targetRef",
            "must reference a Deployment (apps/v1): the one workload a Bellwether Rollout takes its pods from",
        );
    }
    let target = src.required_string("spec.targetRef.name")?;
    let service = src.string("spec.service.name");
    let apex = service.clone().unwrap_or_else(|| target.clone());
    if apex.len() + CANARY_SUFFIX.len() > MAX_SERVICE_NAME {
        src.refuse(
            if service.is_some() { "spec.service.name" } else { "spec.targetRef.name" },
            format!("{apex:?} is too long for the Service {apex}{CANARY_SUFFIX} (at most {MAX_SERVICE_NAME} characters)"),
        );
        return None;
    }
    Some(Names { canary: src.doc.name().to_string(), target, service, apex })
}

/// What the Services and the route take from `spec.service`.
struct Service {
    /// The Services' port, as Flagger wrote it.
    port: Map,
    number: i64,
    timeout: Option<String>,
    parents: Yaml,
    hosts: Option<Yaml>,
}

fn service(src: &mut Source, names: Option<&Names>) -> Option<Service> {
    const SERVICE: &str = "spec.service";
    src.only(
        SERVICE,
        &["name", "port", "portName", "targetPort", "appProtocol", "timeout", "hosts", "gatewayRefs"],
        SERVICE_UNSUPPORTED,
    );
    let at = |key: &str| format!("{SERVICE}.{key}");
    let number = src.integer(&at("port"), 1, 65_535);
    if !src.has(&at("port")) {
        src.refuse(&at("port"), "is required");
    }
    let port_name = src.string(&at("portName")).unwrap_or_else(|| "http".into());
    let target_port =
        if src.has(&at("targetPort")) { src.verbatim(&at("targetPort")) } else { Yaml::from(number?) };
    let app_protocol = src.string(&at("appProtocol"));
    let timeout = src.string(&at("timeout")).and_then(|text| {
        go_duration(&text).and_then(bellwether_duration).map_err(|e| src.refuse(&at("timeout"), e)).ok()
    });
    if src.items(&at("gatewayRefs")) == 0 {
        src.refuse(
            &at("gatewayRefs"),
            "is required with the Gateway API provider: the route convert writes attaches to these Gateways",
        );
    }
    let hosts = (src.items(&at("hosts")) > 0).then(|| src.verbatim(&at("hosts")));
    names?;
    Some(Service {
        port: Map::new()
            .set("name", port_name)
            .set("port", number?)
            .set("targetPort", target_port)
            .set("protocol", "TCP")
            .set_some("appProtocol", app_protocol),
        number: number?,
        timeout,
        parents: src.verbatim(&at("gatewayRefs")),
        hosts,
    })
}

/// The steps, the AnalysisTemplate's metrics and its args.
struct Plan {
    steps: Vec<Yaml>,
    metrics: Vec<Yaml>,
    args: Vec<Yaml>,
}

fn plan(src: &mut Source, field: &str, names: &Names, ctx: &Context) -> Option<Plan> {
    if !src.has(field) {
        src.refuse("spec.analysis", "is required: it says how Flagger shifted traffic and judged the canary");
        return None;
    }
    src.only(
        field,
        &["interval", "threshold", "maxWeight", "stepWeight", "stepWeights", "iterations", "metrics"],
        ANALYSIS_UNSUPPORTED,
    );
    let at = |key: &str| format!("{field}.{key}");
    let mut interval = src
        .string(&at("interval"))
        .map_or(Ok(60_000), |text| go_duration(&text))
        .map_err(|e| src.refuse(&at("interval"), e))
        .ok()?;
    if interval < MIN_INTERVAL_MS {
        src.note(format!(
            "The interval is 10s: Flagger checks no more often, and raised {}ms to it.",
            interval
        ));
        interval = MIN_INTERVAL_MS;
    }
    let interval_text = bellwether_duration(interval).expect("go_duration bounds it");
    let threshold =
        src.integer(&at("threshold"), i64::from(i32::MIN), i64::from(i32::MAX)).unwrap_or(1).max(1);
    let schedule = schedule(src, field)?;
    let steps =
        steps(&schedule, &names.canary, interval).map_err(|e| src.refuse(&at("iterations"), e)).ok()?;
    if steps.len() > MAX_STEPS {
        src.refuse(
            &at(if src.has(&at("stepWeights")) { "stepWeights" } else { "stepWeight" }),
            format!(
                "makes {} steps (a weight and its analysis each), over Bellwether's {MAX_STEPS}: use larger steps",
                steps.len()
            ),
        );
        return None;
    }
    let breach_for = interval
        .checked_mul((threshold - 1) as u64)
        .ok_or_else(|| "overflows".to_string())
        .and_then(bellwether_duration)
        .map_err(|e| {
            src.refuse(&at("threshold"), format!("{threshold} failed checks of {interval_text}: {e}"))
        })
        .ok()?;
    let breach_for = (threshold > 1).then_some(breach_for);
    note_failure_semantics(src, threshold, &interval_text, breach_for.as_deref(), &schedule);
    let count = src.items(&at("metrics"));
    if count == 0 {
        src.refuse(&at("metrics"), "lists no metrics: Bellwether judges a canary on metrics");
    }
    let mut metrics = Vec::new();
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..count {
        let metric_field = format!("{}[{i}]", at("metrics"));
        if let Some(metric) =
            metric(src, &metric_field, names, &interval_text, breach_for.clone(), &mut args, ctx)
        {
            metrics.push(Yaml::from(metric));
        }
    }
    let args = args
        .into_iter()
        .map(|(name, value)| Map::new().set("name", name).set("value", value).into())
        .collect();
    Some(Plan { steps, metrics, args })
}

/// How Flagger moved traffic: the canary's weights, or analysis at no weight (blue/green) for a
/// number of checks.
#[derive(Debug, PartialEq)]
enum Schedule {
    Weights(Vec<i64>),
    Checks(i64),
}

fn schedule(src: &mut Source, field: &str) -> Option<Schedule> {
    let at = |key: &str| format!("{field}.{key}");
    let step = src.integer(&at("stepWeight"), i64::MIN, i64::MAX);
    let max = src.integer(&at("maxWeight"), i64::MIN, i64::MAX);
    let iterations = src.integer(&at("iterations"), i64::MIN, i64::MAX);
    let listed: Vec<Option<i64>> = (0..src.items(&at("stepWeights")))
        .map(|i| src.integer(&format!("{}[{i}]", at("stepWeights")), 1, 100))
        .collect();
    let listed: Option<Vec<i64>> = listed.into_iter().collect();
    let listed = listed?;
    if iterations.is_some() && (step.is_some() || !listed.is_empty()) {
        src.refuse(
            &at("iterations"),
            "is given beside stepWeight(s): convert does not guess which of the two Flagger runs",
        );
        return None;
    }
    if let Some(iterations) = iterations {
        if !(1..=i64::from(i32::MAX)).contains(&iterations) {
            src.refuse(&at("iterations"), format!("{iterations} is not a number of checks"));
            return None;
        }
        return Some(Schedule::Checks(iterations));
    }
    if !listed.is_empty() {
        if listed.windows(2).any(|pair| pair[0] >= pair[1]) {
            src.refuse(&at("stepWeights"), "must rise from step to step");
            return None;
        }
        if max.is_some() {
            src.note("maxWeight is dropped: with stepWeights, Flagger's last weight is the last of them.");
        }
        return Some(Schedule::Weights(listed));
    }
    let Some(step) = step else {
        src.refuse(
            field,
            "has neither stepWeight, stepWeights nor iterations: there is no schedule to convert",
        );
        return None;
    };
    match weights(step, max) {
        Ok(weights) => Some(Schedule::Weights(weights)),
        Err((key, message)) => {
            src.refuse(&at(key), message);
            None
        }
    }
}

/// Flagger's weights for `stepWeight` up to `maxWeight` (100 by default): step, 2 x step, ...,
/// and maxWeight last.
fn weights(step: i64, max: Option<i64>) -> Result<Vec<i64>, (&'static str, String)> {
    let max = max.unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(("maxWeight", format!("{max} is not a percentage of traffic from 1 to 100")));
    }
    if !(1..=100).contains(&step) {
        let why =
            if step == 0 { "never moves traffic" } else { "is not a percentage of traffic from 1 to 100" };
        return Err(("stepWeight", format!("{step} {why}")));
    }
    let mut weights: Vec<i64> = (1..).map(|n| n * step).take_while(|w| *w < max).collect();
    weights.push(max);
    Ok(weights)
}

/// The Rollout's steps for a schedule: each weight and an analysis of one interval after it, or
/// one analysis at no weight for all of blue/green's checks.
fn steps(schedule: &Schedule, template: &str, interval: u64) -> Result<Vec<Yaml>, String> {
    let analysis = |duration: String| -> Yaml {
        Map::new()
            .set(
                "analysis",
                Map::new()
                    .set("templates", vec![Yaml::from(Map::new().set("templateName", template))])
                    .set("duration", duration),
            )
            .into()
    };
    Ok(match schedule {
        Schedule::Weights(weights) => {
            let interval = bellwether_duration(interval)?;
            weights
                .iter()
                .flat_map(|weight| [Map::new().set("setWeight", *weight).into(), analysis(interval.clone())])
                .collect()
        }
        Schedule::Checks(checks) => {
            let total =
                interval.checked_mul(*checks as u64).ok_or_else(|| format!("{checks} checks overflow"))?;
            vec![analysis(bellwether_duration(total).map_err(|e| format!("{checks} checks last {e}"))?)]
        }
    })
}

fn note_failure_semantics(
    src: &mut Source,
    threshold: i64,
    interval: &str,
    breach_for: Option<&str>,
    schedule: &Schedule,
) {
    let schedule_text = match schedule {
        Schedule::Weights(weights) => format!(
            "Each of Flagger's weights ({}) is a setWeight step and an analysis step lasting one interval ({interval})",
            weights.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        ),
        Schedule::Checks(checks) => {
            format!(
                "Flagger's {checks} checks at no canary weight (blue/green) are one analysis step at weight 0"
            )
        }
    };
    let breach = match breach_for {
        Some(breach_for) => format!(
            "a breach holds the step, as a failed check held Flagger's weight, and fails the canary once it has lasted \
             breachFor {breach_for} ({} interval{} after the first failed check, when Flagger reached {threshold} failed \
             checks)",
            threshold - 1,
            if threshold == 2 { "" } else { "s" }
        ),
        None => "the first breach fails the canary, as Flagger rolled back on its first failed check (threshold 1)".into(),
    };
    src.note(format!(
        "Failure: Flagger rolled back after {threshold} failed checks, one check of every metric each {interval}, counted \
         over the whole analysis whether in a row or not. {schedule_text}: {breach}. A step passes once every metric has \
         stayed within its threshold for its whole duration. Scattered failures no longer add up from step to step; a \
         metric that keeps flapping ends Inconclusive, and onInconclusive: abort rolls the canary back, where Flagger \
         would have counted its way to the threshold. As Flagger halted on a query without values and counted it as a \
         failed check, noData is fail."
    ));
}

fn metric(
    src: &mut Source,
    field: &str,
    names: &Names,
    interval: &str,
    breach_for: Option<String>,
    args: &mut BTreeMap<String, String>,
    ctx: &Context,
) -> Option<Map> {
    src.only(
        field,
        &["name", "interval", "thresholdRange", "templateRef", "templateVariables"],
        &[
            ("threshold", "it is deprecated; write the bound as thresholdRange"),
            ("query", "it is deprecated; move the query into a MetricTemplate"),
        ],
    );
    let at = |key: &str| format!("{field}.{key}");
    let name = src.required_string(&at("name"))?;
    let window = match src.string(&at("interval")) {
        Some(text) => go_duration(&text)
            .and_then(bellwether_duration)
            .map_err(|e| src.refuse(&at("interval"), e))
            .ok()?,
        None => "1m".to_string(),
    };
    // The query's range is the metric's interval; Bellwether's `{{interval}}` is the time between
    // measurements, which here is the analysis interval. Where they differ, the range is written out.
    let range = if window == interval { "{{interval}}".to_string() } else { window.clone() };
    src.only(&at("thresholdRange"), &["min", "max"], &[]);
    let min = src.number(&at("thresholdRange.min"));
    let max = src.number(&at("thresholdRange.max"));
    if min.is_none() && max.is_none() {
        src.refuse(
            &at("thresholdRange"),
            "needs min, max or both: Bellwether judges a metric against a bound",
        );
    }
    let mut variables = BTreeMap::new();
    for key in src.keys(&at("templateVariables")) {
        let value_field = format!("{}[{key}]", at("templateVariables"));
        if let Some(value) = src.string(&value_field) {
            variables.insert(key, value);
        }
    }
    let (address, query) = if src.has(&at("templateRef")) {
        template_query(src, &at("templateRef"), names, &range, &variables, ctx)?
    } else {
        let query = match name.as_str() {
            "request-success-rate" => SUCCESS_RATE_QUERY,
            "request-duration" => DURATION_QUERY,
            _ => {
                src.refuse(
                    &at("name"),
                    format!(
                        "{name:?} is neither a built-in metric (request-success-rate, request-duration) nor has a templateRef"
                    ),
                );
                return None;
            }
        };
        src.note(format!(
            "Metric {name} is Flagger's built-in, written with Istio's standard metrics of the requests to the canary's \
             Service, in Flagger's units; for another Gateway, change its query."
        ));
        (address(src, "spec.metricsServer", ctx)?, query.replace("WINDOW", &range))
    };
    for (variable, value) in variables {
        match args.get(&variable) {
            Some(other) if *other != value => src.refuse(
                &format!("{}[{variable}]", at("templateVariables")),
                format!("{value:?} differs from {other:?}, given to another metric: the AnalysisTemplate has one arg {variable:?}"),
            ),
            _ => {
                args.insert(variable, value);
            }
        }
    }
    let judgment = Judgment {
        min,
        max,
        recover_min: None,
        recover_max: None,
        no_data: NoData::Fail,
        reading: Vec::new(),
    };
    Some(
        Map::new()
            .set("name", name)
            .set("interval", interval)
            .set(
                "provider",
                Map::new().set("prometheus", Map::new().set("address", address).set("query", query)),
            )
            .set("threshold", threshold(&judgment, breach_for))
            .set("noData", judgment.no_data.as_str()),
    )
}

/// The address and query of the MetricTemplate at `field`'s reference, for this Canary.
fn template_query(
    src: &mut Source,
    field: &str,
    names: &Names,
    range: &str,
    variables: &BTreeMap<String, String>,
    ctx: &Context,
) -> Option<(String, String)> {
    src.only(field, &["name", "namespace", "apiVersion", "kind"], &[]);
    let name = src.required_string(&format!("{field}.name"))?;
    let namespace =
        src.string(&format!("{field}.namespace")).or_else(|| src.doc.namespace().map(str::to_string));
    let Some(doc) = ctx.find("flagger.app", "MetricTemplate", &name, namespace.as_deref()) else {
        src.refuse(
            field,
            format!("MetricTemplate {name:?} is not among the files: convert it together with the Canary"),
        );
        return None;
    };
    let mut template = Source::new(doc);
    template.only("spec", &["provider", "query"], &[]);
    template.only("spec.provider", &["type", "address", "insecureSkipVerify", "secretRef"], &[(
        "secretRef",
        "Flagger picks basic or bearer auth from the Secret's keys; write the template's auth in Bellwether's \
         AnalysisTemplate by hand (auth.basic or auth.bearer)",
    )]);
    match template.string("spec.provider.type").as_deref() {
        Some("prometheus") => {}
        Some("influxdb") => {
            template.refuse(
                "spec.provider.type",
                format!("\"influxdb\" is not converted: {}", super::argo::INFLUX_FLUX),
            );
        }
        Some("datadog") => template.refuse(
            "spec.provider.type",
            format!("\"datadog\" is not converted: {}", super::argo::DATADOG_BY_HAND),
        ),
        Some(other) => template.refuse(
            "spec.provider.type",
            format!("{other:?} is not converted: {}", super::argo::NO_SUCH_PROVIDER),
        ),
        None => template.refuse("spec.provider.type", "is required"),
    }
    if template.boolean("spec.provider.insecureSkipVerify") == Some(true) {
        template.refuse(
            "spec.provider.insecureSkipVerify",
            "is not converted: Bellwether always verifies the Prometheus server's certificate",
        );
    }
    let address = address(&mut template, "spec.provider.address", ctx);
    let query = template.required_string("spec.query").and_then(|query| {
        flagger_query(&query, names, range, variables).map_err(|e| template.refuse("spec.query", e)).ok()
    });
    if let Some(query) = &query {
        note_regex_args(&mut template, query, "Flagger");
    }
    src.adopt(template);
    Some((address?, query?))
}

/// A MetricTemplate's query for one Canary, its variables as Bellwether's.
fn flagger_query(
    query: &str,
    names: &Names,
    range: &str,
    variables: &BTreeMap<String, String>,
) -> Result<String, String> {
    expressions::rewrite_placeholders(query, |name, after| {
        let builtin = |text: &str| Ok((text.to_string(), 0));
        match name {
            "namespace" => builtin("{{rollout.namespace}}"),
            "name" => builtin("{{rollout.name}}"),
            "interval" => builtin(range),
            "target" | "service" => {
                // Flagger's `{{ target }}` is the Deployment, its `{{ service }}` spec.service.name;
                // with `-canary` or `-primary` after it, the name of one of Flagger's Services, which
                // Bellwether's variables name for its own.
                let names_apex = match name {
                    "target" => names.service.as_ref().is_none_or(|service| *service == names.target),
                    _ => names.service.is_some(),
                };
                match (after.strip_prefix("-canary"), after.strip_prefix("-primary")) {
                    (Some(_), _) if names_apex => Ok(("{{canary.service}}".into(), "-canary".len())),
                    (_, Some(_)) if names_apex => Ok(("{{stable.service}}".into(), "-primary".len())),
                    _ => Err(format!(
                        "{{{{ {name} }}}} names Flagger's {}, whose pods were the canary's; Bellwether's canary runs in the \
                         Rollout's own ReplicaSet: select it by revision=\"{{{{revision}}}}\" or by the Service \
                         {{{{canary.service}}}}",
                        if name == "target" { "Deployment" } else { "Service" }
                    )),
                }
            }
            "ingress" => {
                Err("{{ ingress }} names an Ingress; Bellwether shifts traffic with Gateway API routes"
                    .into())
            }
            _ => match name.strip_prefix("variables.") {
                Some(variable) if variables.contains_key(variable) => {
                    Ok((format!("{{{{args.{variable}}}}}"), 0))
                }
                Some(variable) => {
                    Err(format!("{{{{ variables.{variable} }}}} is not among the metric's templateVariables"))
                }
                None => Err(format!(
                    "{{{{ {name} }}}} is not a Flagger query variable Bellwether has an equivalent for"
                )),
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flagger_weights() {
        assert_eq!(weights(10, Some(50)), Ok(vec![10, 20, 30, 40, 50]));
        assert_eq!(weights(30, Some(50)), Ok(vec![30, 50]));
        assert_eq!(weights(20, None), Ok(vec![20, 40, 60, 80, 100]));
        assert_eq!(weights(60, Some(50)), Ok(vec![50]));
        assert_eq!(weights(0, Some(50)), Err(("stepWeight", "0 never moves traffic".into())));
        assert!(weights(-5, Some(50)).is_err());
        assert_eq!(weights(10, Some(150)).unwrap_err().0, "maxWeight");
        assert_eq!(weights(10, Some(0)).unwrap_err().0, "maxWeight");
    }

    fn names(service: Option<&str>) -> Names {
        Names {
            canary: "podinfo".into(),
            target: "podinfo".into(),
            service: service.map(String::from),
            apex: service.unwrap_or("podinfo").into(),
        }
    }

    #[test]
    fn flagger_variables_become_bellwether_ones() {
        let variables = BTreeMap::from([("direction".to_string(), "inbound".to_string())]);
        let query = r#"x{ns="{{ namespace }}", c=~"{{ namespace }}_{{ target }}-canary_[0-9]+", d="{{ variables.direction }}", p="{{target}}-primary"}[{{ interval }}]"#;
        assert_eq!(
            flagger_query(query, &names(None), "{{interval}}", &variables).as_deref(),
            Ok(
                r#"x{ns="{{rollout.namespace}}", c=~"{{rollout.namespace}}_{{canary.service}}_[0-9]+", d="{{args.direction}}", p="{{stable.service}}"}[{{interval}}]"#
            )
        );
        assert_eq!(
            flagger_query("x[{{ interval }}]", &names(None), "30s", &variables).as_deref(),
            Ok("x[30s]")
        );
        // With its own service name, `{{ target }}-canary` is no longer a Service of the Canary.
        assert!(
            flagger_query("x{s=\"{{ target }}-canary\"}", &names(Some("web")), "1m", &variables).is_err()
        );
        assert_eq!(
            flagger_query("x{s=\"{{ service }}-canary\"}", &names(Some("web")), "1m", &variables).as_deref(),
            Ok("x{s=\"{{canary.service}}\"}")
        );
        for (query, reason) in [
            ("x{d=\"{{ target }}\"}", "Bellwether's canary runs in the Rollout's own ReplicaSet"),
            ("x{i=\"{{ ingress }}\"}", "Ingress"),
            ("x{v=\"{{ variables.other }}\"}", "not among the metric's templateVariables"),
            ("x{v=\"{{ .Env.HOME }}\"}", "not a Flagger query variable"),
        ] {
            let error = flagger_query(query, &names(None), "1m", &variables).unwrap_err();
            assert!(error.contains(reason), "{query}: {error}");
        }
    }
}
