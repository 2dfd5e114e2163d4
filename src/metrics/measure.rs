//! Measuring a metric: its queries rendered for each revision it measures, run through a
//! [`Source`] at one time, and the answers made into one [`Measurement`]. `bellwether analyze`,
//! the AnalysisRun reconciler and the simulation all measure through here, so that a backtest and
//! a simulation measure what a rollout would.
//!
//! A threshold metric measures the revision under test. A compare metric runs its query for the canary
//! (the value) and for stable (the baseline); a sequential metric runs its query and `requestsQuery`
//! for both, counting each revision's failed and all requests.

use super::prometheus::DEFAULT_TIMEOUT;
use super::provider::Provider;
use super::source::Source;
use crate::api::template::{Side, TemplateError, Vars};
use crate::api::{
    self, AnalysisRun, Counts, DEFAULT_INTERVAL, DurationError, MAX_COUNT, Measurement, Metric,
    format_duration,
};
use chrono::{DateTime, Utc};

/// The field holding a sequential metric's count of all requests, as errors name it.
pub const REQUESTS_QUERY_FIELD: &str = "sequential.requestsQuery";

/// Why a metric's queries cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("sets no provider")]
    NoProvider,
    /// A query template, named by its field, refers to something the variables cannot fill.
    #[error("{field}: {reason}")]
    Template { field: &'static str, reason: TemplateError },
    /// A field, rendered or not, that the provider cannot use.
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
}

/// A query rendered for the canary and for stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub canary: String,
    pub stable: String,
}

/// What each measurement of a metric runs, every variable substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricQueries {
    /// The query, for the revision under test.
    Threshold(String),
    /// The query, for each revision: the canary's value and stable's baseline.
    Compare(Pair),
    /// Failed requests (the metric's query) and all requests (`requestsQuery`), for each revision.
    Sequential { errors: Pair, requests: Pair },
}

impl MetricQueries {
    /// Renders the metric's queries for each revision it measures. `{{interval}}` is the metric's own
    /// interval, whatever `vars` holds, since a range selector must cover the time between measurements.
    /// A metric whose provider takes no query (`web`) has none to render.
    pub fn render(metric: &Metric, vars: &Vars) -> Result<Self, RenderError> {
        let provider = Provider::of(metric)?;
        let Some((query_field, query)) = provider.query() else {
            return Err(RenderError::Field {
                field: "provider",
                reason: format!("{} takes no query", provider.kind()),
            });
        };
        let interval =
            metric.interval.as_ref().map_or_else(|| format_duration(DEFAULT_INTERVAL), ToString::to_string);
        let vars = Vars { interval, ..vars.clone() };
        let render = |field: &'static str, query: &str, side: Side| {
            provider
                .render(query, &vars.measuring(side))
                .map_err(|reason| RenderError::Template { field, reason })
        };
        let pair = |field: &'static str, query: &str| -> Result<Pair, RenderError> {
            Ok(Pair {
                canary: render(field, query, Side::Canary)?,
                stable: render(field, query, Side::Stable)?,
            })
        };
        Ok(match (&metric.compare, &metric.sequential) {
            (Some(_), _) => Self::Compare(pair(query_field, query)?),
            (None, Some(sequential)) => Self::Sequential {
                errors: pair(query_field, query)?,
                requests: pair(REQUESTS_QUERY_FIELD, &sequential.requests_query)?,
            },
            (None, None) => Self::Threshold(render(query_field, query, Side::Canary)?),
        })
    }

    /// Takes one measurement at `at` through `source`. A failure of any query is the measurement's
    /// error, named by the query that failed, since a comparison with one side missing would mislead
    /// the judge.
    pub async fn measure(&self, source: &impl Source, at: DateTime<Utc>) -> Measurement {
        let labelled = |label: &'static str, query| async move {
            answer(source, query, at).await.map_err(|error| format!("{label}: {error}"))
        };
        let measured = match self {
            Self::Threshold(query) => answer(source, query, at).await.map(|value| Measurement {
                at,
                value,
                ..Measurement::default()
            }),
            Self::Compare(pair) => {
                let (canary, stable) = tokio::join!(
                    labelled("query for the canary", &pair.canary),
                    labelled("query for stable", &pair.stable)
                );
                match (canary, stable) {
                    (Ok(value), Ok(baseline)) => {
                        Ok(Measurement { at, value, baseline, ..Measurement::default() })
                    }
                    (Err(error), _) | (_, Err(error)) => Err(error),
                }
            }
            Self::Sequential { errors, requests } => {
                let (canary_errors, canary_requests, stable_errors, stable_requests) = tokio::join!(
                    labelled("query for the canary", &errors.canary),
                    labelled("requestsQuery for the canary", &requests.canary),
                    labelled("query for stable", &errors.stable),
                    labelled("requestsQuery for stable", &requests.stable),
                );
                counted(at, [canary_errors, canary_requests, stable_errors, stable_requests])
            }
        };
        measured.unwrap_or_else(|error| Measurement { at, error: Some(error), ..Measurement::default() })
    }
}

/// The answer to one query, its error in the source's terms.
async fn answer(source: &impl Source, query: &str, at: DateTime<Utc>) -> Result<Option<f64>, String> {
    source.instant(query, at).await.map_err(|error| error.describe(source.kind()))
}

/// A sequential measurement from the canary's and stable's failed and all requests, in that order.
fn counted(at: DateTime<Utc>, results: [Result<Option<f64>, String>; 4]) -> Result<Measurement, String> {
    // A count with no series counted nothing: an app exports its 5xx series only after its first
    // failure, and a revision that has served nothing has no series at all.
    const LABELS: [&str; 4] = [
        "query for the canary",
        "requestsQuery for the canary",
        "query for stable",
        "requestsQuery for stable",
    ];
    let mut counts = [0.0; 4];
    for ((count, result), label) in counts.iter_mut().zip(results).zip(LABELS) {
        *count = result?.unwrap_or(0.0);
        // A count of requests is a whole, finite number; `+Inf` or a negative number is a broken
        // query (a division, a subtraction), and treating it as evidence would decide on nothing.
        if !(0.0..=MAX_COUNT).contains(count) {
            return Err(format!(
                "{label}: returned {}, which is not a count of requests: it must be a finite number from 0 \
                 to 2^53",
                crate::api::sample::format(*count)
            ));
        }
    }
    let [canary_errors, canary_requests, stable_errors, stable_requests] = counts;
    let counts = Counts { canary_errors, canary_requests, stable_errors, stable_requests };
    let value = (counts.canary_requests > 0.0).then(|| counts.canary_errors / counts.canary_requests);
    Ok(Measurement { at, value, counts: Some(counts), ..Measurement::default() })
}

/// How long each of a metric's queries may take: its `timeout`, or [`DEFAULT_TIMEOUT`].
pub fn query_timeout(prometheus: &api::PrometheusProvider) -> Result<std::time::Duration, DurationError> {
    match &prometheus.timeout {
        Some(timeout) => Ok(timeout.parse()?.to_std().unwrap_or(DEFAULT_TIMEOUT)),
        None => Ok(DEFAULT_TIMEOUT),
    }
}

/// The variables of a run's queries: its args, its revision as the canary, its namespace as the
/// Rollout's, and the rest from its `context`. A run without a context names no Rollout, stable
/// revision or Service: those variables are empty. `{{interval}}` is each metric's, set by
/// [`MetricQueries::render`].
pub fn vars(run: &AnalysisRun) -> Vars {
    spec_vars(&run.spec, &run.metadata.namespace.clone().unwrap_or_default())
}

/// [`vars`] of a run's spec, the run being in `namespace`.
pub fn spec_vars(spec: &api::AnalysisRunSpec, namespace: &str) -> Vars {
    let context = spec.context.clone().unwrap_or_default();
    Vars {
        args: spec.args.iter().map(|arg| (arg.name.clone(), arg.value.clone())).collect(),
        rollout_name: context.rollout,
        rollout_namespace: namespace.to_owned(),
        revision: spec.revision.clone(),
        canary_revision: spec.revision.clone(),
        stable_revision: context.stable_revision,
        canary_service: context.canary_service,
        stable_service: context.stable_service,
        interval: String::new(),
    }
}
