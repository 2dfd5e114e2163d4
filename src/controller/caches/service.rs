//! What the caches keep of a Service: its name, its version and the revision its selector names.
//! The Kubernetes type is about 0.8 KiB before any of its fields is set, and a selector map takes a
//! B-tree node of about 0.5 KiB; a decision reads only the revision.

use crate::api::REVISION_LABEL;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CachedService {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Spec,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Spec {
    /// The value of the selector's `bellwether.dev/revision`, the only key a decision reads.
    #[serde(default, rename = "selector", deserialize_with = "selected_revision")]
    pub selected_revision: Option<String>,
}

fn selected_revision<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let selector = Option::<BTreeMap<String, String>>::deserialize(deserializer)?;
    Ok(selector.and_then(|mut selector| selector.remove(REVISION_LABEL)))
}

super::slim::namespaced_kind!(CachedService, "", "v1", "Service", "services");
