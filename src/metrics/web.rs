//! The `web` metric provider: one HTTP request to an endpoint that answers JSON, and one number of
//! the answer, picked by an RFC 9535 JSONPath, as the measurement.
//!
//! The URL and body are templates ([`crate::api::template::render_url`] and
//! [`crate::api::template::render_json_body`]): values fill only the URL's query string,
//! percent-encoded, and only the body's JSON strings, escaped. The JSONPath must select exactly one
//! node: a number, a string holding one (`"0.25"`), or `null`, which is no data (as is `NaN`). No
//! node, several nodes and anything else are errors, in the kinds a Prometheus query's are.
//!
//! Redirects are not followed: a redirect could take the metric's headers, which may hold Secret
//! values, to another host, so it is an error that says where it pointed. The whole request,
//! connecting and reading included, is bounded by the metric's `timeout`, and the answer by
//! [`MAX_ANSWER_BYTES`](http::MAX_ANSWER_BYTES).

use super::error::MeasurementError;
use super::http::{self, quote_body};
use super::measure::RenderError;
use super::prometheus::{ConfigError, DEFAULT_TIMEOUT, ResolvedAuth};
use crate::api::template::{self, Vars};
use crate::api::{self, DEFAULT_INTERVAL, Metric, WebMethod, format_duration};
use reqwest::Url;
use serde_json::Value;
use serde_json_path::JsonPath;
use std::time::Duration;

/// How many nodes a [`MeasurementError::TooManySeries`] from a JSONPath names.
const MAX_NODES_NAMED: usize = 5;

/// One measurement's request, every variable substituted.
#[derive(Debug, Clone)]
pub struct WebRequest {
    pub url: Url,
    pub method: WebMethod,
    pub body: Option<String>,
    pub json_path: JsonPath,
    /// The JSONPath as written, for messages.
    pub json_path_text: String,
    pub timeout: Duration,
}

impl WebRequest {
    /// Renders `web`'s templates for the revision under test. `{{interval}}` is the metric's own.
    /// An error names the field at fault.
    pub fn render(metric: &Metric, web: &api::WebProvider, vars: &Vars) -> Result<Self, RenderError> {
        let interval =
            metric.interval.as_ref().map_or_else(|| format_duration(DEFAULT_INTERVAL), ToString::to_string);
        let vars = Vars { interval, ..vars.clone() };
        let field_error = |field: &'static str, reason: String| RenderError::Field { field, reason };
        let url = template::render_url(&web.url, &vars)
            .map_err(|reason| RenderError::Template { field: "provider.web.url", reason })?;
        let url = Url::parse(&url).map_err(|e| field_error("provider.web.url", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(field_error(
                "provider.web.url",
                "must be an http:// or https:// URL with a host".into(),
            ));
        }
        // Credentials in a URL end up in every message that names it; headers from a Secret do not.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(field_error(
                "provider.web.url",
                "must not hold credentials (user:password@): send them in headers read from a Secret".into(),
            ));
        }
        let body = match &web.body {
            Some(body) => Some(
                template::render_json_body(body, &vars)
                    .map_err(|reason| RenderError::Template { field: "provider.web.body", reason })?,
            ),
            None => None,
        };
        if body.is_some() && web.method != WebMethod::Post {
            return Err(field_error("provider.web.body", "a body needs method POST".into()));
        }
        let json_path = JsonPath::parse(&web.json_path)
            .map_err(|e| field_error("provider.web.jsonPath", format!("not an RFC 9535 JSONPath: {e}")))?;
        let timeout =
            match &web.timeout {
                Some(timeout) => {
                    let parsed =
                        timeout.parse().map_err(|e| field_error("provider.web.timeout", format!("{e}")))?;
                    parsed.to_std().ok().filter(|t| !t.is_zero()).ok_or_else(|| {
                        field_error("provider.web.timeout", "must be greater than zero".into())
                    })?
                }
                None => DEFAULT_TIMEOUT,
            };
        Ok(Self { url, method: web.method, body, json_path, json_path_text: web.json_path.clone(), timeout })
    }

    /// Where the request goes, without its query string (which holds the args): for messages, and
    /// to share one endpoint's permits.
    pub fn origin(&self) -> String {
        let mut origin = self.url.clone();
        origin.set_query(None);
        origin.set_fragment(None);
        origin.to_string()
    }
}

/// The HTTP client of every web metric. Each request carries its own timeout and headers, so one
/// client (and its connections) serves them all. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WebClient {
    http: reqwest::Client,
}

impl WebClient {
    pub fn new() -> Result<Self, ConfigError> {
        Ok(Self { http: http::client(None, &ResolvedAuth::default())? })
    }

    /// Sends `request` with `auth`'s headers and picks its value from the answer.
    pub async fn measure(
        &self,
        request: &WebRequest,
        auth: &ResolvedAuth,
    ) -> Result<Option<f64>, MeasurementError> {
        let headers = auth.header_map().map_err(|e| MeasurementError::unexpected(e.to_string()))?;
        let mut builder = match request.method {
            WebMethod::Get => self.http.get(request.url.clone()),
            WebMethod::Post => self.http.post(request.url.clone()),
        };
        builder = builder.timeout(request.timeout).headers(headers).header("accept", "application/json");
        if let Some(body) = &request.body {
            builder = builder.header("content-type", "application/json").body(body.clone());
        }
        // reqwest names the whole URL, query string (the args) included.
        let transport = |error: reqwest::Error| {
            http::transport_error(&error.without_url(), &request.origin(), request.timeout)
        };
        let mut response = builder.send().await.map_err(transport)?;
        let status = response.status();
        let body = http::read_answer(&mut response, "", transport).await?;
        if status.is_server_error() {
            return Err(MeasurementError::ServerError {
                status: status.as_u16(),
                message: quote_body(&body),
            });
        }
        if status.is_client_error() {
            return Err(MeasurementError::BadQuery {
                message: format!("HTTP {status}: {}", quote_body(&body)),
            });
        }
        if status.is_redirection() {
            return Err(http::redirect_error(status, response.headers(), ": set the url to where it points"));
        }
        if !status.is_success() {
            return Err(MeasurementError::unexpected(format!("HTTP {status}: {}", quote_body(&body))));
        }
        let answer: Value = serde_json::from_slice(&body).map_err(|_| {
            MeasurementError::unexpected(format!("an answer that is not JSON: {}", quote_body(&body)))
        })?;
        select(&request.json_path, &request.json_path_text, &answer)
    }
}

/// The value of the one node `path` selects in `answer`: a number, a numeric string, or `null` and
/// `NaN` as no data.
pub fn select(path: &JsonPath, path_text: &str, answer: &Value) -> Result<Option<f64>, MeasurementError> {
    let nodes = path.query_located(answer).all();
    let node = match nodes.as_slice() {
        [] => {
            return Err(MeasurementError::unexpected(format!(
                "jsonPath {path_text} selected nothing in the answer"
            )));
        }
        [one] => one.node(),
        several => {
            let mut series: Vec<String> = several.iter().map(|node| node.location().to_string()).collect();
            series.truncate(MAX_NODES_NAMED);
            return Err(MeasurementError::TooManySeries { count: several.len(), series });
        }
    };
    let not_a_number = |what: &str| {
        let text = node.to_string();
        let quoted = quote_body(text.as_bytes());
        MeasurementError::unexpected(format!("jsonPath {path_text} selected {what}, not a number: {quoted}"))
    };
    let value = match node {
        Value::Null => return Ok(None),
        Value::Number(number) => number.as_f64().ok_or_else(|| not_a_number("a number out of range"))?,
        Value::String(text) => text.trim().parse::<f64>().map_err(|_| not_a_number("a string"))?,
        Value::Bool(_) => return Err(not_a_number("a boolean")),
        Value::Array(_) => return Err(not_a_number("an array")),
        Value::Object(_) => return Err(not_a_number("an object")),
    };
    Ok((!value.is_nan()).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pick(path: &str, answer: Value) -> Result<Option<f64>, MeasurementError> {
        select(&JsonPath::parse(path).unwrap(), path, &answer)
    }

    #[test]
    fn one_node_gives_its_value() {
        assert_eq!(pick("$.data.rate", json!({"data": {"rate": 0.25}})), Ok(Some(0.25)));
        assert_eq!(
            pick(
                "$.items[?@.name == 'b'].v",
                json!({"items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]})
            ),
            Ok(Some(2.0))
        );
        assert_eq!(pick("$.v", json!({"v": " 1e-3 "})), Ok(Some(0.001)));
        assert_eq!(pick("$.v", json!({"v": "+Inf"})), Ok(Some(f64::INFINITY)));
        assert_eq!(pick("$.v", json!({"v": null})), Ok(None));
        assert_eq!(pick("$.v", json!({"v": "NaN"})), Ok(None));
    }

    #[test]
    fn anything_but_one_number_is_an_error_naming_the_path() {
        let message = |result: Result<Option<f64>, MeasurementError>| {
            result.unwrap_err().describe(crate::metrics::error::ProviderKind::Web)
        };
        assert_eq!(
            message(pick("$.missing", json!({"v": 1}))),
            "unexpected answer from the web endpoint: jsonPath $.missing selected nothing in the answer"
        );
        assert_eq!(
            pick("$.items[*].v", json!({"items": [{"v": 1}, {"v": 2}]})),
            Err(MeasurementError::TooManySeries {
                count: 2,
                series: vec!["$['items'][0]['v']".into(), "$['items'][1]['v']".into()]
            })
        );
        assert_eq!(
            message(pick("$.v", json!({"v": "fast"}))),
            "unexpected answer from the web endpoint: jsonPath $.v selected a string, not a number: \"fast\""
        );
        assert!(message(pick("$.v", json!({"v": [1]}))).contains("selected an array, not a number"));
        assert!(message(pick("$.v", json!({"v": true}))).contains("selected a boolean, not a number"));
    }
}
