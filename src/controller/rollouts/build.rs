//! The build phase: the objects and patches the engine's actions turn into, as plain values.

use crate::api::{AnalysisRun, REVISION_LABEL, ROLLOUT_LABEL, Rollout};
use crate::controller::INSTANCE_LABEL;
use crate::engine::AnalysisRunRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The AnalysisRun that `request` asks for: the engine's spec, with the labels that tie it to its
/// Rollout and controller instance, and the Rollout as its controller owner.
pub fn analysis_run(rollout: &Rollout, request: &AnalysisRunRequest) -> AnalysisRun {
    let mut labels = BTreeMap::from([
        (ROLLOUT_LABEL.to_string(), rollout.name_any()),
        (REVISION_LABEL.to_string(), request.spec.revision.clone()),
    ]);
    // The run belongs to the same controller instance as its Rollout.
    if let Some(instance) = rollout.labels().get(INSTANCE_LABEL) {
        labels.insert(INSTANCE_LABEL.to_string(), instance.clone());
    }
    AnalysisRun {
        metadata: ObjectMeta {
            name: Some(request.name.clone()),
            namespace: rollout.namespace(),
            labels: Some(labels),
            owner_references: rollout.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        spec: request.spec.clone(),
        status: None,
    }
}

/// The merge patch that points a Service's selector at `revision`, or with `None` removes the
/// revision from it. A merge patch of one key of the selector map leaves the user's other selector
/// keys, and every other field, alone.
pub fn service_selector_patch(revision: Option<&str>) -> Value {
    json!({ "spec": { "selector": { REVISION_LABEL: revision } } })
}

/// The merge patch that asks an AnalysisRun to stop.
pub fn terminate_patch() -> Value {
    json!({ "spec": { "terminate": true } })
}
