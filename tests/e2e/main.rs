//! The controller end to end: the real controller code over HTTP against the in-process test API
//! server, with metrics from a real Prometheus.

mod alerts;
mod app;
mod argocd;
mod audit;
mod autoscaling;
mod datadog_provider;
mod defaults;
mod faults;
mod gitops;
mod harness;
mod influxdb_provider;
mod job_provider;
mod lagging;
mod leader;
mod notifications;
mod process;
mod providers;
mod restarts;
mod rollouts;
mod safety;
mod sharding;
mod steering;
mod traffic;
mod viewing;
mod web_provider;
mod workload;

use bellwether_testkit::{alertmanager, apiserver, controller_calls, prometheus, webhook_sink};
