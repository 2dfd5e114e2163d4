//! The `bellwether.dev/v1alpha1` custom resources.
//!
//! The types here are the wire format: they derive serde, the OpenAPI schema and the CEL rules that
//! the API server enforces. Decisions about them live in `engine`.

mod analysis;
mod duration;
mod notification;
mod rollout;
pub mod sample;
mod schema;
mod validate;

pub use analysis::*;
pub use duration::{Duration, DurationError, format_duration};
pub use notification::*;
pub use rollout::*;
pub use validate::{FieldError, SchemaError, SchemaValidator, validate_manifest, validate_manifest_update};

/// The API group of every Bellwether resource.
pub const GROUP: &str = "bellwether.dev";
/// The label Bellwether puts on every pod, ReplicaSet and selector it manages.
pub const REVISION_LABEL: &str = "bellwether.dev/revision";
/// The label that records which Rollout owns an AnalysisRun.
pub const ROLLOUT_LABEL: &str = "bellwether.dev/rollout";

/// Every CustomResourceDefinition Bellwether ships, in a stable order.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    use kube::CustomResourceExt;
    vec![Rollout::crd(), AnalysisTemplate::crd(), ClusterAnalysisTemplate::crd(), AnalysisRun::crd()]
}
