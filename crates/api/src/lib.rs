//! The `bellwether.dev/v1alpha1` custom resources, and the languages their fields are written in:
//! durations, measured values and query templates.
//!
//! The types here are the wire format: they derive serde, the OpenAPI schema and the CEL rules that
//! the API server enforces. Decisions about them live in `bellwether-engine`; this crate has no
//! client, no runtime and no I/O, so that the engine can depend on it.

mod analysis;
mod duration;
mod notification;
mod pod_template;
mod rollout;
pub mod sample;
mod schema;
mod selector;
pub mod template;

pub use analysis::*;
pub use duration::{DURATION_PATTERN, Duration, DurationError, format_duration, format_time};
pub use notification::*;
pub use pod_template::PodTemplate;
pub use rollout::*;
pub use selector::selector_string;

/// The API group of every Bellwether resource.
pub const GROUP: &str = "bellwether.dev";
/// The label Bellwether puts on every pod, ReplicaSet and selector it manages.
pub const REVISION_LABEL: &str = "bellwether.dev/revision";
/// The label that records which Rollout owns an AnalysisRun.
pub const ROLLOUT_LABEL: &str = "bellwether.dev/rollout";

/// When an object was created, from its metadata (Kubernetes times are `jiff` timestamps).
pub fn created_at(
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = metadata.creation_timestamp.as_ref()?;
    chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
}

/// Every CustomResourceDefinition Bellwether ships, in a stable order.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    use kube_core::CustomResourceExt;
    vec![Rollout::crd(), AnalysisTemplate::crd(), ClusterAnalysisTemplate::crd(), AnalysisRun::crd()]
}
