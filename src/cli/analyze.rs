//! `bellwether analyze`: runs an analysis template against a Prometheus, now or as a backtest over a
//! past window, and shows each measurement, the hysteresis state after it, and the verdict with
//! the time it would have fired. Template authors tune thresholds with it before a real rollout.
//!
//! Each measurement is taken as an AnalysisRun takes it, by [`crate::metrics::measure`].

use crate::api::{AnalysisPhase, AnalysisTemplateSpec, ArgSpec, HysteresisState, Measurement, Metric};
use crate::engine::{DEFAULT_INTERVAL, MetricVerdict, format_value, judge_metric, run_phase};
use crate::metrics::measure::{self, MetricQueries, RenderError};
use crate::metrics::prometheus::{PrometheusProvider, ResolvedAuth};
use crate::metrics::template::Vars;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Longest backtest, in measurements per metric, so that a typo in `--from` cannot flood Prometheus.
const MAX_POINTS: usize = 10_000;

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// A YAML file holding an AnalysisTemplate or ClusterAnalysisTemplate (the first one is used).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
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
    /// Measure once, at this time: `now` or an RFC 3339 time. Ignored with --from/--to.
    #[arg(long, default_value = "now")]
    pub at: String,
    /// Backtest: replay the template from this RFC 3339 time, one measurement per metric interval.
    #[arg(long, requires = "to")]
    pub from: Option<DateTime<Utc>>,
    /// Backtest: the end of the replay, inclusive.
    #[arg(long, requires = "from")]
    pub to: Option<DateTime<Utc>>,
    /// The success window of metrics without a `count`, like an analysis step's `duration`.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
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

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: std::io::Error },
    #[error("{path} is not valid YAML: {reason}")]
    Yaml { path: PathBuf, reason: serde_yaml::Error },
    #[error("{path} has no AnalysisTemplate or ClusterAnalysisTemplate")]
    NoTemplate { path: PathBuf },
    #[error("{path}: the template's spec is invalid: {reason}")]
    Spec { path: PathBuf, reason: serde_json::Error },
    #[error("--at {0:?} is neither `now` nor an RFC 3339 time")]
    At(String),
    #[error("--from must be before --to")]
    EmptyWindow,
    #[error("the backtest needs {points} measurements of {metric}; at most {MAX_POINTS} are allowed")]
    TooLong { metric: String, points: usize },
    #[error("{metric}: {reason}")]
    Render { metric: String, reason: RenderError },
    #[error("{metric}: {message}")]
    Metric { metric: String, message: String },
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

/// Runs the analysis and returns its report.
pub async fn analyze(args: &AnalyzeArgs) -> Result<Report, AnalyzeError> {
    let (name, spec) = load_template(&args.file)?;
    let vars = variables(args, &spec.args);
    let (started_at, end) = match (args.from, args.to) {
        (Some(from), Some(to)) if from <= to => (from, to),
        (Some(_), Some(_)) => return Err(AnalyzeError::EmptyWindow),
        _ => {
            let at = match args.at.as_str() {
                "now" => Utc::now(),
                text => DateTime::parse_from_rfc3339(text)
                    .map_err(|_| AnalyzeError::At(text.to_string()))?
                    .with_timezone(&Utc),
            };
            (at, at)
        }
    };
    let run_duration = match &args.duration {
        Some(text) => Some(
            crate::api::Duration::new(text.as_str())
                .parse()
                .map_err(|e| AnalyzeError::Metric { metric: "--duration".into(), message: e.to_string() })?,
        ),
        None => None,
    };
    let mut metrics = Vec::with_capacity(spec.metrics.len());
    let mut verdicts = Vec::with_capacity(spec.metrics.len());
    for metric in &spec.metrics {
        let (report, verdict) = analyze_metric(args, metric, &vars, started_at, end, run_duration).await?;
        metrics.push(report);
        verdicts.push(verdict);
    }
    Ok(Report { template: name, started_at, phase: run_phase(&verdicts), metrics })
}

fn load_template(path: &Path) -> Result<(String, AnalysisTemplateSpec), AnalyzeError> {
    let text =
        std::fs::read_to_string(path).map_err(|reason| AnalyzeError::Read { path: path.into(), reason })?;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_json::Value::deserialize(document)
            .map_err(|reason| AnalyzeError::Yaml { path: path.into(), reason })?;
        if matches!(value["kind"].as_str(), Some("AnalysisTemplate" | "ClusterAnalysisTemplate")) {
            let name = value["metadata"]["name"].as_str().unwrap_or("unnamed").to_string();
            let spec = serde_json::from_value(value["spec"].clone())
                .map_err(|reason| AnalyzeError::Spec { path: path.into(), reason })?;
            return Ok((name, spec));
        }
    }
    Err(AnalyzeError::NoTemplate { path: path.into() })
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

async fn analyze_metric(
    args: &AnalyzeArgs,
    metric: &Metric,
    vars: &Vars,
    started_at: DateTime<Utc>,
    end: DateTime<Utc>,
    run_duration: Option<chrono::Duration>,
) -> Result<(MetricReport, MetricVerdict), AnalyzeError> {
    let fail = |message: String| AnalyzeError::Metric { metric: metric.name.clone(), message };
    let render = |reason| AnalyzeError::Render { metric: metric.name.clone(), reason };
    let prometheus = measure::prometheus(metric).map_err(render)?;
    let interval = match &metric.interval {
        Some(d) => d.parse().map_err(|e| fail(e.to_string()))?,
        None => DEFAULT_INTERVAL,
    };
    let timeout = measure::query_timeout(prometheus).map_err(|e| fail(e.to_string()))?;
    let queries = MetricQueries::render(metric, vars).map_err(render)?;
    let address = args.prometheus.as_deref().unwrap_or(&prometheus.address);
    let provider = PrometheusProvider::new(address, timeout, &ResolvedAuth::default())
        .map_err(|e| fail(e.to_string()))?;

    let initial_delay = match &metric.initial_delay {
        Some(d) => d.parse().map_err(|e| fail(e.to_string()))?,
        None => chrono::Duration::zero(),
    };
    let times = measurement_times(started_at + initial_delay, end, interval);
    if times.len() > MAX_POINTS {
        return Err(AnalyzeError::TooLong { metric: metric.name.clone(), points: times.len() });
    }
    let mut measurements = Vec::with_capacity(times.len());
    let mut points = Vec::with_capacity(times.len());
    let mut verdict = judge_metric(metric, &[], started_at, run_duration);
    for at in times {
        let measurement = queries.measure(&provider, at).await;
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
    let (query, stable_query, requests) = match queries {
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
    Ok((report, verdict))
}

/// `start`, `start + interval`, ... up to and including `end`.
fn measurement_times(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: chrono::Duration,
) -> Vec<DateTime<Utc>> {
    let interval = interval.max(chrono::Duration::seconds(1));
    let count = ((end - start).num_milliseconds() / interval.num_milliseconds()).max(0) as usize + 1;
    (0..count).map(|i| start + interval * i as i32).collect()
}

impl Report {
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
                let detail = measurement
                    .error
                    .as_ref()
                    .map_or(point.message.clone(), |e| format!("{}; {e}", point.message));
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
