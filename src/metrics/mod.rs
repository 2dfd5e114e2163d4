//! Metric providers: how a metric's query becomes a measurement.

pub mod datadog;
pub mod error;
pub mod http;
pub mod influxdb;
pub mod job;
pub mod measure;
pub mod prometheus;
pub mod provider;
pub mod providers;
pub mod source;
pub mod web;
