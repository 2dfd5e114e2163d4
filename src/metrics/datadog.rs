//! The `datadog` metric provider: Datadog's metrics query API, version 1 (`GET /api/v1/query`).
//!
//! Each query asks for the points of one query from `at - window` to `at`, both in whole Unix
//! seconds, with the API and application keys in the `DD-API-KEY` and `DD-APPLICATION-KEY`
//! headers. The keys arrive resolved from their Secrets, are marked sensitive so that no log shows
//! them, and no message repeats them.
//!
//! The answer must hold at most one series, and the value is that series' latest point that is
//! complete and not null. Datadog aligns its rollup buckets to Unix time, not to the query: a point
//! stamped `T` sums or averages `[T, T + interval)`, so the bucket that holds `to` is still filling
//! and would undercount. A point whose bucket ends after `to` is therefore skipped, as is a null one
//! (a bucket no data reached yet). No series, or no such point, is no data. Several series are an
//! error naming them by their tags, since a measurement is one number.
//!
//! Redirects are not followed, since they would carry the keys to wherever they point. The whole
//! request, connecting and reading included, is bounded by the metric's `timeout`, and the answer
//! by [`MAX_ANSWER_BYTES`](http::MAX_ANSWER_BYTES).

use super::error::{MeasurementError, ProviderKind};
use super::http::{self, quote_body};
use super::measure::RenderError;
use super::prometheus::{ConfigError, DEFAULT_TIMEOUT, ResolvedAuth};
use super::source::Source;
use crate::api::{self, DEFAULT_DATADOG_ADDRESS, DEFAULT_DATADOG_WINDOW};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "DD-API-KEY";

/// The header that carries the application key.
pub const APPLICATION_KEY_HEADER: &str = "DD-APPLICATION-KEY";

/// The API's path under the site's address.
pub const QUERY_PATH: &str = "/api/v1/query";

/// How many series a [`MeasurementError::TooManySeries`] names.
const MAX_SERIES_NAMED: usize = 5;

/// What a `datadog` metric queries with, resolved from its settings: where, how far back and for
/// how long. Comparable and hashable, so that the clients built from the same settings are shared.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DatadogSettings {
    /// The site's address, as written or the default: for messages.
    pub address: String,
    /// The query endpoint.
    pub endpoint: Url,
    pub window: Duration,
    pub timeout: Duration,
}

impl DatadogSettings {
    /// The settings of `datadog`, or the field at fault.
    pub fn of(datadog: &api::DatadogProvider) -> Result<Self, RenderError> {
        let field_error = |field: &'static str, reason: String| RenderError::Field { field, reason };
        let address = datadog.address.as_deref().unwrap_or(DEFAULT_DATADOG_ADDRESS);
        let invalid = |reason: &str| field_error("provider.datadog.address", format!("{address:?} {reason}"));
        let url = Url::parse(address).map_err(|e| invalid(&format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("must be an http:// or https:// URL with a host"));
        }
        // Named without the address, whose credentials would otherwise be in the message.
        if !url.username().is_empty() || url.password().is_some() {
            let reason = "must not hold credentials (user:password@); the keys are read from Secrets";
            return Err(field_error("provider.datadog.address", reason.into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must not have a query string or fragment"));
        }
        // The API's path follows the address's own, which a proxy in front of Datadog may have.
        let endpoint = http::endpoint(&url, QUERY_PATH);
        let positive = |field: &'static str, value: Option<&api::Duration>, default: chrono::Duration| {
            let parsed = match value {
                Some(value) => value.parse().map_err(|e| field_error(field, e.to_string()))?,
                None => default,
            };
            parsed
                .to_std()
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| field_error(field, "must be greater than zero".into()))
        };
        let window = positive("provider.datadog.window", datadog.window.as_ref(), DEFAULT_DATADOG_WINDOW)?;
        if window < Duration::from_secs(1) {
            return Err(field_error("provider.datadog.window", "must be at least 1s".into()));
        }
        let default_timeout = chrono::Duration::from_std(DEFAULT_TIMEOUT).expect("30s is a duration");
        let timeout = positive("provider.datadog.timeout", datadog.timeout.as_ref(), default_timeout)?;
        Ok(Self { address: address.to_owned(), endpoint, window, timeout })
    }

    /// The `from` and `to` of a query at `at`: `to` is `at`'s second, `from` the window before it,
    /// the window rounded up to a whole second.
    pub fn range(&self, at: DateTime<Utc>) -> (i64, i64) {
        let to = at.timestamp();
        let window = i64::try_from(self.window.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
        (to.saturating_sub(window), to)
    }
}

/// A client of one Datadog site, with one metric's window, timeout and keys. Cheap to clone.
#[derive(Clone)]
pub struct DatadogClient {
    http: reqwest::Client,
    settings: DatadogSettings,
}

impl fmt::Debug for DatadogClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatadogClient").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Source for DatadogClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Datadog
    }

    fn instant(
        &self,
        query: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<f64>, MeasurementError>> + Send {
        self.query(query, at)
    }
}

impl DatadogClient {
    /// A client sending `auth`'s headers, the keys among them, with every query.
    pub fn new(settings: DatadogSettings, auth: &ResolvedAuth) -> Result<Self, ConfigError> {
        Ok(Self { http: http::client(Some(settings.timeout), auth)?, settings })
    }

    /// The value of `query` over the window that ends at `at`.
    pub async fn query(&self, query: &str, at: DateTime<Utc>) -> Result<Option<f64>, MeasurementError> {
        let (from, to) = self.settings.range(at);
        let transport = |error: reqwest::Error| self.transport_error(error);
        let mut response = self
            .http
            .get(self.settings.endpoint.clone())
            .query(&[("from", from.to_string()), ("to", to.to_string()), ("query", query.to_owned())])
            .header("accept", "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let advice = "; a query grouped by a tag (`by {…}`) returns a series per value, and a measurement \
                      needs one";
        let body = http::read_answer(&mut response, advice, transport).await?;
        decode(status, &headers, &body, &self.settings.address)
            .and_then(|series| value(&series, to as f64 * 1000.0))
    }

    /// A failed request, named without its URL, which holds the query.
    fn transport_error(&self, error: reqwest::Error) -> MeasurementError {
        http::transport_error(&error.without_url(), &self.settings.address, self.settings.timeout)
    }
}

/// An answer of the query API: its series, or the error a successful status carries.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// Required unless the answer is an error: without it an answer is not the query API's, and
    /// must not read as no data.
    #[serde(default)]
    series: Option<Vec<Series>>,
}

/// One series of an answer.
#[derive(Deserialize, Debug, Default)]
struct Series {
    /// `[milliseconds since the epoch, value or null]`, oldest first.
    #[serde(default)]
    pointlist: Vec<(f64, Option<f64>)>,
    /// The seconds each point's bucket spans.
    #[serde(default)]
    interval: Option<f64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    tag_set: Vec<String>,
    #[serde(default)]
    expression: Option<String>,
}

impl Series {
    /// The series as a message names it: its tags, else its scope, else its expression.
    fn name(&self) -> String {
        if !self.tag_set.is_empty() {
            format!("{{{}}}", self.tag_set.join(","))
        } else if let Some(scope) = &self.scope {
            format!("{{{scope}}}")
        } else {
            self.expression.clone().unwrap_or_else(|| "a series without tags".to_owned())
        }
    }

    /// The value of the latest bucket that ended by `to_ms`, in whatever order the points come;
    /// `None` when that bucket is null or has no point. An older bucket is never taken instead:
    /// a measurement an interval earlier read it, and a count read twice would be counted twice.
    fn latest_complete(&self, to_ms: f64) -> Option<f64> {
        let span_ms = self.interval.map_or(0.0, |seconds| seconds * 1000.0);
        let complete = self.pointlist.iter().filter(|(at, _)| at + span_ms <= to_ms);
        let (latest_at, value) = complete.max_by(|a, b| a.0.total_cmp(&b.0))?;
        // Buckets are aligned to the clock: the latest one over starts one span before the start
        // of the one that holds `to`. A latest point older than that is a bucket with no data.
        let wanted = if span_ms > 0.0 { (to_ms / span_ms).floor() * span_ms - span_ms } else { *latest_at };
        if *latest_at < wanted {
            return None;
        }
        *value
    }
}

/// The `errors` of an error answer, joined; the body quoted when it has none.
#[derive(Deserialize)]
struct Errors {
    errors: Vec<String>,
}

fn errors_of(body: &[u8]) -> String {
    match serde_json::from_slice::<Errors>(body) {
        Ok(Errors { errors }) if !errors.is_empty() => errors.join("; "),
        _ => quote_body(body),
    }
}

/// A rate-limit answer's headers, as advice on when to try again.
fn rate_limit(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let mut advice = match header("x-ratelimit-reset") {
        Some(reset) => format!("the limit resets in {reset}s (X-RateLimit-Reset)"),
        None => "no X-RateLimit-Reset header says when the limit resets".to_owned(),
    };
    if let (Some(limit), Some(period)) = (header("x-ratelimit-limit"), header("x-ratelimit-period")) {
        advice.push_str(&format!("; the limit is {limit} queries every {period}s"));
    }
    advice
}

/// The series of an answer, or the error it is.
fn decode(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    address: &str,
) -> Result<Vec<Series>, MeasurementError> {
    match status.as_u16() {
        200..=299 => {}
        400 | 422 => return Err(MeasurementError::BadQuery { message: errors_of(body) }),
        401 | 403 => {
            return Err(MeasurementError::BadQuery {
                message: format!(
                    "HTTP {status}: the API or application key was refused ({}); check the keys in their \
                     Secrets, that they belong to this Datadog site, and that the application key may \
                     query timeseries",
                    errors_of(body)
                ),
            });
        }
        429 => {
            return Err(MeasurementError::ServerError {
                status: 429,
                message: format!("rate limited ({}); {}", errors_of(body), rate_limit(headers)),
            });
        }
        500..=599 => {
            return Err(MeasurementError::ServerError { status: status.as_u16(), message: errors_of(body) });
        }
        300..=399 => {
            let advice = ", since they would carry the keys: set the address to the site's API";
            return Err(http::redirect_error(status, headers, advice));
        }
        _ => {
            return Err(MeasurementError::unexpected(format!(
                "HTTP {status}: {}; is {address} a Datadog API address, such as {DEFAULT_DATADOG_ADDRESS}?",
                errors_of(body)
            )));
        }
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|error| {
        let what = if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
            format!("an answer that is not a query's: {error}")
        } else {
            format!("an answer that is not JSON: {}", quote_body(body))
        };
        MeasurementError::unexpected(what)
    })?;
    let error = answer.error.filter(|error| !error.is_empty());
    if answer.status.as_deref() == Some("error") || error.is_some() {
        return Err(MeasurementError::BadQuery {
            message: error.unwrap_or_else(|| "status \"error\"".into()),
        });
    }
    answer.series.ok_or_else(|| {
        MeasurementError::unexpected(format!("an answer without series, not a query's: {}", quote_body(body)))
    })
}

/// The one series' latest complete point; no series is no data.
fn value(series: &[Series], to_ms: f64) -> Result<Option<f64>, MeasurementError> {
    match series {
        [] => Ok(None),
        [one] => Ok(one.latest_complete(to_ms)),
        several => {
            let mut names: Vec<String> = several.iter().map(Series::name).collect();
            names.sort_unstable();
            names.truncate(MAX_SERIES_NAMED);
            Err(MeasurementError::TooManySeries { count: several.len(), series: names })
        }
    }
}

/// The headers that carry a `datadog` metric's keys, with their values.
pub fn key_headers(api_key: &str, application_key: &str) -> ResolvedAuth {
    ResolvedAuth {
        credentials: None,
        headers: vec![
            (API_KEY_HEADER.to_owned(), api_key.to_owned()),
            (APPLICATION_KEY_HEADER.to_owned(), application_key.to_owned()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(status: u16, body: &str) -> Result<Vec<Series>, MeasurementError> {
        decode(StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), body.as_bytes(), "https://dd")
    }

    fn answer(body: &str, to_ms: f64) -> Result<Option<f64>, MeasurementError> {
        decoded(200, body).and_then(|series| value(&series, to_ms))
    }

    #[test]
    fn the_value_is_the_latest_whole_bucket() {
        // Buckets of 10s: the one stamped 120s still fills until 130s.
        let body = r#"{"status": "ok", "series": [{"interval": 10, "scope": "version:a",
            "pointlist": [[90000.0, 1.0], [100000.0, 2.5], [110000.0, null], [120000.0, 9.0]]}]}"#;
        assert_eq!(answer(body, 115_000.0), Ok(Some(2.5)), "the bucket of 110s is not over");
        assert_eq!(answer(body, 125_000.0), Ok(None), "the bucket of 120s is not over, and 110s is null");
        assert_eq!(answer(body, 130_000.0), Ok(Some(9.0)), "over at 130s");
        assert_eq!(answer(body, 95_000.0), Ok(None), "no bucket was over yet");
        let newest_first = r#"{"series": [{"interval": 10, "pointlist": [[100000, 4], [90000, 1]]}]}"#;
        assert_eq!(answer(newest_first, 112_000.0), Ok(Some(4.0)), "points in any order");
        let no_interval = r#"{"series": [{"pointlist": [[1000, 3], [2000, null]]}]}"#;
        assert_eq!(answer(no_interval, 2_000.0), Ok(None));
    }

    /// A sparse count (errors are reported only in the minutes that have some) gives no point for
    /// a quiet minute: that is no data, never the older minute again, which an earlier measurement
    /// counted already.
    #[test]
    fn a_bucket_without_a_point_is_never_filled_from_an_older_one() {
        let body = r#"{"series": [{"interval": 60, "pointlist": [[60000, 7]]}]}"#;
        assert_eq!(answer(body, 120_000.0), Ok(Some(7.0)));
        assert_eq!(answer(body, 180_000.0), Ok(None));
        assert_eq!(answer(body, 240_000.0), Ok(None));
    }

    #[test]
    fn no_series_or_no_point_is_no_data() {
        assert_eq!(answer(r#"{"status": "ok", "series": []}"#, 1.0), Ok(None));
        assert_eq!(answer(r#"{"status": "ok", "series": [{"pointlist": []}]}"#, 1.0), Ok(None));
        assert_eq!(answer(r#"{"status": "ok", "series": [{"pointlist": [[0, null]]}]}"#, 1.0), Ok(None));
    }

    #[test]
    fn an_answer_without_series_is_not_no_data() {
        for body in [r#"{"status": "ok"}"#, "{}", r#"{"data": []}"#] {
            let error = answer(body, 1.0).unwrap_err();
            assert_eq!(error.label(), "unexpected", "{body}: {error:?}");
        }
    }

    #[test]
    fn several_series_are_named_by_their_tags() {
        let body = r#"{"status": "ok", "series": [
            {"tag_set": ["version:b"], "pointlist": []},
            {"tag_set": ["version:a", "env:prod"], "pointlist": []},
            {"scope": "env:dev", "pointlist": []}]}"#;
        assert_eq!(
            answer(body, 1.0),
            Err(MeasurementError::TooManySeries {
                count: 3,
                series: vec!["{env:dev}".into(), "{version:a,env:prod}".into(), "{version:b}".into()]
            })
        );
    }

    #[test]
    fn errors_are_classified() {
        let bad = decoded(400, r#"{"errors": ["Error parsing query: unexpected '}'"]}"#).unwrap_err();
        assert_eq!(bad, MeasurementError::BadQuery { message: "Error parsing query: unexpected '}'".into() });
        let error = decoded(200, r#"{"status": "error", "error": "Rollup interval too small"}"#).unwrap_err();
        assert_eq!(error, MeasurementError::BadQuery { message: "Rollup interval too small".into() });
        let refused = decoded(403, r#"{"errors": ["Forbidden"]}"#).unwrap_err();
        assert!(
            refused.describe(ProviderKind::Datadog).starts_with(
                "Datadog rejected the query: HTTP 403 Forbidden: the API or application key was refused (Forbidden)"
            ),
            "{refused:?}"
        );
        assert_eq!(
            decoded(503, "upstream unavailable").unwrap_err(),
            MeasurementError::ServerError { status: 503, message: "upstream unavailable".into() }
        );
        let html = decoded(200, "<html><body>Sign in</body></html>").unwrap_err();
        assert_eq!(
            html.describe(ProviderKind::Datadog),
            "unexpected answer from Datadog: an answer that is not JSON: <html><body>Sign in</body></html>"
        );
        let not_found = decoded(404, "404 page not found").unwrap_err();
        assert!(not_found.to_string().contains("is https://dd a Datadog API address"), "{not_found}");
        assert!(matches!(
            decoded(200, r#"{"series": [{"pointlist": [["x", 1]]}]}"#),
            Err(MeasurementError::Unexpected { .. })
        ));
    }

    #[test]
    fn a_rate_limit_says_when_it_resets() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", "17".parse().unwrap());
        headers.insert("x-ratelimit-limit", "100".parse().unwrap());
        headers.insert("x-ratelimit-period", "3600".parse().unwrap());
        let body = br#"{"errors": ["Too many requests"]}"#;
        let error = decode(StatusCode::TOO_MANY_REQUESTS, &headers, body, "https://dd").unwrap_err();
        assert_eq!(
            error.describe(ProviderKind::Datadog),
            "Datadog answered HTTP 429: rate limited (Too many requests); the limit resets in 17s \
             (X-RateLimit-Reset); the limit is 100 queries every 3600s"
        );
        assert_eq!(error.label(), "server_error");
        let bare = decode(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b"", "https://dd").unwrap_err();
        assert!(bare.to_string().contains("no X-RateLimit-Reset header"), "{bare}");
    }

    fn provider(fields: serde_json::Value) -> api::DatadogProvider {
        let mut fields = fields;
        fields["query"] = "sum:x{*}".into();
        fields["apiKey"] = serde_json::json!({"name": "dd", "key": "api"});
        fields["applicationKey"] = serde_json::json!({"name": "dd", "key": "app"});
        serde_json::from_value(fields).unwrap()
    }

    #[test]
    fn settings_default_to_the_us1_site_five_minutes_and_thirty_seconds() {
        let settings = DatadogSettings::of(&provider(serde_json::json!({}))).unwrap();
        assert_eq!(settings.endpoint.as_str(), "https://api.datadoghq.com/api/v1/query");
        assert_eq!((settings.window, settings.timeout), (Duration::from_secs(300), DEFAULT_TIMEOUT));
        let at: DateTime<Utc> = "2026-06-01T12:00:00.900Z".parse().unwrap();
        assert_eq!(settings.range(at), (at.timestamp() - 300, at.timestamp()));
        let proxied = DatadogSettings::of(&provider(
            serde_json::json!({"address": "http://proxy:8080/dd/", "window": "1500ms"}),
        ));
        let proxied = proxied.unwrap();
        assert_eq!(proxied.endpoint.as_str(), "http://proxy:8080/dd/api/v1/query");
        assert_eq!(proxied.range(at), (at.timestamp() - 2, at.timestamp()), "the window rounded up");
    }

    #[test]
    fn invalid_settings_name_their_field() {
        for (fields, field) in [
            (serde_json::json!({"address": "api.datadoghq.com"}), "provider.datadog.address"),
            (serde_json::json!({"address": "https://key:x@api.datadoghq.com"}), "provider.datadog.address"),
            (serde_json::json!({"address": "https://api.datadoghq.com/?a=b"}), "provider.datadog.address"),
            (serde_json::json!({"window": "0s"}), "provider.datadog.window"),
            (serde_json::json!({"window": "500ms"}), "provider.datadog.window"),
            (serde_json::json!({"timeout": "later"}), "provider.datadog.timeout"),
        ] {
            match DatadogSettings::of(&provider(fields.clone())) {
                Err(RenderError::Field { field: found, reason }) => {
                    assert_eq!(found, field, "{fields}: {reason}");
                    assert!(!reason.contains("key:x"), "{reason}");
                }
                other => panic!("{fields}: {other:?}"),
            }
        }
    }

    #[test]
    fn keys_are_sensitive_and_never_shown() {
        let auth = key_headers("api-s3cret", "app-s3cret");
        let map = auth.header_map().unwrap();
        assert!(map[API_KEY_HEADER].is_sensitive() && map[APPLICATION_KEY_HEADER].is_sensitive());
        let settings = DatadogSettings::of(&provider(serde_json::json!({}))).unwrap();
        let client = DatadogClient::new(settings, &auth).unwrap();
        let shown = format!("{client:?} {auth:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
