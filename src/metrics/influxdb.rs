//! InfluxDB 1.x metric provider.
//!
//! Runs a metric's (already templated) InfluxQL query through InfluxDB's `/query` API, as
//! `GET /query?db=…&rp=…&epoch=ms&q=…`, and turns the answer into a measurement: the one value of
//! the one row of the one series the statement returns. No series, and a `null` value, are no
//! data. Everything else is an error of the kind a PromQL query's would be: several series
//! (`GROUP BY` a tag) name their tag sets, several rows or values ask for an aggregate, and the
//! statement's own error (a syntax error, an unknown database) is a rejected query.
//!
//! InfluxQL has no evaluation time: `now()` is the server's clock. A measurement is therefore
//! always of the present, whatever time it is asked for; the controller asks for its own present,
//! and `bellwether analyze` measures InfluxDB metrics only now.
//!
//! As for Prometheus: a query whose URL-encoded form is longer than [`MAX_GET_QUERY_BYTES`] goes by
//! POST, form-encoded; redirects are not followed (headers may hold Secret values); the timeout
//! bounds the whole request, the answer is read up to [`MAX_ANSWER_BYTES`](http::MAX_ANSWER_BYTES),
//! and credentials and headers arrive resolved and are marked sensitive.

use super::error::{MeasurementError, ProviderKind};
use super::http::{self, base_url, quote_body, without_credentials};
use super::prometheus::{ConfigError, MAX_GET_QUERY_BYTES, ResolvedAuth, form_encoded_len, format_labels};
use super::source::Source;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// How many series a [`MeasurementError::TooManySeries`] message names before it abbreviates.
const MAX_SERIES_NAMED: usize = 5;

/// What a query must be reduced to, said whenever it returns more than one value.
const AGGREGATE_HINT: &str = "aggregate the query to one value over its window, with a function such as \
                              mean(), last(), count() or percentile() and no GROUP BY time()";

/// Why an InfluxDB client could not be built from its configuration, and the metric field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfluxDbConfigError {
    #[error("invalid InfluxDB address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("invalid InfluxDB timeout: {reason}")]
    InvalidTimeout { reason: String },
    #[error(transparent)]
    Client(#[from] ConfigError),
}

impl InfluxDbConfigError {
    /// The metric field the error comes from.
    pub fn field(&self) -> &'static str {
        match self {
            Self::InvalidAddress { .. } => "provider.influxdb.address",
            Self::InvalidTimeout { .. } => "provider.influxdb.timeout",
            Self::Client(ConfigError::InvalidHeader { name, .. }) if name == AUTHORIZATION.as_str() => {
                "provider.influxdb.auth"
            }
            Self::Client(ConfigError::InvalidHeader { .. }) => "provider.influxdb.headers",
            Self::Client(_) => "provider.influxdb",
        }
    }
}

/// An InfluxDB database that metric queries run against. Cheap to clone: clones share the HTTP
/// client and its connections.
#[derive(Clone)]
pub struct InfluxDbClient {
    http: reqwest::Client,
    address: String,
    /// `/query` under the address's path.
    query_url: Url,
    /// `/ping` under the address's path.
    ping_url: Url,
    database: String,
    retention_policy: Option<String>,
    timeout: Duration,
}

impl fmt::Debug for InfluxDbClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxDbClient")
            .field("address", &self.address)
            .field("database", &self.database)
            .field("retention_policy", &self.retention_policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Source for InfluxDbClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::InfluxDb
    }

    /// The value of `query` now: InfluxQL's `now()` is the server's clock, which `_at` cannot move.
    async fn instant(&self, query: &str, _at: DateTime<Utc>) -> Result<Option<f64>, MeasurementError> {
        self.query(query).await
    }
}

impl InfluxDbClient {
    /// A client of the InfluxDB 1.x HTTP API at `address` (an `http://` or `https://` base URL,
    /// possibly with a path prefix such as `http://gateway/influxdb`), reading `database` and, for
    /// measurements that name none, `retention_policy`. `timeout` bounds each request.
    pub fn new(
        address: &str,
        database: &str,
        retention_policy: Option<&str>,
        timeout: Duration,
        auth: &ResolvedAuth,
    ) -> Result<Self, InfluxDbConfigError> {
        let invalid = |reason: String| InfluxDbConfigError::InvalidAddress {
            address: without_credentials(address),
            reason,
        };
        let base = base_url(address).map_err(invalid)?;
        if timeout.is_zero() {
            return Err(InfluxDbConfigError::InvalidTimeout {
                reason: "the timeout must be greater than zero".into(),
            });
        }
        Ok(Self {
            http: http::client(Some(timeout), auth)?,
            address: address.to_owned(),
            query_url: http::endpoint(&base, "/query"),
            ping_url: http::endpoint(&base, "/ping"),
            database: database.to_owned(),
            retention_policy: retention_policy.map(str::to_owned),
            timeout,
        })
    }

    /// The address this client queries, as configured.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Runs `query` and reads its one value: `Ok(None)` when it returns no series, no row, or
    /// `null`; an error naming the series, rows or values when it returns more than one.
    pub async fn query(&self, query: &str) -> Result<Option<f64>, MeasurementError> {
        let mut params = vec![("db", self.database.as_str()), ("epoch", "ms"), ("q", query)];
        if let Some(retention_policy) = &self.retention_policy {
            params.push(("rp", retention_policy));
        }
        let request = if form_encoded_len(query) > MAX_GET_QUERY_BYTES {
            self.http.post(self.query_url.clone()).form(&params)
        } else {
            self.http.get(self.query_url.clone()).query(&params)
        };
        let mut response =
            request.header(ACCEPT, "application/json").send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.split(';').next().is_some_and(|t| t.trim() == "application/json"));
        let advice = format!(": {AGGREGATE_HINT}");
        let body = http::read_answer(&mut response, &advice, |e| self.transport_error(e)).await?;
        if status.is_redirection() {
            return Err(http::redirect_error(
                status,
                response.headers(),
                ": set the address to where it points",
            ));
        }
        decode(status, is_json, &body)
    }

    /// Whether InfluxDB answers at the address at all: `Ok` for any answer, an error only when no
    /// connection could be made or none answered in time.
    pub async fn ping(&self) -> Result<(), MeasurementError> {
        self.http.get(self.ping_url.clone()).send().await.map(drop).map_err(|e| self.transport_error(e))
    }

    /// A failed request, named without its URL: the query in it may hold args.
    fn transport_error(&self, error: reqwest::Error) -> MeasurementError {
        http::transport_error(&error.without_url(), &self.address, self.timeout)
    }
}

/// The `/query` API's answer: a result per statement, or an error for the whole request.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Option<Vec<StatementResult>>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct StatementResult {
    #[serde(default)]
    series: Vec<Series>,
    #[serde(default)]
    error: Option<String>,
    /// Set when the server's `max-row-limit` cut the result short.
    #[serde(default)]
    partial: bool,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tags: HashMap<String, String>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<Value>>,
}

/// Turns an HTTP answer from `/query` into the query's value or a classified error.
fn decode(status: StatusCode, is_json: bool, body: &[u8]) -> Result<Option<f64>, MeasurementError> {
    let answer = if is_json { serde_json::from_slice::<Answer>(body).ok() } else { None };
    // InfluxDB's own words where it sent some, the body where something else answered.
    let message =
        || answer.as_ref().and_then(|answer| answer.error.clone()).unwrap_or_else(|| quote_body(body));
    match status {
        status if status.is_server_error() => {
            return Err(MeasurementError::ServerError { status: status.as_u16(), message: message() });
        }
        StatusCode::BAD_REQUEST => return Err(MeasurementError::BadQuery { message: message() }),
        // The credentials (or their absence) were refused: the metric's auth is at fault.
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(MeasurementError::BadQuery { message: format!("HTTP {status}: {}", message()) });
        }
        status if !status.is_success() => {
            return Err(MeasurementError::unexpected(format!("HTTP {status}: {}", quote_body(body))));
        }
        _ => {}
    }
    let Some(answer) = answer else {
        return Err(MeasurementError::unexpected(format!(
            "an answer that is not InfluxDB JSON: {}",
            quote_body(body)
        )));
    };
    if let Some(message) = answer.error {
        return Err(MeasurementError::BadQuery { message });
    }
    let mut results = answer.results.unwrap_or_default();
    let result = match results.len() {
        1 => results.swap_remove(0),
        count => {
            return Err(MeasurementError::unexpected(format!(
                "{count} statement results, expected 1: the query must be one SELECT statement"
            )));
        }
    };
    if let Some(message) = result.error {
        return Err(MeasurementError::BadQuery { message });
    }
    if result.partial {
        return Err(MeasurementError::unexpected(format!(
            "a partial result, cut short by the server's max-row-limit: {AGGREGATE_HINT}"
        )));
    }
    one_value(result.series)
}

/// The one value of the one row of the one series, if there is any.
fn one_value(mut series: Vec<Series>) -> Result<Option<f64>, MeasurementError> {
    let series = match series.len() {
        0 => return Ok(None),
        1 => series.swap_remove(0),
        count => return Err(too_many_series(&series, count)),
    };
    let values: Vec<usize> = (0..series.columns.len()).filter(|&i| series.columns[i] != "time").collect();
    let [column] = values[..] else {
        let names: Vec<&str> = values.iter().map(|&i| series.columns[i].as_str()).collect();
        return Err(MeasurementError::unexpected(format!(
            "the query returned {} values per row ({}), expected 1: select one",
            names.len(),
            names.join(", ")
        )));
    };
    let row = match &series.values[..] {
        [] => return Ok(None),
        [row] => row,
        rows => {
            return Err(MeasurementError::unexpected(format!(
                "the query returned {} rows, expected 1: {AGGREGATE_HINT}",
                rows.len()
            )));
        }
    };
    let value = match row.get(column) {
        None => {
            return Err(MeasurementError::unexpected(format!(
                "a row of {} cells for {} columns",
                row.len(),
                series.columns.len()
            )));
        }
        Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number
            .as_f64()
            .ok_or_else(|| MeasurementError::unexpected(format!("a value out of range: {number}")))?,
        Some(other) => {
            let what = match other {
                Value::String(_) => "a string",
                Value::Bool(_) => "a boolean",
                _ => "a structure",
            };
            return Err(MeasurementError::unexpected(format!(
                "the query returned {what}, not a number: {}",
                quote_body(other.to_string().as_bytes())
            )));
        }
    };
    Ok((!value.is_nan()).then_some(value))
}

/// The error for several series, naming the first few as `measurement{tag="value"}`, sorted.
fn too_many_series(series: &[Series], count: usize) -> MeasurementError {
    let mut names: Vec<String> = series
        .iter()
        .map(|series| {
            let mut labels = series.tags.clone();
            labels.insert("__name__".to_owned(), series.name.clone());
            format_labels(&labels)
        })
        .collect();
    names.sort_unstable();
    names.truncate(MAX_SERIES_NAMED);
    MeasurementError::TooManySeries { count, series: names }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::http::MAX_ANSWER_BYTES;
    use crate::metrics::prometheus::Credentials;
    use bellwether_testkit::http_stub::{json_response, recording_server};

    fn ok(body: &str) -> Result<Option<f64>, MeasurementError> {
        decode(StatusCode::OK, true, body.as_bytes())
    }

    fn one(columns: &str, values: &str) -> String {
        format!(
            r#"{{"results":[{{"statement_id":0,"series":[{{"name":"r","columns":{columns},"values":{values}}}]}}]}}"#
        )
    }

    #[test]
    fn one_row_with_one_value_gives_it() {
        assert_eq!(ok(&one(r#"["time","mean"]"#, "[[1700000000000,0.25]]")), Ok(Some(0.25)));
        assert_eq!(ok(&one(r#"["time","sum"]"#, "[[0,31]]")), Ok(Some(31.0)));
        assert_eq!(ok(&one(r#"["mean"]"#, "[[7]]")), Ok(Some(7.0)));
    }

    #[test]
    fn no_series_no_row_and_null_are_no_data() {
        assert_eq!(ok(r#"{"results":[{"statement_id":0}]}"#), Ok(None));
        assert_eq!(ok(&one(r#"["time","mean"]"#, "[]")), Ok(None));
        assert_eq!(ok(&one(r#"["time","mean"]"#, "[[0,null]]")), Ok(None));
    }

    /// A row without the value's cell is a broken answer, not a null one.
    #[test]
    fn a_row_shorter_than_its_columns_is_unexpected() {
        let error = ok(&one(r#"["time","mean"]"#, "[[0]]")).unwrap_err();
        assert_eq!(error, MeasurementError::unexpected("a row of 1 cells for 2 columns"));
    }

    #[test]
    fn several_series_name_their_tag_sets() {
        let body = r#"{"results":[{"statement_id":0,"series":[
            {"name":"requests","tags":{"revision":"b"},"columns":["time","sum"],"values":[[0,20]]},
            {"name":"requests","tags":{"revision":"a","code":"500"},"columns":["time","sum"],"values":[[0,11]]}]}]}"#;
        let error = ok(body).unwrap_err();
        assert_eq!(
            error.describe(ProviderKind::InfluxDb),
            r#"query returned 2 series, expected 1: requests{code="500", revision="a"}, requests{revision="b"}"#
        );
    }

    #[test]
    fn several_rows_or_values_ask_for_an_aggregate() {
        let rows = ok(&one(r#"["time","mean"]"#, "[[0,1],[1000,2],[2000,3]]")).unwrap_err();
        assert_eq!(rows.label(), "unexpected");
        assert!(rows.to_string().contains("returned 3 rows, expected 1: aggregate the query"), "{rows}");
        let values = ok(&one(r#"["time","sum","mean"]"#, "[[0,1,2]]")).unwrap_err();
        assert!(values.to_string().contains("returned 2 values per row (sum, mean), expected 1"), "{values}");
    }

    #[test]
    fn what_is_not_a_number_is_unexpected() {
        let text = ok(&one(r#"["time","last"]"#, r#"[[0,"fast"]]"#)).unwrap_err();
        assert_eq!(
            text.describe(ProviderKind::InfluxDb),
            "unexpected answer from InfluxDB: the query returned a string, not a number: \"fast\""
        );
        let flag = ok(&one(r#"["time","last"]"#, "[[0,true]]")).unwrap_err();
        assert!(flag.to_string().contains("a boolean, not a number"), "{flag}");
    }

    #[test]
    fn statement_and_request_errors_are_rejected_queries() {
        let statement = ok(r#"{"results":[{"statement_id":0,"error":"database not found: nope"}]}"#);
        assert_eq!(statement, Err(MeasurementError::BadQuery { message: "database not found: nope".into() }));
        let parse = r#"{"error":"error parsing query: found SELEC, expected SELECT at line 1, char 1"}"#;
        let error = decode(StatusCode::BAD_REQUEST, true, parse.as_bytes()).unwrap_err();
        assert_eq!(
            error.describe(ProviderKind::InfluxDb),
            "InfluxDB rejected the query: error parsing query: found SELEC, expected SELECT at line 1, char 1"
        );
        let refused = decode(StatusCode::UNAUTHORIZED, true, br#"{"error":"authorization failed"}"#);
        assert_eq!(
            refused,
            Err(MeasurementError::BadQuery { message: "HTTP 401 Unauthorized: authorization failed".into() })
        );
        let results = ok(r#"{"results":[{"statement_id":0},{"statement_id":1}]}"#).unwrap_err();
        assert!(results.to_string().contains("2 statement results, expected 1"), "{results}");
    }

    #[test]
    fn server_failures_and_foreign_answers_are_classified() {
        let overloaded = decode(StatusCode::SERVICE_UNAVAILABLE, false, b"upstream down").unwrap_err();
        assert_eq!(
            overloaded,
            MeasurementError::ServerError { status: 503, message: "upstream down".into() }
        );
        let failed = decode(StatusCode::INTERNAL_SERVER_ERROR, true, br#"{"error":"engine closed"}"#);
        assert_eq!(
            failed,
            Err(MeasurementError::ServerError { status: 500, message: "engine closed".into() })
        );
        let login = decode(StatusCode::OK, false, b"<html><body>Sign in</body></html>").unwrap_err();
        assert_eq!(
            login.describe(ProviderKind::InfluxDb),
            "unexpected answer from InfluxDB: an answer that is not InfluxDB JSON: <html><body>Sign in</body></html>"
        );
        let missing = decode(StatusCode::NOT_FOUND, false, b"404 page not found").unwrap_err();
        assert_eq!(missing.label(), "unexpected");
        let partial = ok(r#"{"results":[{"statement_id":0,"partial":true}]}"#).unwrap_err();
        assert!(partial.to_string().contains("max-row-limit"), "{partial}");
    }

    #[test]
    fn garbage_never_panics() {
        let bodies: &[&[u8]] = &[
            b"",
            b"{}",
            b"null",
            b"[]",
            b"\xff\xfe",
            br#"{"results":null}"#,
            br#"{"results":[{"series":[{}]}]}"#,
            br#"{"results":[{"series":[{"columns":["time"],"values":[[1]]}]}]}"#,
            br#"{"results":[{"series":[{"columns":["time","v"],"values":[[]]}]}]}"#,
            br#"{"results":[{"series":[{"columns":["time","v"],"values":[[1,1e999]]}]}]}"#,
        ];
        for status in [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::INTERNAL_SERVER_ERROR] {
            for json in [true, false] {
                for body in bodies {
                    let _ = decode(status, json, body);
                }
            }
        }
    }

    #[test]
    fn invalid_configuration_is_refused_naming_the_field() {
        let none = ResolvedAuth::default();
        let new = |address: &str, timeout: Duration, auth: &ResolvedAuth| {
            InfluxDbClient::new(address, "app", None, timeout, auth)
                .map(drop)
                .map_err(|e| (e.field(), e.to_string()))
        };
        let second = Duration::from_secs(1);
        for address in ["", "influxdb:8086", "ftp://x", "http://x/?db=app", "http://u:p@x:8086"] {
            let (field, message) = new(address, second, &none).unwrap_err();
            assert_eq!(field, "provider.influxdb.address", "{address}: {message}");
            assert!(message.starts_with("invalid InfluxDB address"), "{message}");
        }
        assert_eq!(new("http://x", Duration::ZERO, &none).unwrap_err().0, "provider.influxdb.timeout");
        let header = ResolvedAuth { credentials: None, headers: vec![("bad header".into(), "v".into())] };
        assert_eq!(new("http://x", second, &header).unwrap_err().0, "provider.influxdb.headers");
        let token =
            ResolvedAuth { credentials: Some(Credentials::Bearer { token: "a\nb".into() }), headers: vec![] };
        assert_eq!(new("http://x", second, &token).unwrap_err().0, "provider.influxdb.auth");
    }

    /// An answer of one series with one row, whose value is 7.
    fn seven() -> String {
        json_response(
            r#"{"results":[{"statement_id":0,"series":[{"columns":["time","v"],"values":[[0,7]]}]}]}"#,
        )
    }

    #[tokio::test]
    async fn a_query_reaches_the_server_with_its_parameters_and_headers() {
        let (address, server) = recording_server(seven());
        let auth = ResolvedAuth {
            credentials: Some(Credentials::Basic { username: "reader".into(), password: "s3cret".into() }),
            headers: vec![("X-Tenant".into(), "team-a".into())],
        };
        let client = InfluxDbClient::new(
            &format!("{address}/influx/"),
            "app",
            Some("week"),
            Duration::from_secs(5),
            &auth,
        )
        .unwrap();
        assert_eq!(client.query("SELECT mean(v) FROM r WHERE a = 'b c'").await, Ok(Some(7.0)));
        let request = server.join().unwrap();
        let (head, _) = request.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with(
                "GET /influx/query?db=app&epoch=ms&q=SELECT+mean%28v%29+FROM+r+WHERE+a+%3D+%27b+c%27&rp=week HTTP/1.1"
            ),
            "{head}"
        );
        let head = head.to_ascii_lowercase();
        assert!(head.contains("authorization: basic cmvhzgvyonmzy3jlda=="), "{head}");
        assert!(head.contains("x-tenant: team-a"), "{head}");
        assert_eq!(client.address(), format!("{address}/influx/"));
    }

    #[tokio::test]
    async fn long_queries_go_by_post_in_the_body() {
        let (address, server) = recording_server(seven());
        let client =
            InfluxDbClient::new(&address, "app", None, Duration::from_secs(5), &ResolvedAuth::default())
                .unwrap();
        let long = format!("SELECT v FROM r WHERE a = '{}'", "'".repeat(MAX_GET_QUERY_BYTES / 3));
        assert_eq!(client.query(&long).await, Ok(Some(7.0)));
        let request = server.join().unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /query HTTP/1.1"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("content-type: application/x-www-form-urlencoded"),
            "{head}"
        );
        assert!(body.starts_with("db=app&epoch=ms&q=SELECT+v+FROM+r+WHERE+a+%3D+%27%27%27"), "{body}");
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let (address, server) = recording_server(
            "HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/query\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_owned(),
        );
        let client =
            InfluxDbClient::new(&address, "app", None, Duration::from_secs(5), &ResolvedAuth::default())
                .unwrap();
        let error = client.query("SELECT v FROM r").await.unwrap_err();
        server.join().unwrap();
        assert_eq!(
            error.describe(ProviderKind::InfluxDb),
            "unexpected answer from InfluxDB: HTTP 302 Found to http://elsewhere.invalid/query; redirects are \
             not followed: set the address to where it points"
        );
    }

    #[tokio::test]
    async fn an_answer_past_the_limit_is_refused() {
        let length = MAX_ANSWER_BYTES + 1;
        let (address, _server) = recording_server(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{}",
            " ".repeat(length)
        ));
        let client =
            InfluxDbClient::new(&address, "app", None, Duration::from_secs(5), &ResolvedAuth::default())
                .unwrap();
        let error = client.query("SELECT v FROM r").await.unwrap_err();
        assert!(
            error.to_string().contains(&format!("an answer longer than {MAX_ANSWER_BYTES} bytes")),
            "{error}"
        );
    }
}
