//! Why a measurement failed, in kinds every provider shares, so that the judge, the controller's
//! metrics and `bellwether analyze` treat a failed Prometheus query and a failed web request alike.
//! Each provider words the kinds in its own terms: [`MeasurementError::describe`].

use std::fmt;

/// The provider a measurement error came from, which its message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Prometheus,
    Web,
    InfluxDb,
    Datadog,
    /// A Job run by the Kubernetes API server, whose refusals are quoted as it words them.
    Job,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Prometheus => "prometheus",
            Self::Web => "web",
            Self::InfluxDb => "influxdb",
            Self::Datadog => "datadog",
            Self::Job => "job",
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
        let server = provider.server();
        let request = provider.request();
        match self {
            Self::Unreachable { address, reason } => {
                format!("{server} at {address} is unreachable: {reason}")
            }
            Self::Timeout { reason } => format!("{server} {request} timed out: {reason}"),
            Self::ServerError { status, message } => format!("{server} answered HTTP {status}: {message}"),
            Self::BadQuery { message } => format!("{server} rejected the {request}: {message}"),
            Self::TooManySeries { count, series } => {
                let (selector, things) = provider.selection();
                format!("{selector} {count} {things}, expected 1: {}", format_series_list(series, *count))
            }
            Self::Unexpected { message } => {
                format!("unexpected answer from {}: {message}", provider.the_server())
            }
        }
    }
}

impl ProviderKind {
    /// What answers the provider's requests, as a message's subject.
    fn server(self) -> &'static str {
        match self {
            Self::Prometheus => "Prometheus",
            Self::Web => "web endpoint",
            Self::InfluxDb => "InfluxDB",
            Self::Datadog => "Datadog",
            Self::Job => "Kubernetes API server",
        }
    }

    /// [`Self::server`] within a sentence.
    fn the_server(self) -> &'static str {
        match self {
            Self::Prometheus => "Prometheus",
            Self::Web => "the web endpoint",
            Self::InfluxDb => "InfluxDB",
            Self::Datadog => "Datadog",
            Self::Job => "the Kubernetes API server",
        }
    }

    /// What the provider sends.
    fn request(self) -> &'static str {
        match self {
            Self::Prometheus | Self::InfluxDb | Self::Datadog => "query",
            Self::Web => "request",
            Self::Job => "Job",
        }
    }

    /// What picks the answer's one value, and what it picks several of.
    fn selection(self) -> (&'static str, &'static str) {
        match self {
            Self::Prometheus | Self::InfluxDb | Self::Datadog => ("query returned", "series"),
            Self::Web => ("jsonPath selected", "nodes"),
            Self::Job => ("the Job ran", "times"),
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
