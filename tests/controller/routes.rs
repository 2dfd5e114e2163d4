//! Route weights: what the engine sees of a route, and the guarded JSON patch that moves them.

use bellwether::controller::routes::{RouteError, Services, route_state, traffic_patch};
use bellwether::engine::{RouteWeights, Traffic};
use serde_json::{Value, json};

const SERVICES: Services<'static> =
    Services { rollout: "checkout", namespace: "shop", stable: "checkout-stable", canary: "checkout-canary" };

/// The example route, as the API server returns it.
fn example() -> Value {
    let mut route: Value = serde_yaml::from_str(include_str!("../../examples/basic/httproute.yaml"))
        .expect("the example parses");
    route["metadata"]["resourceVersion"] = json!("41");
    route["metadata"]["generation"] = json!(3);
    route
}

fn weights(canary: i32, stable: i32) -> RouteWeights {
    RouteWeights { canary, stable }
}

#[test]
fn the_engine_sees_the_weights_of_the_rules_that_reference_both_services() {
    let state = route_state("HTTPRoute/shop/checkout".into(), &example(), SERVICES);
    assert_eq!(state.weights, Some(weights(0, 100)));
    assert_eq!(state.generation, 3);
    assert!(state.parents.is_empty(), "no Gateway has reported yet");
    assert!(!state.accepted());
}

#[test]
fn parents_report_acceptance_for_a_generation() {
    let mut route = example();
    route["status"] = json!({"parents": [
        {"parentRef": {"name": "public", "namespace": "gateway-infra"}, "controllerName": "example.com/gw",
         "conditions": [{"type": "Accepted", "status": "True", "observedGeneration": 3, "reason": "Accepted",
                         "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        {"parentRef": {"name": "internal"}, "controllerName": "example.com/gw",
         "conditions": [{"type": "Accepted", "status": "False", "observedGeneration": 2, "reason": "NotAllowed",
                         "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    ]});
    let state = route_state("HTTPRoute/shop/checkout".into(), &route, SERVICES);
    assert_eq!(state.parents.len(), 2);
    assert_eq!(state.parents[0].name, "gateway/gateway-infra/public");
    assert!(state.parents[0].accepted);
    assert_eq!(state.parents[0].observed_generation, 3);
    assert_eq!(state.parents[1].name, "gateway/shop/internal", "a parent without namespace is the route's");
    assert!(!state.parents[1].accepted);
    assert!(!state.accepted(), "every parent must accept");
}

#[test]
fn moving_weights_patches_exactly_the_weight_paths_guarded_by_tests() {
    let patch = traffic_patch(&example(), SERVICES, &Traffic::split(20)).unwrap().expect("a change");
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
            {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": "checkout-stable"},
            {"op": "add", "path": "/spec/rules/0/backendRefs/0/weight", "value": 80},
            {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "checkout-canary"},
            {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 20},
        ])
    );
}

#[test]
fn a_route_that_already_carries_the_weights_needs_no_patch() {
    assert_eq!(traffic_patch(&example(), SERVICES, &Traffic::split(0)).unwrap(), None);
}

#[test]
fn a_backend_ref_without_weight_has_the_default_of_one_and_gets_an_explicit_weight() {
    let mut route = example();
    route["spec"]["rules"][0]["backendRefs"][1].as_object_mut().unwrap().remove("weight");
    let state = route_state("HTTPRoute/shop/checkout".into(), &route, SERVICES);
    assert_eq!(state.weights, Some(weights(1, 100)));
    let patch = traffic_patch(&route, SERVICES, &Traffic::split(1)).unwrap().unwrap();
    let paths: Vec<&str> = patch.as_array().unwrap().iter().filter_map(|op| op["path"].as_str()).collect();
    assert!(
        paths.contains(&"/spec/rules/0/backendRefs/1/weight"),
        "the implicit 1 is written out: {paths:?}"
    );
}

#[test]
fn only_rules_referencing_both_services_are_managed_and_they_must_agree() {
    let mut route = example();
    let rules = route["spec"]["rules"].as_array_mut().unwrap();
    // A rule for the admin path that only stable serves, and a second managed rule, out of step.
    rules.push(json!({"backendRefs": [{"name": "checkout-stable", "port": 80}]}));
    rules.push(json!({"backendRefs": [
        {"name": "checkout-canary", "port": 80, "weight": 10},
        {"name": "checkout-stable", "port": 80, "weight": 90}
    ]}));
    let state = route_state("HTTPRoute/shop/checkout".into(), &route, SERVICES);
    assert_eq!(state.weights, None, "rules that disagree give no single weight");
    let patch = traffic_patch(&route, SERVICES, &Traffic::split(10)).unwrap().unwrap();
    let paths: Vec<&str> = patch.as_array().unwrap().iter().filter_map(|op| op["path"].as_str()).collect();
    assert!(paths.iter().all(|p| !p.starts_with("/spec/rules/1/")), "the stable-only rule is untouched");
    assert!(paths.iter().any(|p| p.starts_with("/spec/rules/0/")), "{paths:?}");
    assert!(paths.iter().all(|p| !p.starts_with("/spec/rules/2/")), "rule 2 already carries 10/90");
}

#[test]
fn a_reference_to_another_namespace_or_kind_is_not_the_service() {
    for (key, value) in [("namespace", "elsewhere"), ("kind", "ServiceImport")] {
        let mut route = example();
        route["spec"]["rules"][0]["backendRefs"][1][key] = json!(value);
        if key == "kind" {
            route["spec"]["rules"][0]["backendRefs"][1]["group"] = json!("multicluster.x-k8s.io");
        }
        assert_eq!(route_state("r".into(), &route, SERVICES).weights, None, "{key}");
        let error = traffic_patch(&route, SERVICES, &Traffic::split(5)).unwrap_err();
        assert_eq!(
            error,
            RouteError::Unmanaged {
                route: "shop/checkout".into(),
                stable: "checkout-stable".into(),
                canary: "checkout-canary".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "shop/checkout: no rule references both checkout-stable and checkout-canary"
        );
    }
}

#[test]
fn grpc_routes_have_the_same_shape() {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "checkout-grpc", "namespace": "shop", "resourceVersion": "7", "generation": 1},
        "spec": {"parentRefs": [{"name": "public"}], "rules": [{"backendRefs": [
            {"name": "checkout-stable", "port": 9090, "weight": 100},
            {"name": "checkout-canary", "port": 9090, "weight": 0}
        ]}]}
    });
    assert_eq!(
        route_state("GRPCRoute/shop/checkout-grpc".into(), &route, SERVICES).weights,
        Some(weights(0, 100))
    );
    assert!(traffic_patch(&route, SERVICES, &Traffic::split(50)).unwrap().is_some());
}

#[test]
fn a_route_without_resource_version_cannot_be_guarded() {
    let mut route = example();
    route["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    assert_eq!(
        traffic_patch(&route, SERVICES, &Traffic::split(5)).unwrap_err().to_string(),
        "shop/checkout: metadata.resourceVersion is missing"
    );
}
