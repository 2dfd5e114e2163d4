//! The defaults a real API server fills into Deployments and ReplicaSets when it stores them, so
//! that every test reads them back as it would from a cluster: the workload's own fields here, and
//! the pod template's from the engine's table (`bellwether_engine::fill_pod_template_defaults`),
//! which also lists where each comes from.
//!
//! Filled on every create, update, patch and apply, before the object is compared with the stored
//! one: a write that differs only by defaults changes nothing, as on a real server.

use super::resources::{self, Resource};
use bellwether_engine::fill_pod_template_defaults;
use serde_json::{Map, Value, json};

/// Fills the defaults of `object`, of `resource`; other kinds have none here.
pub fn fill(resource: &Resource, object: &mut Value) {
    let deployment = *resource == resources::DEPLOYMENTS;
    if !deployment && *resource != resources::REPLICA_SETS {
        return;
    }
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return };
    // SetDefaults_ReplicaSet and SetDefaults_Deployment (pkg/apis/apps/v1/defaults.go).
    fill_unset(spec, "replicas", json!(1));
    if deployment {
        fill_deployment(spec);
    }
    if let Some(template) = spec.get_mut("template") {
        fill_pod_template_defaults(template);
    }
}

/// The rest of SetDefaults_Deployment: a rolling update of 25% either way, ten old ReplicaSets
/// kept, ten minutes to make progress.
fn fill_deployment(spec: &mut Map<String, Value>) {
    fill_unset(spec, "revisionHistoryLimit", json!(10));
    fill_unset(spec, "progressDeadlineSeconds", json!(600));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    let Some(strategy) = strategy.as_object_mut() else { return };
    fill_unset(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        let rolling = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
        if let Some(rolling) = rolling.as_object_mut() {
            fill_unset(rolling, "maxUnavailable", json!("25%"));
            fill_unset(rolling, "maxSurge", json!("25%"));
        }
    }
}

/// Sets `field` unless it has a value; these are pointers in Go, where only nil is unset.
fn fill_unset(object: &mut Map<String, Value>, field: &str, value: Value) {
    if object.get(field).is_none_or(Value::is_null) {
        object.insert(field.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Value {
        json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]}]},
        })
    }

    fn filled(resource: &Resource, mut object: Value) -> Value {
        fill(resource, &mut object);
        object
    }

    #[test]
    fn a_deployment_gets_its_own_defaults_and_its_template_the_pod_defaults() {
        let deployment = filled(
            &resources::DEPLOYMENTS,
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}}),
        );
        let spec = &deployment["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let mut expected = template();
        fill_pod_template_defaults(&mut expected);
        assert_eq!(spec["template"], expected);
        assert_eq!(spec["template"]["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn what_is_set_is_kept() {
        let set = json!({"spec": {
            "replicas": 0,
            "revisionHistoryLimit": 2,
            "strategy": {"type": "Recreate"},
            "template": {"spec": {"dnsPolicy": "Default", "containers": []}},
        }});
        let deployment = filled(&resources::DEPLOYMENTS, set);
        assert_eq!(deployment["spec"]["replicas"], 0);
        assert_eq!(deployment["spec"]["revisionHistoryLimit"], 2);
        assert_eq!(
            deployment["spec"]["strategy"],
            json!({"type": "Recreate"}),
            "no rolling update to default"
        );
        assert_eq!(deployment["spec"]["template"]["spec"]["dnsPolicy"], "Default");
    }

    #[test]
    fn a_replica_set_gets_one_replica_and_the_pod_defaults_only() {
        let replica_set = filled(&resources::REPLICA_SETS, json!({"spec": {"template": template()}}));
        assert_eq!(replica_set["spec"]["replicas"], 1);
        assert_eq!(replica_set["spec"].get("strategy"), None);
        assert_eq!(
            replica_set["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }

    #[test]
    fn other_kinds_are_left_as_they_are() {
        let pod_like = json!({"spec": {"template": template()}});
        assert_eq!(filled(&resources::SERVICES, pod_like.clone()), pod_like);
        assert_eq!(filled(&resources::ROLLOUTS, pod_like.clone()), pod_like);
    }
}
