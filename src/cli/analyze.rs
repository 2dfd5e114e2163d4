//! `bellwether analyze`: runs an analysis template against its Prometheus or Datadog, now or as a
//! backtest over a past window, or against its InfluxDB now, and shows each measurement, the
//! hysteresis state after it, and the verdict with the time it would have fired. Template authors
//! tune thresholds with it before a real rollout.
//!
//! Each measurement is taken as an AnalysisRun takes it, by [`crate::metrics::measure`]. A backtest
//! reads no Secrets: a Datadog metric's keys come from the environment, `DD_API_KEY` and
//! `DD_APP_KEY`, rather than from flags, which would leave them in shell histories and process
//! lists.

use crate::api::template::Vars;
use crate::api::{
    AnalysisPhase, AnalysisTemplateSpec, ArgSpec, DEFAULT_INTERVAL, HysteresisState, Measurement, Metric,
};
use crate::cli::lint::document::Document;
use crate::cli::lint::{Finding, template_of};
use crate::cli::manifests::{self, LoadError, filename_help};
use crate::engine::{MetricVerdict, format_value, judge_metric, run_phase};
use crate::metrics::datadog::{DatadogClient, DatadogSettings, key_headers};
use crate::metrics::error::ProviderKind;
use crate::metrics::influxdb::InfluxDbClient;
use crate::metrics::measure::{self, MetricQueries, Pair, RenderError};
use crate::metrics::prometheus::{MeasurementError, PrometheusProvider, ResolvedAuth};
use crate::metrics::provider::Provider;
use crate::metrics::source::Source;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

/// Longest backtest, in measurements per metric, so that a typo in `--from` cannot flood Prometheus.
const MAX_POINTS: u64 = 10_000;

/// The environment variables a Datadog metric's keys are read from.
pub const DATADOG_API_KEY_VARIABLE: &str = "DD_API_KEY";
pub const DATADOG_APPLICATION_KEY_VARIABLE: &str = "DD_APP_KEY";

/// Exit codes of `bellwether analyze`: one per verdict, and one for an analysis that could not run.
/// 2 is left to a usage error, as clap exits with it.
pub mod exit {
    pub const SUCCESSFUL: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INCONCLUSIVE: u8 = 3;
    pub const ERROR: u8 = 4;
    /// The window ended before every metric had a verdict.
    pub const UNDECIDED: u8 = 5;
    pub const COULD_NOT_RUN: u8 = 6;
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-", required = true,
        help = concat!(filename_help!(), " They must hold one AnalysisTemplate or ClusterAnalysisTemplate, \
        or name it with --template."))]
    pub files: Vec<PathBuf>,
    /// The AnalysisTemplate or ClusterAnalysisTemplate to run, by name, when the manifests hold more
    /// than one.
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// A template arg, as NAME=VALUE; repeat for more.
    #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_arg)]
    pub args: Vec<(String, String)>,
    /// The revision under test: `{{revision}}` and `{{canary.revision}}`.
    #[arg(long, default_value = "canary")]
    pub revision: String,
    /// `{{stable.revision}}`.
    #[arg(long, default_value = "stable")]
    pub stable_revision: String,
    /// `{{rollout.name}}`.
    #[arg(long, default_value = "rollout")]
    pub rollout: String,
    /// `{{rollout.namespace}}`.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// `{{canary.service}}`; defaults to `<rollout>-canary`.
    #[arg(long)]
    pub canary_service: Option<String>,
    /// `{{stable.service}}`; defaults to `<rollout>-stable`.
    #[arg(long)]
    pub stable_service: Option<String>,
    /// Query this Prometheus instead of the address in the template.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Query this InfluxDB instead of the address in the template.
    #[arg(long, value_name = "URL")]
    pub influxdb: Option<String>,
    /// Measure once, at this time: `now` or an RFC 3339 time. The measurement is taken at this
    /// very instant and judged as one taken `initialDelay` into a run. Ignored with --from/--to.
    /// InfluxDB metrics are measured only now.
    #[arg(long, default_value = "now", value_parser = parse_at)]
    pub at: DateTime<Utc>,
    /// Backtest: replay the template as a run started at this RFC 3339 time: each metric's first
    /// measurement `initialDelay` later, then one per interval.
    #[arg(long, requires = "to")]
    pub from: Option<DateTime<Utc>>,
    /// Backtest: the end of the replay, inclusive.
    #[arg(long, requires = "from")]
    pub to: Option<DateTime<Utc>>,
    /// The success window of metrics without a `count`, like an analysis step's `duration`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<chrono::Duration>,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

fn parse_arg(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

fn parse_at(text: &str) -> Result<DateTime<Utc>, String> {
    match text {
        "now" => Ok(Utc::now()),
        text => DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| format!("{text:?} is neither `now` nor an RFC 3339 time")),
    }
}

fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    crate::api::Duration::new(text).parse().map_err(|e| e.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("cannot read {0}")]
    Load(#[from] LoadError),
    #[error("the manifests have no AnalysisTemplate or ClusterAnalysisTemplate{}",
        .0.as_ref().map_or(String::new(), |name| format!(" named {name}")))]
    NoTemplate(Option<String>),
    #[error("the manifests hold {} templates ({}): name the one to run with --template", .0.len(), .0.join(", "))]
    ManyTemplates(Vec<String>),
    #[error("the manifests cannot be read as the API server would:{}", lines(.0))]
    Unreadable(Vec<Finding>),
    #[error("{name} is refused, as the API server or the controller would refuse it:{}", lines(findings))]
    Invalid { name: String, findings: Vec<Finding> },
    #[error("--from must be before --to")]
    EmptyWindow,
    #[error(
        "{metric}: the backtest needs {points} measurements, one every {interval}; at most {MAX_POINTS} are allowed: \
         shorten --from/--to or lengthen the metric's interval"
    )]
    TooLong { metric: String, points: u64, interval: String },
    #[error("{metric}: {reason}")]
    Render { metric: String, reason: RenderError },
    #[error("{metric}: {message}")]
    Metric { metric: String, message: String },
    #[error("{metric}: {}", .reason.describe(*.provider))]
    Unreachable { metric: String, provider: ProviderKind, reason: MeasurementError },
}

fn lines(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("\n  {f}")).collect()
}

impl AnalyzeError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::EmptyWindow => exit::USAGE,
            _ => exit::COULD_NOT_RUN,
        }
    }
}

/// One measurement and what the judge made of everything up to it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Point {
    #[serde(flatten)]
    pub measurement: Measurement,
    pub state: HysteresisState,
    pub phase: AnalysisPhase,
    pub message: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct MetricReport {
    pub name: String,
    /// The metric's query as run for the revision under test: the canary.
    pub query: String,
    /// Compare and sequential metrics: the metric's query as run for stable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_query: Option<String>,
    /// Sequential metrics: `requestsQuery` as run for the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_query: Option<String>,
    /// Sequential metrics: `requestsQuery` as run for stable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_requests_query: Option<String>,
    pub points: Vec<Point>,
    pub phase: AnalysisPhase,
    pub message: String,
    /// When the verdict became final: when a real rollout would have acted on it.
    pub fired_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Report {
    pub template: String,
    pub started_at: DateTime<Utc>,
    pub metrics: Vec<MetricReport>,
    pub phase: AnalysisPhase,
}

/// Runs the analysis and returns its report. Everything that would stop it (the template, the
/// length of the backtest, the queries, a Prometheus out of reach) is checked for every metric
/// before the first measurement.
pub async fn analyze(args: &AnalyzeArgs, stdin: &mut dyn Read) -> Result<Report, AnalyzeError> {
    let (name, spec) = load_template(args, stdin)?;
    let vars = variables(args, &spec.args);
    let window = match (args.from, args.to) {
        (Some(from), Some(to)) if from <= to => Window::Backtest { from, to },
        (Some(_), Some(_)) => return Err(AnalyzeError::EmptyWindow),
        _ => Window::At(args.at),
    };
    let plans = spec
        .metrics
        .iter()
        .map(|metric| MetricPlan::new(args, metric, &vars, window))
        .collect::<Result<Vec<_>, _>>()?;
    for plan in &plans {
        plan.check_reachable().await?;
    }
    let mut metrics = Vec::with_capacity(plans.len());
    let mut verdicts = Vec::with_capacity(plans.len());
    for plan in plans {
        let (report, verdict) = plan.run(args.duration).await;
        metrics.push(report);
        verdicts.push(verdict);
    }
    let started_at = match window {
        Window::Backtest { from, .. } => from,
        Window::At(at) => at,
    };
    Ok(Report { template: name, started_at, phase: run_phase(&verdicts), metrics })
}

/// When the measurements are taken.
#[derive(Clone, Copy, Debug)]
enum Window {
    /// Once, at this instant. A person who names an instant means that one: measured
    /// `initialDelay` later, "now" would be in the future, with no data yet.
    At(DateTime<Utc>),
    /// A run replayed as if started at `from`: its measurements from `initialDelay` after it, as
    /// a live run's, until `to`.
    Backtest { from: DateTime<Utc>, to: DateTime<Utc> },
}

impl Window {
    /// Whether this is one measurement of the present: `--at now`, which names the instant the
    /// command started, a moment ago.
    fn is_now(self) -> bool {
        const STARTING: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
        matches!(self, Self::At(at) if (Utc::now() - at).abs() <= STARTING)
    }
}

/// The template the manifests hold (or the one `--template` names), checked as `lint` checks it:
/// YAML, schema and CEL rules, and the engine's own validation. Manifests that cannot all be read,
/// or that define an object twice differently, are refused: the template might be among them.
fn load_template(
    args: &AnalyzeArgs,
    stdin: &mut dyn Read,
) -> Result<(String, AnalysisTemplateSpec), AnalyzeError> {
    let manifests = manifests::load(&args.files, stdin)?;
    let errors = manifests.errors();
    if !errors.is_empty() {
        return Err(AnalyzeError::Unreadable(errors));
    }
    let templates: Vec<&Document> = manifests
        .documents
        .iter()
        .filter(|doc| doc.is_template() && args.template.as_deref().is_none_or(|name| doc.name() == name))
        .collect();
    let doc = match templates.as_slice() {
        [] => return Err(AnalyzeError::NoTemplate(args.template.clone())),
        [doc] => doc,
        many => {
            return Err(AnalyzeError::ManyTemplates(
                many.iter().map(|doc| format!("{}/{}", doc.kind(), doc.name())).collect(),
            ));
        }
    };
    template_of(doc).map_err(|findings| AnalyzeError::Invalid {
        name: format!("{}/{}", doc.kind(), doc.name()),
        findings,
    })
}

fn variables(args: &AnalyzeArgs, declared: &[ArgSpec]) -> Vars {
    let mut values: BTreeMap<String, String> =
        declared.iter().filter_map(|a| a.value.clone().map(|v| (a.name.clone(), v))).collect();
    values.extend(args.args.iter().cloned());
    Vars {
        args: values,
        rollout_name: args.rollout.clone(),
        rollout_namespace: args.namespace.clone(),
        revision: args.revision.clone(),
        canary_revision: args.revision.clone(),
        stable_revision: args.stable_revision.clone(),
        canary_service: args.canary_service.clone().unwrap_or_else(|| format!("{}-canary", args.rollout)),
        stable_service: args.stable_service.clone().unwrap_or_else(|| format!("{}-stable", args.rollout)),
        interval: String::new(),
    }
}

/// What answers a metric's queries: its Prometheus or its Datadog site at each measurement's time,
/// its InfluxDB now.
enum Backend {
    Prometheus(PrometheusProvider),
    InfluxDb(InfluxDbClient),
    Datadog(DatadogClient),
}

impl Source for Backend {
    fn kind(&self) -> ProviderKind {
        match self {
            Self::Prometheus(prometheus) => prometheus.kind(),
            Self::InfluxDb(influxdb) => influxdb.kind(),
            Self::Datadog(datadog) => datadog.kind(),
        }
    }

    async fn instant(&self, query: &str, at: DateTime<Utc>) -> Result<Option<f64>, MeasurementError> {
        match self {
            Self::Prometheus(prometheus) => prometheus.instant(query, Some(at)).await,
            Self::InfluxDb(influxdb) => influxdb.query(query).await,
            Self::Datadog(datadog) => datadog.query(query, at).await,
        }
    }
}

/// The headers written in a template (a tenant ID), which analyze sends; it reads no Secrets.
fn literal_headers(headers: &[crate::api::HeaderFromSecret]) -> ResolvedAuth {
    let literal = headers.iter().filter_map(|h| Some((h.name.clone(), h.value.clone()?)));
    ResolvedAuth { credentials: None, headers: literal.collect() }
}

/// One metric, ready to be measured: its queries rendered, its provider built and its measurement
/// times within the limit.
struct MetricPlan<'m> {
    metric: &'m Metric,
    queries: MetricQueries,
    provider: Backend,
    /// When the run the measurements are judged as part of started.
    started_at: DateTime<Utc>,
    times: Times,
}

impl<'m> MetricPlan<'m> {
    fn new(
        args: &AnalyzeArgs,
        metric: &'m Metric,
        vars: &Vars,
        window: Window,
    ) -> Result<Self, AnalyzeError> {
        let fail = |message: String| AnalyzeError::Metric { metric: metric.name.clone(), message };
        let render = |reason| AnalyzeError::Render { metric: metric.name.clone(), reason };
        let provider = match Provider::of(metric).map_err(render)? {
            Provider::Web(_) => {
                return Err(fail(
                    "uses the web provider, which cannot be backtested: analyze measures at past times, \
                     and a web endpoint answers only for the present"
                        .into(),
                ));
            }
            Provider::Job(_) => {
                return Err(fail(
                    "uses the job provider, which cannot be backtested: analyze measures at past times, \
                     and a Job tests only the present"
                        .into(),
                ));
            }
            Provider::Prometheus(prometheus) => {
                let timeout =
                    measure::query_timeout(prometheus.timeout.as_ref()).map_err(|e| fail(e.to_string()))?;
                let address = args.prometheus.as_deref().unwrap_or(&prometheus.address);
                let auth = literal_headers(&prometheus.headers);
                let provider =
                    PrometheusProvider::new(address, timeout, &auth).map_err(|e| fail(e.to_string()))?;
                Backend::Prometheus(provider)
            }
            Provider::InfluxDb(influxdb) if window.is_now() => {
                let timeout =
                    measure::query_timeout(influxdb.timeout.as_ref()).map_err(|e| fail(e.to_string()))?;
                let address = args.influxdb.as_deref().unwrap_or(&influxdb.address);
                let retention_policy = influxdb.retention_policy.as_deref();
                let auth = literal_headers(&influxdb.headers);
                let client =
                    InfluxDbClient::new(address, &influxdb.database, retention_policy, timeout, &auth)
                        .map_err(|e| fail(e.to_string()))?;
                Backend::InfluxDb(client)
            }
            Provider::InfluxDb(_) => {
                return Err(fail(
                    "uses the influxdb provider, which is measured only now: InfluxQL has no evaluation time \
                     (now() is the server's clock), so analyze cannot take it at a past time; run it \
                     without --from/--to and with --at now"
                        .into(),
                ));
            }
            Provider::Datadog(datadog) => {
                let settings = DatadogSettings::of(datadog).map_err(render)?;
                let client = DatadogClient::new(settings, &datadog_keys().map_err(fail)?)
                    .map_err(|e| fail(e.to_string()))?;
                Backend::Datadog(client)
            }
        };
        let interval = match &metric.interval {
            Some(d) => d.parse().map_err(|e| fail(e.to_string()))?,
            None => DEFAULT_INTERVAL,
        };
        let initial_delay = match &metric.initial_delay {
            Some(d) => d.parse().map_err(|e| fail(e.to_string()))?,
            None => chrono::Duration::zero(),
        };
        let (started_at, times) = match window {
            Window::At(at) => (at - initial_delay, Times::new(at, at, interval)),
            Window::Backtest { from, to } => (from, Times::new(from + initial_delay, to, interval)),
        };
        if times.count > MAX_POINTS {
            return Err(AnalyzeError::TooLong {
                metric: metric.name.clone(),
                points: times.count,
                interval: crate::api::format_duration(times.interval),
            });
        }
        let queries = MetricQueries::render(metric, vars).map_err(render)?;
        Ok(Self { metric, queries, provider, started_at, times })
    }

    /// Fails when no connection to the metric's server can be made: every measurement would fail,
    /// and the verdict would say nothing about the template. Any other answer, even an error, is
    /// left to the measurements to show.
    async fn check_reachable(&self) -> Result<(), AnalyzeError> {
        let answer = match &self.provider {
            Backend::Prometheus(prometheus) => prometheus.instant("vector(1)", None).await.map(drop),
            Backend::InfluxDb(influxdb) => influxdb.ping().await,
            // Datadog has no query without a metric: the first measurement's first query, once.
            Backend::Datadog(datadog) => {
                let (MetricQueries::Threshold(query)
                | MetricQueries::Compare(Pair { canary: query, .. })
                | MetricQueries::Sequential { errors: Pair { canary: query, .. }, .. }) = &self.queries;
                datadog.query(query, self.times.start).await.map(drop)
            }
        };
        match answer {
            Err(reason @ MeasurementError::Unreachable { .. }) => Err(AnalyzeError::Unreachable {
                metric: self.metric.name.clone(),
                provider: self.provider.kind(),
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// Measures until the verdict is final or the window ends.
    async fn run(self, run_duration: Option<chrono::Duration>) -> (MetricReport, MetricVerdict) {
        let (metric, started_at) = (self.metric, self.started_at);
        let mut measurements = Vec::new();
        let mut points = Vec::new();
        let mut verdict = judge_metric(metric, &[], started_at, run_duration);
        for at in self.times.iter() {
            let measurement = self.queries.measure(&self.provider, at).await;
            measurements.push(measurement.clone());
            verdict = judge_metric(metric, &measurements, started_at, run_duration);
            points.push(Point {
                measurement,
                state: verdict.state,
                phase: verdict.phase,
                message: verdict.message.clone(),
            });
            if verdict.decided_at.is_some() {
                break;
            }
        }
        let (query, stable_query, requests) = match self.queries {
            MetricQueries::Threshold(query) => (query, None, None),
            MetricQueries::Compare(pair) => (pair.canary, Some(pair.stable), None),
            MetricQueries::Sequential { errors, requests } => {
                (errors.canary, Some(errors.stable), Some(requests))
            }
        };
        let report = MetricReport {
            name: metric.name.clone(),
            query,
            stable_query,
            requests_query: requests.as_ref().map(|pair| pair.canary.clone()),
            stable_requests_query: requests.map(|pair| pair.stable),
            points,
            phase: verdict.phase,
            message: verdict.message.clone(),
            fired_at: verdict.decided_at,
            dry_run: verdict.dry_run,
        };
        (report, verdict)
    }
}

/// A Datadog metric's keys, from [`DATADOG_API_KEY_VARIABLE`] and
/// [`DATADOG_APPLICATION_KEY_VARIABLE`].
fn datadog_keys() -> Result<ResolvedAuth, String> {
    let read =
        |name: &str| std::env::var(name).ok().map(|value| value.trim().to_owned()).filter(|v| !v.is_empty());
    match (read(DATADOG_API_KEY_VARIABLE), read(DATADOG_APPLICATION_KEY_VARIABLE)) {
        (Some(api_key), Some(application_key)) => Ok(key_headers(&api_key, &application_key)),
        _ => Err(format!(
            "queries Datadog, whose API and application keys analyze reads from the environment, as the \
             controller reads them from Secrets: set {DATADOG_API_KEY_VARIABLE} and \
             {DATADOG_APPLICATION_KEY_VARIABLE}"
        )),
    }
}

/// `start`, `start + interval`, ... up to and including `end`, counted before any is made.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Times {
    start: DateTime<Utc>,
    interval: chrono::Duration,
    count: u64,
}

impl Times {
    fn new(start: DateTime<Utc>, end: DateTime<Utc>, interval: chrono::Duration) -> Self {
        let interval = interval.max(chrono::Duration::seconds(1));
        let steps = (end - start).num_milliseconds() / interval.num_milliseconds();
        Self { start, interval, count: u64::try_from(steps).unwrap_or(0) + 1 }
    }

    fn iter(self) -> impl Iterator<Item = DateTime<Utc>> {
        (0..self.count).scan(self.start, move |at, _| {
            let this = *at;
            *at += self.interval;
            Some(this)
        })
    }
}

impl Report {
    /// The exit code of the run's verdict; see [`exit`].
    pub fn exit_code(&self) -> u8 {
        match self.phase {
            AnalysisPhase::Successful => exit::SUCCESSFUL,
            AnalysisPhase::Failed => exit::FAILED,
            AnalysisPhase::Inconclusive => exit::INCONCLUSIVE,
            AnalysisPhase::Error => exit::ERROR,
            AnalysisPhase::Pending | AnalysisPhase::Running => exit::UNDECIDED,
        }
    }

    /// The report as a table, one block per metric, ending with each verdict and when it fired.
    pub fn table(&self) -> String {
        let mut out = format!("template {} from {}\n", self.template, self.started_at.to_rfc3339());
        for metric in &self.metrics {
            out += &format!("\n{}{}\n", metric.name, if metric.dry_run { " (dry run)" } else { "" });
            out += &metric.queries_table();
            let columns = Columns::of(metric);
            out += &format!(
                "  {:<20} {:>12}{}  {:<10} {}\n",
                "TIME",
                "VALUE",
                columns.header(),
                "STATE",
                "JUDGE"
            );
            for point in &metric.points {
                let measurement = &point.measurement;
                let value = cell(measurement.value, measurement);
                // The judge names a measurement's error in its message once it counts it.
                let detail = match &measurement.error {
                    Some(error) if !point.message.contains(error.as_str()) => {
                        format!("{}; {error}", point.message)
                    }
                    _ => point.message.clone(),
                };
                out += &format!(
                    "  {:<20} {value:>12}{}  {:<10} {detail}\n",
                    measurement.at.format("%Y-%m-%d %H:%M:%S"),
                    columns.cells(measurement),
                    format!("{:?}", point.state)
                );
            }
            let fired = metric.fired_at.map_or("not yet decided".into(), |at| {
                format!(
                    "fired at {} ({} after start)",
                    at.format("%H:%M:%S"),
                    crate::api::format_duration(at - self.started_at)
                )
            });
            out += &format!("  verdict: {:?}, {fired}: {}\n", metric.phase, metric.message);
        }
        out += &format!("\nrun: {:?}\n", self.phase);
        out
    }
}

impl MetricReport {
    /// The rendered queries, one a line; labelled by revision when there is more than one.
    fn queries_table(&self) -> String {
        let one_line = |query: &str| query.split_whitespace().collect::<Vec<_>>().join(" ");
        let Some(stable_query) = &self.stable_query else {
            return format!("  query: {}\n", one_line(&self.query));
        };
        let mut out = format!("  query (canary): {}\n", one_line(&self.query));
        out += &format!("  query (stable): {}\n", one_line(stable_query));
        if let (Some(canary), Some(stable)) = (&self.requests_query, &self.stable_requests_query) {
            out += &format!("  requestsQuery (canary): {}\n", one_line(canary));
            out += &format!("  requestsQuery (stable): {}\n", one_line(stable));
        }
        out
    }
}

/// The columns a metric's kind adds after VALUE: stable's value for a compare metric, each revision's
/// failed and all requests for a sequential one.
enum Columns {
    Plain,
    Baseline,
    Counts,
}

impl Columns {
    fn of(metric: &MetricReport) -> Self {
        match (&metric.stable_query, &metric.requests_query) {
            (None, _) => Self::Plain,
            (Some(_), None) => Self::Baseline,
            (Some(_), Some(_)) => Self::Counts,
        }
    }

    fn header(&self) -> String {
        match self {
            Self::Plain => String::new(),
            Self::Baseline => format!(" {:>12}", "BASELINE"),
            Self::Counts => format!(" {:>16} {:>16}", "CANARY ERR/REQ", "STABLE ERR/REQ"),
        }
    }

    fn cells(&self, measurement: &Measurement) -> String {
        match self {
            Self::Plain => String::new(),
            Self::Baseline => format!(" {:>12}", cell(measurement.baseline, measurement)),
            Self::Counts => {
                let (canary, stable) = match &measurement.counts {
                    Some(c) => (
                        format!("{}/{}", format_value(c.canary_errors), format_value(c.canary_requests)),
                        format!("{}/{}", format_value(c.stable_errors), format_value(c.stable_requests)),
                    ),
                    None => ("error".into(), "error".into()),
                };
                format!(" {canary:>16} {stable:>16}")
            }
        }
    }
}

/// One number of a measurement, or why it has none.
fn cell(value: Option<f64>, measurement: &Measurement) -> String {
    match (value, &measurement.error) {
        (Some(v), _) => format!("{v:.6}"),
        (None, Some(_)) => "error".into(),
        (None, None) => "no data".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn times_are_counted_without_being_made() {
        let second = chrono::Duration::seconds(1);
        let decade = Times::new(at("2024-01-01T00:00:00Z"), at("2034-01-01T00:00:00Z"), second);
        assert_eq!(decade.count, 315_619_201, "3653 days of seconds, both ends included");
        let minute = chrono::Duration::minutes(1);
        let five = Times::new(at("2024-01-01T00:01:00Z"), at("2024-01-01T00:05:30Z"), minute);
        assert_eq!(
            five.iter().collect::<Vec<_>>(),
            ["00:01:00", "00:02:00", "00:03:00", "00:04:00", "00:05:00"]
                .map(|t| at(&format!("2024-01-01T{t}Z")))
        );
        let sub_second = Times::new(
            at("2024-01-01T00:00:00Z"),
            at("2024-01-01T00:00:10Z"),
            chrono::Duration::milliseconds(1),
        );
        assert_eq!(sub_second.count, 11, "an interval under 1s counts as 1s");
    }
}
