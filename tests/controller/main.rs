//! The controller's translations between Kubernetes objects and the engine, tested as plain
//! functions.

mod alerts;
mod datadog;
mod influxdb;
mod jobs;
mod measure;
mod notify;
mod replica_sets;
mod routes;
mod server;
mod traffic;
mod web;

use bellwether_testkit::webhook_sink;
