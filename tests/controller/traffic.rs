//! Header routes and mirrors on a route: the guarded patch that adds and removes them, what the
//! engine reads back, and that the result is a route the official Gateway API schema accepts.

use bellwether::api::{HeaderMatch, HeaderMatchType};
use bellwether::controller::routes::{RouteError, Services, route_state, traffic_patch};
use bellwether::engine::{Exposure, RouteState, RouteWeights, Traffic};
use bellwether_testkit::apiserver::json_patch;
use bellwether_testkit::gateway_crds;
use serde_json::{Value, json};

const SERVICES: Services<'static> =
    Services { rollout: "checkout", namespace: "shop", stable: "checkout-stable", canary: "checkout-canary" };

fn http_route() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "41", "generation": 3},
        "spec": {"parentRefs": [{"name": "public"}], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"}],
             "filters": [{"type": "RequestHeaderModifier",
                          "requestHeaderModifier": {"set": [{"name": "x-team", "value": "shop"}]}}],
             "backendRefs": [{"name": "checkout-stable", "port": 80, "weight": 100},
                             {"name": "checkout-canary", "port": 80, "weight": 0}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
             "backendRefs": [{"name": "checkout-stable", "port": 80}]}
        ]}
    })
}

fn grpc_route() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "checkout-grpc", "namespace": "shop", "resourceVersion": "7", "generation": 1},
        "spec": {"parentRefs": [{"name": "public"}], "rules": [
            {"matches": [{"method": {"service": "shop.Checkout", "method": "Pay"}}],
             "backendRefs": [{"name": "checkout-stable", "port": 9090, "weight": 100},
                             {"name": "checkout-canary", "port": 9090, "weight": 0}]}
        ]}
    })
}

fn header(name: &str, value: &str) -> HeaderMatch {
    HeaderMatch { name: name.into(), type_: HeaderMatchType::Exact, value: value.into() }
}

fn traffic(canary: i32, header_routes: &[(&str, Vec<HeaderMatch>)], mirror: Option<i32>) -> Traffic {
    Traffic {
        weights: RouteWeights { canary, stable: 100 - canary },
        exposure: Exposure {
            header_routes: header_routes.iter().map(|(n, h)| (n.to_string(), h.clone())).collect(),
            mirror,
        },
    }
}

/// The route after `traffic`'s patch, as the API server would store it: patched, checked against
/// the official CRD, with a new resourceVersion and generation.
fn patched(route: &Value, traffic: &Traffic) -> Value {
    let mut route = route.clone();
    let Some(patch) = traffic_patch(&route, SERVICES, traffic).unwrap() else { return route };
    json_patch(&mut route, &patch).expect("the patch applies");
    let validator = match route["kind"].as_str() {
        Some("GRPCRoute") => gateway_crds::grpc_routes(),
        _ => gateway_crds::http_routes(),
    };
    validator.validate(&route).expect("the official schema accepts the patched route");
    let version: u64 = route["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    route["metadata"]["resourceVersion"] = json!((version + 1).to_string());
    route["metadata"]["generation"] = json!(route["metadata"]["generation"].as_i64().unwrap() + 1);
    route
}

fn state(route: &Value) -> RouteState {
    route_state("r".into(), route, SERVICES)
}

#[test]
fn a_header_route_adds_a_named_copy_of_the_managed_rule_that_only_the_canary_serves() {
    let wanted = traffic(0, &[("testers", vec![header("X-Canary", "always")])], None);
    let patch = traffic_patch(&http_route(), SERVICES, &wanted).unwrap().expect("a change");
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
            {"op": "add", "path": "/spec/rules/-", "value": {
                "name": "testers-0.checkout.shop.bellwether.dev",
                "matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET",
                             "headers": [{"name": "X-Canary", "type": "Exact", "value": "always"}]}],
                "filters": [{"type": "RequestHeaderModifier",
                             "requestHeaderModifier": {"set": [{"name": "x-team", "value": "shop"}]}}],
                "backendRefs": [{"name": "checkout-canary", "port": 80, "weight": 1}]
            }}
        ])
    );
    let route = patched(&http_route(), &wanted);
    assert_eq!(state(&route).exposure, Some(wanted.exposure.clone()));
    assert_eq!(state(&route).weights, Some(RouteWeights { canary: 0, stable: 100 }));
    assert_eq!(traffic_patch(&route, SERVICES, &wanted).unwrap(), None, "carried: nothing more to do");
    assert_eq!(route["spec"]["rules"][1], http_route()["spec"]["rules"][1], "the user's rules are untouched");
}

#[test]
fn a_grpc_route_keeps_its_method_match_in_the_copy() {
    let wanted = traffic(0, &[("testers", vec![header("x-canary", "1")])], Some(20));
    let route = patched(&grpc_route(), &wanted);
    let owned = &route["spec"]["rules"][1];
    assert_eq!(owned["name"], "testers-0.checkout.shop.bellwether.dev");
    assert_eq!(
        owned["matches"],
        json!([{"method": {"service": "shop.Checkout", "method": "Pay"},
                "headers": [{"name": "x-canary", "type": "Exact", "value": "1"}]}])
    );
    assert_eq!(owned["backendRefs"], json!([{"name": "checkout-canary", "port": 9090, "weight": 1}]));
    assert!(owned.get("filters").is_none(), "the mirror stays on the managed rule: {owned}");
    assert_eq!(
        route["spec"]["rules"][0]["filters"],
        json!([{"type": "RequestMirror",
                "requestMirror": {"backendRef": {"name": "checkout-canary", "port": 9090}, "percent": 20}}])
    );
    assert_eq!(state(&route).exposure, Some(wanted.exposure));
}

#[test]
fn promotion_and_abort_remove_everything_bellwether_added_in_one_patch() {
    let exposed = traffic(
        10,
        &[("testers", vec![header("X-Canary", "always")]), ("cookie", vec![header("Cookie", "c=1")])],
        Some(50),
    );
    let route = patched(&http_route(), &exposed);
    assert_eq!(route["spec"]["rules"].as_array().unwrap().len(), 4);
    let back = patched(&route, &Traffic::split(0));
    let mut expected = http_route();
    expected["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(0);
    assert_eq!(back["spec"], expected["spec"], "the route is as the user wrote it");
    assert_eq!(state(&back).exposure, Some(Exposure::default()));
}

#[test]
fn a_mirror_changes_its_percent_in_place_and_keeps_the_users_filters() {
    let route = patched(&http_route(), &traffic(0, &[], Some(10)));
    let filters = route["spec"]["rules"][0]["filters"].as_array().unwrap();
    assert_eq!(filters.len(), 2);
    assert_eq!(filters[0]["type"], "RequestHeaderModifier");
    let route = patched(&route, &traffic(0, &[], Some(30)));
    assert_eq!(route["spec"]["rules"][0]["filters"][1]["requestMirror"]["percent"], 30);
    assert_eq!(state(&route).exposure.unwrap().mirror, Some(30));
    let route = patched(&route, &traffic(0, &[], None));
    assert_eq!(route["spec"]["rules"][0]["filters"], http_route()["spec"]["rules"][0]["filters"]);
}

#[test]
fn a_hand_edited_rule_of_bellwethers_reads_as_changed_and_is_put_back() {
    let wanted = traffic(0, &[("testers", vec![header("X-Canary", "always")])], None);
    let mut route = patched(&http_route(), &wanted);
    route["spec"]["rules"][2]["matches"][0]["headers"][0]["value"] = json!("everyone");
    let edited = state(&route).exposure.expect("still a header route, of another header");
    assert_eq!(edited.header_routes["testers"], [header("X-Canary", "everyone")]);
    let fixed = patched(&route, &wanted);
    assert_eq!(state(&fixed).exposure, Some(wanted.exposure));
    assert_eq!(fixed["spec"]["rules"].as_array().unwrap().len(), 3, "replaced, not added beside");
    // A copy left behind when its managed rule changed is rebuilt from the rule as it is now.
    let mut moved = fixed.clone();
    moved["spec"]["rules"][0]["matches"][0]["path"]["value"] = json!("/v2");
    assert_eq!(state(&moved).exposure, None, "no longer a copy of its managed rule");
    let rebuilt = patched(&moved, &traffic(0, &[("testers", vec![header("X-Canary", "always")])], None));
    assert_eq!(rebuilt["spec"]["rules"][2]["matches"][0]["path"]["value"], "/v2");
}

#[test]
fn the_defaults_an_api_server_fills_in_do_not_read_as_a_change() {
    let wanted = traffic(0, &[("testers", vec![header("X-Canary", "always")])], None);
    let mut route = patched(&http_route(), &wanted);
    let owned = &mut route["spec"]["rules"][2];
    owned["backendRefs"][0]["group"] = json!("");
    owned["backendRefs"][0]["kind"] = json!("Service");
    assert_eq!(state(&route).exposure, Some(wanted.exposure));
}

#[test]
fn another_rollouts_rules_are_not_taken_for_this_ones() {
    let mut route = http_route();
    route["spec"]["rules"].as_array_mut().unwrap().push(json!({
        "name": "testers-0.shop.checkout.shop.bellwether.dev",
        "matches": [{"headers": [{"name": "X-Canary", "value": "1"}]}],
        "backendRefs": [{"name": "checkout-canary", "port": 80}]
    }));
    // Nor is the rule of Rollout `checkout` of another namespace, which shares the route.
    route["spec"]["rules"].as_array_mut().unwrap().push(json!({
        "name": "testers-0.checkout.payments.bellwether.dev",
        "matches": [{"headers": [{"name": "X-Canary", "value": "1"}]}],
        "backendRefs": [{"name": "checkout-canary", "port": 80}]
    }));
    // Rollout `shop.checkout` added the first, `payments/checkout` the second; Rollout
    // `shop/checkout` has nothing in force and leaves both be.
    assert_eq!(state(&route).exposure, Some(Exposure::default()));
    assert_eq!(traffic_patch(&route, SERVICES, &Traffic::split(0)).unwrap(), None);
}

#[test]
fn a_header_the_managed_rule_already_matches_is_refused_with_the_rule_named() {
    let mut route = http_route();
    route["spec"]["rules"][0]["matches"][0]["headers"] = json!([{"name": "x-canary", "value": "no"}]);
    let error =
        traffic_patch(&route, SERVICES, &traffic(0, &[("testers", vec![header("X-Canary", "1")])], None))
            .unwrap_err();
    assert_eq!(
        error.to_string(),
        "shop/checkout: rule 0 already matches header \"X-Canary\", so header route \"testers\" cannot add \
         its own match on it"
    );
    assert!(matches!(error, RouteError::HeaderTaken { .. }));
}

#[test]
fn a_route_whose_managed_rule_is_gone_still_loses_the_rules_bellwether_added() {
    let route = patched(&http_route(), &traffic(0, &[("testers", vec![header("X-Canary", "always")])], None));
    let mut orphaned = route.clone();
    orphaned["spec"]["rules"][0]["backendRefs"] = json!([{"name": "checkout-stable", "port": 80}]);
    let cleaned = patched(&orphaned, &Traffic::split(0));
    let names: Vec<&Value> =
        cleaned["spec"]["rules"].as_array().unwrap().iter().map(|r| &r["name"]).collect();
    assert!(names.iter().all(|n| n.is_null()), "{names:?}");
    assert!(matches!(
        traffic_patch(&cleaned, SERVICES, &Traffic::split(0)),
        Err(RouteError::Unmanaged { .. })
    ));
}

#[test]
fn a_mirror_left_on_a_rule_that_is_no_longer_managed_is_removed() {
    let route = patched(&http_route(), &traffic(0, &[], Some(10)));
    let mut unmanaged = route.clone();
    // Someone takes the canary out of the rule mid-canary: the mirror Bellwether put there stays.
    unmanaged["spec"]["rules"][0]["backendRefs"] = json!([{"name": "checkout-stable", "port": 80}]);
    assert_eq!(state(&unmanaged).weights, None);
    let cleaned = patched(&unmanaged, &Traffic::split(0));
    assert_eq!(cleaned["spec"]["rules"][0]["filters"], http_route()["spec"]["rules"][0]["filters"]);
    assert!(matches!(
        traffic_patch(&cleaned, SERVICES, &Traffic::split(0)),
        Err(RouteError::Unmanaged { .. })
    ));
    // On a route that is still managed elsewhere, it reads as a change, and goes.
    let mut both = route.clone();
    let mut second = both["spec"]["rules"][0].clone();
    second["backendRefs"] = json!([{"name": "checkout-stable", "port": 80}]);
    both["spec"]["rules"].as_array_mut().unwrap().push(second);
    both["spec"]["rules"][0]["filters"].as_array_mut().unwrap().pop();
    assert_eq!(state(&both).exposure, None);
    let fixed = patched(&both, &Traffic::split(0));
    assert_eq!(state(&fixed).exposure, Some(Exposure::default()));
}

#[test]
fn a_parent_that_refuses_the_current_generation_says_why() {
    let mut route = http_route();
    route["status"] = json!({"parents": [
        {"parentRef": {"name": "public"}, "controllerName": "example.com/gw", "conditions": [
            {"type": "Accepted", "status": "False", "reason": "UnsupportedValue", "observedGeneration": 3,
             "message": "RequestMirror percent is not supported", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "observedGeneration": 3,
             "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    ]});
    let seen = route_state("HTTPRoute/shop/checkout".into(), &route, SERVICES);
    let refusal = "Accepted=False, UnsupportedValue: RequestMirror percent is not supported";
    assert_eq!(seen.parents[0].refusal.as_deref(), Some(refusal));
    assert!(!seen.accepted());
    assert_eq!(
        seen.lag(&Traffic::split(0)),
        format!("HTTPRoute/shop/checkout: gateway/shop/public refused it: {refusal}")
    );
    // A refusal of an older generation is a parent that has not caught up, not a refusal.
    route["metadata"]["generation"] = json!(4);
    assert_eq!(route_state("r".into(), &route, SERVICES).parents[0].refusal, None);
    route["status"]["parents"][0]["conditions"][0]["status"] = json!("True");
    route["status"]["parents"][0]["conditions"][0]["observedGeneration"] = json!(4);
    route["status"]["parents"][0]["conditions"][1]["status"] = json!("False");
    route["status"]["parents"][0]["conditions"][1]["reason"] = json!("BackendNotFound");
    route["status"]["parents"][0]["conditions"][1]["observedGeneration"] = json!(4);
    // An unresolved backend, or a rule the Gateway dropped, may be Bellwether's: it holds traffic
    // that exposes the canary, not a move back to stable, which may not depend on it.
    let seen = route_state("r".into(), &route, SERVICES);
    assert_eq!(seen.parents[0].partial.as_deref(), Some("ResolvedRefs=False, BackendNotFound"));
    assert!(seen.accepted() && seen.carries(&Traffic::split(0)));
    let mut exposing = route.clone();
    exposing["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(10);
    exposing["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(90);
    let seen = route_state("r".into(), &exposing, SERVICES);
    assert!(!seen.carries(&Traffic::split(10)), "the canary's backend may be the one not resolved");
    assert_eq!(
        seen.lag(&Traffic::split(10)),
        "r: gateway/shop/public refused it: ResolvedRefs=False, BackendNotFound"
    );
    route["status"]["parents"][0]["conditions"][1]["status"] = json!("True");
    route["status"]["parents"][0]["conditions"].as_array_mut().unwrap().push(json!({
        "type": "PartiallyInvalid", "status": "True", "reason": "UnsupportedValue", "observedGeneration": 4,
        "message": "RegularExpression header matches are not supported", "lastTransitionTime": "2026-01-01T00:00:00Z"
    }));
    let header =
        HeaderMatch { name: "Cookie".into(), type_: HeaderMatchType::RegularExpression, value: "c=1".into() };
    let wanted = traffic(0, &[("testers", vec![header])], None);
    let mut route = patched(&route, &wanted);
    // The Gateway has seen this generation: it dropped the rule with the regular expression.
    route["metadata"]["generation"] = json!(4);
    let seen = route_state("r".into(), &route, SERVICES);
    assert!(seen.shows(&wanted) && !seen.carries(&wanted), "a rule the Gateway dropped is not carried");
    assert!(seen.lag(&wanted).contains("PartiallyInvalid=True, UnsupportedValue: RegularExpression"));
}

#[test]
fn several_managed_rules_get_a_copy_each_and_all_must_be_there() {
    let mut route = http_route();
    let managed = route["spec"]["rules"][0].clone();
    let mut second = managed.clone();
    second["matches"] = json!([{"path": {"type": "Exact", "value": "/pay"}}]);
    second.as_object_mut().unwrap().remove("filters");
    route["spec"]["rules"].as_array_mut().unwrap().push(second);
    let wanted = traffic(0, &[("testers", vec![header("X-Canary", "always")])], Some(5));
    let both = patched(&route, &wanted);
    let names: Vec<&str> =
        both["spec"]["rules"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["testers-0.checkout.shop.bellwether.dev", "testers-1.checkout.shop.bellwether.dev"]);
    assert_eq!(both["spec"]["rules"][4]["matches"][0]["path"]["value"], "/pay");
    assert_eq!(state(&both).exposure, Some(wanted.exposure.clone()));
    let mut one_gone = both.clone();
    one_gone["spec"]["rules"].as_array_mut().unwrap().pop();
    assert_eq!(state(&one_gone).exposure, None, "half a header route is not the header route");
    assert_eq!(state(&patched(&one_gone, &wanted)).exposure, Some(wanted.exposure));
}
