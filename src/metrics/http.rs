//! What the providers that measure over HTTP (prometheus, influxdb, datadog and web) share: a client
//! that follows no redirect, a checked base URL and the API's paths under it, an answer read up to
//! a limit, and the failures of the transport, redirects among them, as measurement errors.

use super::error::MeasurementError;
use super::prometheus::{ConfigError, ResolvedAuth};
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{StatusCode, Url};
use std::time::Duration;

/// The largest answer read. A measurement is one number: an endpoint that sends more is misnamed,
/// and a query that does returns many series, so the answer is refused before it is all read.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// How much of an unexpected response body an error message quotes.
const MAX_BODY_QUOTED: usize = 300;

/// An HTTP client that sends `auth`'s headers with every request and gives up on one after
/// `timeout`, when there is one.
///
/// No redirect is followed: reqwest keeps headers other than Authorization and Cookie on a redirect
/// to another host, and those may hold a Secret's value or a tenant's ID.
pub(super) fn client(timeout: Option<Duration>, auth: &ResolvedAuth) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(auth.header_map()?)
        .user_agent(concat!("bellwether/", env!("CARGO_PKG_VERSION")));
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().map_err(|e| ConfigError::HttpClient { reason: error_chain(&e) })
}

/// `address` as the base URL of an HTTP API: `http` or `https`, a host, and no query string or
/// fragment, since the API's paths and parameters are added to it; or why not.
pub(super) fn base_url(address: &str) -> Result<Url, String> {
    let url = Url::parse(address).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https".into());
    }
    if url.cannot_be_a_base() || url.host_str().is_none_or(str::is_empty) {
        return Err("the address has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the address must not have a query string or fragment".into());
    }
    // Every message about the server names its address, and a status is no place for a password.
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the address must not hold credentials (user:password@): set auth instead".into());
    }
    Ok(url)
}

/// `address` as a message may quote it: without anything before an `@` in its authority, which
/// would be credentials.
pub(super) fn without_credentials(address: &str) -> String {
    let (scheme, rest) = address.split_once("://").unwrap_or(("", address));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => address.to_owned(),
    }
}

/// The API's `path` (`/query`, or empty for the base itself) under `base`'s own path, which a proxy
/// in front of the API may have, with one slash between: a base that ends in one
/// (`http://gateway/influxdb/`) would otherwise give `//query`, which servers do not route.
pub(super) fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
    url
}

/// The body of `response`, read up to [`MAX_ANSWER_BYTES`]. A longer one is an error, which
/// `advice` ends, saying what to do about it (such as `": aggregate the query"`); one that fails to
/// arrive is `transport`'s error.
pub(super) async fn read_answer(
    response: &mut reqwest::Response,
    advice: &str,
    transport: impl Fn(reqwest::Error) -> MeasurementError,
) -> Result<Vec<u8>, MeasurementError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(&transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(MeasurementError::unexpected(format!(
                "an answer longer than {MAX_ANSWER_BYTES} bytes{advice}"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request to `address` that failed in transport: no answer within `timeout`, no connection, or
/// anything else. `error` names its URL unless the caller took it out, as it should where the URL
/// holds a query's args.
pub(super) fn transport_error(error: &reqwest::Error, address: &str, timeout: Duration) -> MeasurementError {
    if error.is_timeout() {
        MeasurementError::Timeout { reason: format!("no answer from {address} within {timeout:?}") }
    } else if error.is_connect() {
        MeasurementError::Unreachable { address: address.to_owned(), reason: root_cause(error) }
    } else {
        MeasurementError::unexpected(error_chain(error))
    }
}

/// A redirect answered with `status` and `headers`, which is not followed: where it pointed, and
/// `advice` to end the message (such as `": set the address to where it points"`).
pub(super) fn redirect_error(status: StatusCode, headers: &HeaderMap, advice: &str) -> MeasurementError {
    let location = headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("nowhere");
    MeasurementError::unexpected(format!("HTTP {status} to {location}; redirects are not followed{advice}"))
}

/// `body` for an error message: trimmed, and cut at [`MAX_BODY_QUOTED`] characters.
pub(super) fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(MAX_BODY_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The error and its causes, joined with ": ".
pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The innermost cause, which names the actual failure ("Connection refused", "failed to lookup
/// address information").
pub(super) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(cause) = current.source() {
        current = cause;
    }
    current.to_string()
}
