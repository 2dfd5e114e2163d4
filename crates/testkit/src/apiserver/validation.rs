//! Schema validation of the custom resources, as the API server applies their CRDs: Bellwether's own
//! (derived from the Rust types) and the official Gateway API CRDs.

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
