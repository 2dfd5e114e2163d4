//! Schema validation of the custom resources, as the API server applies their CRDs: Bellwether's own
//! (derived from the Rust types) and the official Gateway API CRDs; and of a Job, the two checks
//! of the API server's own that a job metric's template most often fails.

use super::resources::{self, Resource};
use super::status::ApiError;
use bellwether_openapi::{FieldError, SchemaValidator, validate_manifest, validate_manifest_update};
use serde_json::Value;

fn schema_for(resource: &Resource) -> Option<&'static SchemaValidator> {
    if *resource == resources::HTTP_ROUTES {
        Some(crate::gateway_crds::http_routes())
    } else if *resource == resources::GRPC_ROUTES {
        Some(crate::gateway_crds::grpc_routes())
    } else {
        None
    }
}

/// Checks an object about to be stored; `old` is the stored object it replaces, if any. Kinds without
/// a schema here (the built-in ones) are accepted as they are.
pub fn validate(resource: &Resource, object: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let result = if resource.group == bellwether_api::GROUP {
        match old {
            Some(old) => validate_manifest_update(object, old),
            None => validate_manifest(object),
        }
    } else if *resource == resources::JOBS {
        validate_job(object)
    } else if let Some(validator) = schema_for(resource) {
        match old {
            Some(old) => validator.validate_update(object, old),
            None => validator.validate(object),
        }
    } else {
        Ok(())
    };
    result.map_err(|errors: Vec<FieldError>| {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        ApiError::invalid(resource, name, errors.into_iter().map(|e| (e.path, e.message)).collect())
    })
}

/// What the API server refuses in a Job's pod template, worded as it words it: no containers, and a
/// `restartPolicy` other than `OnFailure` or `Never` (unset, it defaults to `Always`).
fn validate_job(job: &Value) -> Result<(), Vec<FieldError>> {
    let pod = &job["spec"]["template"]["spec"];
    let mut errors = Vec::new();
    if pod["containers"].as_array().is_none_or(Vec::is_empty) {
        errors.push(FieldError {
            path: "spec.template.spec.containers".into(),
            message: "Required value".into(),
        });
    }
    let policy = pod["restartPolicy"].as_str().unwrap_or("Always");
    if !["OnFailure", "Never"].contains(&policy) {
        errors.push(FieldError {
            path: "spec.template.spec.restartPolicy".into(),
            message: format!("Unsupported value: {policy:?}: supported values: \"OnFailure\", \"Never\""),
        });
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}
