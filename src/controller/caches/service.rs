//! What the caches keep of a Service: its name, version and selector. The Kubernetes type is about
//! 0.8 KiB before any of its fields is set, and a decision reads only which revision the selector
//! names.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedService {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Spec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Spec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
}

super::namespaced_kind!(CachedService, "", "v1", "Service", "services");
