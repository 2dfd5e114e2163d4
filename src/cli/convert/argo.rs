//! Argo Rollouts' `Rollout` (the canary strategy, with the Gateway API plugin), `AnalysisTemplate`
//! and `ClusterAnalysisTemplate`, as Bellwether's. The objects keep their names, so that the
//! Rollout's template references still hold.

use super::expressions::{self, Judgment, NoData, bellwether_duration, go_duration};
use super::output::{Map, Object, number};
use super::source::{Source, Unsupported};
use super::{Context, converted};
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};

/// The Gateway API traffic router plugin's key under `trafficRouting.plugins`.
const GATEWAY_PLUGIN: &str = "argoproj-labs/gatewayAPI";

/// Argo's default time between measurements is none (one measurement); where `failureLimit` needs
/// one to become a duration, Bellwether's default interval stands in.
const BELLWETHER_DEFAULT_INTERVAL_MS: u64 = 60_000;

const ROLLOUT_UNSUPPORTED: &[Unsupported] = &[
    ("restartAt", "a restart that Argo was asked for; Bellwether has no restart request"),
    (
        "rollbackWindow",
        "Bellwether makes a rollback to the stable revision Healthy at once, without steps, and has no window for older revisions",
    ),
];

const CANARY_UNSUPPORTED: &[Unsupported] = &[
    ("antiAffinity", "Bellwether adds no anti-affinity between revisions; put it in the pod template"),
    (
        "canaryMetadata",
        "Bellwether labels each revision's pods bellwether.dev/revision instead of adding canary labels; select the canary by {{revision}} or {{canary.service}} in queries",
    ),
    (
        "stableMetadata",
        "Bellwether labels each revision's pods bellwether.dev/revision instead of adding stable labels; select stable by {{stable.revision}} or {{stable.service}} in queries",
    ),
    ("pingPong", "Bellwether keeps one stable and one canary Service and moves their selectors"),
    ("minPodsPerReplicaSet", "Bellwether runs at least one canary pod and keeps stable at its replicas"),
];

const STEP_UNSUPPORTED: &[Unsupported] = &[
    (
        "experiment",
        "Bellwether runs no experiments; compare the canary with stable in an analysis instead (the compare judgment)",
    ),
    (
        "setCanaryScale",
        "Bellwether scales the canary to its traffic weight and has no step that scales it otherwise",
    ),
];

const ROUTER_UNSUPPORTED: &str = "Bellwether shifts traffic with Gateway API routes only; move the route to an HTTPRoute managed by the Gateway API plugin first";

/// Why an Argo Rollouts or Flagger InfluxDB metric is not converted.
pub(super) const INFLUX_FLUX: &str = "its query is Flux, for InfluxDB 2; Bellwether's influxdb provider runs \
     InfluxQL on InfluxDB 1.x: write the query in InfluxQL by hand";

/// Why an Argo Rollouts or Flagger Datadog metric is not converted.
pub(super) const DATADOG_BY_HAND: &str = "convert does not translate Datadog metrics: write Bellwether's \
     provider.datadog by hand (docs/analysis.md, Measure through Datadog)";

/// Why a metric of a provider Bellwether does not have is not converted.
pub(super) const NO_SUCH_PROVIDER: &str = "Bellwether has no such metric provider: its providers are prometheus, influxdb, datadog, web and job \
     (docs/providers.md)";

const PROVIDER_UNSUPPORTED: &[Unsupported] = &[
    (
        "web",
        "convert does not translate web metrics: write Bellwether's provider.web, judged by a threshold, by hand (docs/analysis.md, Measure through a web endpoint)",
    ),
    (
        "job",
        "convert does not translate Job metrics yet: write Bellwether's provider.job by hand (docs/analysis.md, Job metrics)",
    ),
    ("datadog", DATADOG_BY_HAND),
    ("newRelic", NO_SUCH_PROVIDER),
    ("wavefront", NO_SUCH_PROVIDER),
    ("cloudWatch", NO_SUCH_PROVIDER),
    ("graphite", NO_SUCH_PROVIDER),
    ("influxdb", INFLUX_FLUX),
    ("skywalking", NO_SUCH_PROVIDER),
    ("plugin", NO_SUCH_PROVIDER),
    (
        "kayenta",
        "Bellwether compares the canary with stable itself: see the compare and sequential judgments",
    ),
];

/// A template's args as Bellwether can carry them.
#[derive(Default)]
struct Args {
    /// Plain args, with their defaults, in the template's order: Bellwether args.
    plain: Vec<(String, Option<String>)>,
    /// Args read from a Secret: usable as a header or as auth, where Bellwether reads Secrets too.
    secrets: BTreeMap<String, (String, String)>,
    /// Args read from the Rollout's own fields, which Bellwether's variables stand in for.
    variables: BTreeMap<String, &'static str>,
}

/// An Argo AnalysisTemplate or ClusterAnalysisTemplate, as the Bellwether kind of the same name.
pub fn template(src: &mut Source, ctx: &Context) -> Vec<Object> {
    src.only("spec", &["metrics", "args", "dryRun", "measurementRetention"], &[]);
    if src.has("spec.measurementRetention") {
        src.note(
            "measurementRetention is dropped: Bellwether keeps a fixed number of the latest measurements.",
        );
    }
    let args = template_args(src);
    let dry_run = dry_run_metrics(src);
    let count = src.items("spec.metrics");
    if count == 0 {
        src.refuse("spec.metrics", "must list at least one metric");
    }
    let mut metrics = Vec::new();
    let mut names = BTreeSet::new();
    for i in 0..count {
        let field = format!("spec.metrics[{i}]");
        let name = src.required_string(&format!("{field}.name")).unwrap_or_default();
        names.insert(name.clone());
        let dry = dry_run.iter().any(|pattern| pattern == ".*" || *pattern == name);
        if let Some(metric) = metric(src, &field, &name, &args, dry, ctx) {
            metrics.push(Yaml::from(metric));
        }
    }
    for (i, pattern) in dry_run.iter().enumerate() {
        if pattern != ".*" && !names.contains(pattern) {
            src.refuse(&format!("spec.dryRun[{i}].metricName"), format!("no metric is named {pattern:?}"));
        }
    }
    if src.is_refused() {
        return Vec::new();
    }
    let declared: Vec<Yaml> = args
        .plain
        .iter()
        .map(|(name, value)| Map::new().set("name", name.as_str()).set_some("value", value.clone()).into())
        .collect();
    let spec =
        Map::new().set_some("args", (!declared.is_empty()).then_some(declared)).set("metrics", metrics);
    vec![converted(src, src.doc.kind(), spec)]
}

fn template_args(src: &mut Source) -> Args {
    let mut args = Args::default();
    for i in 0..src.items("spec.args") {
        let field = format!("spec.args[{i}]");
        src.only(&field, &["name", "value", "valueFrom"], &[]);
        let Some(name) = src.required_string(&format!("{field}.name")) else { continue };
        let value = src.string(&format!("{field}.value"));
        if !src.has(&format!("{field}.valueFrom")) {
            args.plain.push((name, value));
            continue;
        }
        let from = format!("{field}.valueFrom");
        src.only(&from, &["secretKeyRef", "fieldRef"], &[]);
        if src.has(&format!("{from}.secretKeyRef")) {
            let secret = src.required_string(&format!("{from}.secretKeyRef.name"));
            let key = src.required_string(&format!("{from}.secretKeyRef.key"));
            if let (Some(secret), Some(key)) = (secret, key) {
                args.secrets.insert(name, (secret, key));
            }
        } else if let Some(path) = src.string(&format!("{from}.fieldRef.fieldPath")) {
            match path.as_str() {
                "metadata.name" => {
                    args.variables.insert(name, "rollout.name");
                }
                "metadata.namespace" => {
                    args.variables.insert(name, "rollout.namespace");
                }
                _ => src.refuse(
                    &format!("{from}.fieldRef.fieldPath"),
                    format!(
                        "{path:?} is read from the Rollout when Argo runs the analysis; Bellwether has variables for \
                         metadata.name and metadata.namespace only ({{{{rollout.name}}}}, {{{{rollout.namespace}}}}): \
                         pass the value as an arg from the Rollout instead"
                    ),
                ),
            }
        }
    }
    args
}

/// The metric names (or `.*`, every one) that the template's `dryRun` names.
fn dry_run_metrics(src: &mut Source) -> Vec<String> {
    (0..src.items("spec.dryRun"))
        .filter_map(|i| {
            let field = format!("spec.dryRun[{i}].metricName");
            let pattern = src.required_string(&field)?;
            let literal = pattern.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if pattern != ".*" && !literal {
                src.refuse(
                    &field,
                    "is a regular expression; convert takes a metric's name or .* (every metric)",
                );
                return None;
            }
            Some(pattern)
        })
        .collect()
}

fn duration_at(src: &mut Source, field: &str) -> Option<u64> {
    let text = src.string(field)?;
    go_duration(&text).map_err(|e| src.refuse(field, e)).ok()
}

fn metric(
    src: &mut Source,
    field: &str,
    name: &str,
    args: &Args,
    dry_run: bool,
    ctx: &Context,
) -> Option<Map> {
    src.only(
        field,
        &[
            "name",
            "interval",
            "initialDelay",
            "count",
            "successCondition",
            "failureCondition",
            "failureLimit",
            "inconclusiveLimit",
            "consecutiveErrorLimit",
            "provider",
        ],
        &[("consecutiveSuccessLimit", "Bellwether passes a metric on its success window (count or the step's duration), not on successes in a row")],
    );
    let at = |key: &str| format!("{field}.{key}");
    let interval = duration_at(src, &at("interval"));
    if interval.is_some_and(|ms| ms < 1000) {
        src.refuse(&at("interval"), "is under 1s; Bellwether measures at most once a second");
    }
    let initial_delay = duration_at(src, &at("initialDelay"));
    let count = src.integer(&at("count"), 0, i64::from(i32::MAX)).filter(|c| *c > 0);
    let failure_limit = src.integer(&at("failureLimit"), -1, i64::from(i32::MAX)).unwrap_or(0);
    if failure_limit < 0 {
        src.refuse(
            &at("failureLimit"),
            "-1 never fails the metric; in Bellwether, measure without deciding with dryRun: true on the metric",
        );
    }
    if src.has(&at("inconclusiveLimit")) {
        src.note(format!(
            "Metric {name}: inconclusiveLimit is dropped: Bellwether has no count of inconclusive measurements; \
             values between the two conditions are marginal, and a metric that cannot show a whole healthy \
             window is Inconclusive."
        ));
    }
    let error_limit = src.integer(&at("consecutiveErrorLimit"), 0, i64::from(i32::MAX));
    let success = src.string(&at("successCondition"));
    let failure = src.string(&at("failureCondition"));
    let judgment = match expressions::judgment(success.as_deref(), failure.as_deref()) {
        Ok(judgment) => Some(judgment),
        Err(error) => {
            let at_fault = if error.starts_with("failureCondition") {
                at("failureCondition")
            } else if success.is_some() {
                at("successCondition")
            } else {
                field.to_string()
            };
            src.refuse(&at_fault, error);
            None
        }
    };
    let provider = prometheus(src, &at("provider"), args, ctx);
    // Argo measures once when a metric has neither interval nor count.
    let count = count.or((interval.is_none()).then_some(1));
    let (judgment, provider) = (judgment?, provider?);
    let breach_for = u64::try_from(failure_limit)
        .ok()
        .filter(|limit| *limit > 0)
        .map(|limit| {
            interval
                .unwrap_or(BELLWETHER_DEFAULT_INTERVAL_MS)
                .checked_mul(limit)
                .ok_or_else(|| "overflows".to_string())
        })
        .transpose()
        .and_then(|ms| ms.map(bellwether_duration).transpose());
    let breach_for = match breach_for {
        Ok(breach_for) => breach_for,
        Err(error) => {
            src.refuse(
                &at("failureLimit"),
                format!("{failure_limit} intervals make a breachFor that {error}"),
            );
            return None;
        }
    };
    note_failure_semantics(src, name, failure_limit, interval, count, breach_for.as_deref(), &judgment);
    Some(
        Map::new()
            .set("name", name)
            .set_some("interval", interval.map(|ms| bellwether_duration(ms).expect("go_duration bounds it")))
            .set_some(
                "initialDelay",
                initial_delay.map(|ms| bellwether_duration(ms).expect("go_duration bounds it")),
            )
            .set_some("count", count)
            .set("provider", Map::new().set("prometheus", provider))
            .set("threshold", threshold(&judgment, breach_for))
            .set("noData", judgment.no_data.as_str())
            .set_some("consecutiveErrorLimit", error_limit)
            .set_some("dryRun", dry_run.then_some(true)),
    )
}

/// A Bellwether threshold from a judgment and a breach duration.
pub fn threshold(judgment: &Judgment, breach_for: Option<String>) -> Map {
    let recover = Map::new()
        .set_some("min", judgment.recover_min.map(number))
        .set_some("max", judgment.recover_max.map(number));
    let mut hysteresis = Map::new().set_some("breachFor", breach_for);
    if !recover.is_empty() {
        hysteresis.insert("recover", recover);
    }
    Map::new()
        .set_some("min", judgment.min.map(number))
        .set_some("max", judgment.max.map(number))
        .set_some("hysteresis", (!hysteresis.is_empty()).then_some(hysteresis))
}

fn note_failure_semantics(
    src: &mut Source,
    name: &str,
    failure_limit: i64,
    interval: Option<u64>,
    count: Option<i64>,
    breach_for: Option<&str>,
    judgment: &Judgment,
) {
    let every = interval.map_or_else(
        || "once".to_string(),
        |ms| format!("every {}", bellwether_duration(ms).unwrap_or_default()),
    );
    let mut text = format!("Metric {name} (measured {every}): ");
    match breach_for {
        None => text.push_str(
            "Argo failed it on its first failed measurement (failureLimit 0); so does Bellwether: no breachFor, the \
             first breach fails it.",
        ),
        Some(breach_for) => text.push_str(&format!(
            "Argo failed it on failed measurement number {} (failureLimit {failure_limit}), counted over the whole \
             run whether in a row or not. Bellwether fails it once a breach has lasted breachFor {breach_for} \
             ({failure_limit} interval{}), and a value back within the threshold stops that clock: a lasting breach \
             fails about when it did in Argo, while scattered single failures no longer add up.",
            failure_limit + 1,
            if failure_limit == 1 { "" } else { "s" }
        )),
    }
    if let Some(count) = count.filter(|c| failure_limit >= *c) {
        text.push_str(&format!(
            " Argo could never fail this metric (failureLimit {failure_limit} with count {count}); Bellwether fails it \
             when a breach lasts breachFor."
        ));
    }
    for reading in &judgment.reading {
        text.push(' ');
        text.push_str(reading);
    }
    if judgment.no_data == NoData::Pass {
        text.push_str(" Bellwether otherwise never lets missing data promote; this keeps Argo's meaning.");
    }
    src.note(text);
}

/// The Prometheus provider, as Bellwether's.
fn prometheus(src: &mut Source, field: &str, args: &Args, ctx: &Context) -> Option<Map> {
    src.only(field, &["prometheus"], PROVIDER_UNSUPPORTED);
    let others = src.keys(field).iter().any(|key| key != "prometheus");
    let field = format!("{field}.prometheus");
    if !src.has(&field) {
        if !others {
            src.refuse(&field, "is required: convert translates Prometheus metrics");
        }
        return None;
    }
    src.only(
        &field,
        &["address", "query", "timeout", "headers", "authentication"],
        &[
            (
                "rangeQuery",
                "Bellwether runs instant queries; write the range into the query (for example max_over_time)",
            ),
            ("insecure", "Bellwether always verifies the Prometheus server's TLS certificate"),
            ("caCert", "Bellwether trusts the CAs of the controller's system; it has no CA per template"),
        ],
    );
    let at = |key: &str| format!("{field}.{key}");
    let address = address(src, &at("address"), ctx);
    let query = src
        .required_string(&at("query"))
        .and_then(|query| argo_query(&query, args).map_err(|e| src.refuse(&at("query"), e)).ok());
    if let Some(query) = &query {
        note_regex_args(src, query, "Argo");
    }
    let timeout = src.integer(&at("timeout"), 0, i64::MAX).filter(|t| *t > 0).and_then(|t| {
        expressions::seconds(t).and_then(bellwether_duration).map_err(|e| src.refuse(&at("timeout"), e)).ok()
    });
    let mut headers = Vec::new();
    let mut auth = Map::new();
    for i in 0..src.items(&at("headers")) {
        let header = format!("{}[{i}]", at("headers"));
        src.only(&header, &["key", "value"], &[]);
        let (Some(key), Some(value)) =
            (src.required_string(&format!("{header}.key")), src.required_string(&format!("{header}.value")))
        else {
            continue;
        };
        let bearer =
            key.eq_ignore_ascii_case("authorization").then(|| value.strip_prefix("Bearer ")).flatten();
        match (bearer, secret_arg(value.trim(), args)) {
            (Some(token), _) => match secret_arg(token.trim(), args) {
                Some(secret) => auth.insert("bearer", secret),
                None => src.refuse(
                    &format!("{header}.value"),
                    "Bellwether reads a bearer token from a Secret: the value must be Bearer {{args.NAME}} with the arg's \
                     valueFrom.secretKeyRef",
                ),
            },
            (None, Some(secret)) => {
                headers.push(Yaml::from(Map::new().set("name", key.as_str()).set("valueFrom", secret)));
            }
            (None, None) => src.refuse(
                &format!("{header}.value"),
                format!(
                    "is written into the template; Bellwether reads header values from a Secret only: put it in one and \
                     pass it as {{{{args.NAME}}}} with valueFrom.secretKeyRef (header {key:?})"
                ),
            ),
        }
    }
    let authentication = at("authentication");
    src.only(
        &authentication,
        &["basicAuth"],
        &[
            (
                "sigv4",
                "Bellwether signs no requests for AWS; it takes a bearer token or basic auth from a Secret",
            ),
            (
                "oauth2",
                "Bellwether fetches no OAuth2 tokens; it takes a bearer token or basic auth from a Secret",
            ),
        ],
    );
    if src.has(&format!("{authentication}.basicAuth")) {
        let mut basic = Map::new();
        for part in ["username", "password"] {
            let part_field = format!("{authentication}.basicAuth.{part}");
            let Some(value) = src.required_string(&part_field) else { continue };
            match secret_arg(value.trim(), args) {
                Some(secret) => basic.insert(part, secret),
                None => src.refuse(
                    &part_field,
                    "Bellwether reads basic auth from a Secret: the value must be {{args.NAME}} with the arg's \
                     valueFrom.secretKeyRef",
                ),
            }
        }
        auth.insert("basic", basic);
    }
    Some(
        Map::new()
            .set("address", address?)
            .set("query", query?)
            .set_some("timeout", timeout)
            .set_some("headers", (!headers.is_empty()).then_some(headers))
            .set_some("auth", (!auth.is_empty()).then_some(auth)),
    )
}

/// Says which args of `query` sit in a regex matcher, where their values now match only themselves.
pub fn note_regex_args(src: &mut Source, query: &str, tool: &str) {
    let args: Vec<String> = expressions::placeholders_in_regex(query)
        .into_iter()
        .filter(|name| name.starts_with("args."))
        .collect();
    if !args.is_empty() {
        src.note(format!(
            "{} inside a =~ or !~ matcher: its value is matched as literal text, where {tool} pasted it in as a \
             regular expression; Bellwether escapes every value it puts into a query.",
            args.iter().map(|a| format!("{{{{{a}}}}}")).collect::<Vec<_>>().join(", ")
        ));
    }
}

/// The Prometheus address at `field`, or the one given on the command line.
pub fn address(src: &mut Source, field: &str, ctx: &Context) -> Option<String> {
    let address = match src.string(field).filter(|a| !a.is_empty()) {
        Some(address) => address,
        None => match ctx.prometheus {
            Some(address) => address.to_string(),
            None => {
                src.refuse(
                    field,
                    "is not set, so the source tool used its own default Prometheus: give its address with --prometheus",
                );
                return None;
            }
        },
    };
    if address.contains("{{") {
        src.refuse(field, "is filled in from args; Bellwether's Prometheus address is written out");
        return None;
    }
    if !(address.starts_with("http://") || address.starts_with("https://")) {
        src.refuse(field, format!("{address:?} must be an http:// or https:// URL"));
        return None;
    }
    Some(address)
}

/// `{"name": SECRET, "key": KEY}` when `text` is exactly one placeholder of an arg read from a
/// Secret.
fn secret_arg(text: &str, args: &Args) -> Option<Yaml> {
    let name = text.strip_prefix("{{")?.strip_suffix("}}")?.trim().strip_prefix("args.")?.trim();
    let (secret, key) = args.secrets.get(name)?;
    Some(Map::new().set("name", secret.as_str()).set("key", key.as_str()).into())
}

/// An Argo query with its placeholders as Bellwether writes them.
fn argo_query(query: &str, args: &Args) -> Result<String, String> {
    expressions::rewrite_placeholders(query, |name, _| {
        let Some(arg) = name.strip_prefix("args.").map(str::trim) else {
            return Err(format!("{{{{{name}}}}} is not an Argo arg; Bellwether has no equivalent"));
        };
        if let Some(variable) = args.variables.get(arg) {
            return Ok((format!("{{{{{variable}}}}}"), 0));
        }
        if args.secrets.contains_key(arg) {
            return Err(format!(
                "{{{{args.{arg}}}}} is read from a Secret; Bellwether puts Secrets into headers and auth only, never into a query"
            ));
        }
        if args.plain.iter().any(|(name, _)| name == arg) {
            return Ok((format!("{{{{args.{arg}}}}}"), 0));
        }
        Err(format!("{{{{args.{arg}}}}}: the template declares no arg {arg:?}"))
    })
}

/// An Argo Rollout with the canary strategy, as a Bellwether Rollout of the same name.
pub fn rollout(src: &mut Source, ctx: &Context) -> Vec<Object> {
    src.only(
        "spec",
        &[
            "replicas",
            "selector",
            "template",
            "workloadRef",
            "minReadySeconds",
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
            "progressDeadlineAbort",
            "paused",
            "strategy",
            "analysis",
        ],
        ROLLOUT_UNSUPPORTED,
    );
    if src.integer("spec.minReadySeconds", 0, i64::from(i32::MAX)).is_some_and(|s| s > 0) {
        src.refuse(
            "spec.minReadySeconds",
            "is not converted: Bellwether counts a pod available once it is ready",
        );
    }
    let workload = workload(src);
    let replicas = src.integer("spec.replicas", 0, i64::from(i32::MAX));
    let selector = selector(src, workload.as_ref(), ctx);
    let history = src.integer("spec.revisionHistoryLimit", 0, i64::from(i32::MAX));
    let run_history = run_history(src);
    let deadline = src.integer("spec.progressDeadlineSeconds", 1, i64::from(i32::MAX));
    if !src.boolean("spec.progressDeadlineAbort").unwrap_or(false) {
        src.note(
            "Argo only marked a canary that missed progressDeadlineSeconds as Degraded (progressDeadlineAbort was not \
             set); Bellwether aborts it, sending all traffic back to stable.",
        );
    }
    let paused = src.boolean("spec.paused").filter(|p| *p);
    src.only("spec.strategy", &["canary"], &[(
        "blueGreen",
        "Bellwether ships every revision as a canary; write the switch as canary steps (for example an analysis at \
         setWeight 0, then setWeight 100)",
    )]);
    if !src.has("spec.strategy.canary") {
        src.refuse("spec.strategy", "has no canary strategy to convert");
        return Vec::new();
    }
    let canary = canary(src, ctx);
    let (Some(workload), Some(canary)) = (workload, canary) else {
        return Vec::new();
    };
    if src.is_refused() {
        return Vec::new();
    }
    let mut spec = Map::new().set_some("replicas", replicas).set_some("selector", selector);
    match workload {
        Workload::Template => spec.insert("template", src.verbatim("spec.template")),
        Workload::Ref(reference) => spec.insert("workloadRef", reference),
    }
    let spec = spec
        .set_some("revisionHistoryLimit", history)
        .set_some("analysisRunHistoryLimit", run_history)
        .set_some("progressDeadlineSeconds", deadline)
        .set_some("paused", paused)
        .set("strategy", Map::new().set("canary", canary));
    vec![converted(src, "Rollout", spec)]
}

/// The Rollout's selector: its own, or with `workloadRef` the Deployment's, which Argo took when
/// the Rollout had none.
fn selector(src: &mut Source, workload: Option<&Workload>, ctx: &Context) -> Option<Yaml> {
    if src.has("spec.selector") {
        return Some(src.verbatim("spec.selector"));
    }
    let deployment = match workload {
        Some(Workload::Ref(_)) => {
            src.string("spec.workloadRef.name").and_then(|name| ctx.deployment(&name, src.doc.namespace()))
        }
        _ => None,
    };
    match deployment.and_then(|d| d.selector().map(|selector| (selector, d.location()))) {
        Some((selector, location)) => {
            src.note(format!("selector is the Deployment's ({location}), which Argo took it from."));
            Some(selector)
        }
        None => {
            src.refuse(
                "spec",
                "has no selector: Bellwether's Rollout needs one written out; give the Deployment of workloadRef \
                 with -f, whose selector convert then takes as Argo did, or write spec.selector",
            );
            None
        }
    }
}

/// Where the Rollout's pods come from.
enum Workload {
    Template,
    Ref(Map),
}

/// The Rollout's workload; none when it is refused.
fn workload(src: &mut Source) -> Option<Workload> {
    match (src.has("spec.template"), src.has("spec.workloadRef")) {
        (true, false) => Some(Workload::Template),
        (false, true) => {
            let field = "spec.workloadRef";
            src.only(field, &["apiVersion", "kind", "name", "scaleDown"], &[]);
            let api_version = src.string("spec.workloadRef.apiVersion");
            let kind = src.string("spec.workloadRef.kind");
            if (api_version.as_deref(), kind.as_deref()) != (Some("apps/v1"), Some("Deployment")) {
                src.refuse(field, "must reference a Deployment (apiVersion apps/v1, kind Deployment): the one workload Bellwether takes a pod template from");
            }
            let name = src.required_string("spec.workloadRef.name");
            let scale_down = src.string("spec.workloadRef.scaleDown").map(|s| s.to_ascii_lowercase());
            let scale_down = match scale_down.as_deref() {
                None => None,
                Some("never") => Some("never"),
                Some("onsuccess") => Some("onSuccess"),
                Some("progressively") => Some("progressively"),
                Some(other) => {
                    src.refuse(
                        "spec.workloadRef.scaleDown",
                        format!("{other:?} is not never, onsuccess or progressively"),
                    );
                    None
                }
            };
            Some(Workload::Ref(
                Map::new()
                    .set("apiVersion", "apps/v1")
                    .set("kind", "Deployment")
                    .set("name", name?)
                    .set_some("scaleDown", scale_down),
            ))
        }
        (true, true) => {
            src.refuse(
                "spec.workloadRef",
                "is given beside spec.template; a Rollout takes its pods from one of them",
            );
            None
        }
        (false, false) => {
            src.refuse("spec", "has neither template nor workloadRef");
            None
        }
    }
}

fn run_history(src: &mut Source) -> Option<Map> {
    src.only("spec.analysis", &["successfulRunHistoryLimit", "unsuccessfulRunHistoryLimit"], &[]);
    let limits = Map::new()
        .set_some("successful", src.integer("spec.analysis.successfulRunHistoryLimit", 0, 100))
        .set_some("unsuccessful", src.integer("spec.analysis.unsuccessfulRunHistoryLimit", 0, 100));
    (!limits.is_empty()).then_some(limits)
}

fn canary(src: &mut Source, ctx: &Context) -> Option<Map> {
    const CANARY: &str = "spec.strategy.canary";
    let at = |key: &str| format!("{CANARY}.{key}");
    src.only(
        CANARY,
        &[
            "canaryService",
            "stableService",
            "steps",
            "trafficRouting",
            "analysis",
            "scaleDownDelaySeconds",
            "scaleDownDelayRevisionLimit",
            "abortScaleDownDelaySeconds",
            "dynamicStableScale",
            "maxSurge",
            "maxUnavailable",
        ],
        CANARY_UNSUPPORTED,
    );
    let stable = src.required_string(&at("stableService"));
    let canary = src.required_string(&at("canaryService"));
    if src.has(&at("maxSurge")) || src.has(&at("maxUnavailable")) {
        src.note(
            "maxSurge and maxUnavailable are dropped: Bellwether scales the canary to its share of traffic and keeps \
             stable at full scale (with dynamicStableScale, scales stable down as the canary takes traffic).",
        );
    }
    if src.has(&at("scaleDownDelayRevisionLimit")) {
        src.note("scaleDownDelayRevisionLimit is dropped: Bellwether scales each old revision down after its own delay.");
    }
    let (routing, traffic) = traffic_routing(src);
    let steps = steps(src, ctx, &traffic);
    let background =
        src.has(&at("analysis")).then(|| background(src, steps.as_ref().map_or(0, Vec::len), ctx));
    let scale_down = src.integer(&at("scaleDownDelaySeconds"), 0, i64::from(i32::MAX));
    let abort_scale_down = src.integer(&at("abortScaleDownDelaySeconds"), 0, i64::from(i32::MAX));
    if abort_scale_down == Some(0) {
        src.refuse(
            &at("abortScaleDownDelaySeconds"),
            "0 kept an aborted canary's pods forever in Argo; in Bellwether it scales them down at once: choose how \
             long to keep them",
        );
    }
    let dynamic = src.boolean(&at("dynamicStableScale")).filter(|d| *d);
    let background = background.flatten();
    Some(
        Map::new()
            .set("stableService", stable?)
            .set("canaryService", canary?)
            .set("trafficRouting", Map::new().set("gatewayAPI", routing?))
            .set("steps", steps?)
            .set_some("analysis", background)
            .set_some("scaleDownDelaySeconds", scale_down)
            .set_some("abortScaleDownDelaySeconds", abort_scale_down)
            .set_some("dynamicStableScale", dynamic),
    )
}

/// What the Rollout's routing says about the routes its header-route and mirror steps add.
#[derive(Default)]
struct RouteTraffic {
    /// The names of `trafficRouting.managedRoutes`, when it is given.
    managed: Option<Vec<String>>,
    /// Each route the plugin names: where, its name, and whether Argo added header routes to it
    /// (`httpRoute`/`grpcRoute` always; an item of `httpRoutes`/`grpcRoutes` with
    /// `useHeaderRoutes: true`).
    routes: Vec<(String, String, bool)>,
    /// Whether `useHeaderRoutes` is written anywhere.
    use_header_routes: bool,
    /// The GRPCRoutes, which Argo's plugin does not mirror.
    grpc: Vec<String>,
}

const ROUTING: &str = "spec.strategy.canary.trafficRouting";

fn traffic_routing(src: &mut Source) -> (Option<Map>, RouteTraffic) {
    let mut traffic = RouteTraffic::default();
    let routing = routes(src, &mut traffic);
    (routing, traffic)
}

fn routes(src: &mut Source, traffic: &mut RouteTraffic) -> Option<Map> {
    if !src.has(ROUTING) {
        src.refuse(
            "spec.strategy.canary",
            "has no trafficRouting: Argo shifted traffic by replica counts, Bellwether by Gateway API route weights; \
             route the app through an HTTPRoute with the Gateway API plugin first",
        );
        return None;
    }
    let routers = ["istio", "nginx", "alb", "smi", "ambassador", "appMesh", "traefik", "apisix"];
    let unsupported: Vec<Unsupported> = routers.iter().map(|r| (*r, ROUTER_UNSUPPORTED)).collect();
    src.only(ROUTING, &["plugins", "managedRoutes", "maxTrafficWeight"], &unsupported);
    let managed = format!("{ROUTING}.managedRoutes");
    if src.has(&managed) {
        let mut names = Vec::new();
        for i in 0..src.items(&managed) {
            let item = format!("{managed}[{i}]");
            src.only(&item, &["name"], &[]);
            names.extend(src.required_string(&format!("{item}.name")));
        }
        traffic.managed = Some(names);
        src.note(
            "managedRoutes is dropped: it names the routes of setHeaderRoute and setMirrorRoute steps, which Argo \
             removed at the end of a rollout and on an abort; Bellwether names the rules and the mirror it adds for \
             this Rollout itself, and removes them at promotion, on an abort and when the Rollout is deleted.",
        );
    }
    if let Some(max) = src.integer(&format!("{ROUTING}.maxTrafficWeight"), 0, i64::from(i32::MAX))
        && max != 100
    {
        src.refuse(
            &format!("{ROUTING}.maxTrafficWeight"),
            format!("{max} is not converted: Bellwether's weights are percentages of 100"),
        );
    }
    for plugin in src.keys(&format!("{ROUTING}.plugins")) {
        if plugin != GATEWAY_PLUGIN {
            src.refuse(
                &format!("{ROUTING}.plugins[{plugin}]"),
                format!("is a traffic router plugin Bellwether cannot use; only {GATEWAY_PLUGIN} converts"),
            );
        }
    }
    let plugin = format!("{ROUTING}.plugins[{GATEWAY_PLUGIN}]");
    if !src.has(&plugin) {
        src.refuse(
            ROUTING,
            format!("has no {GATEWAY_PLUGIN} plugin: Bellwether shifts traffic with Gateway API routes"),
        );
        return None;
    }
    let selector = "Bellwether names the routes it manages; list them by name";
    src.only(
        &plugin,
        &[
            "httpRoute",
            "httpRoutes",
            "grpcRoute",
            "grpcRoutes",
            "namespace",
            "configMap",
            "disableInProgressLabel",
            "inProgressLabelKey",
            "inProgressLabelValue",
        ],
        &[
            ("tcpRoute", "Bellwether manages HTTPRoutes and GRPCRoutes"),
            ("tcpRoutes", "Bellwether manages HTTPRoutes and GRPCRoutes"),
            ("tlsRoute", "Bellwether manages HTTPRoutes and GRPCRoutes"),
            ("tlsRoutes", "Bellwether manages HTTPRoutes and GRPCRoutes"),
            ("httpRouteSelector", selector),
            ("grpcRouteSelector", selector),
            ("tcpRouteSelector", selector),
            ("tlsRouteSelector", selector),
        ],
    );
    for bookkeeping in ["configMap", "disableInProgressLabel", "inProgressLabelKey", "inProgressLabelValue"] {
        if src.has(&format!("{plugin}.{bookkeeping}")) {
            src.note(format!(
                "The Gateway API plugin's {bookkeeping} is dropped: it is the plugin's own bookkeeping."
            ));
        }
    }
    let namespace = src.string(&format!("{plugin}.namespace"));
    let mut routing = Map::new();
    for (single, list, key) in
        [("httpRoute", "httpRoutes", "httpRoutes"), ("grpcRoute", "grpcRoutes", "grpcRoutes")]
    {
        let mut names = Vec::new();
        if let Some(name) = src.string(&format!("{plugin}.{single}")) {
            // The plugin adds header routes to the route it is given alone.
            traffic.routes.push((format!("{plugin}.{single}"), name.clone(), true));
            names.push(name);
        }
        for i in 0..src.items(&format!("{plugin}.{list}")) {
            let item = format!("{plugin}.{list}[{i}]");
            src.only(&item, &["name", "useHeaderRoutes"], &[]);
            traffic.use_header_routes |= src.has(&format!("{item}.useHeaderRoutes"));
            let header_routes = src.boolean(&format!("{item}.useHeaderRoutes")).unwrap_or(false);
            if let Some(name) = src.required_string(&format!("{item}.name")) {
                traffic.routes.push((item, name.clone(), header_routes));
                names.push(name);
            }
        }
        if key == "grpcRoutes" {
            traffic.grpc.clone_from(&names);
        }
        let refs: Vec<Yaml> = names
            .into_iter()
            .map(|name| Map::new().set("name", name).set_some("namespace", namespace.clone()).into())
            .collect();
        if !refs.is_empty() {
            routing.insert(key, refs);
        }
    }
    if routing.is_empty() {
        src.refuse(&plugin, "names no HTTPRoute or GRPCRoute");
        return None;
    }
    Some(routing)
}

fn steps(src: &mut Source, ctx: &Context, traffic: &RouteTraffic) -> Option<Vec<Yaml>> {
    const STEPS: &str = "spec.strategy.canary.steps";
    let count = src.items(STEPS);
    if count == 0 {
        src.refuse(STEPS, "lists no steps: Bellwether's canary needs at least one");
    }
    let mut in_force = InForce::default();
    let steps: Vec<Option<Yaml>> = (0..count)
        .map(|i| {
            let field = format!("{STEPS}[{i}]");
            src.only(
                &field,
                &["setWeight", "pause", "analysis", "setHeaderRoute", "setMirrorRoute"],
                STEP_UNSUPPORTED,
            );
            let kinds = src.keys(&field);
            if kinds.len() != 1 {
                src.refuse(
                    &field,
                    "must be exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute",
                );
                return None;
            }
            match kinds[0].as_str() {
                "setWeight" => src
                    .integer(&format!("{field}.setWeight"), 0, 100)
                    .map(|w| Map::new().set("setWeight", w).into()),
                "pause" => {
                    pause(src, &format!("{field}.pause")).map(|pause| Map::new().set("pause", pause).into())
                }
                "analysis" => analysis(src, &format!("{field}.analysis"), true, ctx)
                    .map(|analysis| Map::new().set("analysis", analysis).into()),
                "setHeaderRoute" => {
                    header_route(src, &format!("{field}.setHeaderRoute"), i, traffic, &mut in_force)
                        .map(|route| Map::new().set("setHeaderRoute", route).into())
                }
                "setMirrorRoute" => {
                    mirror_route(src, &format!("{field}.setMirrorRoute"), i, traffic, &mut in_force)
                        .map(|mirror| Map::new().set("setMirrorRoute", mirror).into())
                }
                _ => None,
            }
        })
        .collect();
    note_route_steps(src, traffic, &in_force);
    steps.into_iter().collect()
}

/// Bellwether's limit on header routes in force at once (crates/engine's `MAX_HEADER_ROUTES`).
const MAX_HEADER_ROUTES: usize = 4;
/// Bellwether's limit on the headers of one header route.
const MAX_HEADERS: usize = 8;
/// Gateway API's limit on a header match's value.
const MAX_HEADER_VALUE: usize = 4096;

/// The header routes and the mirror that the steps read so far put in force, as Bellwether
/// counts them.
#[derive(Default)]
struct InForce {
    /// Each header route in force, with the step that added it.
    header_routes: BTreeMap<String, usize>,
    /// The mirror in force, with the step that added it.
    mirror: Option<(String, usize)>,
    header_routes_added: bool,
    mirror_added: bool,
}

/// The `name` of a header-route or mirror step: one Bellwether can name route rules with, and
/// one Argo removed at the end of a rollout.
fn route_step_name(src: &mut Source, field: &str, traffic: &RouteTraffic) -> Option<String> {
    let at = format!("{field}.name");
    let name = src.required_string(&at)?;
    let label = name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !label {
        src.refuse(
            &at,
            format!(
                "{name:?} is not a DNS label of at most 40 characters (lower-case letters, digits and -), which \
                 Bellwether names the route rules it adds with: rename it"
            ),
        );
        return None;
    }
    if !traffic.managed.as_ref().is_some_and(|managed| managed.contains(&name)) {
        src.refuse(
            &at,
            format!(
                "{name:?} is not listed in {ROUTING}.managedRoutes: Argo refuses these steps without managedRoutes, \
                 and removes at the end of a rollout only the routes listed there, where Bellwether removes every \
                 header route and the mirror at promotion: list it"
            ),
        );
        return None;
    }
    Some(name)
}

/// A character no HTTP header value carries: a control character other than a tab.
fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\t')
}

/// `text` as a regular expression that matches it literally, in RE2's and PCRE's syntax alike.
fn regex_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// An Argo `setHeaderRoute`: with `match`, a header route Bellwether adds; without, its removal.
fn header_route(
    src: &mut Source,
    field: &str,
    step: usize,
    traffic: &RouteTraffic,
    in_force: &mut InForce,
) -> Option<Map> {
    src.only(field, &["name", "match"], &[]);
    let name = route_step_name(src, field, traffic);
    let matches = format!("{field}.match");
    if !src.has(&matches) {
        let name = name?;
        if in_force.header_routes.remove(&name).is_none() {
            src.refuse(
                &format!("{field}.name"),
                format!(
                    "removes header route {name:?}, which no earlier step added: Argo ignored that, Bellwether \
                     refuses it; leave the step out"
                ),
            );
            return None;
        }
        return Some(Map::new().set("name", name));
    }
    // In force from here on even when refused, so that its removal is not refused too.
    if let Some(name) = &name {
        if let Some(earlier) = in_force.header_routes.get(name) {
            src.refuse(
                &format!("{field}.name"),
                format!(
                    "header route {name:?} is still in force from steps[{earlier}]: Argo's plugin added a second \
                     rule beside the first, Bellwether would replace it; remove it in a step before this one"
                ),
            );
        }
        in_force.header_routes.insert(name.clone(), step);
        in_force.header_routes_added = true;
        if in_force.header_routes.len() > MAX_HEADER_ROUTES {
            src.refuse(
                &format!("{field}.name"),
                format!(
                    "{} header routes would be in force at once ({}); Bellwether allows at most \
                     {MAX_HEADER_ROUTES}: remove one in an earlier step",
                    in_force.header_routes.len(),
                    in_force.header_routes.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    let count = src.items(&matches);
    if count == 0 {
        if matches!(src.at(&matches), Some(Value::Array(_))) {
            src.refuse(
                &matches,
                "is empty: list the headers a request must carry, or leave match out to remove the header route",
            );
        }
        return None;
    }
    if count > MAX_HEADERS {
        src.refuse(
            &matches,
            format!("matches {count} headers; a Bellwether header route matches at most {MAX_HEADERS}"),
        );
        return None;
    }
    let mut headers = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for i in 0..count {
        let item = format!("{matches}[{i}]");
        src.only(&item, &["headerName", "headerValue"], &[]);
        let header_at = format!("{item}.headerName");
        let header = src.required_string(&header_at).filter(|header| {
            let token = header.len() <= 256
                && header.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                src.refuse(&header_at, format!("{header:?} is not an HTTP header name"));
            } else if seen.iter().any(|s| s.eq_ignore_ascii_case(header)) {
                src.refuse(&header_at, format!("{header:?} is matched twice"));
            }
            token
        });
        if let Some(header) = &header {
            seen.push(header.clone());
        }
        let value_at = format!("{item}.headerValue");
        if !src.has(&value_at) {
            src.refuse(&value_at, "is required");
            continue;
        }
        src.only(&value_at, &["exact", "regex", "prefix"], &[]);
        let kinds = src.keys(&value_at);
        if kinds.len() != 1 {
            if !kinds.is_empty() || matches!(src.at(&value_at), Some(Value::Object(_))) {
                src.refuse(&value_at, "must have exactly one of exact, regex or prefix");
            }
            continue;
        }
        let kind = kinds[0].as_str();
        let kind_at = format!("{value_at}.{kind}");
        let Some(text) = src.required_string(&kind_at) else { continue };
        if has_control(&text) {
            src.refuse(
                &kind_at,
                format!(
                    "{text:?} holds a control character (a line break?), which no HTTP header value carries"
                ),
            );
            continue;
        }
        let (type_, value) = match kind {
            "exact" => ("Exact", text),
            "regex" => ("RegularExpression", text),
            _ => {
                let regex = format!("^{}.*", regex_literal(&text));
                src.note(format!(
                    "steps[{step}], setHeaderRoute {}: the prefix {text:?} of header {} is matched as the regular \
                     expression {regex} here; Argo's Gateway API plugin wrote the prefix followed by .* as it was, \
                     without escaping or anchoring it. The Gateway chooses how it matches regular expressions (see \
                     docs/traffic.md).",
                    name.as_deref().unwrap_or_default(),
                    header.as_deref().unwrap_or_default(),
                ));
                ("RegularExpression", regex)
            }
        };
        if value.len() > MAX_HEADER_VALUE {
            src.refuse(
                &kind_at,
                format!("is longer than the {MAX_HEADER_VALUE} characters of a Gateway API header match"),
            );
            continue;
        }
        if let Some(header) = header {
            headers.push(Yaml::from(Map::new().set("name", header).set("type", type_).set("value", value)));
        }
    }
    let name = name?;
    (headers.len() == count).then(|| Map::new().set("name", name).set("headers", headers))
}

/// An Argo `setMirrorRoute`: with `match`, Bellwether's mirror of every request when the match
/// lets every request through; without, its removal.
fn mirror_route(
    src: &mut Source,
    field: &str,
    step: usize,
    traffic: &RouteTraffic,
    in_force: &mut InForce,
) -> Option<Map> {
    src.only(field, &["name", "match", "percentage"], &[]);
    let name = route_step_name(src, field, traffic);
    let matches = format!("{field}.match");
    let percentage_at = format!("{field}.percentage");
    if !src.has(&matches) {
        if src.has(&percentage_at) {
            src.refuse(
                &percentage_at,
                "is given without match: Argo removes the mirror route when match is missing, so this step mirrored \
                 nothing; leave percentage out to remove the mirror, or give a match to mirror",
            );
            return None;
        }
        let name = name?;
        match &in_force.mirror {
            Some((active, _)) if *active == name => in_force.mirror = None,
            _ => {
                src.refuse(
                    &format!("{field}.name"),
                    format!(
                        "removes mirror {name:?}, which no earlier step added: Argo ignored that, Bellwether refuses \
                         it; leave the step out"
                    ),
                );
                return None;
            }
        }
        return Some(Map::new().set("name", name));
    }
    let percent = mirror_percent(src, &percentage_at);
    let every = mirror_matches_every(src, &matches);
    let name = name?;
    if let Some((active, earlier)) = &in_force.mirror
        && *active != name
    {
        src.refuse(
            &format!("{field}.name"),
            format!(
                "mirror {active:?} is still in force from steps[{earlier}]: Bellwether has one mirror at a time; \
                 remove it in a step before this one"
            ),
        );
        return None;
    }
    // In force from here on even when refused, so that its removal is not refused too.
    in_force.mirror = Some((name.clone(), step));
    in_force.mirror_added = true;
    let (percent, every) = (percent?, every?);
    if !every {
        src.refuse(
            &matches,
            "mirrors only the requests it matches (by method, path or header); Bellwether mirrors every request of \
             the managed route rules: to convert it, match every request (match: [{path: {prefix: /}}]) or write \
             the mirror step by hand",
        );
        return None;
    }
    if !traffic.grpc.is_empty() {
        src.refuse(
            field,
            format!(
                "Argo's Gateway API plugin mirrors HTTPRoutes only, where Bellwether mirrors on every route it \
                 manages, GRPCRoute {} included",
                traffic.grpc.join(", ")
            ),
        );
        return None;
    }
    if percent.is_none() {
        src.note(format!(
            "steps[{step}], setMirrorRoute {name}: no percentage, so Argo mirrored every matched request (Gateway \
             API's default); Bellwether's percent is written out as 100."
        ));
    }
    Some(Map::new().set("name", name).set("percent", percent.unwrap_or(100)))
}

/// A mirror's `percentage`: none when it is not given, `None` when it is refused.
fn mirror_percent(src: &mut Source, field: &str) -> Option<Option<i64>> {
    let refusal = match src.at(field) {
        None => return Some(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(p) if (1..=100).contains(&p) => return Some(Some(p)),
            Some(0) => {
                "0 mirrors no request; Bellwether's percent is 1 to 100: leave the step out".to_string()
            }
            Some(p) => format!("{p} is outside 1..=100"),
            None => format!("{n} is not a whole number from 1 to 100"),
        },
        Some(Value::String(text)) => format!("must be a whole number from 1 to 100, not {text:?}"),
        Some(_) => "must be a whole number from 1 to 100, not a list or a mapping".to_string(),
    };
    src.refuse(field, refusal);
    None
}

/// Whether a mirror's `match` lets every request through: an item with no condition, or with only
/// the path prefix `/`. `None` when it is refused.
fn mirror_matches_every(src: &mut Source, matches: &str) -> Option<bool> {
    let count = src.items(matches);
    if count == 0 {
        if matches!(src.at(matches), Some(Value::Array(_))) {
            src.refuse(matches, "is empty: give a match to mirror, or leave match out to remove the mirror");
        }
        return None;
    }
    let mut every = false;
    for i in 0..count {
        let item = format!("{matches}[{i}]");
        src.only(&item, &["method", "path", "headers"], &[]);
        let root_prefix = src.keys(&format!("{item}.path")) == ["prefix"]
            && src.at(&format!("{item}.path.prefix")) == Some(&Value::from("/"));
        let headers = src.keys(&format!("{item}.headers"));
        every |= !src.has(&format!("{item}.method"))
            && headers.is_empty()
            && (!src.has(&format!("{item}.path")) || root_prefix);
    }
    Some(every)
}

/// What the header-route and mirror steps mean now, and where Argo's routes took header routes
/// that Bellwether's would not.
fn note_route_steps(src: &mut Source, traffic: &RouteTraffic, in_force: &InForce) {
    let plain: Vec<&(String, String, bool)> = traffic.routes.iter().filter(|(_, _, takes)| !takes).collect();
    if in_force.header_routes_added {
        for (field, name, _) in &plain {
            src.refuse(
                field,
                format!(
                    "route {name:?} has no useHeaderRoutes: true, so Argo added no header routes to it; Bellwether \
                     adds the header routes of setHeaderRoute steps to every route it manages: set useHeaderRoutes: \
                     true if that is what was meant"
                ),
            );
        }
        src.note(
            "Header routes: Bellwether adds each to every route it manages, as Argo's plugin did to the routes that \
             take header routes; a request must carry every header of one, as with the plugin. Argo removed the \
             managed routes at the end of a rollout and on an abort; Bellwether removes header routes and the mirror \
             at promotion and on an abort.",
        );
    } else if traffic.use_header_routes {
        src.note("useHeaderRoutes is dropped: no setHeaderRoute step adds a header route.");
    }
    if in_force.mirror_added {
        src.note(
            "Mirror: its match lets every request through, so Bellwether mirrors every request of each managed route \
             rule to the canary, at its percent, and drops the copies' answers, as Argo did.",
        );
    }
}

fn pause(src: &mut Source, field: &str) -> Option<Map> {
    src.only(field, &["duration"], &[]);
    let at = format!("{field}.duration");
    let millis = match src.at(&at) {
        None => return Some(Map::new()),
        Some(Value::Number(_)) => src.integer(&at, 0, i64::MAX).map(expressions::seconds),
        Some(Value::String(text)) => Some(match text.trim().parse::<i64>() {
            Ok(seconds) => expressions::seconds(seconds),
            Err(_) => go_duration(text),
        }),
        Some(_) => {
            src.refuse(&at, "must be seconds or a duration such as 30s, 5m or 1h");
            None
        }
    }?;
    match millis.and_then(bellwether_duration) {
        Ok(duration) => Some(Map::new().set("duration", duration)),
        Err(error) => {
            src.refuse(&at, error);
            None
        }
    }
}

/// A step's analysis (`step`) or the background analysis's templates and args.
fn analysis(src: &mut Source, field: &str, step: bool, ctx: &Context) -> Option<Map> {
    let mut handled = vec!["templates", "args", "measurementRetention", "analysisRunMetadata"];
    if !step {
        handled.push("startingStep");
    }
    src.only(
        field,
        &handled,
        &[("dryRun", "Bellwether sets dryRun per metric: set dryRun: true on the metric in its template")],
    );
    for bookkeeping in ["measurementRetention", "analysisRunMetadata"] {
        if src.has(&format!("{field}.{bookkeeping}")) {
            src.note(format!("{field}.{bookkeeping} is dropped: it is bookkeeping of Argo's AnalysisRuns."));
        }
    }
    let count = src.items(&format!("{field}.templates"));
    if count == 0 {
        src.refuse(&format!("{field}.templates"), "must name at least one template");
    }
    let mut templates = Vec::new();
    for i in 0..count {
        let item = format!("{field}.templates[{i}]");
        src.only(&item, &["templateName", "clusterScope"], &[]);
        let Some(name) = src.required_string(&format!("{item}.templateName")) else { continue };
        let cluster = src.boolean(&format!("{item}.clusterScope")).unwrap_or(false);
        if step {
            check_step_template(src, &item, &name, cluster, ctx);
        }
        templates.push(Yaml::from(
            Map::new().set("templateName", name).set_some("clusterScope", cluster.then_some(true)),
        ));
    }
    let mut args = Vec::new();
    for i in 0..src.items(&format!("{field}.args")) {
        let item = format!("{field}.args[{i}]");
        src.only(&item, &["name", "value", "valueFrom"], &[]);
        let name = src.required_string(&format!("{item}.name"));
        let value = if src.has(&format!("{item}.valueFrom")) {
            rollout_arg_value(src, &format!("{item}.valueFrom"))
        } else {
            Some(src.string(&format!("{item}.value")).unwrap_or_default())
        };
        if let (Some(name), Some(value)) = (name, value) {
            args.push(Yaml::from(Map::new().set("name", name).set("value", value)));
        }
    }
    Some(Map::new().set("templates", templates).set_some("args", (!args.is_empty()).then_some(args)))
}

/// The value of an arg the Rollout takes from somewhere: from its own metadata, which convert
/// reads now; a pod template hash has no equivalent.
fn rollout_arg_value(src: &mut Source, field: &str) -> Option<String> {
    src.only(
        field,
        &["fieldRef"],
        &[(
            "podTemplateHashValue",
            "Bellwether's revisions are not Argo's pod template hashes: in the template, use {{canary.revision}} or \
             {{stable.revision}} against the revision label (see \"Give metrics a revision label\" in docs/analysis.md)",
        )],
    );
    if src.has(&format!("{field}.podTemplateHashValue")) {
        return None;
    }
    let path_field = format!("{field}.fieldRef.fieldPath");
    let path = src.required_string(&path_field)?;
    let value = match path.as_str() {
        "metadata.name" => src.at("metadata.name"),
        "metadata.namespace" => src.at("metadata.namespace"),
        _ => ["labels", "annotations"].into_iter().find_map(|map| {
            let key = path
                .strip_prefix(&format!("metadata.{map}['"))
                .and_then(|rest| rest.strip_suffix("']"))
                .or_else(|| {
                    path.strip_prefix(&format!("metadata.{map}[\"")).and_then(|rest| rest.strip_suffix("\"]"))
                })?;
            src.doc.value.pointer("/metadata").and_then(|m| m.get(map)).and_then(|m| m.get(key))
        }),
    };
    match value.and_then(Value::as_str) {
        Some(value) => Some(value.to_string()),
        None => {
            src.refuse(
                &path_field,
                format!(
                    "{path:?} is not in this Rollout's manifest, so convert cannot write its value; Bellwether args are \
                     values (it reads metadata.name, metadata.namespace, labels and annotations from the file)"
                ),
            );
            None
        }
    }
}

/// An analysis step waits for its run to finish. Argo runs a metric with an interval and no count
/// until it fails, so such a step could only ever fail; Bellwether would need the step's duration.
fn check_step_template(src: &mut Source, field: &str, name: &str, cluster: bool, ctx: &Context) {
    let kind = if cluster { "ClusterAnalysisTemplate" } else { "AnalysisTemplate" };
    let namespace = (!cluster).then(|| src.doc.namespace()).flatten();
    let Some(template) = ctx.find("argoproj.io", kind, name, namespace) else {
        src.note(format!(
            "{kind} {name} is not among the files converted: if a metric of it has an interval and no count, give it a \
             count, or a duration to this analysis step."
        ));
        return;
    };
    let metrics =
        template.value.pointer("/spec/metrics").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for metric in metrics {
        let has = |key: &str| metric.get(key).is_some_and(|v| !v.is_null() && v != &Value::from(0));
        if has("interval") && !has("count") {
            src.refuse(
                field,
                format!(
                    "{kind} {name}'s metric {} has an interval and no count: Argo measures it until it fails, so this \
                     step could never pass; give the metric a count",
                    metric.get("name").and_then(Value::as_str).unwrap_or_default()
                ),
            );
        }
    }
}

fn background(src: &mut Source, steps: usize, ctx: &Context) -> Option<Map> {
    const FIELD: &str = "spec.strategy.canary.analysis";
    let starting = src.integer(&format!("{FIELD}.startingStep"), 0, i64::from(i32::MAX));
    if let Some(step) = starting
        && step as usize >= steps
    {
        src.refuse(
            &format!("{FIELD}.startingStep"),
            format!("{step} is not the index of a step (there are {steps})"),
        );
    }
    analysis(src, FIELD, false, ctx).map(|analysis| analysis.set_some("startingStep", starting))
}
