//! Header routes and mirrors (`setHeaderRoute`, `setMirrorRoute`) end to end, on an HTTPRoute and
//! a GRPCRoute at once: the rules and filters Bellwether adds at each step, what the Rollout's
//! status says of them, and that promotion, abort and deletion all take them away again. A Gateway
//! that refuses one route holds the step; a user's edit of their own rules is kept, and an edit of
//! Bellwether's rule is undone.

use crate::apiserver::REFUSE_ANNOTATION;
use crate::harness::{CANARY, Cluster, Controller, ROLLOUT, STABLE, eventually, real_cluster};
use bellwether::api::{ExposureStatus, MirrorStatus, Rollout, RolloutPhase, RouteStatus};
use bellwether::controller::requests::REQUEST_PREFIX;
use bellwether::controller::rollouts::RouteKind;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The HTTPRoute and the GRPCRoute the Rollout manages (the harness's route `web` is not one).
const HTTP: &str = "shop";
const GRPC: &str = "shop-grpc";
/// What the simulated Gateway is asked to refuse the GRPCRoute with.
const REFUSAL: &str = "UnsupportedValue: RegularExpression header matches are not supported";

/// The header route's matches: an exact header and a cookie.
fn testers() -> Value {
    json!({"name": "testers", "headers": [
        {"name": "X-Canary", "value": "always"},
        {"name": "Cookie", "type": "RegularExpression", "value": "(^|;\\s*)canary=1(;|$)"},
    ]})
}

/// The header matches Bellwether adds, types spelled out.
fn testers_matches() -> Value {
    json!([
        {"name": "X-Canary", "type": "Exact", "value": "always"},
        {"name": "Cookie", "type": "RegularExpression", "value": "(^|;\\s*)canary=1(;|$)"},
    ])
}

/// Header route, mirror and weight, each held by a pause until promoted.
fn staged_steps() -> Value {
    json!([
        {"setHeaderRoute": testers()},
        {"pause": {}},
        {"setMirrorRoute": {"name": "shadow", "percent": 20}},
        {"pause": {}},
        {"setWeight": 10},
        {"pause": {}},
    ])
}

/// The HTTPRoute's rules as the user wrote them: a managed rule with a path match, a filter and a
/// timeout, and an unmanaged rule to stable only.
fn http_rules() -> Value {
    json!([
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
            "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-Env", "value": "prod"}]}}],
            "timeouts": {"request": "10s"},
            "backendRefs": [
                {"name": STABLE, "port": 80, "weight": 100},
                {"name": CANARY, "port": 80, "weight": 0},
            ],
        },
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
            "backendRefs": [{"name": STABLE, "port": 80}],
        },
    ])
}

/// The GRPCRoute's rules as the user wrote them: one managed rule matching a method.
fn grpc_rules() -> Value {
    json!([{
        "matches": [{"method": {"service": "shop.Cart", "method": "Checkout"}}],
        "backendRefs": [
            {"name": STABLE, "port": 80, "weight": 100},
            {"name": CANARY, "port": 80, "weight": 0},
        ],
    }])
}

/// What Bellwether should have made of `rules` (whose first rule is the managed one): canary
/// weight `canary`, a mirror of `mirror` percent, and the header route `testers` when `header`.
/// `header` is the Rollout's namespace when its header route is in force.
fn carrying(rules: Value, canary: i64, mirror: Option<i64>, header: Option<&str>) -> Value {
    let mut rules = rules.as_array().cloned().expect("rules are a list");
    let managed = &mut rules[0];
    managed["backendRefs"][0]["weight"] = json!(100 - canary);
    managed["backendRefs"][1]["weight"] = json!(canary);
    let source = managed.clone();
    if let Some(percent) = mirror {
        let filter = json!({"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": CANARY, "port": 80},
            "percent": percent,
        }});
        match managed["filters"].as_array_mut() {
            Some(filters) => filters.push(filter),
            None => managed["filters"] = json!([filter]),
        }
    }
    if let Some(namespace) = header {
        rules.push(owned_rule(&source, namespace));
    }
    Value::Array(rules)
}

/// The header route's rule beside `managed`: its matches with the header matches added, its
/// filters (not the mirror) and timeouts, and the canary as its only backend, of weight 1.
fn owned_rule(managed: &Value, namespace: &str) -> Value {
    let mut rule = managed.clone();
    rule["name"] = json!(format!("testers-0.{ROLLOUT}.{namespace}.bellwether.dev"));
    for m in rule["matches"].as_array_mut().expect("matches") {
        m["headers"] = testers_matches();
    }
    rule["backendRefs"] = json!([{"name": CANARY, "port": 80, "weight": 1}]);
    rule
}

fn grpc_api(cluster: &Cluster) -> Api<DynamicObject> {
    Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &RouteKind::Grpc.api_resource())
}

/// The route's `spec.rules`, as stored now.
async fn rules_of(api: &Api<DynamicObject>, name: &str) -> Value {
    let route = api.get(name).await.expect("reading a route");
    serde_json::to_value(route).expect("a route serializes")["spec"]["rules"].clone()
}

async fn http_now(cluster: &Cluster) -> Value {
    rules_of(&cluster.routes(), HTTP).await
}

async fn grpc_now(cluster: &Cluster) -> Value {
    rules_of(&grpc_api(cluster), GRPC).await
}

/// Creates the HTTPRoute and the GRPCRoute, all traffic on stable, exactly as written here (not
/// through the typed structs, which could add or drop fields).
async fn create_routes(cluster: &Cluster) {
    for (api, kind, name, rules) in [
        (cluster.routes(), "HTTPRoute", HTTP, http_rules()),
        (grpc_api(cluster), "GRPCRoute", GRPC, grpc_rules()),
    ] {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": {"parentRefs": [{"name": "gateway"}], "rules": rules},
        }))
        .expect("a valid route");
        api.create(&PostParams::default(), &object).await.expect("creating a route");
    }
}

/// The Rollout at `version`, managing both routes. The progress deadline is long: the tests that
/// hold a step end it themselves.
fn rollout(cluster: &Cluster, version: &str, steps: Value) -> Rollout {
    let mut value = serde_json::to_value(cluster.rollout(version, steps)).expect("a Rollout serializes");
    value["spec"]["strategy"]["canary"]["trafficRouting"] =
        json!({"gatewayAPI": {"httpRoutes": [{"name": HTTP}], "grpcRoutes": [{"name": GRPC}]}});
    value["spec"]["progressDeadlineSeconds"] = json!(600);
    serde_json::from_value(value).expect("a valid Rollout")
}

/// A cluster with both routes, the controller, and revision 1 stable; returns revision 2, shipped.
async fn canary_started(test: &str, steps: Value) -> (Cluster, Controller, String) {
    let cluster = Cluster::start(test).await;
    create_routes(&cluster).await;
    let controller = Controller::start(&cluster, &[]);
    let stable = cluster.ship(&rollout(&cluster, "1", steps.clone())).await;
    healthy_on(&cluster, &stable).await;
    let canary = cluster.ship(&rollout(&cluster, "2", steps)).await;
    (cluster, controller, canary)
}

async fn healthy_on(cluster: &Cluster, revision: &str) -> Rollout {
    cluster
        .rollout_until(&format!("revision {revision} stable and Healthy"), |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.canary_revision.is_none()
                    && s.stable_revision.as_deref() == Some(revision)
            })
        })
        .await
}

/// Waits until the canary pauses at step `index` (0-based) with every route carrying its traffic.
async fn paused_at(cluster: &Cluster, index: i32) -> Rollout {
    cluster
        .rollout_until(&format!("the canary paused at step index {index}, every route ready"), |r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Paused)
                    && s.current_step_index == Some(index)
                    && s.weights.verified
                    && s.routes.len() == 2
                    && s.routes.iter().all(|route| route.ready)
            })
        })
        .await
}

/// Sends a request as `kubectl bellwether <action>` does: an annotation on the Rollout.
async fn request(cluster: &Cluster, id: &str, action: &str) {
    let patch = json!({"metadata": {"annotations": {
        format!("{REQUEST_PREFIX}{id}"): json!({"action": action, "by": "carol"}).to_string(),
    }}});
    cluster
        .rollouts()
        .patch(ROLLOUT, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("sending a request");
}

fn route_names(cluster: &Cluster) -> (String, String) {
    (format!("GRPCRoute/{}/{GRPC}", cluster.namespace), format!("HTTPRoute/{}/{HTTP}", cluster.namespace))
}

/// Both routes ready, each carrying `canary`, the header routes `headers` and a mirror of `mirror`.
fn ready_routes(cluster: &Cluster, canary: i32, headers: &[&str], mirror: Option<i32>) -> Vec<RouteStatus> {
    let (grpc, http) = route_names(cluster);
    [grpc, http]
        .into_iter()
        .map(|name| RouteStatus {
            name,
            canary_weight: Some(canary),
            header_routes: headers.iter().map(|h| h.to_string()).collect(),
            mirror_percent: mirror,
            ready: true,
            message: None,
        })
        .collect()
}

/// The status's routes, in name order.
fn routes_of(rollout: &Rollout) -> Vec<RouteStatus> {
    let mut routes = rollout.status.as_ref().map(|s| s.routes.clone()).unwrap_or_default();
    routes.sort_by(|a, b| a.name.cmp(&b.name));
    routes
}

fn exposure_of(rollout: &Rollout) -> ExposureStatus {
    rollout.status.as_ref().map(|s| s.exposure.clone()).unwrap_or_default()
}

fn shadow(percent: i32) -> Option<MirrorStatus> {
    Some(MirrorStatus { name: "shadow".into(), percent })
}

/// Waits until both routes are back to what the user wrote, and the status says so.
async fn routes_back_to_stable(cluster: &Cluster) {
    cluster
        .rollout_until("both routes back on stable, with nothing of Bellwether's", |r| {
            let routes = routes_of(r);
            routes.len() == 2
                && routes.iter().all(|route| {
                    route.canary_weight == Some(0)
                        && route.header_routes.is_empty()
                        && route.mirror_percent.is_none()
                })
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_route_then_mirror_then_weight_on_both_routes_and_promotion_removes_them() {
    let (cluster, controller, canary) = canary_started("traffic-staged", staged_steps()).await;

    // Step 1: the header route, a rule of Bellwether's on each route; no weight, no mirror.
    let at_header = paused_at(&cluster, 1).await;
    assert_eq!(http_now(&cluster).await, carrying(http_rules(), 0, None, Some(&cluster.namespace)));
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 0, None, Some(&cluster.namespace)));
    assert_eq!(
        exposure_of(&at_header),
        ExposureStatus { header_routes: vec!["testers".into()], mirror: None }
    );
    assert_eq!(routes_of(&at_header), ready_routes(&cluster, 0, &["testers"], None));
    // The rule is a copy: the method match and the path, filter and timeout of the managed rules.
    let grpc = grpc_now(&cluster).await;
    assert_eq!(grpc[1]["matches"][0]["method"], json!({"service": "shop.Cart", "method": "Checkout"}));
    assert_eq!(grpc[1]["backendRefs"], json!([{"name": CANARY, "port": 80, "weight": 1}]));
    let http = http_now(&cluster).await;
    assert_eq!(http[2]["name"], format!("testers-0.web.{}.bellwether.dev", cluster.namespace));
    assert_eq!(http[2]["timeouts"], json!({"request": "10s"}));

    // Step 3: the mirror joins it, on the managed rules only; the header rules do not copy it.
    request(&cluster, "promote-1", "promote").await;
    let at_mirror = paused_at(&cluster, 3).await;
    assert_eq!(http_now(&cluster).await, carrying(http_rules(), 0, Some(20), Some(&cluster.namespace)));
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 0, Some(20), Some(&cluster.namespace)));
    assert_eq!(
        exposure_of(&at_mirror),
        ExposureStatus { header_routes: vec!["testers".into()], mirror: shadow(20) }
    );
    assert_eq!(routes_of(&at_mirror), ready_routes(&cluster, 0, &["testers"], Some(20)));

    // Step 5: 10% by weight besides.
    request(&cluster, "promote-2", "promote").await;
    let at_weight = paused_at(&cluster, 5).await;
    assert_eq!(http_now(&cluster).await, carrying(http_rules(), 10, Some(20), Some(&cluster.namespace)));
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 10, Some(20), Some(&cluster.namespace)));
    assert_eq!(
        exposure_of(&at_weight),
        ExposureStatus { header_routes: vec!["testers".into()], mirror: shadow(20) }
    );
    assert_eq!(routes_of(&at_weight), ready_routes(&cluster, 10, &["testers"], Some(20)));

    // Promotion: the routes are exactly as the user wrote them, all traffic on stable.
    request(&cluster, "promote-3", "promote").await;
    let promoted = healthy_on(&cluster, &canary).await;
    assert_eq!(http_now(&cluster).await, http_rules());
    assert_eq!(grpc_now(&cluster).await, grpc_rules());
    assert_eq!(exposure_of(&promoted), ExposureStatus::default());
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_mid_mirror_removes_header_rules_and_mirrors_with_the_weight() {
    let (cluster, controller, _) = canary_started("traffic-abort", staged_steps()).await;
    paused_at(&cluster, 1).await;
    request(&cluster, "promote-1", "promote").await;
    paused_at(&cluster, 3).await;
    assert_eq!(http_now(&cluster).await, carrying(http_rules(), 0, Some(20), Some(&cluster.namespace)));
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 0, Some(20), Some(&cluster.namespace)));

    request(&cluster, "abort-1", "abort").await;
    let aborted = cluster
        .rollout_until("the abort", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded) && s.weights.verified)
        })
        .await;
    let abort = aborted.status.as_ref().and_then(|s| s.abort.clone()).expect("an abort");
    assert_eq!(abort.by, "carol");
    routes_back_to_stable(&cluster).await;
    assert_eq!(http_now(&cluster).await, http_rules());
    assert_eq!(grpc_now(&cluster).await, grpc_rules());
    let aborted = cluster.rollouts().get(ROLLOUT).await.expect("the Rollout");
    assert_eq!(exposure_of(&aborted), ExposureStatus::default());
    assert_eq!(routes_of(&aborted), ready_routes(&cluster, 0, &[], None));
    controller.stop().await;
}

/// A route taken out of the spec mid-canary is given back as it was written: nothing else would
/// remove the header route and the mirror it carries, nor its canary weight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_dropped_from_the_spec_mid_canary_is_given_back() {
    let (cluster, controller, _) = canary_started("traffic-dropped-route", staged_steps()).await;
    paused_at(&cluster, 1).await;
    request(&cluster, "promote-1", "promote").await;
    paused_at(&cluster, 3).await;
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 0, Some(20), Some(&cluster.namespace)));

    let drop =
        json!({"spec": {"strategy": {"canary": {"trafficRouting": {"gatewayAPI": {"grpcRoutes": null}}}}}});
    cluster
        .rollouts()
        .patch(ROLLOUT, &PatchParams::default(), &Patch::Merge(&drop))
        .await
        .expect("dropping the GRPCRoute from the spec");
    let expected = grpc_rules();
    eventually("the GRPCRoute back as written", || async {
        (grpc_now(&cluster).await == expected).then_some(())
    })
    .await;
    let (_, http_name) = route_names(&cluster);
    let rollout = cluster
        .rollout_until("the status to forget the GRPCRoute", |r| {
            r.status.as_ref().is_some_and(|s| s.routes.len() == 1 && s.routes[0].name == http_name)
        })
        .await;
    assert_eq!(rollout.status.and_then(|s| s.current_step_index), Some(3), "the canary goes on");
    assert_eq!(http_now(&cluster).await, carrying(http_rules(), 0, Some(20), Some(&cluster.namespace)));
    controller.stop().await;
}

/// A header route the route cannot take (its managed rule already matches the header) holds the
/// step, and the reason reaches people as a Warning Event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_route_the_route_cannot_take_is_reported_and_holds_the_step() {
    let steps = json!([{"pause": {}}, {"setHeaderRoute": testers()}, {"pause": {}}]);
    let (cluster, controller, _) = canary_started("traffic-header-taken", steps).await;
    paused_at(&cluster, 0).await;
    let taken = json!([{"op": "add", "path": "/spec/rules/0/matches/0/headers",
                        "value": [{"name": "x-canary", "value": "no"}]}]);
    cluster
        .routes()
        .patch(HTTP, &PatchParams::default(), &Patch::<()>::Json(serde_json::from_value(taken).unwrap()))
        .await
        .expect("the user's rule matching X-Canary");
    request(&cluster, "promote-1", "promote").await;
    let note = eventually("the ActionFailed Event", || async {
        cluster.event_notes("ActionFailed").await.into_iter().find(|n| n.contains("already matches header"))
    })
    .await;
    assert!(note.contains(&format!("{}/{HTTP}: rule 0 already matches header", cluster.namespace)), "{note}");
    let rollout = cluster.rollouts().get(ROLLOUT).await.expect("the Rollout");
    assert_eq!(rollout.status.and_then(|s| s.current_step_index), Some(1), "held at the header route");
    assert_eq!(grpc_now(&cluster).await, grpc_rules(), "no route takes it until every one can");
    controller.stop().await;
}

/// One route deleted (the first the spec lists) does not keep the canary's traffic on the others:
/// the abort's move back to stable goes on past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_with_one_route_deleted_still_clears_the_other() {
    let (cluster, controller, _) = canary_started("traffic-deleted-route", staged_steps()).await;
    paused_at(&cluster, 1).await;
    request(&cluster, "promote-1", "promote").await;
    paused_at(&cluster, 3).await;
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 0, Some(20), Some(&cluster.namespace)));

    cluster.routes().delete(HTTP, &DeleteParams::default()).await.expect("deleting the HTTPRoute");
    request(&cluster, "abort-1", "abort").await;
    cluster
        .rollout_until("the abort", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let expected = grpc_rules();
    eventually("the GRPCRoute back as written", || async {
        (grpc_now(&cluster).await == expected).then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_its_gateway_refuses_holds_the_step_and_an_abort_still_clears_both_routes() {
    if real_cluster().is_some() {
        println!("skipped: needs the test API server's simulated Gateway to refuse a route");
        return;
    }
    let steps = json!([
        {"setWeight": 10},
        {"pause": {}},
        {"setHeaderRoute": testers()},
        {"pause": {}},
    ]);
    let (cluster, controller, _) = canary_started("traffic-refused", steps).await;
    paused_at(&cluster, 1).await;

    // The Gateway refuses the GRPCRoute from now on; the next step adds the header route.
    let refuse = json!({"metadata": {"annotations": {REFUSE_ANNOTATION: REFUSAL}}});
    grpc_api(&cluster)
        .patch(GRPC, &PatchParams::default(), &Patch::Merge(&refuse))
        .await
        .expect("annotating the GRPCRoute");
    request(&cluster, "promote-1", "promote").await;

    let (grpc_name, http_name) = route_names(&cluster);
    let parent = format!("gateway/{}/gateway", cluster.namespace);
    let why = format!("{grpc_name}: {parent} refused it: Accepted=False, {REFUSAL}");
    let held = cluster
        .rollout_until("the header-route step held by the refusal", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.current_step_index == Some(2)
                    && s.routes.iter().any(|route| route.message.as_deref() == Some(why.as_str()))
                    && s.message.as_deref().is_some_and(|m| m.contains(&why))
            })
        })
        .await;
    let status = held.status.clone().expect("a status");
    assert_eq!(status.phase, Some(RolloutPhase::Progressing));
    assert!(!status.weights.verified);
    let message = status.message.clone().unwrap_or_default();
    assert!(message.starts_with("step 3/4: waiting for routes to carry canary weight 10"), "{message}");
    // The refused route has the header route in its spec, only not accepted; the other one carries
    // it and is ready.
    let mut refused = ready_routes(&cluster, 10, &["testers"], None);
    refused[0].ready = false;
    refused[0].message = Some(why.clone());
    assert_eq!(routes_of(&held), refused);
    assert_eq!(refused[1].name, http_name);
    assert_eq!(http_now(&cluster).await, carrying(http_rules(), 10, None, Some(&cluster.namespace)));
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 10, None, Some(&cluster.namespace)));

    // An abort moves both back, the refused route's header rule removed too.
    request(&cluster, "abort-1", "abort").await;
    cluster
        .rollout_until("the abort", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    routes_back_to_stable(&cluster).await;
    assert_eq!(http_now(&cluster).await, http_rules());
    assert_eq!(grpc_now(&cluster).await, grpc_rules());
    let aborted = cluster.rollouts().get(ROLLOUT).await.expect("the Rollout");
    let abort = aborted.status.as_ref().and_then(|s| s.abort.clone()).expect("an abort");
    assert_eq!(abort.by, "carol", "the user's abort, not the progress deadline's: {abort:?}");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_edit_of_their_rules_is_kept_and_an_edit_of_bellwethers_rule_is_undone() {
    let steps = json!([
        {"setHeaderRoute": testers()},
        {"pause": {}},
        {"setWeight": 10},
        {"pause": {}},
    ]);
    let (cluster, controller, canary) = canary_started("traffic-edits", steps).await;
    paused_at(&cluster, 1).await;
    assert_eq!(http_now(&cluster).await, carrying(http_rules(), 0, None, Some(&cluster.namespace)));

    // Another field manager moves the unmanaged rule to /assets and adds a rule of its own after
    // Bellwether's.
    let docs = json!({"matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}], "backendRefs": [{"name": STABLE, "port": 80}]});
    let edit = json!([
        {"op": "test", "path": "/spec/rules/1/matches/0/path/value", "value": "/static"},
        {"op": "replace", "path": "/spec/rules/1/matches/0/path/value", "value": "/assets"},
        {"op": "add", "path": "/spec/rules/-", "value": docs},
    ]);
    let alice = PatchParams { field_manager: Some("alice".into()), ..Default::default() };
    cluster
        .routes()
        .patch(HTTP, &alice, &Patch::Json::<()>(serde_json::from_value(edit).unwrap()))
        .await
        .expect("the user's edit");
    let mut edited = http_rules();
    edited[1]["matches"][0]["path"]["value"] = json!("/assets");

    // The canary goes on, over the edited route; the edit and the header rule both stay.
    request(&cluster, "promote-1", "promote").await;
    paused_at(&cluster, 3).await;
    // Bellwether's rule was appended before the user's new one, which comes after it.
    let mut expected =
        carrying(edited.clone(), 10, None, Some(&cluster.namespace)).as_array().cloned().unwrap();
    expected.push(docs.clone());
    assert_eq!(http_now(&cluster).await, Value::Array(expected));
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 10, None, Some(&cluster.namespace)));

    // Someone changes the header value in Bellwether's rule: it is put back as the step wants
    // (removed and appended again, so now last).
    let owned = format!("testers-0.{ROLLOUT}.{}.bellwether.dev", cluster.namespace);
    let tamper = json!([
        {"op": "test", "path": "/spec/rules/2/name", "value": owned},
        {"op": "replace", "path": "/spec/rules/2/matches/0/headers/0/value", "value": "never"},
    ]);
    let mallory = PatchParams { field_manager: Some("mallory".into()), ..Default::default() };
    cluster
        .routes()
        .patch(HTTP, &mallory, &Patch::Json::<()>(serde_json::from_value(tamper).unwrap()))
        .await
        .expect("the tampering edit");
    eventually("the tampered rule to be replaced", || async {
        let rules = http_now(&cluster).await;
        let tampered = rules.as_array()?.iter().any(|r| r["matches"][0]["headers"][0]["value"] == "never");
        (!tampered && rules.as_array()?.len() == 4).then_some(())
    })
    .await;
    let mut restored = carrying(edited.clone(), 10, None, None).as_array().cloned().unwrap();
    restored.push(docs.clone());
    restored.push(owned_rule(&carrying(edited.clone(), 10, None, None)[0], &cluster.namespace));
    assert_eq!(http_now(&cluster).await, Value::Array(restored));
    let back = paused_at(&cluster, 3).await;
    assert_eq!(routes_of(&back), ready_routes(&cluster, 10, &["testers"], None));

    // Promotion keeps the user's rules, and only those.
    request(&cluster, "promote-2", "promote").await;
    healthy_on(&cluster, &canary).await;
    let mut user_rules = edited.as_array().cloned().unwrap();
    user_rules.push(docs);
    assert_eq!(http_now(&cluster).await, Value::Array(user_rules));
    assert_eq!(grpc_now(&cluster).await, grpc_rules());
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_deleted_mid_header_route_leaves_both_routes_as_the_user_wrote_them() {
    let steps = json!([
        {"setHeaderRoute": testers()},
        {"setMirrorRoute": {"name": "shadow", "percent": 20}},
        {"pause": {}},
    ]);
    let (cluster, controller, _) = canary_started("traffic-deleted", steps).await;
    paused_at(&cluster, 2).await;
    assert_eq!(http_now(&cluster).await, carrying(http_rules(), 0, Some(20), Some(&cluster.namespace)));
    assert_eq!(grpc_now(&cluster).await, carrying(grpc_rules(), 0, Some(20), Some(&cluster.namespace)));

    cluster.rollouts().delete(ROLLOUT, &DeleteParams::default()).await.expect("deleting the Rollout");
    eventually("the deleted Rollout to go", || async {
        cluster.rollouts().get_opt(ROLLOUT).await.ok()?.is_none().then_some(())
    })
    .await;
    // The finalizer ran before the Rollout went: nothing of Bellwether's is left.
    assert_eq!(http_now(&cluster).await, http_rules());
    assert_eq!(grpc_now(&cluster).await, grpc_rules());
    controller.stop().await;
}
