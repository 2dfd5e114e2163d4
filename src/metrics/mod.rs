//! Metric providers and query templating: how a metric's query becomes a measurement.

pub mod prometheus;
pub mod template;
