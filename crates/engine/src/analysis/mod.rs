//! Analysis: how a metric's measurements become a verdict, and how an AnalysisRun's metrics are
//! scheduled, judged, kept and believed.
//!
//! - [`verdict`]: the words every judgment speaks (verdicts, windows, runs of errors, the run's
//!   phase) and the fold that drives a judgment over measurements.
//! - [`metric`]: a metric's plan (its settings resolved once) and the `Judgment` interface.
//! - one module per judgment: `threshold` (fixed bounds with hysteresis), `compare` (canary
//!   against stable, a fixed-sample test) and `sequential` (an anytime-valid test of error counts).
//! - `plan`: builds a metric's plan and picks its judgment. A fourth judgment is a module
//!   implementing `Judgment` and one arm there.
//! - `judge`: who judges a run ([`Judge`]): Bellwether's judgments, or another tool's policy.
//! - [`run`]: the AnalysisRun core, which the AnalysisRun reconciler and the simulation both drive.
//!
//! Each module uses only those above it in this list.

mod compare;
mod judge;
pub mod metric;
mod plan;
pub mod run;
mod sequential;
pub mod stats;
mod threshold;
pub mod verdict;

pub use judge::{Bellwether, Judge, judge_metric};
