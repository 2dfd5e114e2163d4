//! ReplicaSets, one per revision: the object the controller applies for a revision, and what the
//! engine sees of one.

use crate::api::{PodTemplate, REVISION_LABEL, ROLLOUT_LABEL, Rollout};
use crate::controller::caches::CachedReplicaSet;
use crate::engine::ReplicaSetState;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

/// `<rollout>-<revision>`.
pub fn replica_set_name(rollout: &str, revision: &str) -> String {
    format!("{rollout}-{revision}")
}

/// The ReplicaSet of `revision` at `replicas`, owned by `rollout`, for server-side apply. Its
/// selector and pod labels add `bellwether.dev/revision` to the Rollout's, so that the revisions'
/// pods never overlap, and the Services can select one revision; `bellwether.dev/rollout` names the
/// owner for watches. Only the current revision's is applied: its pod template is `template`, the
/// Rollout's own or its `workloadRef`'s.
pub fn replica_set(rollout: &Rollout, template: &PodTemplate, revision: &str, replicas: i32) -> ReplicaSet {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let revision_labels = [(REVISION_LABEL.to_string(), revision.to_string())];
    let mut selector = rollout.spec.selector.clone();
    selector.match_labels.get_or_insert_with(Default::default).extend(revision_labels.clone());
    let mut template = template.get();
    let metadata = template.metadata.get_or_insert_with(ObjectMeta::default);
    metadata.labels.get_or_insert_with(Default::default).extend(revision_labels.clone());
    let mut labels = metadata.labels.clone().unwrap_or_default();
    labels.insert(ROLLOUT_LABEL.into(), name.clone());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(replica_set_name(&name, revision)),
            namespace: rollout.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: rollout.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector,
            template: Some(template),
            min_ready_seconds: None,
        }),
        status: None,
    }
}

/// The merge patch that scales an existing ReplicaSet of any revision to `replicas`, leaving the
/// rest of it (its pod template above all) as it is.
pub fn replicas_patch(replicas: i32) -> serde_json::Value {
    serde_json::json!({ "spec": { "replicas": replicas } })
}

/// What the engine sees of a ReplicaSet: its revision label, desired and available replicas, and
/// when it was created. `None` for a ReplicaSet without the revision label, which Bellwether did
/// not create.
pub fn replica_set_state(replica_set: &CachedReplicaSet) -> Option<ReplicaSetState> {
    let revision = replica_set.metadata.labels.as_ref()?.get(REVISION_LABEL)?.clone();
    let created_at = crate::api::created_at(&replica_set.metadata).unwrap_or_default();
    Some(ReplicaSetState {
        revision,
        replicas: replica_set.spec.replicas.unwrap_or(1),
        available: replica_set.status.available_replicas.unwrap_or(0),
        created_at,
    })
}
