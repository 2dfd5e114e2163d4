//! The controller end to end: the real controller code over HTTP against the in-process test API
//! server, with metrics from a real Prometheus.

#[path = "../support/alertmanager.rs"]
mod alertmanager_support;
mod alerts;
#[allow(
    dead_code,
    unused_imports,
    reason = "test support shared with tests/apiserver.rs and the controller bench; each uses its own part"
)]
#[path = "../support/apiserver/mod.rs"]
mod apiserver;
mod app;
#[path = "../support/controller_calls.rs"]
mod controller_calls;
mod faults;
#[path = "../support/gateway_crds.rs"]
mod gateway_crds;
mod harness;
mod leader;
mod notifications;
mod process;
#[path = "../support/prometheus.rs"]
mod prometheus_support;
mod restarts;
mod rollouts;
mod safety;
mod steering;
mod viewing;
#[allow(dead_code, reason = "test support shared with tests/controller, whose webhooks also hang")]
#[path = "../support/webhook_sink.rs"]
mod webhook_sink;
