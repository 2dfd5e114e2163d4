//! Analysis resources: templates that say how to judge a canary, and the runs that judge it.

use super::{AnalysisArg, Duration, schema};
use chrono::{DateTime, Utc};
use kube_derive::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The time between measurements when a metric sets no `interval`.
pub const DEFAULT_INTERVAL: chrono::Duration = chrono::Duration::minutes(1);

/// Measurement errors in a row that a metric tolerates when `consecutiveErrorLimit` is unset.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;

/// The most requests one count may hold: beyond 2^53 an `f64` no longer counts whole requests.
pub const MAX_COUNT: f64 = 9_007_199_254_740_992.0;

/// The Datadog API a `datadog` metric queries when it names no `address`: the US1 site's.
pub const DEFAULT_DATADOG_ADDRESS: &str = "https://api.datadoghq.com";

/// How far back a `datadog` metric's query looks when it sets no `window`.
pub const DEFAULT_DATADOG_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// A reusable set of metrics, in one namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "bellwether.dev",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    namespaced,
    derive = "PartialEq",
    shortname = "bwat",
    category = "bellwether",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message("args must have unique names"))]
    pub args: Vec<ArgSpec>,
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.name == m.name))").message("metrics must have unique names"))]
    pub metrics: Vec<Metric>,
}

/// The same as an AnalysisTemplate, shared by every namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "bellwether.dev",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    derive = "PartialEq",
    shortname = "bwcat",
    category = "bellwether",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAnalysisTemplateSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message("args must have unique names"))]
    pub args: Vec<ArgSpec>,
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.name == m.name))").message("metrics must have unique names"))]
    pub metrics: Vec<Metric>,
}

impl From<ClusterAnalysisTemplateSpec> for AnalysisTemplateSpec {
    fn from(spec: ClusterAnalysisTemplateSpec) -> Self {
        Self { args: spec.args, metrics: spec.metrics }
    }
}

/// An argument a template expects. Without a `value` it is required.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ArgSpec {
    #[schemars(length(min = 1))]
    pub name: String,
    /// The default, used when the Rollout passes no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One measured signal and how to judge it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.threshold) ? 1 : 0) + (has(self.compare) ? 1 : 0) + (has(self.sequential) ? 1 : 0) == 1").message("a metric must have exactly one of threshold, compare or sequential"))]
#[x_kube(validation = Rule::new("!has(self.interval) || duration(self.interval) >= duration('1s')").message("interval must be at least 1s"))]
#[x_kube(validation = Rule::new("!has(self.provider.web) || has(self.threshold)").message("a web metric is judged by threshold only: compare and sequential need a query per revision"))]
#[x_kube(validation = Rule::new("!has(self.provider.job) || has(self.threshold)").message("a job metric is judged by threshold only: a Job succeeds or fails, which compare and sequential cannot judge"))]
pub struct Metric {
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Time between measurements, at least 1s. Defaults to 1m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Time to wait before the first measurement, so that the canary warms up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<Duration>,
    /// Healthy measurements needed for success. Without it the run lasts as long as its step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub count: Option<i32>,
    pub provider: MetricProvider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub threshold: Option<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub compare: Option<Compare>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub sequential: Option<Sequential>,
    #[serde(default)]
    pub no_data: NoDataPolicy,
    /// Consecutive measurement errors (not breaches) that make the metric an Error. Defaults to 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub consecutive_error_limit: Option<i32>,
    /// Measure and report, but never decide.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.prometheus) ? 1 : 0) + (has(self.influxdb) ? 1 : 0) + (has(self.datadog) ? 1 : 0) + (has(self.web) ? 1 : 0) + (has(self.job) ? 1 : 0) == 1").message("a provider must set exactly one of prometheus, influxdb, datadog, web or job"))]
pub struct MetricProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub prometheus: Option<PrometheusProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub web: Option<WebProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub influxdb: Option<InfluxDbProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub datadog: Option<DatadogProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub job: Option<JobProvider>,
}

/// Datadog's metrics query API (v1, `GET /api/v1/query`): the query's points from `window` before
/// the measurement to the measurement, and the latest complete, non-null point of its one series as
/// the value. Sent with the API and application keys read from Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct DatadogProvider {
    /// The API of your Datadog site, for example `https://api.datadoghq.eu` or
    /// `https://api.us5.datadoghq.com`. Defaults to `https://api.datadoghq.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#@]+(/[^?#]*)?$')").message("address must be an http:// or https:// URL with a host, and no credentials, query or fragment"))]
    pub address: Option<String>,
    /// A Datadog metrics query template; placeholders may fill tag values (`{version:{{revision}}}`)
    /// and numbers (`.rollup(sum, {{interval}})`, in seconds) only.
    #[schemars(length(min = 1))]
    pub query: String,
    /// How far back the query looks: from the measurement's time less `window` to the measurement's
    /// time. At least 1s; defaults to 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s')").message("window must be at least 1s"))]
    pub window: Option<Duration>,
    /// The API key, sent as `DD-API-KEY`.
    pub api_key: SecretKeyRef,
    /// The application key, sent as `DD-APPLICATION-KEY`; it needs the `timeseries_query` permission.
    pub application_key: SecretKeyRef,
    /// How long a query may take, connecting and reading the answer included. Defaults to 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// A Kubernetes Job run for each measurement, such as a smoke or load test, in the run's
/// namespace: the measurement is 1 when the Job succeeds and 0 when it fails. Threshold metrics
/// only; the controller runs Jobs only when started with `--job-metrics`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct JobProvider {
    /// Labels and annotations of the Job, besides Bellwether's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub metadata: Option<JobMetadata>,
    /// The Job's spec (a batch/v1 JobSpec), its strings templates rendered for each measurement.
    /// Unless set, `backoffLimit` is 0 and the pod's `restartPolicy` Never: one attempt.
    #[schemars(schema_with = "schema::job_spec")]
    pub spec: serde_json::Value,
}

impl JobProvider {
    /// The spec as a batch/v1 JobSpec, or why it is not one. It is held as written, and only read
    /// as a JobSpec when a template or run is validated, so that a malformed one is refused naming
    /// its field rather than making the whole object unreadable; and so that a Job is created with
    /// every field written, those newer than this build's JobSpec included.
    pub fn job_spec(&self) -> Result<k8s_openapi::api::batch::v1::JobSpec, serde_json::Error> {
        k8s_openapi::api::batch::v1::JobSpec::deserialize(&self.spec)
    }
}

/// The labels and annotations a job metric adds to its Jobs. Their values are templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct JobMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An HTTP endpoint answering JSON, one number of which is the measurement. Threshold metrics only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.body) || (has(self.method) && self.method == 'POST')").message("body needs method POST"))]
pub struct WebProvider {
    /// An `http://` or `https://` URL template; placeholders may only fill its query string, and their
    /// values are percent-encoded.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#@]+([/?#].*)?$')").message("url must be an http:// or https:// URL with a host and no credentials"))]
    pub url: String,
    #[serde(default)]
    pub method: WebMethod,
    /// A JSON request body template, sent with POST; placeholders must be inside JSON strings, and
    /// their values are escaped as string content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderFromSecret>,
    /// An RFC 9535 JSONPath selecting exactly one number (or numeric string; null is no data) in the
    /// answer, for example `$.data.errorRate`.
    #[schemars(length(min = 1))]
    pub json_path: String,
    /// How long the request may take, connecting and reading the answer included. Defaults to 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// The HTTP method of a `web` metric's request.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum WebMethod {
    #[default]
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct PrometheusProvider {
    /// Base URL of the Prometheus HTTP API, for example `http://prometheus.monitoring:9090`.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#@]+([/?#].*)?$')").message("address must be an http:// or https:// URL with a host and no credentials"))]
    pub address: String,
    /// A PromQL query template; see the docs for `{{args.NAME}}` and the other variables.
    #[schemars(length(min = 1))]
    pub query: String,
    /// Query timeout, sent to Prometheus and enforced on the HTTP call. Defaults to 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderFromSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<PrometheusAuth>,
}

/// An InfluxDB 1.x server, queried in InfluxQL through its `/query` API. InfluxQL evaluates `now()`
/// at the server's clock, so a measurement is always of the present.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct InfluxDbProvider {
    /// Base URL of the InfluxDB HTTP API, for example `http://influxdb.monitoring:8086`.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/?#@]+(/[^?#]*)?$')").message("address must be an http:// or https:// URL with a host, and no credentials, query string or fragment"))]
    pub address: String,
    /// The database the query reads (`db`).
    #[schemars(length(min = 1))]
    pub database: String,
    /// The retention policy a measurement without one is read from (`rp`); the database's default
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub retention_policy: Option<String>,
    /// One InfluxQL SELECT statement template, answering one row with one value; see the docs for
    /// `{{args.NAME}}` and the other variables.
    #[schemars(length(min = 1))]
    pub query: String,
    /// How long the whole request may take. Defaults to 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderFromSecret>,
    /// A user's credentials (`basic`), or a JWT signed with the server's `shared-secret` (`bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<PrometheusAuth>,
}

/// An HTTP header sent with every query, such as Mimir's tenant header `X-Scope-OrgID`: its value
/// written here (`value`) or read from a Secret (`valueFrom`), exactly one of them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.value) != has(self.valueFrom)").message("a header must have exactly one of value or valueFrom"))]
pub struct HeaderFromSecret {
    #[schemars(length(min = 1))]
    pub name: String,
    /// The value, for one that is not secret, such as a tenant ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub value: Option<String>,
    /// The Secret key holding the value, for one that is secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub value_from: Option<SecretKeyRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.bearer) ? 1 : 0) + (has(self.basic) ? 1 : 0) == 1").message("auth must have exactly one of bearer or basic"))]
pub struct PrometheusAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub bearer: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub basic: Option<BasicAuth>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    pub username: SecretKeyRef,
    pub password: SecretKeyRef,
}

/// A key in a Secret in the namespace of the analysis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Bounds a healthy value stays within, with hysteresis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.min) || has(self.max)").message("threshold needs min, max or both"))]
#[x_kube(validation = Rule::new("!has(self.min) || !has(self.max) || self.min <= self.max").message("threshold min must not exceed max"))]
pub struct Threshold {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = schema::not_nullable)]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hysteresis: Option<Hysteresis>,
}

/// "Fail if above max for `breachFor`; recover only if within `recover` for `recoverFor`."
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Hysteresis {
    /// How long a breach must last before the metric fails. Defaults to 0 (the first breach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach_for: Option<Duration>,
    /// Stricter bounds a breaching metric must return within. Default to the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<Bounds>,
    /// How long values must stay within `recover` to count as healthy again. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_for: Option<Duration>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Bounds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Judges the canary against the stable baseline over the same window: the metric's query runs for
/// both revisions (`{{revision}}` and `{{service}}` name each in turn) and the two samples are compared
/// once the window is complete.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Compare {
    #[serde(default)]
    pub baseline: Baseline,
    #[serde(default)]
    pub test: CompareTest,
    #[serde(default)]
    pub direction: Direction,
    /// Confidence needed to call a difference significant, for example 0.95.
    #[schemars(range(min = 0.5, max = 0.9999))]
    pub confidence: f64,
    /// How much worse (as a ratio of means) the canary may be before a significant difference fails.
    /// Defaults to 1: any significant difference in `direction` fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0))]
    pub max_ratio: Option<f64>,
    /// Values needed on each side, and non-zero values across both, before the comparison may
    /// decide; with fewer the metric is Inconclusive. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3))]
    pub min_samples: Option<i32>,
    /// Drop values more than 1.5 interquartile ranges outside each sample's quartiles first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove_outliers: bool,
    /// A second test, for a change of shape or spread that a shift of location does not show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_test: Option<DistributionTest>,
}

/// The second test of a comparison.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DistributionTest {
    /// Two-sample Kolmogorov–Smirnov: any difference between the two distributions.
    KolmogorovSmirnov,
}

/// Judges the canary's error rate against stable's with an anytime-valid sequential test on
/// counts. The metric's query counts failed requests over `[{{interval}}]` and `requestsQuery` all
/// requests, each run for both revisions. However often it is evaluated, a canary no worse than
/// stable fails with probability at most `alpha`; it passes once the counts rule out an error rate
/// more than `maxIncrease` above stable's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Sequential {
    /// A query template, in the metric's provider's language, counting all requests of
    /// `{{revision}}` over the interval, as `[{{interval}}]` in PromQL.
    #[schemars(length(min = 1))]
    pub requests_query: String,
    /// The false-rollback rate allowed over the whole analysis. Defaults to 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0001, max = 0.5))]
    pub alpha: Option<f64>,
    /// The relative increase over stable's error rate that passing rules out: 0.5 passes once the
    /// canary is shown to fail less than 1.5 times as often as stable.
    #[schemars(range(min = 0.01, max = 100.0))]
    pub max_increase: f64,
    /// How long a regression must last before it may fail the canary, at most 10m: a burst of
    /// failures shorter than this (a restart, a cold cache) cannot fail the canary alone, while a
    /// lasting regression, however gross, fails one interval after it. Evidence of a marginal
    /// regression still builds up over the whole analysis. Without it one interval of overwhelming
    /// evidence is enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) <= duration('10m')").message("breachFor must be at most 10m"))]
    pub breach_for: Option<Duration>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Baseline {
    #[default]
    Stable,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CompareTest {
    #[default]
    MannWhitney,
}

/// Which way of moving counts as a regression.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Increase,
    Decrease,
    Either,
}

/// What a measurement with no data means.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NoDataPolicy {
    #[default]
    Inconclusive,
    Fail,
    Pass,
    Ignore,
}

/// One execution of analysis metrics against one revision. Created by the controller and owned by
/// its Rollout.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "bellwether.dev",
    version = "v1alpha1",
    kind = "AnalysisRun",
    namespaced,
    status = "AnalysisRunStatus",
    derive = "PartialEq",
    shortname = "bwar",
    category = "bellwether",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// The metrics; each measurement renders their queries from `args`, `revision` and `context`.
    #[schemars(length(min = 1))]
    pub metrics: Vec<Metric>,
    /// The value of every arg the queries use: the Rollout's values over the templates' defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
    /// The revision under test.
    pub revision: String,
    /// How long the run lasts when a metric has no `count`: the length of its step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// How long the run may take to reach a verdict before it ends in Error: the analysis step's
    /// `timeout`. Without it the bound is derived from the metrics; see docs/concepts.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Set to stop the run; it ends with its current verdict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminate: bool,
    /// What the queries' variables name besides the revision and args; set by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RunContext>,
    /// The template each metric came from, which says where its Secrets are read: an
    /// AnalysisTemplate's from the run's namespace, a ClusterAnalysisTemplate's from the
    /// controller's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<MetricSource>,
}

/// Where one metric of a run was defined.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct MetricSource {
    pub metric: String,
    pub template: super::TemplateRef,
}

/// The Rollout a run judges, as its queries see it: `{{rollout.name}}`, `{{stable.revision}}`,
/// `{{canary.service}}` and `{{stable.service}}`. Recorded on the run so that every measurement
/// names what the run was created for, even after the Rollout has moved on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct RunContext {
    /// The Rollout's name; its namespace is the run's.
    pub rollout: String,
    /// The revision the canary is compared with.
    pub stable_revision: String,
    /// The Service that sends traffic to the canary.
    pub canary_service: String,
    /// The Service that sends traffic to stable.
    pub stable_service: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum AnalysisPhase {
    Pending,
    Running,
    Successful,
    Failed,
    Inconclusive,
    Error,
}

impl AnalysisPhase {
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AnalysisPhase>,
    /// The verdict's reason, for example `error-rate: 0.034 > max 0.01 continuously for 2m05s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_results: Vec<MetricResult>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    pub name: String,
    pub phase: AnalysisPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The latest measurements, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hysteresis: Option<HysteresisStatus>,
    #[serde(default)]
    pub consecutive_errors: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub at: DateTime<Utc>,
    /// The value, absent when there was no data or the query failed. For a sequential metric, the
    /// canary's share of failed requests in the interval. Written as Prometheus writes values, so
    /// that `+Inf`, `-Inf` and `NaN` survive.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::sample")]
    #[schemars(schema_with = "schema::sample_value")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Compare metrics: the stable revision's value at the same time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "super::sample")]
    #[schemars(schema_with = "schema::sample_value")]
    pub baseline: Option<f64>,
    /// Sequential metrics: the requests each revision served, and failed, in the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
}

/// Requests and failed requests of each revision over one interval.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub canary_errors: f64,
    pub canary_requests: f64,
    pub stable_errors: f64,
    pub stable_requests: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct HysteresisStatus {
    pub state: HysteresisState,
    pub since: DateTime<Utc>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum HysteresisState {
    Healthy,
    Breaching,
    Failed,
}
