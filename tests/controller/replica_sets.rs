//! The ReplicaSet of a revision, and what the engine sees of one.

use bellwether::api::Rollout;
use bellwether::controller::caches::CachedReplicaSet;
use bellwether::controller::replica_sets::{replica_set, replica_set_state};
use bellwether::engine::revision_of;
use k8s_openapi::api::apps::v1::ReplicaSetStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn example() -> Rollout {
    let mut rollout: Rollout =
        serde_yaml::from_str(include_str!("../../examples/basic/rollout.yaml")).expect("the example parses");
    rollout.metadata.uid = Some("6c4f7a52-5d1e-4a51-9a0e-3f1f2d1b2c3d".into());
    rollout
}

#[test]
fn a_revision_gets_an_owned_replica_set_whose_selector_and_pods_carry_the_revision() {
    let rollout = example();
    let revision = revision_of(&rollout.spec.embedded_template().unwrap_or_default());
    let template = rollout.spec.template.clone().expect("an embedded template");
    let rs = replica_set(&rollout, &template, &revision, 2);
    assert_eq!(rs.metadata.name.as_deref(), Some(format!("checkout-{revision}").as_str()));
    assert_eq!(rs.metadata.namespace.as_deref(), Some("shop"));
    let labels = rs.metadata.labels.clone().unwrap();
    assert_eq!(labels["app"], "checkout");
    assert_eq!(labels["bellwether.dev/revision"], revision);
    assert_eq!(labels["bellwether.dev/rollout"], "checkout");
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Rollout", "checkout"));
    assert_eq!(owner.api_version, "bellwether.dev/v1alpha1");
    assert_eq!(owner.controller, Some(true));
    let spec = rs.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let selector = spec.selector.match_labels.unwrap();
    assert_eq!(selector.len(), 2, "the Rollout's selector plus the revision: {selector:?}");
    assert_eq!(selector["bellwether.dev/revision"], revision);
    let pod_labels = spec.template.unwrap().metadata.unwrap().labels.unwrap();
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)), "the selector selects its own pods");
    // The revision is the hash of the Rollout's template, which is left as it was.
    assert_eq!(revision_of(&rollout.spec.embedded_template().unwrap_or_default()), revision);
}

#[test]
fn the_engine_sees_revision_replicas_availability_and_age_as_the_cache_reads_them() {
    let rollout = example();
    let template = rollout.spec.template.clone().expect("an embedded template");
    let mut rs = replica_set(&rollout, &template, "abc123", 4);
    rs.metadata.creation_timestamp = Some(Time("2026-01-01T12:00:00Z".parse().unwrap()));
    rs.status =
        Some(ReplicaSetStatus { replicas: 4, available_replicas: Some(3), ..ReplicaSetStatus::default() });
    let cached: CachedReplicaSet = serde_json::from_value(serde_json::to_value(&rs).unwrap()).unwrap();
    let state = replica_set_state(&cached).unwrap();
    assert_eq!((state.revision.as_str(), state.replicas, state.available), ("abc123", 4, 3));
    assert_eq!(state.created_at.to_rfc3339(), "2026-01-01T12:00:00+00:00");
    assert_eq!(replica_set_state(&CachedReplicaSet::default()), None, "not one of ours");
}
