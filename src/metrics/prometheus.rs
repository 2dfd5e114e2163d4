//! Prometheus metric provider.
//!
//! Runs a metric's (already templated) PromQL query against the Prometheus HTTP API and turns the
//! answer into a measurement: one value for an instant query, one series of points for a range query.
//!
//! Two timeouts apply to every query: the HTTP client gives up after the configured timeout, and the
//! same timeout is sent to Prometheus as its evaluation timeout so that it stops working on a query
//! nobody waits for any more.
//!
//! A query whose URL-encoded form is longer than [`MAX_GET_QUERY_BYTES`] is sent by POST, form-encoded,
//! instead of in a GET's URL: every hop refuses URLs past a limit of its own (the HTTP client itself
//! at 64 KiB, Prometheus at 1 MiB, many proxies at 8 KiB), and a long arg makes a long query.
//!
//! Credentials and extra headers arrive already resolved (looking them up in Secrets is the caller's
//! job); they are sent with every request and marked sensitive so that they never show up in logs.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use chrono::{DateTime, Utc};
use prometheus_http_query::Client;
use prometheus_http_query::response::{Data, PromqlResult, Sample};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

pub use super::error::MeasurementError;
use super::error::ProviderKind;
use super::http::{self, base_url, error_chain, quote_body, without_credentials};
use super::source::Source;
use std::future::Future;

/// The timeout used when a metric does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest URL-encoded query sent by GET; longer ones go by POST. Short queries stay GETs, which
/// proxies log and cache as reads.
pub const MAX_GET_QUERY_BYTES: usize = 2 * 1024;

/// How many series a [`MeasurementError::TooManySeries`] message names before it abbreviates.
const MAX_SERIES_NAMED: usize = 5;

/// Why a provider could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid Prometheus address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("invalid HTTP header {name:?}: {reason}")]
    InvalidHeader { name: String, reason: String },
    #[error("invalid Prometheus timeout: {reason}")]
    InvalidTimeout { reason: String },
    #[error("cannot build the HTTP client: {reason}")]
    HttpClient { reason: String },
}

/// Credentials for the Prometheus API, with the Secret values already read.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    /// Sent as `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// Sent as `Authorization: Basic <base64(username:password)>`.
    Basic { username: String, password: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer { .. } => f.debug_struct("Bearer").field("token", &"<redacted>").finish(),
            Self::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"<redacted>").finish()
            }
        }
    }
}

/// Everything sent with each request besides the query: credentials and extra headers, resolved.
/// Comparable and hashable, so that providers can be shared by everything that sends the same; its
/// `Debug` shows no secret.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ResolvedAuth {
    pub credentials: Option<Credentials>,
    /// Extra headers as (name, value) pairs, for example a tenant header for a multi-tenant proxy.
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for ResolvedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ResolvedAuth")
            .field("credentials", &self.credentials)
            .field("headers", &names)
            .finish()
    }
}

impl ResolvedAuth {
    pub(super) fn header_map(&self) -> Result<HeaderMap, ConfigError> {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let invalid = |reason: String| ConfigError::InvalidHeader { name: name.clone(), reason };
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("not a valid header name".into()))?;
            let header_value = sensitive_value(value)
                .map_err(|_| invalid("the value contains characters not allowed in a header".into()))?;
            map.append(header_name, header_value);
        }
        if let Some(credentials) = &self.credentials {
            let value = match credentials {
                Credentials::Bearer { token } => format!("Bearer {token}"),
                Credentials::Basic { username, password } => {
                    format!("Basic {}", BASE64_STANDARD.encode(format!("{username}:{password}")))
                }
            };
            let value = sensitive_value(&value).map_err(|_| ConfigError::InvalidHeader {
                name: AUTHORIZATION.to_string(),
                reason: "the credentials contain characters not allowed in a header".into(),
            })?;
            map.insert(AUTHORIZATION, value);
        }
        Ok(map)
    }
}

fn sensitive_value(value: &str) -> Result<HeaderValue, reqwest::header::InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(value)?;
    value.set_sensitive(true);
    Ok(value)
}

/// A Prometheus server that metric queries run against.
#[derive(Clone)]
pub struct PrometheusProvider {
    client: Client,
    address: String,
    timeout: Duration,
}

impl fmt::Debug for PrometheusProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusProvider")
            .field("address", &self.address)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Source for PrometheusProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Prometheus
    }

    fn instant(
        &self,
        query: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<f64>, MeasurementError>> + Send {
        self.instant(query, Some(at))
    }
}

impl PrometheusProvider {
    /// A provider for the Prometheus HTTP API at `address` (an `http://` or `https://` base URL,
    /// possibly with a path prefix such as `http://gateway/prometheus`).
    ///
    /// `timeout` bounds every query, both on the HTTP call and as Prometheus's evaluation timeout.
    pub fn new(address: &str, timeout: Duration, auth: &ResolvedAuth) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidAddress {
            address: without_credentials(address),
            reason: reason.to_owned(),
        };
        let url = base_url(address).map_err(|reason| invalid(&reason))?;
        if timeout.is_zero() {
            return Err(ConfigError::InvalidTimeout {
                reason: "the timeout must be greater than zero".into(),
            });
        }
        let http = http::client(Some(timeout), auth)?;
        // The client appends `/api/v1/…` to the base, which must therefore not end in a slash.
        let base = http::endpoint(&url, "");
        let client = Client::from(http, base.as_str()).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self { client, address: address.to_owned(), timeout })
    }

    /// The address this provider queries.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The timeout applied to every query.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Evaluates `query` at `at` (Prometheus's current time when `None`), at millisecond resolution.
    ///
    /// A scalar or a single-series vector gives its value. An empty vector or a NaN value (such as
    /// `0/0` when there was no traffic) means there is no data: `Ok(None)`. More than one series is an
    /// error naming them, since a measurement is one number.
    pub async fn instant(
        &self,
        query: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<f64>, MeasurementError> {
        let mut builder = self.client.query(query).timeout(self.server_timeout_ms());
        if let Some(at) = at {
            builder = builder.query("time", format_timestamp(at));
        }
        let response = if by_post(query) { builder.post_raw().await } else { builder.get_raw().await };
        let data = self.read_response(response.map_err(|e| self.request_error(e))?).await?;
        instant_value(data)
    }

    /// Evaluates `query` from `start` to `end` every `step`, for a single series.
    ///
    /// `start` and `end` are taken at whole-second resolution. Points whose value is NaN are dropped;
    /// no series at all gives an empty list; more than one series is an error naming them.
    pub async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<(DateTime<Utc>, f64)>, MeasurementError> {
        let builder = self
            .client
            .query_range(query, start.timestamp(), end.timestamp(), step.as_secs_f64())
            .timeout(self.server_timeout_ms());
        let response = if by_post(query) { builder.post_raw().await } else { builder.get_raw().await };
        let data = self.read_response(response.map_err(|e| self.request_error(e))?).await?;
        range_points(data)
    }

    /// The evaluation timeout sent to Prometheus, in whole milliseconds (at least 1).
    fn server_timeout_ms(&self) -> i64 {
        let ms = self.timeout.as_nanos().div_ceil(1_000_000);
        i64::try_from(ms).unwrap_or(i64::MAX).max(1)
    }

    fn request_error(&self, error: prometheus_http_query::Error) -> MeasurementError {
        match &error {
            prometheus_http_query::Error::Client(client) => match client.inner() {
                Some(inner) => self.transport_error(inner),
                None => MeasurementError::unexpected(error_chain(&error)),
            },
            _ => MeasurementError::unexpected(error_chain(&error)),
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> MeasurementError {
        http::transport_error(error, &self.address, self.timeout)
    }

    async fn read_response(&self, mut response: reqwest::Response) -> Result<Data, MeasurementError> {
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_content_type);
        // A measurement is one number; an answer past the cap is a query selecting far too much.
        let advice = ": a measurement query returns one number, so aggregate the query";
        let body = http::read_answer(&mut response, advice, |e| self.transport_error(&e)).await?;
        decode_response(status, is_json, &body)
    }
}

/// Whether `query` is too long to send in a URL.
fn by_post(query: &str) -> bool {
    form_encoded_len(query) > MAX_GET_QUERY_BYTES
}

/// The length of `text` encoded as `application/x-www-form-urlencoded`, as in a query string: letters,
/// digits, `*-._` and the space (as `+`) take one byte, every other byte three (`%XX`).
pub(super) fn form_encoded_len(text: &str) -> usize {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() || b" *-._".contains(&b) { 1 } else { 3 }).sum()
}

/// The `time` parameter: Unix seconds with millisecond precision.
fn format_timestamp(at: DateTime<Utc>) -> String {
    let ms = at.timestamp_millis();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// `application/json`, or a JSON-based type such as VictoriaMetrics' `application/stream+json` (which
/// it sends with a range vector).
fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json"
        || essence.strip_prefix("application/").is_some_and(|subtype| subtype.ends_with("+json"))
}

/// The Prometheus API's response envelope.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// VictoriaMetrics' cluster version answers `true` when some storage nodes did not: the result
    /// may lack series, and an empty one would read as no data.
    #[serde(default, rename = "isPartial")]
    is_partial: bool,
}

/// Turns an HTTP answer from the query API into result data or a classified error.
fn decode_response(status: StatusCode, is_json: bool, body: &[u8]) -> Result<Data, MeasurementError> {
    let envelope = if is_json { serde_json::from_slice::<Envelope>(body).ok() } else { None };
    let Some(envelope) = envelope else {
        let quoted = quote_body(body);
        return Err(if status.is_server_error() {
            MeasurementError::ServerError { status: status.as_u16(), message: quoted }
        } else if status.is_success() {
            MeasurementError::unexpected(format!("a response that is not Prometheus API JSON: {quoted}"))
        } else {
            MeasurementError::unexpected(format!("HTTP {status}: {quoted}"))
        });
    };

    if envelope.status != "success" {
        let error_type = envelope.error_type.unwrap_or_default();
        let message = envelope.error.unwrap_or_default();
        return Err(match error_type.as_str() {
            "timeout" => MeasurementError::Timeout {
                reason: format!("Prometheus gave up evaluating the query: {message}"),
            },
            "bad_data" | "execution" => MeasurementError::BadQuery { message },
            // VictoriaMetrics puts the HTTP status in `errorType`, and answers 422 to a query it
            // cannot parse or evaluate (and 400 to bad parameters), as Prometheus does.
            _ if matches!(status, StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY) => {
                MeasurementError::BadQuery { message }
            }
            _ if status.is_server_error() => MeasurementError::ServerError {
                status: status.as_u16(),
                message: format!("{error_type}: {message}"),
            },
            _ => MeasurementError::unexpected(format!("HTTP {status}, error type {error_type:?}: {message}")),
        });
    }
    if status.is_server_error() {
        return Err(MeasurementError::ServerError { status: status.as_u16(), message: quote_body(body) });
    }
    if !status.is_success() {
        return Err(MeasurementError::unexpected(format!("HTTP {status}: {}", quote_body(body))));
    }
    if envelope.is_partial {
        return Err(MeasurementError::ServerError {
            status: status.as_u16(),
            message: "a partial answer (isPartial: some storage nodes did not answer)".into(),
        });
    }
    let data =
        envelope.data.ok_or_else(|| MeasurementError::unexpected("a successful response without data"))?;
    let result_type = data.get("resultType").and_then(|t| t.as_str()).unwrap_or("").to_owned();
    serde_json::from_value::<PromqlResult>(data).map(|r| r.into_inner().0).map_err(|e| {
        if result_type == "string" {
            MeasurementError::unexpected("the query returned a string, not a number")
        } else {
            MeasurementError::unexpected(format!("cannot decode the query result: {e}"))
        }
    })
}

fn instant_value(data: Data) -> Result<Option<f64>, MeasurementError> {
    let value = match data {
        Data::Scalar(sample) => sample.value(),
        Data::Vector(mut vector) => match vector.len() {
            0 => return Ok(None),
            1 => vector.swap_remove(0).sample().value(),
            count => {
                return Err(too_many_series(count, vector.iter().map(|s| s.metric())));
            }
        },
        Data::Matrix(_) => {
            return Err(MeasurementError::unexpected(
                "an instant query returned a range vector; remove the range selector (such as [5m]) \
                 or wrap it in a function such as rate()",
            ));
        }
    };
    Ok((!value.is_nan()).then_some(value))
}

fn range_points(data: Data) -> Result<Vec<(DateTime<Utc>, f64)>, MeasurementError> {
    let samples = match data {
        Data::Matrix(mut matrix) => match matrix.len() {
            0 => return Ok(Vec::new()),
            1 => matrix.swap_remove(0).into_inner().1,
            count => {
                return Err(too_many_series(count, matrix.iter().map(|s| s.metric())));
            }
        },
        Data::Vector(_) | Data::Scalar(_) => {
            return Err(MeasurementError::unexpected(
                "a range query returned an instant result instead of a range vector",
            ));
        }
    };
    samples.iter().filter(|s| !s.value().is_nan()).map(|s| Ok((sample_time(s)?, s.value()))).collect()
}

fn sample_time(sample: &Sample) -> Result<DateTime<Utc>, MeasurementError> {
    let seconds = sample.timestamp();
    let millis = (seconds * 1000.0).round();
    // `as` saturates; out-of-range or non-finite timestamps are rejected by chrono or by the check.
    (millis.is_finite())
        .then(|| DateTime::from_timestamp_millis(millis as i64))
        .flatten()
        .ok_or_else(|| MeasurementError::unexpected(format!("a sample with an invalid timestamp {seconds}")))
}

fn too_many_series<'a>(
    count: usize,
    series: impl Iterator<Item = &'a HashMap<String, String>>,
) -> MeasurementError {
    // Sorted, so that the same answer always gives the same message.
    let mut series: Vec<String> = series.map(format_labels).collect();
    series.sort_unstable();
    series.truncate(MAX_SERIES_NAMED);
    MeasurementError::TooManySeries { count, series }
}

/// Formats a label set the way Prometheus prints it: `name{a="1", b="2"}`, labels sorted.
pub fn format_labels(labels: &HashMap<String, String>) -> String {
    let mut pairs: Vec<(&String, &String)> = labels.iter().filter(|(k, _)| *k != "__name__").collect();
    pairs.sort();
    let body = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect::<Vec<_>>()
        .join(", ");
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    format!("{name}{{{body}}}")
}

/// A label value as Prometheus prints it in a selector: backslash, double quote and newline escaped.
fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bellwether_testkit::http_stub::{canned_server, json_response, recording_server};
    use reqwest::Url;

    /// A password in an address would be quoted by every message about the server: refused, and the
    /// refusal itself does not quote it.
    #[test]
    fn an_address_with_credentials_is_refused_without_quoting_them() {
        let error = PrometheusProvider::new(
            "http://reader:s3cret@prometheus:9090/prefix",
            Duration::from_secs(1),
            &ResolvedAuth::default(),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("must not hold credentials"), "{message}");
        assert!(!message.contains("s3cret") && !message.contains("reader"), "{message}");
        assert_eq!(without_credentials("https://a:b@c@host:1/p@q"), "https://…@host:1/p@q");
        assert_eq!(without_credentials("http://host/p@q"), "http://host/p@q");
    }

    fn ok_json(body: &str) -> Result<Data, MeasurementError> {
        decode_response(StatusCode::OK, true, body.as_bytes())
    }

    fn instant_from(body: &str) -> Result<Option<f64>, MeasurementError> {
        ok_json(body).and_then(instant_value)
    }

    fn range_from(body: &str) -> Result<Vec<(DateTime<Utc>, f64)>, MeasurementError> {
        ok_json(body).and_then(range_points)
    }

    #[test]
    fn scalar_gives_its_value() {
        let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.25"]}}"#;
        assert_eq!(instant_from(body), Ok(Some(0.25)));
    }

    #[test]
    fn one_element_vector_gives_its_value() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"revision":"good"},"value":[1700000000.5,"42"]}]}}"#;
        assert_eq!(instant_from(body), Ok(Some(42.0)));
    }

    #[test]
    fn empty_vector_and_nan_are_no_data() {
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(instant_from(empty), Ok(None));
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1700000000,"NaN"]}]}}"#;
        assert_eq!(instant_from(nan), Ok(None));
        let scalar_nan = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
        assert_eq!(instant_from(scalar_nan), Ok(None));
    }

    #[test]
    fn infinity_is_a_value() {
        let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(instant_from(body), Ok(Some(f64::INFINITY)));
    }

    #[test]
    fn several_series_name_their_labels() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"revision":"a"},"value":[1,"1"]},
            {"metric":{"revision":"b"},"value":[1,"2"]}]}}"#;
        let err = instant_from(body).unwrap_err();
        assert_eq!(err.label(), "too_many_series");
        assert_eq!(err.to_string(), r#"query returned 2 series, expected 1: {revision="a"}, {revision="b"}"#);
    }

    #[test]
    fn many_series_are_abbreviated() {
        let series: Vec<String> =
            (0..8).rev().map(|i| format!(r#"{{"metric":{{"pod":"p{i}"}},"value":[1,"1"]}}"#)).collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            series.join(",")
        );
        let err = instant_from(&body).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"query returned 8 series, expected 1: {pod="p0"}, {pod="p1"}, {pod="p2"}, {pod="p3"}, {pod="p4"} and 3 more"#
        );
    }

    #[test]
    fn labels_are_sorted_escaped_and_named() {
        let labels: HashMap<String, String> =
            [("__name__", "http_requests_total"), ("revision", "a\"b\\c\nd"), ("code", "500")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(format_labels(&labels), r#"http_requests_total{code="500", revision="a\"b\\c\nd"}"#);
        assert_eq!(format_labels(&HashMap::new()), "{}");
    }

    #[test]
    fn matrix_from_an_instant_query_is_unexpected() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#;
        let err = instant_from(body).unwrap_err();
        assert_eq!(err.label(), "unexpected");
        assert!(err.to_string().contains("range vector"), "{err}");
    }

    #[test]
    fn string_result_is_unexpected() {
        let body = r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#;
        let err = instant_from(body).unwrap_err();
        assert_eq!(err.label(), "unexpected");
        assert!(err.to_string().contains("string"), "{err}");
    }

    #[test]
    fn range_drops_nan_points() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"revision":"good"},"values":[[1700000000,"1"],[1700000060,"NaN"],[1700000120.5,"3"]]}]}}"#;
        let points = range_from(body).unwrap();
        assert_eq!(
            points,
            vec![
                (DateTime::from_timestamp(1_700_000_000, 0).unwrap(), 1.0),
                (DateTime::from_timestamp_millis(1_700_000_120_500).unwrap(), 3.0),
            ]
        );
    }

    #[test]
    fn range_series_count_rule() {
        let empty = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(range_from(empty), Ok(vec![]));
        let two = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"revision":"a"},"values":[[1,"1"]]},
            {"metric":{"revision":"b"},"values":[[1,"1"]]}]}}"#;
        assert_eq!(
            range_from(two).unwrap_err().to_string(),
            r#"query returned 2 series, expected 1: {revision="a"}, {revision="b"}"#
        );
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(range_from(vector).unwrap_err().label(), "unexpected");
    }

    #[test]
    fn absurd_timestamps_are_errors_not_panics() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1e300,"1"]]}]}}"#;
        assert_eq!(range_from(body).unwrap_err().label(), "unexpected");
    }

    #[test]
    fn prometheus_errors_are_classified() {
        let bad = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \")\""}"#;
        let err = decode_response(StatusCode::BAD_REQUEST, true, bad.as_bytes()).unwrap_err();
        assert_eq!(err, MeasurementError::BadQuery { message: "1:5: parse error: unexpected \")\"".into() });
        assert_eq!(err.to_string(), "Prometheus rejected the query: 1:5: parse error: unexpected \")\"");

        let exec =
            r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#;
        let err = decode_response(StatusCode::UNPROCESSABLE_ENTITY, true, exec.as_bytes()).unwrap_err();
        assert_eq!(err.label(), "bad_query");

        let timeout =
            r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
        let err = decode_response(StatusCode::SERVICE_UNAVAILABLE, true, timeout.as_bytes()).unwrap_err();
        assert_eq!(err.label(), "timeout");
        assert_eq!(
            err.to_string(),
            "Prometheus query timed out: Prometheus gave up evaluating the query: query timed out in expression evaluation"
        );

        let internal = r#"{"status":"error","errorType":"internal","error":"boom"}"#;
        let err = decode_response(StatusCode::INTERNAL_SERVER_ERROR, true, internal.as_bytes()).unwrap_err();
        assert_eq!(err, MeasurementError::ServerError { status: 500, message: "internal: boom".into() });
        assert_eq!(err.to_string(), "Prometheus answered HTTP 500: internal: boom");

        // VictoriaMetrics: the HTTP status as the error type.
        let vm = r#"{"status":"error","errorType":"422","error":"error when executing query=\"x(\": unparsed data"}"#;
        let err = decode_response(StatusCode::UNPROCESSABLE_ENTITY, true, vm.as_bytes()).unwrap_err();
        assert_eq!(err.label(), "bad_query", "{err}");
        let vm = r#"{"status":"error","errorType":"400","error":"cannot parse \"time\""}"#;
        let err = decode_response(StatusCode::BAD_REQUEST, true, vm.as_bytes()).unwrap_err();
        assert_eq!(err.label(), "bad_query", "{err}");
        let vm = r#"{"status":"error","errorType":"503","error":"overloaded"}"#;
        let err = decode_response(StatusCode::SERVICE_UNAVAILABLE, true, vm.as_bytes()).unwrap_err();
        assert_eq!(err, MeasurementError::ServerError { status: 503, message: "503: overloaded".into() });

        let not_found = r#"{"status":"error","errorType":"not_found","error":"nope"}"#;
        let err = decode_response(StatusCode::NOT_FOUND, true, not_found.as_bytes()).unwrap_err();
        assert_eq!(err.label(), "unexpected");
    }

    #[test]
    fn non_api_answers_are_classified() {
        let err =
            decode_response(StatusCode::BAD_GATEWAY, false, b"<html>502 Bad Gateway</html>").unwrap_err();
        assert_eq!(
            err,
            MeasurementError::ServerError { status: 502, message: "<html>502 Bad Gateway</html>".into() }
        );
        let err = decode_response(StatusCode::SERVICE_UNAVAILABLE, true, b"not json").unwrap_err();
        assert_eq!(err.label(), "server_error");
        let err = decode_response(StatusCode::UNAUTHORIZED, false, b"Unauthorized").unwrap_err();
        assert_eq!(err.to_string(), "unexpected answer from Prometheus: HTTP 401 Unauthorized: Unauthorized");
        let err = decode_response(StatusCode::OK, false, b"").unwrap_err();
        assert_eq!(err.label(), "unexpected");
        let err = decode_response(StatusCode::OK, true, b"{\"status\":\"success\"}").unwrap_err();
        assert_eq!(err.label(), "unexpected");
        let long = "é".repeat(1000);
        let err = decode_response(StatusCode::BAD_GATEWAY, false, long.as_bytes()).unwrap_err();
        assert!(err.to_string().ends_with('…'));
    }

    #[test]
    fn garbage_never_panics() {
        let bodies: &[&[u8]] = &[
            b"",
            b"{}",
            b"null",
            b"[]",
            b"\xff\xfe",
            br#"{"status":"success","data":null}"#,
            br#"{"status":"success","data":{"resultType":"vector"}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#,
            br#"{"status":"success","data":{"resultType":"scalar","result":[]}}"#,
            br#"{"status":"error"}"#,
        ];
        for status in [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::INTERNAL_SERVER_ERROR] {
            for json in [true, false] {
                for body in bodies {
                    if let Ok(data) = decode_response(status, json, body) {
                        let _ = instant_value(data.clone());
                        let _ = range_points(data);
                    }
                }
            }
        }
    }

    #[test]
    fn labels_are_stable() {
        let cases = [
            (
                MeasurementError::Unreachable {
                    address: "http://x".into(),
                    reason: "Connection refused (os error 111)".into(),
                },
                "unreachable",
                "Prometheus at http://x is unreachable: Connection refused (os error 111)",
            ),
            (
                MeasurementError::Timeout { reason: "no answer from http://x within 1ms".into() },
                "timeout",
                "Prometheus query timed out: no answer from http://x within 1ms",
            ),
            (
                MeasurementError::Unexpected { message: "m".into() },
                "unexpected",
                "unexpected answer from Prometheus: m",
            ),
        ];
        for (err, label, text) in cases {
            assert_eq!(err.label(), label);
            assert_eq!(err.to_string(), text);
        }
    }

    #[test]
    fn content_type_detection() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("Application/JSON"));
        assert!(!is_json_content_type("text/html"));
        assert!(!is_json_content_type("application/jsonp"));
        assert!(is_json_content_type("application/stream+json; charset=utf-8"));
        assert!(!is_json_content_type("text/x+json"));
    }

    #[test]
    fn timestamps_keep_milliseconds() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_250).unwrap();
        assert_eq!(format_timestamp(at), "1700000000.250");
        let before_epoch = DateTime::from_timestamp_millis(-1_500).unwrap();
        assert_eq!(format_timestamp(before_epoch), "-2.500");
    }

    #[test]
    fn auth_becomes_sensitive_headers() {
        let auth = ResolvedAuth {
            credentials: Some(Credentials::Basic {
                username: "Aladdin".into(),
                password: "open sesame".into(),
            }),
            headers: vec![("X-Scope-OrgID".into(), "tenant-1".into())],
        };
        let map = auth.header_map().unwrap();
        assert_eq!(map[AUTHORIZATION], "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(map[AUTHORIZATION].is_sensitive());
        assert_eq!(map["x-scope-orgid"], "tenant-1");

        let bearer =
            ResolvedAuth { credentials: Some(Credentials::Bearer { token: "t0k".into() }), headers: vec![] };
        assert_eq!(bearer.header_map().unwrap()[AUTHORIZATION], "Bearer t0k");
        let debug = format!("{bearer:?}");
        assert!(!debug.contains("t0k"), "{debug}");
    }

    #[test]
    fn invalid_configuration_is_rejected() {
        let none = ResolvedAuth::default();
        let t = Duration::from_secs(5);
        for address in ["", "prometheus:9090", "ftp://x", "http://", "http://x/?a=b", "mailto:a@b"] {
            let err = PrometheusProvider::new(address, t, &none).unwrap_err();
            assert!(matches!(err, ConfigError::InvalidAddress { .. }), "{address}: {err}");
        }
        assert!(matches!(
            PrometheusProvider::new("http://x", Duration::ZERO, &none),
            Err(ConfigError::InvalidTimeout { .. })
        ));
        let bad_header = ResolvedAuth { credentials: None, headers: vec![("bad header".into(), "v".into())] };
        assert!(matches!(
            PrometheusProvider::new("http://x", t, &bad_header),
            Err(ConfigError::InvalidHeader { .. })
        ));
        let bad_value = ResolvedAuth {
            credentials: Some(Credentials::Bearer { token: "line\nbreak".into() }),
            headers: vec![],
        };
        let err = PrometheusProvider::new("http://x", t, &bad_value).unwrap_err();
        assert!(!err.to_string().contains("line"), "{err}");
        let ok = PrometheusProvider::new("https://prom.example/prefix", t, &none).unwrap();
        assert_eq!(ok.address(), "https://prom.example/prefix");
        assert_eq!(ok.timeout(), t);
    }

    #[test]
    fn server_timeout_rounds_up_to_a_millisecond() {
        let none = ResolvedAuth::default();
        let p = PrometheusProvider::new("http://x", Duration::from_nanos(1), &none).unwrap();
        assert_eq!(p.server_timeout_ms(), 1);
        let p = PrometheusProvider::new("http://x", Duration::from_millis(1500), &none).unwrap();
        assert_eq!(p.server_timeout_ms(), 1500);
    }

    #[tokio::test]
    async fn proxy_errors_become_server_errors() {
        let address = canned_server(
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\nupstream down",
        );
        let p = PrometheusProvider::new(&address, Duration::from_secs(5), &ResolvedAuth::default()).unwrap();
        let err = p.instant("up", None).await.unwrap_err();
        assert_eq!(err, MeasurementError::ServerError { status: 502, message: "upstream down".into() });
    }

    /// A measurement is one number: an answer past the cap (a query selecting far too much, or a
    /// misnamed endpoint) is refused rather than read whole into memory.
    #[tokio::test]
    async fn an_answer_past_the_limit_is_refused() {
        let length = crate::metrics::http::MAX_ANSWER_BYTES + 1;
        let (address, _server) = recording_server(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{}",
            " ".repeat(length)
        ));
        let p = PrometheusProvider::new(&address, Duration::from_secs(5), &ResolvedAuth::default()).unwrap();
        let error = p.instant("up", None).await.unwrap_err();
        assert!(
            error.to_string().contains(&format!("an answer longer than {} bytes", length - 1)),
            "{error}"
        );
    }

    #[test]
    fn a_partial_answer_is_an_error_not_a_value_or_no_data() {
        for data in [
            r#"{"resultType":"vector","result":[]}"#,
            r#"{"resultType":"vector","result":[{"metric":{},"value":[1,"0.5"]}]}"#,
        ] {
            let body = format!(r#"{{"status":"success","isPartial":true,"data":{data}}}"#);
            let error = decode_response(StatusCode::OK, true, body.as_bytes()).unwrap_err();
            assert!(matches!(error, MeasurementError::ServerError { .. }), "{error}");
            assert!(error.to_string().contains("partial"), "{error}");
        }
        let whole = r#"{"status":"success","isPartial":false,"data":{"resultType":"vector","result":[]}}"#;
        assert!(decode_response(StatusCode::OK, true, whole.as_bytes()).is_ok());
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_with_the_headers() {
        let address = canned_server(
            "HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/api/v1/query\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let auth =
            ResolvedAuth { credentials: None, headers: vec![("X-Scope-OrgID".into(), "team-a".into())] };
        let provider = PrometheusProvider::new(&address, Duration::from_secs(5), &auth).unwrap();
        let error = provider.instant("up", None).await.unwrap_err();
        assert!(!matches!(error, MeasurementError::Unreachable { .. }), "not followed to elsewhere: {error}");
        assert!(error.to_string().contains("302"), "{error}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        // Accepts connections (the kernel does, from the backlog) but never answers.
        let p =
            PrometheusProvider::new(&address, Duration::from_millis(200), &ResolvedAuth::default()).unwrap();
        let started = std::time::Instant::now();
        let err = p.instant("up", None).await.unwrap_err();
        assert_eq!(
            err,
            MeasurementError::Timeout { reason: format!("no answer from {address} within 200ms") }
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }

    /// An answer of the scalar 7.
    fn seven() -> String {
        json_response(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"7"]}}"#)
    }

    #[tokio::test]
    async fn headers_reach_the_server() {
        let (address, server) = recording_server(seven());
        let address = format!("{address}/prefix");
        let auth = ResolvedAuth {
            credentials: Some(Credentials::Bearer { token: "s3cret".into() }),
            headers: vec![("X-Scope-OrgID".into(), "team-a".into())],
        };
        let p = PrometheusProvider::new(&address, Duration::from_secs(5), &auth).unwrap();
        let at = DateTime::from_timestamp_millis(1_700_000_000_250).unwrap();
        assert_eq!(p.instant("sum(up)", Some(at)).await, Ok(Some(7.0)));
        let request = server.join().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("get /prefix/api/v1/query?"), "{request}");
        assert!(request.contains("query=sum%28up%29"), "{request}");
        assert!(request.contains("time=1700000000.250"), "{request}");
        assert!(request.contains("timeout=5000ms"), "{request}");
        assert!(request.contains("authorization: bearer s3cret"), "{request}");
        assert!(request.contains("x-scope-orgid: team-a"), "{request}");
    }

    #[tokio::test]
    async fn a_prefix_is_kept_with_or_without_a_trailing_slash() {
        for (prefix, expected) in [
            ("/prefix/", "get /prefix/api/v1/query?"),
            ("/a/b//", "get /a/b/api/v1/query?"),
            ("/", "get /api/v1/query?"),
            ("", "get /api/v1/query?"),
        ] {
            let (address, server) = recording_server(seven());
            let address = format!("{address}{prefix}");
            let p =
                PrometheusProvider::new(&address, Duration::from_secs(5), &ResolvedAuth::default()).unwrap();
            assert_eq!(p.instant("up", None).await, Ok(Some(7.0)));
            let request = server.join().unwrap().to_ascii_lowercase();
            assert!(request.starts_with(expected), "{address}: {request}");
            assert_eq!(p.address(), address, "the address is reported as configured");
        }
    }

    #[tokio::test]
    async fn long_queries_go_by_post_in_the_body() {
        let auth =
            ResolvedAuth { credentials: None, headers: vec![("X-Scope-OrgID".into(), "team-a".into())] };
        // Just over the limit once encoded: each '"' takes three bytes.
        let long = format!(r#"up{{job="{}"}}"#, "\"".repeat(MAX_GET_QUERY_BYTES / 3));
        assert!(form_encoded_len(&long) > MAX_GET_QUERY_BYTES && long.len() < MAX_GET_QUERY_BYTES);
        let (address, server) = recording_server(seven());
        let p = PrometheusProvider::new(&format!("{address}/prefix"), Duration::from_secs(5), &auth).unwrap();
        let at = DateTime::from_timestamp_millis(1_700_000_000_250).unwrap();
        assert_eq!(p.instant(&long, Some(at)).await, Ok(Some(7.0)));
        let request = server.join().unwrap().to_ascii_lowercase();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("post /prefix/api/v1/query http/1.1"), "{head}");
        assert!(head.contains("content-type: application/x-www-form-urlencoded"), "{head}");
        assert!(head.contains("x-scope-orgid: team-a"), "{head}");
        let encoded = format!("query=up%7bjob%3d{}%7d", "%22".repeat(MAX_GET_QUERY_BYTES / 3 + 2));
        assert!(body.contains(&encoded), "{body}");
        assert!(body.contains("time=1700000000.250") && body.contains("timeout=5000ms"), "{body}");

        let (address, server) = recording_server(seven());
        let p = PrometheusProvider::new(&address, Duration::from_secs(5), &auth).unwrap();
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let _ = p.range(&long, start, start + chrono::TimeDelta::minutes(1), Duration::from_secs(60)).await;
        let request = server.join().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("post /api/v1/query_range http/1.1"), "{request}");
        assert!(request.contains("start=1700000000") && request.contains("step=60"), "{request}");
    }

    #[test]
    fn form_encoding_length_matches_the_encoder() {
        for text in ["", "sum(up)", r#"up{job="a b"} * 2"#, "é\n\t%+&=", "A-Z*._~"] {
            let mut url = Url::parse("http://x/").unwrap();
            url.query_pairs_mut().append_pair("q", text);
            assert_eq!(form_encoded_len(text), url.query().unwrap().len() - "q=".len(), "{text:?}");
        }
    }
}
