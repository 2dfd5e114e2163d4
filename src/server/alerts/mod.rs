//! The Alertmanager webhook receiver: `POST /v1/alerts` on its own listener.
//!
//! It serves plain HTTP, or HTTPS with a certificate from files ([`TlsFiles`]). Each request
//! passes these checks in order, and the first that fails answers it:
//! 1. the credentials, from the headers alone: a bearer token or basic auth, unless explicitly
//!    turned off. A request without them is answered 401, or 429 beyond the small rate limit of
//!    unauthenticated requests from its source address;
//! 2. the rate limit of authenticated requests from its source address (429, with `Retry-After`).
//!    Requests without credentials never take from it, so a flood of them from an address that a
//!    real Alertmanager shares (an ingress, SNAT) cannot hold back its alerts;
//! 3. the content type (415) and the size of the body (413), read only after authentication;
//! 4. the payload, parsed strictly (400).
//!
//! Only then does the [`AlertSink`] see the alerts. A request refused at any step changes nothing.
//! When the sink fails (say the API server is unreachable) the answer is 503, which Alertmanager
//! retries; the sink's writes are idempotent, so a retried request acts once.

mod auth;
mod payload;
mod rate;
mod tls;

pub use auth::Credentials;
pub use payload::{Alert, Labels, PayloadError, Status, VERSION, Webhook, parse};
use rate::RateLimiter;
pub use tls::{RELOAD_INTERVAL, ServerTls, TlsError, TlsFiles};

use super::Metrics;
use super::http::{self, Response, Router, TEXT, plain_text};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Request, StatusCode};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Where Alertmanager sends its webhooks.
pub const PATH: &str = "/v1/alerts";

/// How long a client may take to send the body once its headers are in.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

const JSON: &str = "application/json";

/// How much of a body refused for its size is still read, and dropped: a client that is still
/// sending when the 413 comes reads it, instead of a broken connection that it would retry. A
/// body larger still is cut off.
const DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// What the receiver does with the alerts of an accepted request.
pub trait AlertSink: Send + Sync + 'static {
    /// Acts on a webhook; the `Ok` value is the answer's JSON body. An error means that the
    /// request may have acted only in part, and Alertmanager should send it again.
    fn deliver(&self, webhook: Webhook) -> BoxFuture<'_, Result<serde_json::Value, String>>;
}

/// The receiver's limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest body taken; larger requests are refused with 413 (and their bodies dropped).
    pub max_body_bytes: usize,
    /// Authenticated requests a minute from one source address, in bursts of as many.
    pub per_minute: u32,
    /// Requests without valid credentials a minute from one source address, in bursts of as many:
    /// a budget of their own, so that they never take from `per_minute`.
    pub unauthenticated_per_minute: u32,
}

struct Receiver {
    credentials: watch::Receiver<Credentials>,
    limits: Limits,
    authenticated: RateLimiter,
    unauthenticated: RateLimiter,
    sink: Arc<dyn AlertSink>,
    metrics: Metrics,
}

/// A refusal or an answer, with the `result` label it is counted under.
struct Answer {
    result: &'static str,
    response: Response,
}

impl Answer {
    fn refuse(result: &'static str, status: StatusCode, reason: impl Into<String>) -> Self {
        Self { result, response: plain_text(status, TEXT, format!("{}\n", reason.into())) }
    }

    /// 429, saying when to try again.
    fn too_many(result: &'static str, wait: Duration) -> Self {
        let mut answer = Self::refuse(result, StatusCode::TOO_MANY_REQUESTS, "too many requests");
        let seconds = wait.as_secs().max(1).to_string();
        if let Ok(value) = HeaderValue::from_str(&seconds) {
            answer.response.headers_mut().insert(RETRY_AFTER, value);
        }
        answer
    }
}

/// Serves the receiver on `listener` until `shutdown` completes, with the same graceful shutdown as
/// the other endpoints: over HTTPS with `tls`, in plain HTTP without. `credentials` and the
/// certificate may change while it runs (a rotated Secret).
pub async fn serve_alerts(
    listener: TcpListener,
    credentials: watch::Receiver<Credentials>,
    tls: Option<ServerTls>,
    limits: Limits,
    sink: Arc<dyn AlertSink>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let receiver = Arc::new(Receiver {
        credentials,
        limits,
        authenticated: RateLimiter::new(limits.per_minute),
        unauthenticated: RateLimiter::new(limits.unauthenticated_per_minute),
        sink,
        metrics,
    });
    let router = Router::new().post(PATH, move |request, peer| {
        let receiver = Arc::clone(&receiver);
        async move {
            let answer = receiver.answer(request, peer).await;
            receiver.metrics.alert_webhook(answer.result);
            answer.response
        }
    });
    match tls {
        Some(ServerTls(config)) => http::serve_tls(listener, router, config, shutdown).await,
        None => http::serve(listener, router, shutdown).await,
    }
}

impl Receiver {
    async fn answer(&self, request: Request<Incoming>, peer: SocketAddr) -> Answer {
        let credentials = self.credentials.borrow().clone();
        if !credentials.admit(request.headers()) {
            // Counted as unauthorized either way: `rate_limited` stays the count of real alerts
            // held back.
            if let Err(wait) = self.unauthenticated.admit(peer.ip(), Instant::now()) {
                return Answer::too_many("unauthorized", wait);
            }
            tracing::warn!(%peer, "alert webhook refused: missing or wrong credentials");
            let mut answer =
                Answer::refuse("unauthorized", StatusCode::UNAUTHORIZED, "missing or wrong credentials");
            credentials.challenge(answer.response.headers_mut());
            return answer;
        }
        if let Err(wait) = self.authenticated.admit(peer.ip(), Instant::now()) {
            return Answer::too_many("rate_limited", wait);
        }
        let body = match self.read_body(request).await {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let webhook = match parse(&body) {
            Ok(webhook) => webhook,
            Err(error) => {
                tracing::warn!(%peer, %error, "alert webhook refused");
                return Answer::refuse("malformed", StatusCode::BAD_REQUEST, error.to_string());
            }
        };
        match self.sink.deliver(webhook).await {
            Ok(summary) => Answer {
                result: "accepted",
                response: plain_text(StatusCode::OK, JSON, format!("{summary}\n")),
            },
            Err(error) => {
                tracing::warn!(%peer, %error, "alert webhook failed; Alertmanager will send it again");
                Answer::refuse("failed", StatusCode::SERVICE_UNAVAILABLE, error)
            }
        }
    }

    /// The whole body, if it is JSON, within the size limit and sent in time.
    async fn read_body(&self, request: Request<Incoming>) -> Result<Vec<u8>, Answer> {
        let headers = request.headers();
        let json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case(JSON));
        if !json {
            return Err(Answer::refuse(
                "malformed",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be application/json",
            ));
        }
        let max = self.limits.max_body_bytes;
        let too_large = || {
            Answer::refuse(
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body exceeds {max} bytes"),
            )
        };
        let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let body = request.into_body();
        let read = async {
            if declared.is_some_and(|length| length > max as u64) {
                return Err(drain(body).await);
            }
            read_within(body, max).await
        };
        match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
            Err(_) => {
                Err(Answer::refuse("malformed", StatusCode::REQUEST_TIMEOUT, "the body came too slowly"))
            }
            Ok(Ok(body)) => Ok(body),
            Ok(Err(Unread::TooLarge)) => Err(too_large()),
            Ok(Err(Unread::Broken(error))) => Err(Answer::refuse(
                "malformed",
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {error}"),
            )),
        }
    }
}

/// Why a body was not taken.
enum Unread {
    TooLarge,
    Broken(hyper::Error),
}

/// The body, if it is at most `max` bytes; past that, the rest is drained.
async fn read_within(mut body: Incoming, max: usize) -> Result<Vec<u8>, Unread> {
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Unread::Broken)?;
        if let Some(data) = frame.data_ref() {
            if read.len() + data.len() > max {
                return Err(drain(body).await);
            }
            read.extend_from_slice(data);
        }
    }
    Ok(read)
}

/// Reads and drops up to [`DRAIN_BYTES`] of a body refused for its size.
async fn drain(mut body: Incoming) -> Unread {
    let mut drained = 0;
    while drained < DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |data| data.len()),
            Some(Err(_)) | None => break,
        }
    }
    Unread::TooLarge
}
