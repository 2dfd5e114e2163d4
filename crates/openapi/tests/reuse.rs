//! A validator is built once per CRD and then checks every write of its kind: each check must give
//! the verdict a newly built validator gives, and cost little next to building one.
//!
//! The HTTPRoute CRD is the official Gateway API one that the test API server validates routes with.

use bellwether_openapi::{FieldError, SchemaValidator};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Instant;

fn http_route_crd() -> CustomResourceDefinition {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testkit/testdata/gateway-api-v1.5.1/httproutes.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn rollout_crd() -> CustomResourceDefinition {
    let crds = bellwether_api::crds();
    crds.into_iter().find(|crd| crd.spec.names.kind == "Rollout").expect("a Rollout CRD")
}

/// A route as the simulated Gateway leaves it: two weighted backends, one with a filter, and the
/// status that accepts it.
fn route() -> Value {
    let condition = |kind: &str| {
        json!({
            "type": kind,
            "status": "True",
            "reason": kind,
            "message": "",
            "observedGeneration": 3,
            "lastTransitionTime": "2025-06-01T12:00:00Z",
        })
    };
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "storefront", "generation": 3},
        "spec": {
            "parentRefs": [{"name": "storefront", "sectionName": "http"}],
            "hostnames": ["shop.example.com"],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"name": "web-stable", "port": 8080, "weight": 90},
                    {
                        "name": "web-canary",
                        "port": 8080,
                        "weight": 10,
                        "filters": [{
                            "type": "ResponseHeaderModifier",
                            "responseHeaderModifier": {"add": [{"name": "x-served-by", "value": "canary"}]},
                        }],
                    },
                ],
            }],
        },
        "status": {"parents": [{
            "parentRef": {"name": "storefront", "sectionName": "http"},
            "controllerName": "example.com/gateway",
            "conditions": [condition("Accepted"), condition("ResolvedRefs")],
        }]},
    })
}

/// A route that breaks CEL rules at three places: the parents, a backend's filter and a match.
fn broken_route() -> Value {
    let mut route = route();
    route["spec"]["parentRefs"] = json!([{"name": "storefront"}, {"name": "storefront"}]);
    let filter = route["spec"]["rules"][0]["backendRefs"][1]["filters"][0].as_object_mut().expect("a filter");
    let modifier = filter.remove("responseHeaderModifier").expect("a header modifier");
    filter.insert("requestHeaderModifier".to_string(), modifier);
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = json!("web");
    route
}

fn rollout() -> Value {
    json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": []}},
            "strategy": {"canary": {
                "stableService": "checkout-stable",
                "canaryService": "checkout-canary",
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "checkout"}]}},
                "steps": [{"setWeight": 10}, {"pause": {}}],
            }},
        },
    })
}

fn messages(result: Result<(), Vec<FieldError>>) -> Vec<String> {
    result.err().unwrap_or_default().iter().map(ToString::to_string).collect()
}

/// Checks `object` (over `old`, when given) with one validator three times, between checks of other
/// objects, and with a new validator each time: every check must give `expected`.
fn assert_every_check_gives(
    crd: &CustomResourceDefinition,
    object: &Value,
    old: Option<&Value>,
    others: &[Value],
    expected: &[&str],
) {
    let check = |validator: &SchemaValidator, object: &Value| match old {
        Some(old) => messages(validator.validate_update(object, old)),
        None => messages(validator.validate(object)),
    };
    let reused = SchemaValidator::for_crd(crd).expect("a served storage schema");
    for round in 0..3 {
        for other in others {
            check(&reused, other);
        }
        assert_eq!(check(&reused, object), expected, "check {round} with the validator reused");
        let fresh = SchemaValidator::for_crd(crd).expect("a served storage schema");
        assert_eq!(check(&fresh, object), expected, "check {round} with a new validator");
    }
}

#[test]
fn a_valid_route_passes_every_check() {
    assert_every_check_gives(&http_route_crd(), &route(), None, &[broken_route()], &[]);
}

#[test]
fn a_route_breaking_rules_gets_the_same_errors_from_every_check() {
    assert_every_check_gives(
        &http_route_crd(),
        &broken_route(),
        None,
        &[route()],
        &[
            "spec.parentRefs: sectionName must be unique when parentRefs includes 2 or more references \
             to the same parent",
            "spec.rules[0].backendRefs[1].filters[0]: filter.requestHeaderModifier must be nil if the \
             filter.type is not RequestHeaderModifier",
            "spec.rules[0].backendRefs[1].filters[0]: filter.responseHeaderModifier must be specified for \
             ResponseHeaderModifier filter.type",
            "spec.rules[0].matches[0].path: value must be an absolute path and start with '/' when type one \
             of ['Exact', 'PathPrefix']",
        ],
    );
}

#[test]
fn a_transition_rule_sees_the_old_object_in_every_check() {
    let crd = rollout_crd();
    let old = rollout();
    let mut moved = rollout();
    moved["spec"]["selector"]["matchLabels"]["app"] = json!("checkout-v2");
    let mut scaled = rollout();
    scaled["spec"]["replicas"] = json!(5);
    let others = [moved.clone(), scaled.clone()];
    assert_every_check_gives(&crd, &scaled, Some(&old), &others, &[]);
    assert_every_check_gives(
        &crd,
        &moved,
        Some(&old),
        &others,
        &["spec.selector: selector is immutable; create a new Rollout to change it"],
    );
    assert_every_check_gives(&crd, &moved, None, &others, &[]);
}

/// Microseconds per call of `f`, over `n` calls after a few to warm up.
fn micros_per_call<T>(n: u32, mut f: impl FnMut() -> T) -> f64 {
    for _ in 0..3 {
        black_box(f());
    }
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// What a route write costs the test API server: run in release with
/// `cargo test -p bellwether-openapi --release --test reuse -- --ignored --nocapture`.
#[test]
#[ignore = "a timing, not a check; run it in release"]
fn time_route_checks() {
    let crd = http_route_crd();
    let (route, broken) = (route(), broken_route());
    let validator = SchemaValidator::for_crd(&crd).expect("a served storage schema");
    let n = 300;
    let build = micros_per_call(20, || SchemaValidator::for_crd(&crd));
    let create = micros_per_call(n, || validator.validate(&route));
    let update = micros_per_call(n, || validator.validate_update(&route, &route));
    let rejected = micros_per_call(n, || validator.validate(&broken));
    let fresh = micros_per_call(n / 10, || SchemaValidator::for_crd(&crd).map(|v| v.validate(&route)));
    println!("building the validator           {build:9.1} µs");
    println!("a create, validator reused       {create:9.1} µs");
    println!("an update, validator reused      {update:9.1} µs");
    println!("a rejected create, reused        {rejected:9.1} µs");
    println!("a create with a new validator    {fresh:9.1} µs ({:.1}× a reused one)", fresh / create);
}
