//! Metric providers: how a metric's query becomes a measurement.

pub mod error;
pub mod job;
pub mod measure;
pub mod prometheus;
pub mod provider;
pub mod providers;
pub mod web;
