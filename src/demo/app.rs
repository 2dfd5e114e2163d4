//! The demo app's two HTTP servers.
//!
//! The traffic listener answers every path (any method) as the app, after the configured latency,
//! with a 500 for the configured share of requests; it also serves `/metrics` and `/healthz`,
//! which are not counted as traffic, so that scrapes and probes do not dilute the error ratio.
//!
//! A request is counted as mirrored (`mirrored="true"` on its metrics) when its host name ends with
//! `-shadow`, the mark Envoy puts on the copies its request mirror policies send (Envoy turns it into
//! `host-shadow:port`, and older releases appended it after the port, so both are recognised), or
//! when it carries the header set by [`DemoApp::with_mirror_header`], for Gateways that do not mark
//! their copies in the host but can be made to add a header to them.
//!
//! The admin listener serves `/admin/faults`: GET shows the faults in force, PATCH changes some of
//! them. It is a listener of its own so that traffic reaching the app through a Gateway cannot
//! change its faults; by default it listens on 127.0.0.1, reachable with `kubectl port-forward`.

use super::faults::{ErrorPattern, Faults, FaultsError};
use super::metrics::{self, Metrics};
use crate::server::http::{self, Response, Router, plain_text};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use rand::Rng;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The largest faults patch taken: a patch is a few short fields.
const MAX_PATCH_BYTES: usize = 4096;
/// How long a client may take to send a patch.
const PATCH_READ_TIMEOUT: Duration = Duration::from_secs(10);
const JSON: &str = "application/json";

/// The app: its faults, its metrics and its version. Clones share them.
#[derive(Clone)]
pub struct DemoApp {
    shared: Arc<Shared>,
    /// A request header whose presence marks a mirrored copy, besides the `-shadow` host.
    mirror_header: Option<HeaderName>,
}

/// What the host names of mirrored copies end with: Envoy's mark.
const SHADOW_SUFFIX: &str = "-shadow";

struct Shared {
    version: String,
    faults: Mutex<Faults>,
    metrics: Metrics,
    /// Requests answered as traffic so far, which place each request in the even error pattern.
    served: AtomicU64,
}

impl DemoApp {
    /// An app answering as `version` with `faults`, which must be [valid](Faults::validated).
    pub fn new(version: impl Into<String>, faults: Faults) -> Self {
        Self {
            shared: Arc::new(Shared {
                version: version.into(),
                faults: Mutex::new(faults),
                metrics: Metrics::new(),
                served: AtomicU64::new(0),
            }),
            mirror_header: None,
        }
    }

    /// Also counts as mirrored every request that carries the header `name`, whatever its value.
    pub fn with_mirror_header(mut self, name: HeaderName) -> Self {
        self.mirror_header = Some(name);
        self
    }

    /// Whether `request` is a copy a Gateway mirrored to the app: its `:authority` or `Host` ends
    /// with `-shadow` (before a port, or after it), or it carries the mirror header.
    fn is_mirrored<B>(&self, request: &Request<B>) -> bool {
        let header = self.mirror_header.as_ref().is_some_and(|name| request.headers().contains_key(name));
        let host = request.headers().get(HOST).and_then(|value| value.to_str().ok());
        let authority = request.uri().authority().map(|authority| authority.as_str());
        header || authority.into_iter().chain(host).any(shadow_host)
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the faults by a JSON patch, as the admin endpoint does: all of it or, when any value
    /// is refused, none of it. Concurrent patches apply one after the other, each to the faults the
    /// previous one left.
    pub fn patch_faults(&self, patch: &[u8]) -> Result<Faults, FaultsError> {
        let mut faults = self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let patched = faults.patched(patch)?;
        if patched != *faults {
            tracing::info!(before = %faults.to_json(), after = %patched.to_json(), "faults changed");
        }
        *faults = patched;
        Ok(patched)
    }

    /// Serves traffic on `traffic` and the admin endpoint on `admin` until `shutdown` turns true
    /// (or its sender is dropped); then lets requests in flight finish and returns.
    pub async fn serve(
        &self,
        traffic: TcpListener,
        admin: TcpListener,
        shutdown: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let traffic = http::serve(traffic, self.traffic_router(), stopped(shutdown.clone()));
        let admin = http::serve(admin, self.admin_router(), stopped(shutdown));
        tokio::try_join!(traffic, admin).map(|_| ())
    }

    /// Binds both addresses (port 0 takes a free port) and serves on the current runtime until the
    /// returned handle is stopped or dropped.
    pub async fn start(&self, traffic: SocketAddr, admin: SocketAddr) -> io::Result<RunningDemoApp> {
        let traffic = TcpListener::bind(traffic).await?;
        let admin = TcpListener::bind(admin).await?;
        let addresses = (traffic.local_addr()?, admin.local_addr()?);
        let (stop, shutdown) = watch::channel(false);
        let app = self.clone();
        let task = tokio::spawn(async move { app.serve(traffic, admin, shutdown).await });
        Ok(RunningDemoApp { traffic: addresses.0, admin: addresses.1, stop, task })
    }

    fn traffic_router(&self) -> Router {
        let metrics = self.shared.metrics.clone();
        let app = self.clone();
        Router::new()
            .get("/metrics", move || plain_text(StatusCode::OK, metrics::CONTENT_TYPE, metrics.render()))
            .get("/healthz", || plain_text(StatusCode::OK, http::TEXT, "ok\n".to_owned()))
            .fallback(move |request, _| {
                let app = app.clone();
                async move { app.answer(request).await }
            })
    }

    fn admin_router(&self) -> Router {
        let show = self.clone();
        let change = self.clone();
        Router::new().get("/admin/faults", move || faults_response(show.faults())).patch(
            "/admin/faults",
            move |request, peer| {
                let app = change.clone();
                async move { app.change_faults(request, peer).await }
            },
        )
    }

    /// Answers one request of traffic with the faults in force when it came in.
    async fn answer(&self, request: Request<Incoming>) -> Response {
        let started = Instant::now();
        let mirrored = self.is_mirrored(&request);
        let faults = self.faults();
        let placed = self.shared.served.fetch_add(1, Ordering::Relaxed);
        let fails = match faults.error_pattern {
            ErrorPattern::Random => rand::thread_rng().gen_bool(faults.error_rate),
            ErrorPattern::Even => fails_evenly(placed, faults.error_rate),
        };
        let jitter = match faults.latency_jitter {
            Duration::ZERO => Duration::ZERO,
            most => rand::thread_rng().gen_range(Duration::ZERO..=most),
        };
        let hold = faults.latency + jitter;
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        let version = &self.shared.version;
        let (status, body) = if fails {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("demo-app {version}: injected failure\n"))
        } else {
            (StatusCode::OK, format!("demo-app {version}: ok\n"))
        };
        let mut response = plain_text(status, http::TEXT, body);
        if let Ok(value) = HeaderValue::from_str(version) {
            response.headers_mut().insert("x-demo-app-version", value);
        }
        self.shared.metrics.observe(request.method(), status, started.elapsed(), mirrored);
        response
    }

    async fn change_faults(&self, request: Request<Incoming>, peer: SocketAddr) -> Response {
        let body = match read_patch(request).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        match self.patch_faults(&body) {
            Ok(faults) => faults_response(faults),
            Err(error) => {
                tracing::warn!(%peer, %error, "faults patch refused");
                plain_text(StatusCode::BAD_REQUEST, http::TEXT, format!("{error}\n"))
            }
        }
    }
}

/// Whether a `Host` or `:authority` value names a mirrored copy: its host ends with `-shadow`, or
/// the whole value does (a port followed by `-shadow`, as early Envoy releases wrote it).
fn shadow_host(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        // A port, not the last group of a bracketed IPv6 address.
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    host.ends_with(SHADOW_SUFFIX) || authority.ends_with(SHADOW_SUFFIX)
}

/// Whether request number `placed` (from 0) fails when one in every `1 / rate` must, evenly
/// spaced: it does when it takes the count of failures due to the next whole number.
fn fails_evenly(placed: u64, rate: f64) -> bool {
    let due = |requests: u64| (requests as f64 * rate).floor();
    due(placed + 1) > due(placed)
}

/// The patch's body, or the answer refusing it.
async fn read_patch(request: Request<Incoming>) -> Result<Vec<u8>, Response> {
    let refuse = |status, message: &str| plain_text(status, http::TEXT, format!("{message}\n"));
    let read = Limited::new(request.into_body(), MAX_PATCH_BYTES).collect();
    match tokio::time::timeout(PATCH_READ_TIMEOUT, read).await {
        Ok(Ok(body)) => Ok(body.to_bytes().to_vec()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body exceeds {MAX_PATCH_BYTES} bytes; a faults patch is a few short fields"),
        )),
        Ok(Err(error)) => Err(refuse(StatusCode::BAD_REQUEST, &format!("cannot read the body: {error}"))),
        Err(_) => Err(refuse(StatusCode::REQUEST_TIMEOUT, "the body came too slowly")),
    }
}

fn faults_response(faults: Faults) -> Response {
    plain_text(StatusCode::OK, JSON, format!("{}\n", faults.to_json()))
}

/// Completes once `shutdown` turns true or its sender is gone.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A demo app serving on the runtime that started it.
pub struct RunningDemoApp {
    /// Where it serves traffic, `/metrics` and `/healthz`.
    pub traffic: SocketAddr,
    /// Where it serves `/admin/faults`.
    pub admin: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<io::Result<()>>,
}

impl RunningDemoApp {
    /// Stops accepting, lets requests in flight finish, and returns how the servers ended.
    pub async fn stop(self) -> io::Result<()> {
        self.stop.send_replace(true);
        self.task.await.map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::{DemoApp, fails_evenly, shadow_host};
    use crate::demo::Faults;
    use hyper::Request;
    use hyper::header::HeaderName;

    #[test]
    fn a_shadow_host_is_recognised_with_or_without_a_port() {
        for mirrored in ["shop.example.com-shadow", "shop-shadow:8080", "shop:8080-shadow", "10.0.0.1-shadow"]
        {
            assert!(shadow_host(mirrored), "{mirrored}");
        }
        for direct in
            ["shop.example.com", "shop:8080", "shadow", "shop-shadows", "[::1]:8080", "shadow.example.com"]
        {
            assert!(!shadow_host(direct), "{direct}");
        }
    }

    #[test]
    fn a_request_is_mirrored_by_its_host_its_authority_or_the_configured_header() {
        let app = DemoApp::new("test", Faults::default());
        let request = |uri: &str, headers: &[(&str, &str)]| {
            let mut builder = Request::get(uri);
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            builder.body(()).unwrap()
        };
        assert!(app.is_mirrored(&request("/", &[("host", "shop-shadow")])));
        assert!(app.is_mirrored(&request("http://shop-shadow:8080/", &[])), "HTTP/2's :authority");
        assert!(!app.is_mirrored(&request("/", &[("host", "shop"), ("x-mirrored", "1")])));
        let app = app.with_mirror_header(HeaderName::from_static("x-mirrored"));
        assert!(app.is_mirrored(&request("/", &[("host", "shop"), ("x-mirrored", "")])));
        assert!(!app.is_mirrored(&request("/", &[("host", "shop")])));
    }

    #[test]
    fn even_failures_are_exactly_the_rate_in_any_window() {
        for rate in [0.0, 0.004, 0.02, 0.3, 0.5, 1.0] {
            let failures: Vec<bool> = (0..10_000).map(|n| fails_evenly(n, rate)).collect();
            for window in [100, 250, 1000] {
                for start in (0..10_000 - window).step_by(37) {
                    let failed = failures[start..start + window].iter().filter(|f| **f).count() as f64;
                    let expected = rate * window as f64;
                    assert!(
                        (failed - expected).abs() <= 1.0,
                        "rate {rate}: {failed} of {window} from {start}"
                    );
                }
            }
        }
    }
}
