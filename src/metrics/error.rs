//! Why a measurement failed, in kinds every provider shares, so that the judge, the controller's
//! metrics and `bellwether analyze` treat a failed Prometheus query and a failed web request alike.
//! Each provider words the kinds in its own terms: [`MeasurementError::describe`].

use std::fmt;

/// The provider a measurement error came from, which its message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Prometheus,
    Web,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Prometheus => "prometheus",
            Self::Web => "web",
        })
    }
}

/// Why a query produced no measurement.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasurementError {
    /// No connection could be made: connection refused, unknown host, TLS handshake failure.
    Unreachable { address: String, reason: String },
    /// The HTTP call took longer than the timeout, or Prometheus gave up evaluating the query.
    Timeout { reason: String },
    /// The provider (or a proxy in front of it) answered with an HTTP 5xx status.
    ServerError { status: u16, message: String },
    /// The provider rejected the query, for example a PromQL syntax error or a web endpoint's 4xx.
    BadQuery { message: String },
    /// The query returned more than one series (a JSONPath more than one node) where exactly one was
    /// expected.
    TooManySeries {
        count: usize,
        /// The first few in sorted order: label sets formatted like `{revision="a"}`, or the
        /// normalized paths of JSON nodes like `$['items'][0]`.
        series: Vec<String>,
    },
    /// Anything else: an answer that is not what a measurement query returns.
    Unexpected { message: String },
}

impl MeasurementError {
    /// A short, stable name for the kind of error, suitable as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout { .. } => "timeout",
            Self::ServerError { .. } => "server_error",
            Self::BadQuery { .. } => "bad_query",
            Self::TooManySeries { .. } => "too_many_series",
            Self::Unexpected { .. } => "unexpected",
        }
    }

    pub(super) fn unexpected(message: impl Into<String>) -> Self {
        Self::Unexpected { message: message.into() }
    }

    /// The error in the terms of the provider it came from.
    pub fn describe(&self, provider: ProviderKind) -> String {
        use ProviderKind::{Prometheus, Web};
        match (self, provider) {
            (Self::Unreachable { address, reason }, Prometheus) => {
                format!("Prometheus at {address} is unreachable: {reason}")
            }
            (Self::Unreachable { address, reason }, Web) => {
                format!("web endpoint {address} is unreachable: {reason}")
            }
            (Self::Timeout { reason }, Prometheus) => format!("Prometheus query timed out: {reason}"),
            (Self::Timeout { reason }, Web) => format!("web request timed out: {reason}"),
            (Self::ServerError { status, message }, Prometheus) => {
                format!("Prometheus answered HTTP {status}: {message}")
            }
            (Self::ServerError { status, message }, Web) => {
                format!("web endpoint answered HTTP {status}: {message}")
            }
            (Self::BadQuery { message }, Prometheus) => format!("Prometheus rejected the query: {message}"),
            (Self::BadQuery { message }, Web) => format!("web endpoint rejected the request: {message}"),
            (Self::TooManySeries { count, series }, Prometheus) => {
                format!("query returned {count} series, expected 1: {}", format_series_list(series, *count))
            }
            (Self::TooManySeries { count, series }, Web) => {
                format!("jsonPath selected {count} nodes, expected 1: {}", format_series_list(series, *count))
            }
            (Self::Unexpected { message }, Prometheus) => {
                format!("unexpected answer from Prometheus: {message}")
            }
            (Self::Unexpected { message }, Web) => {
                format!("unexpected answer from the web endpoint: {message}")
            }
        }
    }
}

/// In Prometheus's terms, where most errors come from; a web error is shown with
/// [`MeasurementError::describe`].
impl fmt::Display for MeasurementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(ProviderKind::Prometheus))
    }
}

impl std::error::Error for MeasurementError {}

fn format_series_list(series: &[String], count: usize) -> String {
    let mut out = series.join(", ");
    if count > series.len() {
        out.push_str(&format!(" and {} more", count - series.len()));
    }
    out
}
