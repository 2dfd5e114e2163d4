//! The `scale` subresource, as an autoscaler (HPA, KEDA) uses it: an `autoscaling/v1` Scale read
//! from and written to the object's replicas paths. Rollouts declare theirs in the CRD
//! (`.spec.replicas`, `.status.replicas`, `.status.selector`); ReplicaSets and Deployments use the
//! same paths, with a structured selector that the Scale shows as a string.

use super::resources::{self, Resource};
use super::status::ApiError;
use super::store::{PatchKind, Store, Target};
use serde_json::{Value, json};

/// The resources served with a `scale` subresource.
pub fn scalable(resource: &Resource) -> bool {
    [&resources::ROLLOUTS, &resources::REPLICA_SETS, &resources::DEPLOYMENTS]
        .iter()
        .any(|r| r.id() == resource.id())
}

/// The object's Scale.
pub fn get(
    store: &Store,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    Ok(scale_of(&store.get(resource, namespace, name)?))
}

/// Sets the replicas that a Scale (`PUT`) or a merge patch of one (`PATCH`) asks for. A Scale that
/// names a resourceVersion is refused with a conflict when the object has moved on since, as an
/// autoscaler's read-modify-write would be.
pub fn set(
    store: &Store,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let current = store.get(resource, namespace, name)?;
    if let Some(version) = body["metadata"]["resourceVersion"].as_str()
        && Some(version) != current["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(resource, name));
    }
    let replicas = &body["spec"]["replicas"];
    if !replicas.is_i64() {
        let cause = ("spec.replicas".to_string(), format!("Invalid value: {replicas}: must be an integer"));
        return Err(ApiError::invalid(resource, name, vec![cause]));
    }
    let patch = json!({"spec": {"replicas": replicas}});
    let (updated, _) = store.patch(resource, namespace, name, PatchKind::Merge, &patch, Target::Main)?;
    Ok(scale_of(&updated))
}

fn scale_of(object: &Value) -> Value {
    let metadata = &object["metadata"];
    let selector = match &object["status"]["selector"] {
        Value::String(selector) => selector.clone(),
        _ => structured_selector(&object["spec"]["selector"]),
    };
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": object["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// A ReplicaSet's `matchLabels` as a selector string.
fn structured_selector(selector: &Value) -> String {
    let labels = selector["matchLabels"].as_object().into_iter().flatten();
    labels
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",")
}
