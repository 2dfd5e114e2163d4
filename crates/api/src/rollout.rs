//! The `Rollout` resource: a Deployment replacement that ships each new revision as a canary.

use super::Duration;
use super::NotificationTarget;
use super::PodTemplate;
use super::schema;
use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Desired state of a Rollout.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "bellwether.dev",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    status = "RolloutStatus",
    derive = "PartialEq",
    shortname = "bwro",
    category = "bellwether",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase","description":"Healthy, Progressing, Paused or Degraded"}"#,
    printcolumn = r#"{"name":"Step","type":"string","jsonPath":".status.step","description":"Current canary step, i/N"}"#,
    printcolumn = r#"{"name":"Canary Weight","type":"integer","jsonPath":".status.weights.canary","description":"Percent of traffic on the canary"}"#,
    printcolumn = r#"{"name":"Stable","type":"string","jsonPath":".status.stableRevision"}"#,
    printcolumn = r#"{"name":"Canary","type":"string","jsonPath":".status.canaryRevision"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.template) != has(self.workloadRef)").message("exactly one of template and workloadRef must be set"))]
pub struct RolloutSpec {
    /// Pods of the stable revision. The canary runs beside them, scaled to its traffic share.
    /// An autoscaler (HPA, KEDA) may own it through the `scale` subresource: stable and canary
    /// follow it at every step.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    #[schemars(schema_with = "schema::label_selector")]
    pub selector: LabelSelector,
    /// The pod template of every revision: a change starts a new canary. Exactly one of `template`
    /// and `workloadRef` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::pod_template")]
    pub template: Option<PodTemplate>,
    /// An existing Deployment whose pod template the revisions are made from, instead of
    /// `template`: Bellwether takes its traffic over, and a change of its template starts a canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub workload_ref: Option<WorkloadRef>,
    /// Old ReplicaSets kept at zero replicas for rollback. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub revision_history_limit: Option<i32>,
    /// Ended AnalysisRuns kept per Rollout, newest first; older ones are deleted. Defaults to 5
    /// successful and 5 unsuccessful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_run_history_limit: Option<AnalysisRunHistoryLimit>,
    /// How long a canary may take to become available before the rollout aborts. Defaults to 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub progress_deadline_seconds: Option<i32>,
    /// Holds the rollout at its current step, declaratively (for example from Git).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    pub strategy: RolloutStrategy,
    /// Webhooks told when a canary completes a step, pauses, aborts, is promoted or has an
    /// inconclusive analysis; added to the namespace's own (the `bellwether-notifications`
    /// ConfigMap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub notifications: Vec<NotificationTarget>,
}

fn default_replicas() -> i32 {
    1
}

/// A Deployment whose pod template a Rollout uses, and what becomes of its own pods.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.apiVersion == 'apps/v1' && self.kind == 'Deployment'").message("workloadRef must name an apps/v1 Deployment"))]
pub struct WorkloadRef {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// The Deployment, in the Rollout's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default)]
    pub scale_down: ScaleDown,
}

impl RolloutSpec {
    /// The template the Rollout embeds; `None` with a `workloadRef`, whose template is the
    /// Deployment's.
    pub fn embedded_template(&self) -> Option<k8s_openapi::api::core::v1::PodTemplateSpec> {
        self.template.as_ref().map(PodTemplate::get)
    }
}

/// What becomes of a referenced Deployment's pods once Bellwether runs the service. Until the
/// Rollout's stable revision is fully available, the Deployment's pods serve as before.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScaleDown {
    /// Leave the Deployment as it is: its pods keep running, outside the Services' selectors.
    #[default]
    Never,
    /// Scale the Deployment to 0 once the Services select the Rollout's stable revision.
    OnSuccess,
    /// Scale the Deployment down by each stable pod of the Rollout that becomes available, and to
    /// 0 once the Services select the Rollout's stable revision.
    Progressively,
}

/// How many ended AnalysisRuns of each outcome a Rollout keeps.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunHistoryLimit {
    /// Runs that passed. Defaults to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub successful: Option<i32>,
    /// Runs that failed, erred or were inconclusive. Defaults to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub unsuccessful: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    pub canary: CanaryStrategy,
}

/// How a new revision is shipped: the Services, the routes, the steps and the failure policies.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.stableService != self.canaryService").message("stableService and canaryService must be different Services"))]
#[x_kube(validation = Rule::new("!has(self.analysis) || !has(self.analysis.startingStep) || self.analysis.startingStep < size(self.steps)").message("analysis.startingStep must be the index of a step"))]
pub struct CanaryStrategy {
    /// The Service that routes send stable traffic to. Bellwether sets its selector.
    #[schemars(length(min = 1, max = 63))]
    pub stable_service: String,
    /// The Service that routes send canary traffic to. Bellwether sets its selector.
    #[schemars(length(min = 1, max = 63))]
    pub canary_service: String,
    pub traffic_routing: TrafficRouting,
    #[schemars(length(min = 1, max = 100))]
    pub steps: Vec<CanaryStep>,
    /// Analysis that runs in the background from `startingStep` until the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub analysis: Option<BackgroundAnalysis>,
    /// Scale stable down as the canary's weight grows, so that a canary costs few extra pods:
    /// stable keeps `ceil(replicas × stableWeight / 100)`. Weight moves back to stable (a lower
    /// step, an abort) only as fast as its pods become available. Off by default: with it off,
    /// stable stays at full scale and an abort moves all traffic at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic_stable_scale: bool,
    /// Delay before the old stable ReplicaSet is scaled down after a promotion. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_seconds: Option<i32>,
    /// Delay before an aborted canary is scaled down, to keep its pods for debugging. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub abort_scale_down_delay_seconds: Option<i32>,
    #[serde(default)]
    pub on_analysis_failure: AnalysisFailurePolicy,
    #[serde(default)]
    pub on_inconclusive: InconclusivePolicy,
    /// Firing alerts that abort the canary, besides those labelled with this Rollout's `rollout`
    /// and `namespace`. An alert matches when it matches any one entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub abort_on_alerts: Vec<AlertMatcher>,
    /// Alert-driven aborts allowed per hour. Beyond it a firing alert escalates (a Warning Event and
    /// a notification) and the canary carries on. Defaults to 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_alert_aborts_per_hour: Option<i32>,
}

impl CanaryStrategy {
    /// The canary weight in force at step `index`: that of the last `setWeight` at or before it.
    pub fn weight_at(&self, index: usize) -> i32 {
        self.steps.iter().take(index.saturating_add(1)).filter_map(|s| s.set_weight).next_back().unwrap_or(0)
    }
}

/// Labels an alert must carry, each with exactly this value. The alert must also carry a
/// `namespace` label naming this Rollout's namespace, unless `anyNamespace` is true.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.matchLabels) > 0").message("matchLabels must name at least one label"))]
pub struct AlertMatcher {
    pub match_labels: BTreeMap<String, String>,
    /// Match alerts about any namespace, and alerts without a `namespace` label: for the alerts of
    /// something every team depends on. Off by default, so that another team's alert with the same
    /// labels never aborts this canary.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_namespace: bool,
}

/// The alert behind an alert-driven abort, as Alertmanager sent it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct FiringAlert {
    /// The `alertname` label.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The link back to the rule that fired, when the alert has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
}

/// What a failed analysis does to the rollout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisFailurePolicy {
    /// Send all traffic back to stable at once.
    #[default]
    Abort,
    /// Hold the current traffic split and wait for a person.
    Pause,
}

/// What an inconclusive analysis does to the rollout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InconclusivePolicy {
    /// Hold the current traffic split and wait for a person.
    #[default]
    Pause,
    /// Treat it as a failure.
    Abort,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct TrafficRouting {
    #[serde(rename = "gatewayAPI")]
    pub gateway_api: GatewayApiRouting,
}

/// The Gateway API routes whose backend weights Bellwether manages.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.httpRoutes) ? size(self.httpRoutes) : 0) + (has(self.grpcRoutes) ? size(self.grpcRoutes) : 0) > 0").message("gatewayAPI must name at least one HTTPRoute or GRPCRoute"))]
pub struct GatewayApiRouting {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub http_routes: Vec<RouteRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub grpc_routes: Vec<RouteRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct RouteRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Defaults to the Rollout's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One step of a canary. Exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0) + (has(self.setHeaderRoute) ? 1 : 0) + (has(self.setMirrorRoute) ? 1 : 0) == 1").message("a step must have exactly one of setWeight, pause, analysis, setHeaderRoute or setMirrorRoute"))]
pub struct CanaryStep {
    /// Percent of traffic to send to the canary, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100), transform = schema::not_nullable)]
    pub set_weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub pause: Option<PauseStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub analysis: Option<AnalysisStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub set_header_route: Option<HeaderRouteStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub set_mirror_route: Option<MirrorRouteStep>,
}

/// Sends the requests that carry every one of `headers` to the canary, whatever its weight, by
/// adding a rule Bellwether owns to each managed route. Without `headers`, removes the header
/// route of this `name` that an earlier step added. Every header route ends with the canary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.headers) || self.headers.all(a, self.headers.exists_one(b, b.name.lowerAscii() == a.name.lowerAscii()))").message("setHeaderRoute headers must have unique names"))]
pub struct HeaderRouteStep {
    /// Names the header route, so that a later step can remove it; part of the name of the
    /// route rules Bellwether adds.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Request headers a request must all carry to reach the canary. Omit them to remove the
    /// header route named `name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub headers: Vec<HeaderMatch>,
}

/// One request header to match, as a Gateway API route match spells it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// The header's name, matched without regard to case. A cookie is matched as the `Cookie`
    /// header with a regular expression.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"))]
    pub name: String,
    #[serde(default, rename = "type")]
    pub type_: HeaderMatchType,
    #[schemars(length(min = 1, max = 4096))]
    pub value: String,
}

/// How a header's value is matched. Exact matching is core Gateway API; regular expressions are
/// implementation-specific in dialect and support: see docs/traffic.md.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema,
)]
pub enum HeaderMatchType {
    #[default]
    Exact,
    RegularExpression,
}

impl HeaderMatchType {
    /// The value as Gateway API routes spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "Exact",
            Self::RegularExpression => "RegularExpression",
        }
    }
}

/// Mirrors `percent` of the requests of every managed route rule to the canary: copies whose
/// responses are thrown away, so no user sees the canary's answer. Without `percent`, removes the
/// mirror of this `name` that an earlier step added. Every mirror ends with the canary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct MirrorRouteStep {
    /// Names the mirror, so that a later step can remove it.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Percent of requests to mirror, 1 to 100. Omit it to remove the mirror named `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100), transform = schema::not_nullable)]
    pub percent: Option<i32>,
}

/// Waits for `duration`, or for a promote when no duration is given.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct PauseStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

/// Runs the templates' metrics as one AnalysisRun and waits for its verdict.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.args) || self.args.all(a, self.args.exists_one(b, b.name == a.name))").message("analysis args must have unique names"))]
pub struct AnalysisStep {
    #[schemars(length(min = 1))]
    pub templates: Vec<TemplateRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
    /// How long the analysis lasts for metrics without a `count`: their success window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// How long the analysis may take to reach a verdict; past it, it ends in Error and the
    /// rollout follows `onAnalysisFailure`. Defaults to a bound derived from the metrics: see
    /// docs/concepts.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// Analysis that runs for the rest of the rollout, from `startingStep`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.args) || self.args.all(a, self.args.exists_one(b, b.name == a.name))").message("analysis args must have unique names"))]
pub struct BackgroundAnalysis {
    #[schemars(length(min = 1))]
    pub templates: Vec<TemplateRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
    /// The step index at which background analysis starts. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), transform = schema::not_nullable)]
    pub starting_step: Option<i32>,
}

/// A reference to an AnalysisTemplate, or to a ClusterAnalysisTemplate when `clusterScope` is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    #[schemars(length(min = 1, max = 253))]
    pub template_name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_scope: bool,
}

impl TemplateRef {
    /// The kind of the template it names: `AnalysisTemplate` or `ClusterAnalysisTemplate`.
    pub fn kind(&self) -> &'static str {
        if self.cluster_scope { "ClusterAnalysisTemplate" } else { "AnalysisTemplate" }
    }
}

/// A value for one of a template's `args`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct AnalysisArg {
    #[schemars(length(min = 1))]
    pub name: String,
    pub value: String,
}

/// Observed state of a Rollout, written only by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RolloutPhase>,
    /// Why the rollout is where it is, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    /// The current step for people, as `i/N` (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_revision: Option<String>,
    #[serde(default)]
    pub weights: Weights,
    /// The header routes and mirror Bellwether wants on every managed route now.
    #[serde(default, skip_serializing_if = "ExposureStatus::is_empty")]
    pub exposure: ExposureStatus,
    /// What each managed route carries, as last seen: where they differ from `weights` and
    /// `exposure`, the routes that lag or were refused, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_analysis_run: Option<AnalysisRunRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_analysis_run: Option<AnalysisRunRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods that the ReplicaSets of every revision are asked to run: what an autoscaler reads
    /// through the `scale` subresource as the current replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// `spec.selector` as a label selector string (`app=web`), for the `scale` subresource: an
    /// autoscaler finds the pods of every revision with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The most recent finished canaries, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// What moved this Rollout's canaries, newest first, at most 20: every request of a person or
    /// an alert, acted on or not, and every decision of Bellwether's that moved traffic. It outlives
    /// the Events, which expire after an hour.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
    /// When alerts aborted canaries of this Rollout within the last hour, oldest first: the
    /// count that `maxAlertAbortsPerHour` limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_aborts: Vec<DateTime<Utc>>,
    /// Bookkeeping that lets the engine resume after a restart. Not for people.
    #[serde(default)]
    pub progress: Progress,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum RolloutPhase {
    Healthy,
    Progressing,
    Paused,
    Degraded,
}

impl RolloutPhase {
    /// Every phase, in the order a rollout meets them.
    pub const ALL: [Self; 4] = [Self::Healthy, Self::Progressing, Self::Paused, Self::Degraded];

    /// The phase as the status, conditions and metrics labels write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Progressing => "Progressing",
            Self::Paused => "Paused",
            Self::Degraded => "Degraded",
        }
    }
}

/// The weights Bellwether wants on every managed route, and whether every route shows them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    pub canary: i32,
    pub stable: i32,
    /// True when every managed route carries these weights and every parent Gateway accepted them.
    pub verified: bool,
}

impl Default for Weights {
    fn default() -> Self {
        Self { canary: 0, stable: 100, verified: false }
    }
}

/// Header routes and a mirror: what exposes a canary besides its weight.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ExposureStatus {
    /// The names of the header routes in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_routes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorStatus>,
}

impl ExposureStatus {
    pub fn is_empty(&self) -> bool {
        self.header_routes.is_empty() && self.mirror.is_none()
    }
}

/// A mirror in force: its name and the percent of requests it copies to the canary.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct MirrorStatus {
    pub name: String,
    pub percent: i32,
}

/// What one managed route carries for the canary, as last seen.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// `HTTPRoute/namespace/name` or `GRPCRoute/namespace/name`.
    pub name: String,
    /// The canary's weight on the managed rules; unset when the route is missing or its rules
    /// disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_weight: Option<i32>,
    /// The header routes whose rules the route has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_routes: Vec<String>,
    /// The percent its mirror filters copy to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_percent: Option<i32>,
    /// True when the route carries what Bellwether wants and every parent Gateway accepted it.
    pub ready: bool,
    /// Why it is not ready, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    pub reason: PauseReason,
    pub started_at: DateTime<Utc>,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema,
)]
pub enum PauseReason {
    /// A `pause` step.
    PauseStep,
    /// A person asked to pause.
    UserPause,
    /// `spec.paused` is set.
    SpecPaused,
    /// An analysis was inconclusive and `onInconclusive` is `pause`.
    InconclusiveAnalysis,
    /// An analysis failed and `onAnalysisFailure` is `pause`.
    AnalysisFailed,
    /// `spec.replicas` is 0 (an autoscaler scaled to zero): there are no pods to judge a canary
    /// on. It resumes when replicas is above 0.
    ScaledToZero,
}

/// Why and when a canary was aborted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct AbortStatus {
    /// For example `AnalysisFailed`, `ProgressDeadlineExceeded` or `UserAbort`.
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub at: DateTime<Utc>,
    /// Who aborted: a user name, or `bellwether` for automatic aborts.
    pub by: String,
    /// For an alert-driven abort, the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<FiringAlert>,
}

/// The latest known state of an AnalysisRun.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunRef {
    pub name: String,
    /// The hash of the spec Bellwether created the run with. A run whose spec no longer hashes to
    /// it was changed by someone else, and its verdict is not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<super::AnalysisPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A standard condition, as on every Kubernetes object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: DateTime<Utc>,
}

/// One thing that moved a canary: what, who, when, of which revision, and why.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    /// A request (`promote`, `promote --full`, `abort`, `retry`, `pause`, `resume`), or what
    /// Bellwether did: `CanaryStarted`, `StepCompleted`, `Promoted`, `Aborted`, `Superseded`,
    /// `RolledBack`, `AlertAbortEscalated`.
    pub action: String,
    /// The requester as the request names them, `alertmanager` for an alert, or `bellwether`.
    pub by: String,
    pub at: DateTime<Utc>,
    /// The canary revision it was about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// What came of it, or why, in one line.
    pub reason: String,
}

/// One finished canary.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub revision: String,
    pub outcome: RolloutOutcome,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum RolloutOutcome {
    Promoted,
    Aborted,
    /// A newer revision replaced it before it finished.
    Superseded,
    /// The template went back to the stable revision before it finished.
    RolledBack,
}

/// Engine bookkeeping persisted in status so that any controller replica can pick up where another
/// left off.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// When the current canary started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_started_at: Option<DateTime<Utc>>,
    /// When the current step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<DateTime<Utc>>,
    /// When the rollout started waiting on pods, routes or Services; the progress deadline counts
    /// from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
    /// Set by `promote --full`: skip the remaining steps and analysis.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote_full: bool,
    /// Set once every step passed: the canary is being scaled up and made stable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promoting: bool,
    /// How many times this revision was retried; part of AnalysisRun names.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: i32,
    /// How many analyses a person sent back for another run; part of the new runs' names.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub analysis_restarts: i32,
    /// ReplicaSets waiting for their scale-down delay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_downs: Vec<ScheduledScaleDown>,
    /// IDs of user requests already handled, newest last, so that each acts once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handled_requests: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ScheduledScaleDown {
    pub revision: String,
    pub at: DateTime<Utc>,
}

impl AbortStatus {
    /// The `by` of aborts that Bellwether decided on its own.
    pub const AUTOMATIC: &'static str = "bellwether";
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}
