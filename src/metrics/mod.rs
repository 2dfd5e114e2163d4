//! Metric providers: how a metric's query becomes a measurement.

pub mod measure;
pub mod prometheus;
pub mod providers;
