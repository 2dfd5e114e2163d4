//! What the caches keep of a ReplicaSet: its metadata, desired replicas and available replicas.
//! The Kubernetes type holds its pod template inline, so even without one it takes 2.3 KiB; a
//! decision reads none of the rest (the current revision's ReplicaSet is applied from the
//! Rollout's template, and any other is only scaled).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedReplicaSet {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Spec,
    #[serde(default)]
    pub status: Status,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Spec {
    /// `None` means the API's default of 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
}

super::slim::namespaced_kind!(CachedReplicaSet, "apps", "v1", "ReplicaSet", "replicasets");
