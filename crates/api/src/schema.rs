//! Hand-written schema fragments for fields whose full upstream schema would bloat the CRDs.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;

/// A pod template. Its full schema is tens of thousands of lines; the ReplicaSet that Bellwether
/// creates from it is validated by the API server, so the CRD keeps only the object shape.
pub fn pod_template(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "The pod template of every revision (a core/v1 PodTemplateSpec). A change here starts a new canary.",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    })
}

/// A job metric's Job spec. Like the pod template, its full schema would bloat the CRDs; the engine
/// reads it as a batch/v1 JobSpec when it validates a template, and the API server validates the Job.
pub fn job_spec(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "The spec of the Job run for each measurement (a batch/v1 JobSpec); its strings are templates.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// A label selector (meta/v1 LabelSelector), validated in full because the engine reads it.
pub fn label_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Selects the pods of this Rollout. Immutable, like a Deployment's.",
        "properties": {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string"},
                        "operator": {"type": "string", "enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                        "values": {"type": "array", "items": {"type": "string"}}
                    }
                }
            }
        },
        "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "selector is immutable; create a new Rollout to change it"},
            {"rule": "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)", "message": "selector must not be empty: it would select every pod in the namespace"}
        ]
    })
}

/// A measured value as the Prometheus HTTP API writes one: a decimal string, `+Inf`, `-Inf` or
/// `NaN`. JSON has no number for the last three, and a number field would store them as `null`.
pub fn sample_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "description": "A number as Prometheus writes it: decimal (0.034, 1e-05), +Inf, -Inf or NaN.",
        "maxLength": 32,
        "pattern": super::sample::PATTERN
    })
}

/// Makes an optional field not nullable: absent is fine, `null` is not. Serde reads `null` as an
/// absent field, but the API server keeps `null` in a nullable field and CEL's `has()` counts it as
/// set, so a bare `- pause:` step would pass the one-kind rule and reach the controller with no kind.
/// The API server prunes `null` from a field that is not nullable, so the rules see what serde sees.
pub fn not_nullable(schema: &mut Schema) {
    // `Option<T>` arrives as `"type": [T, "null"]`; the generator turns that into `nullable: true`.
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema.insert("type".to_string(), only);
        }
    }
}
