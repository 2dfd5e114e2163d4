//! The demo app's metrics, named and labelled as most HTTP services export them, so that the
//! ready-made `http-app` templates judge it unchanged:
//!
//! - `http_requests_total{method, code, mirrored}`: a counter of the requests served;
//! - `http_request_duration_seconds{method, mirrored}`: a histogram of how long each took.
//!
//! `mirrored` is `"true"` for the copies a Gateway's RequestMirror filter sent (see
//! `DemoApp::with_mirror_header` for how they are told apart) and `"false"` for every other request,
//! so that a query can judge the requests whose answers users see (`mirrored!="true"`), the copies
//! alone (`mirrored="true"`), or both (no matcher on `mirrored`, as the ready-made templates do by
//! default).
//!
//! The templates' `namespace` and `revision` labels are not the app's to tell: Prometheus adds
//! them from the pod's namespace and its `bellwether.dev/revision` label when it scrapes, by the
//! relabelling of `examples/http-app/podmonitor.yaml`.
//!
//! Series are created before the first request, at zero, for the answers the app gives to GET,
//! mirrored or not: a revision that has failed nothing yet still has a `code="500"` series, so that
//! an error ratio reads 0 rather than no data.

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// The content type of [`Metrics::render`]'s output: the Prometheus text format, whose counters
/// are named with their `_total`, as the templates query them.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Bucket bounds in seconds: fine below 100 ms, where a healthy service answers, and with bounds at
/// the `http-app` template's p99 limits (0.4 s to recover, 0.5 s to breach), so that a quantile
/// near a limit is read from buckets that end there rather than interpolated across one.
pub const BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0];

/// Methods get a label of their own; any other is counted as `other`, so that a client sending
/// made-up methods cannot grow the number of series without bound.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    code: u16,
    mirrored: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
    mirrored: &'static str,
}

/// The `mirrored` label's value.
fn mirrored_label(mirrored: bool) -> &'static str {
    if mirrored { "true" } else { "false" }
}

type Durations = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// The registry the app serves on `/metrics`. Clones share it.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Durations = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        // Creating a series is all that is wanted here: it starts at zero.
        for mirrored in ["false", "true"] {
            for code in [200, 500] {
                let _ = requests.get_or_create(&RequestLabels { method: "GET", code, mirrored });
            }
            let _ = durations.get_or_create(&MethodLabels { method: "GET", mirrored });
        }
        let mut registry = Registry::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by method, status code and whether the request was a mirrored copy",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "How long HTTP requests took to answer, in seconds, by method and whether mirrored",
            durations.clone(),
        );
        Self { registry: Arc::new(registry), requests, durations }
    }

    /// Counts one request of `method`, answered with `code` after `took`; `mirrored` when it was a
    /// copy a Gateway mirrored to the app.
    pub fn observe(&self, method: &hyper::Method, code: hyper::StatusCode, took: Duration, mirrored: bool) {
        let method = METHODS.into_iter().find(|known| *known == method.as_str()).unwrap_or("other");
        let mirrored = mirrored_label(mirrored);
        self.requests.get_or_create(&RequestLabels { method, code: code.as_u16(), mirrored }).inc();
        self.durations.get_or_create(&MethodLabels { method, mirrored }).observe(took.as_secs_f64());
    }

    /// Every series, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
