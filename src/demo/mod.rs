//! The demo app: an HTTP service whose error rate and latency can be switched, with the metrics the
//! ready-made `http-app` templates read, and a load generator to send it traffic. The quickstart
//! ships it as a canary, good and bad; the end-to-end tests judge every canary on it.
//!
//! `bellwether demo-app` and `bellwether demo-load` run them as processes (`crate::cli::demo`);
//! tests start them in-process with [`DemoApp::start`] and [`Load::start`].

mod app;
mod faults;
mod load;
mod metrics;

pub use app::{DemoApp, RunningDemoApp};
pub use faults::{ErrorPattern, Faults, FaultsError, parse_duration};
pub use load::{Load, LoadError, Tally};
pub use metrics::BUCKETS;
