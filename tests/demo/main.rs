//! The demo app (`bellwether demo-app`) and its load generator (`bellwether demo-load`): the faults
//! they inject and the metrics they export, in-process and as processes, and the quickstart's
//! analysis of them through a real Prometheus.

mod app;
mod faults;
mod image;
mod kind_cluster;
mod load;
mod process;
mod quickstart;

use bellwether::demo::{DemoApp, Faults, RunningDemoApp};
use std::net::SocketAddr;

/// An app with `faults`, serving on free 127.0.0.1 ports until the returned handle is dropped.
async fn started(faults: Faults) -> (DemoApp, RunningDemoApp) {
    let app = DemoApp::new("test", faults.validated().expect("valid faults"));
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let running = app.start(local, local).await.expect("the demo app listens");
    (app, running)
}

/// The value of the sample `series` (name and labels, exactly as exported) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
