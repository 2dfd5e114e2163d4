//! What Bellwether's tests and benchmarks run against: real servers where they can be installed
//! (Prometheus, VictoriaMetrics, Alertmanager, InfluxDB), an in-process Kubernetes API server where
//! none can, a stand-in of Datadog's query API where Datadog cannot be reached, HTTP servers of fixed
//! answers, and small helpers beside them.

pub mod alertmanager;
pub mod apiserver;
pub mod controller_calls;
pub mod datadog;
pub mod gateway_crds;
pub mod http_stub;
pub mod influxdb;
pub mod process;
pub mod prometheus;
pub mod test_ca;
pub mod victoria_metrics;
pub mod webhook_sink;
