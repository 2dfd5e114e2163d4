//! The process's HTTP endpoints: liveness and readiness for the kubelet, and Prometheus metrics.
//!
//! Health and metrics are served on separate listeners so that the metrics port can be exposed to
//! a scraper (and protected by a NetworkPolicy) independently of the probe port. Both servers share
//! one small router and accept loop in [`http`], with graceful shutdown.

pub mod alerts;
mod health;
pub(crate) mod http;
mod metrics;

use std::future::Future;

use tokio::net::TcpListener;

pub use health::Health;
pub use metrics::Metrics;

use http::{Router, plain_text};

/// Serves `/healthz` (is the reconcile loop alive?) and `/readyz` (are the watch caches synced?)
/// on `listener` until `shutdown` completes; then stops accepting, lets requests in flight finish,
/// and returns.
///
/// Fails only when the listener's address cannot be read; errors on single connections are logged
/// and do not stop the server.
pub async fn serve_health(
    listener: TcpListener,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let live = health.clone();
    let router = Router::new()
        .get("/healthz", move || health_response(live.liveness()))
        .get("/readyz", move || health_response(health.readiness()));
    http::serve(listener, router, shutdown).await
}

/// Serves `/metrics` in the Prometheus text format on `listener` until `shutdown` completes, with
/// the same graceful shutdown as [`serve_health`].
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = Router::new()
        .get("/metrics", move || plain_text(hyper::StatusCode::OK, metrics::CONTENT_TYPE, metrics.render()));
    http::serve(listener, router, shutdown).await
}

fn health_response(check: Result<(), String>) -> http::Response {
    match check {
        Ok(()) => plain_text(hyper::StatusCode::OK, http::TEXT, "ok\n".to_owned()),
        Err(reason) => plain_text(hyper::StatusCode::SERVICE_UNAVAILABLE, http::TEXT, format!("{reason}\n")),
    }
}
