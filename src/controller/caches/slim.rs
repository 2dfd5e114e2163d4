//! What each cache keeps of an object: all but what is large and read by nothing here. Most
//! kinds lose their managed fields and kubectl's last-applied copy; ReplicaSets, Services and routes
//! are read into projections of their own ([`super::CachedReplicaSet`], [`super::CachedService`],
//! [`super::CachedRoute`]), since Kubernetes' types are large even when nearly empty.

use super::{CachedDeployment, CachedReplicaSet, CachedRoute, CachedService};
use crate::api::{AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

/// kubectl's copy of the last applied manifest: as large as the object, and read by nothing here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Makes `$type`, a projection of the namespaced kind `$kind`, a resource that can be watched.
macro_rules! namespaced_kind {
    ($type:ty, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        impl kube::Resource for $type {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }

            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $group.into()
            }

            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $version.into()
            }

            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }

            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pub(super) use namespaced_kind;

/// What a cache keeps of an object: all but what is large and read by nothing here.
pub trait Slim: Resource {
    /// Drops the managed fields and kubectl's last-applied copy, each as large as the object.
    fn slim(&mut self) {
        strip_metadata(self);
    }
}

fn strip_metadata<K: Resource + ?Sized>(object: &mut K) {
    let metadata = object.meta_mut();
    metadata.managed_fields = None;
    if let Some(annotations) = &mut metadata.annotations {
        annotations.remove(LAST_APPLIED);
    }
}

impl Slim for Rollout {}
impl Slim for AnalysisRun {}
impl Slim for AnalysisTemplate {}
impl Slim for ClusterAnalysisTemplate {}
impl Slim for ConfigMap {}

impl Slim for CachedReplicaSet {
    /// A ReplicaSet is read for its labels, owner, age and replicas ([`replica_set`]).
    fn slim(&mut self) {
        strip_metadata(self);
        self.metadata.annotations = None;
    }
}

impl Slim for CachedDeployment {
    /// A Deployment is read for its pod template and replicas ([`deployment`]).
    fn slim(&mut self) {
        keep_identity(self);
    }
}

impl Slim for CachedService {
    /// A Service is read for its selector alone ([`service`]).
    fn slim(&mut self) {
        keep_identity(self);
    }
}

impl Slim for CachedRoute {
    /// A route is read for its backends' weights and its parents' acceptance: the rest is skipped
    /// as it is read ([`route`]).
    fn slim(&mut self) {
        keep_identity(self);
        self.keep_acceptance();
    }
}

/// Keeps only the metadata that names an object and says which version of it a cache shows.
fn keep_identity<K: Resource + ?Sized>(object: &mut K) {
    let metadata = object.meta_mut();
    *metadata = ObjectMeta {
        name: metadata.name.take(),
        namespace: metadata.namespace.take(),
        uid: metadata.uid.take(),
        resource_version: metadata.resource_version.take(),
        generation: metadata.generation,
        ..ObjectMeta::default()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::caches::seen;
    use serde_json::json;

    #[test]
    fn a_cached_replica_set_keeps_what_decisions_read_and_not_its_pod_template() {
        let mut rs: CachedReplicaSet = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": "checkout-abc", "namespace": "shop", "resourceVersion": "7", "uid": "u",
                "creationTimestamp": "2026-01-01T12:00:00Z",
                "labels": {"bellwether.dev/revision": "abc", "bellwether.dev/rollout": "checkout"},
                "annotations": {LAST_APPLIED: "{}", "team": "payments"},
                "ownerReferences": [{"apiVersion": "bellwether.dev/v1alpha1", "kind": "Rollout",
                                     "name": "checkout", "uid": "r", "controller": true}],
                "managedFields": [{"manager": "bellwether", "operation": "Apply"}]
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"bellwether.dev/revision": "abc"}},
                "template": {"spec": {"containers": [{"name": "app", "image": "shop:1"}]}}
            },
            "status": {"replicas": 3, "availableReplicas": 2, "observedGeneration": 1}
        }))
        .unwrap();
        rs.slim();
        let kept = serde_json::to_value(&rs).unwrap();
        assert_eq!(kept["spec"], json!({"replicas": 3}));
        assert_eq!(kept["status"], json!({"availableReplicas": 2}));
        assert_eq!(kept["metadata"]["labels"]["bellwether.dev/revision"], "abc");
        assert_eq!(kept["metadata"]["ownerReferences"][0]["name"], "checkout");
        assert_eq!(kept["metadata"]["annotations"], serde_json::Value::Null);
        assert_eq!(kept["metadata"]["managedFields"], serde_json::Value::Null);
        let state = crate::controller::replica_sets::replica_set_state(&rs).unwrap();
        assert_eq!((state.revision.as_str(), state.replicas, state.available), ("abc", 3, 2));
        assert_eq!(state.created_at.to_rfc3339(), "2026-01-01T12:00:00+00:00");
    }

    #[test]
    fn a_cached_service_keeps_its_name_version_and_the_revision_it_selects() {
        let service = |selector: serde_json::Value| {
            let mut service: CachedService = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "checkout-canary", "namespace": "shop", "uid": "s1", "resourceVersion": "9",
                             "labels": {"app": "checkout"}, "annotations": {LAST_APPLIED: "{}"}},
                "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}],
                         "clusterIP": "10.0.0.1", "type": "ClusterIP"},
                "status": {"loadBalancer": {}}
            }))
            .unwrap();
            service.slim();
            service
        };
        let pointed = service(json!({"app": "checkout", "bellwether.dev/revision": "abc"}));
        assert_eq!(pointed.spec.selected_revision.as_deref(), Some("abc"));
        assert_eq!(
            serde_json::to_value(&pointed.metadata).unwrap(),
            json!({"name": "checkout-canary", "namespace": "shop", "uid": "s1", "resourceVersion": "9"})
        );
        assert_eq!(seen(&pointed).map(|s| s.version), Some("9".to_string()));
        assert_eq!(service(json!({"app": "checkout"})).spec.selected_revision, None);
        assert_eq!(service(serde_json::Value::Null).spec.selected_revision, None);
    }

    /// A route as a Gateway keeps it: rules with matches and filters, several parents, conditions
    /// besides `Accepted`, and a backend that is not a Service.
    fn full_route() -> serde_json::Value {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {
                "name": "checkout", "namespace": "shop", "uid": "r1", "resourceVersion": "41",
                "generation": 3, "labels": {"app": "checkout"},
                "annotations": {LAST_APPLIED: "{}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {
                "parentRefs": [{"name": "public"}, {"name": "internal", "namespace": "infra"}],
                "hostnames": ["shop.example.com"],
                "rules": [
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                     "backendRefs": [{"name": "cdn", "port": 80}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                     "filters": [{"type": "RequestHeaderModifier",
                                  "requestHeaderModifier": {"add": [{"name": "x-a", "value": "b"}]}}],
                     "backendRefs": [
                        {"name": "checkout-stable", "port": 80, "weight": 80},
                        {"group": "", "kind": "Service", "name": "checkout-canary", "port": 80, "weight": 20},
                        {"group": "example.com", "kind": "Bucket", "name": "checkout-canary"}
                     ]},
                    {"backendRefs": [{"name": "checkout-canary", "namespace": "other", "port": 80},
                                     {"name": "checkout-stable", "port": 80}]}
                ]
            },
            "status": {"parents": [
                {"parentRef": {"name": "public"}, "controllerName": "example.com/gateway",
                 "conditions": [
                    {"type": "Accepted", "status": "True", "observedGeneration": 3, "reason": "Accepted",
                     "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "ResolvedRefs", "status": "True", "observedGeneration": 3, "reason": "ResolvedRefs",
                     "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
                {"parentRef": {"kind": "Gateway", "namespace": "infra", "name": "internal"},
                 "controllerName": "example.com/gateway",
                 "conditions": [{"type": "Accepted", "status": "False", "observedGeneration": 2,
                                 "reason": "NotAllowedByListeners", "message": "no",
                                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
            ]}
        })
    }

    #[test]
    fn a_cached_route_reads_and_patches_as_the_whole_route_does() {
        use crate::controller::routes::{Services, route_state, traffic_patch};
        use crate::engine::Traffic;
        let full = full_route();
        let mut cached: CachedRoute = serde_json::from_value(full.clone()).unwrap();
        cached.slim();
        let cached = serde_json::to_value(&cached).unwrap();
        let services = Services {
            rollout: "checkout",
            namespace: "shop",
            stable: "checkout-stable",
            canary: "checkout-canary",
        };
        assert_eq!(route_state("r".into(), &cached, services), route_state("r".into(), &full, services));
        for traffic in [Traffic::split(50), Traffic::split(20)] {
            assert_eq!(
                traffic_patch(&cached, services, &traffic).unwrap(),
                traffic_patch(&full, services, &traffic).unwrap()
            );
        }
        assert_eq!(cached["status"]["parents"][0]["conditions"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            cached["metadata"],
            json!({"name": "checkout", "namespace": "shop", "uid": "r1",
                                              "resourceVersion": "41", "generation": 3})
        );
        assert_eq!(cached["spec"]["rules"][1]["backendRefs"][2]["kind"], "Bucket");
    }

    #[test]
    fn a_cached_route_of_any_shape_the_schema_allows_is_read() {
        let bare = json!({"metadata": {"name": "r", "namespace": "shop", "resourceVersion": "1"}});
        let cached: CachedRoute = serde_json::from_value(bare).unwrap();
        assert!(cached.spec.rules.is_empty() && cached.status.parents.is_empty());
        let no_backends = json!({"metadata": {"name": "r"}, "spec": {"rules": [{}]}, "status": {}});
        let cached: CachedRoute = serde_json::from_value(no_backends).unwrap();
        assert_eq!(serde_json::to_value(&cached).unwrap()["spec"], json!({"rules": [{}]}));
    }
}
