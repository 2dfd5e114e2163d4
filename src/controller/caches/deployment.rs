//! What the caches keep of a Deployment: its identity, replicas, available replicas and pod
//! template, the template as compact JSON ([`PodTemplate`]). A Rollout with a `workloadRef` reads
//! the template for its revisions and scales the Deployment down as Bellwether's pods replace its
//! own. Every Deployment in the watched namespaces is cached, since any may be named by a Rollout:
//! a few hundred bytes each.

use super::replica_set::Status;
use crate::api::PodTemplate;
use crate::engine::WorkloadState;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedDeployment {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Spec,
    /// Read as a ReplicaSet's: its available replicas.
    #[serde(default)]
    pub status: Status,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Spec {
    /// `None` means the API's default of 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub template: PodTemplate,
}

impl CachedDeployment {
    /// What the engine sees of the Deployment.
    pub fn state(&self) -> WorkloadState {
        WorkloadState {
            template: self.spec.template.clone(),
            replicas: self.spec.replicas.unwrap_or(1),
            available: self.status.available_replicas.unwrap_or(0),
        }
    }
}

super::slim::namespaced_kind!(CachedDeployment, "apps", "v1", "Deployment", "deployments");
