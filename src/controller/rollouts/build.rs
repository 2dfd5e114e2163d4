//! The build phase: the objects and patches the engine's actions turn into, as plain values.

use crate::api::{
    AnalysisArg, AnalysisRun, AnalysisRunSpec, REVISION_LABEL, ROLLOUT_LABEL, Rollout, RunContext,
};
use crate::controller::INSTANCE_LABEL;
use crate::engine::{AnalysisKind, AnalysisRunRequest, Templates};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The AnalysisRun that `request` asks for: the metrics of its templates in order, the args with
/// the Rollout's values over the templates' defaults, and what the queries' variables name. `None`
/// when a template is missing, which validation reports before any run is asked for.
pub fn analysis_run(
    rollout: &Rollout,
    request: &AnalysisRunRequest,
    templates: &Templates,
    stable_revision: Option<&str>,
) -> Option<AnalysisRun> {
    let mut metrics = Vec::new();
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for reference in &request.templates {
        let template = templates.get(reference)?;
        metrics.extend(template.metrics.iter().cloned());
        for arg in &template.args {
            if let Some(value) = &arg.value {
                args.entry(arg.name.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    args.extend(request.args.iter().map(|a| (a.name.clone(), a.value.clone())));
    let name = rollout.name_any();
    let canary = &rollout.spec.strategy.canary;
    let duration = match &request.kind {
        AnalysisKind::Step { duration, .. } => duration.clone(),
        AnalysisKind::Background => None,
    };
    let mut labels = BTreeMap::from([
        (ROLLOUT_LABEL.to_string(), name.clone()),
        (REVISION_LABEL.to_string(), request.revision.clone()),
    ]);
    // The run belongs to the same controller instance as its Rollout.
    if let Some(instance) = rollout.labels().get(INSTANCE_LABEL) {
        labels.insert(INSTANCE_LABEL.to_string(), instance.clone());
    }
    Some(AnalysisRun {
        metadata: ObjectMeta {
            name: Some(request.name.clone()),
            namespace: rollout.namespace(),
            labels: Some(labels),
            owner_references: rollout.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        spec: AnalysisRunSpec {
            metrics,
            args: args.into_iter().map(|(name, value)| AnalysisArg { name, value }).collect(),
            revision: request.revision.clone(),
            duration,
            terminate: false,
            context: Some(RunContext {
                rollout: name,
                stable_revision: stable_revision.unwrap_or_default().to_string(),
                canary_service: canary.canary_service.clone(),
                stable_service: canary.stable_service.clone(),
            }),
        },
        status: None,
    })
}

/// The merge patch that points a Service's selector at `revision`. A merge patch of one key of the
/// selector map leaves the user's other selector keys, and every other field, alone.
pub fn service_selector_patch(revision: &str) -> Value {
    json!({ "spec": { "selector": { REVISION_LABEL: revision } } })
}

/// The merge patch that asks an AnalysisRun to stop.
pub fn terminate_patch() -> Value {
    json!({ "spec": { "terminate": true } })
}
