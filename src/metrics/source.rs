//! The interface every query-language provider implements: a server that evaluates one query at
//! one time and answers one number, no data, or a typed [`MeasurementError`].
//!
//! [`super::measure::MetricQueries::measure`] takes a metric's measurement through any source,
//! running a threshold metric's one query, a compare metric's two or a sequential metric's four,
//! so that the AnalysisRun reconciler, `bellwether analyze` and the simulation compose
//! measurements the same way whatever answers the queries.

use super::error::{MeasurementError, ProviderKind};
use chrono::{DateTime, Utc};
use std::future::Future;

/// A server that evaluates queries: Prometheus or a PromQL-compatible backend, or the simulated
/// traffic.
pub trait Source {
    /// The provider the answers come from, which error messages name.
    fn kind(&self) -> ProviderKind;

    /// The value of `query` at `at`: `Ok(None)` when there is no data (no series, or NaN), an error
    /// when the query could not be answered with one number.
    fn instant(
        &self,
        query: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<f64>, MeasurementError>> + Send;
}
