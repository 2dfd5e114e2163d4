//! The in-process test API server, exercised through the unmodified kube-rs client as the controller
//! will use it. Waits on asynchronous behaviour (watches, simulated controllers) are bounded polls on
//! a condition, never assertions about timing.

use bellwether_testkit::apiserver;

use apiserver::{GATEWAY_CONTROLLER, Options, TestApiServer};
use bellwether::api::{AnalysisTemplate, ClusterAnalysisTemplate, Rollout};
use futures::{Stream, StreamExt};
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent, WatchParams,
};
use kube::runtime::{events, watcher};
use kube::{Error, Resource, ResourceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

const NAMESPACE: &str = "shop";
/// How long a bounded wait lasts before the test fails; far above what any wait needs.
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(10);

fn from_json<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

/// The documents of a file in examples/basic.
fn examples(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display())))
        .collect()
}

/// The only object in a file of examples/basic.
fn example<T: DeserializeOwned>(file: &str) -> T {
    let [document] = examples(file).try_into().expect("one document");
    from_json(document)
}

fn service(name: &str, app: &str) -> Service {
    from_json(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))
}

fn replica_set(name: &str, image: &str, replicas: i32) -> ReplicaSet {
    from_json(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }))
}

/// The Status of an API error, failing the test on any other result.
fn api_error<T: std::fmt::Debug>(result: Result<T, Error>) -> kube::core::Status {
    match result {
        Err(Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls `check` until it returns a value, failing the test after [`WAIT`].
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// The next item of a stream, failing the test after [`WAIT`].
async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("timed out waiting on a stream")
        .expect("stream ended")
}

#[tokio::test]
async fn create_get_and_list_with_a_label_selector() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let stable =
        services.create(&PostParams::default(), &service("checkout-stable", "checkout")).await.unwrap();
    services.create(&PostParams::default(), &service("cart", "cart")).await.unwrap();

    assert_eq!(stable.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(stable.metadata.generation, Some(1));
    assert!(stable.metadata.uid.is_some() && stable.metadata.creation_timestamp.is_some());
    let fetched = services.get("checkout-stable").await.unwrap();
    assert_eq!(fetched.resource_version(), stable.resource_version());

    for (selector, expected) in [
        ("app=checkout", vec!["checkout-stable"]),
        ("app!=checkout", vec!["cart"]),
        ("app in (cart, payments)", vec!["cart"]),
        ("app notin (cart),app", vec!["checkout-stable"]),
        ("!app", vec![]),
    ] {
        let selected = services.list(&ListParams::default().labels(selector)).await.unwrap();
        assert_eq!(selected.items.iter().map(|s| s.name_any()).collect::<Vec<_>>(), expected, "{selector}");
    }
    let named = services.list(&ListParams::default().fields("metadata.name=cart")).await.unwrap();
    assert_eq!(named.items.len(), 1);
    let all = services.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
    let list_version: u64 = all.metadata.resource_version.unwrap().parse().unwrap();
    assert!(all.items.iter().all(|s| s.resource_version().unwrap().parse::<u64>().unwrap() <= list_version));
    let elsewhere: Api<Service> = Api::namespaced(server.client(), "other");
    assert!(elsewhere.list(&ListParams::default()).await.unwrap().items.is_empty());
    let everywhere: Api<Service> = Api::all(server.client());
    assert_eq!(everywhere.list(&ListParams::default()).await.unwrap().items.len(), 2);

    let duplicate = api_error(services.create(&PostParams::default(), &service("cart", "cart")).await);
    assert_eq!((duplicate.code, duplicate.reason.as_str()), (409, "AlreadyExists"));
    let missing = api_error(services.get("missing").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    assert_eq!(api_error(services.create(&dry_run, &service("dry", "cart")).await).code, 400);
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_conflicts() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let created = services.create(&PostParams::default(), &service("cart", "cart")).await.unwrap();

    let mut first = created.clone();
    first.labels_mut().insert("tier".into(), "web".into());
    let replaced = services.replace("cart", &PostParams::default(), &first).await.unwrap();
    assert_ne!(replaced.resource_version(), created.resource_version());

    let mut stale = created;
    stale.labels_mut().insert("tier".into(), "api".into());
    let conflict = api_error(services.replace("cart", &PostParams::default(), &stale).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(services.get("cart").await.unwrap().labels()["tier"], "web");
}

#[tokio::test]
async fn merge_and_json_patches_with_test_operations() {
    let server = TestApiServer::start().await;
    let routes: Api<HttpRoute> = Api::namespaced(server.client(), NAMESPACE);
    routes.create(&PostParams::default(), &example("httproute.yaml")).await.unwrap();

    let merge = Patch::Merge(json!({"metadata": {"labels": {"team": "checkout"}}}));
    let merged = routes.patch("checkout", &PatchParams::default(), &merge).await.unwrap();
    assert_eq!(merged.labels()["team"], "checkout");
    assert_eq!(merged.metadata.generation, Some(1), "a metadata change keeps the generation");

    let weights = |stable: u64, canary: u64, expected_canary: u64| -> Patch<()> {
        Patch::Json(from_json(json!([
            {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "checkout-canary"},
            {"op": "test", "path": "/spec/rules/0/backendRefs/1/weight", "value": expected_canary},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": stable},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": canary},
        ])))
    };
    let failed = api_error(routes.patch("checkout", &PatchParams::default(), &weights(90, 10, 5)).await);
    assert_eq!((failed.code, failed.reason.as_str()), (422, "Invalid"));
    let unchanged = routes.get("checkout").await.unwrap();
    assert_eq!(unchanged.resource_version(), merged.resource_version());

    let patched = routes.patch("checkout", &PatchParams::default(), &weights(90, 10, 0)).await.unwrap();
    let backends = patched.spec.rules.as_ref().unwrap()[0].backend_refs.as_ref().unwrap();
    assert_eq!(backends.iter().map(|b| b.weight).collect::<Vec<_>>(), [Some(90), Some(10)]);
    assert_eq!(patched.metadata.generation, Some(2));
}

#[tokio::test]
async fn json_patch_operations() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    services.create(&PostParams::default(), &service("cart", "cart")).await.unwrap();

    let operations = Patch::Json::<()>(from_json(json!([
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
        {"op": "copy", "from": "/metadata/labels/tier", "path": "/metadata/labels/layer"},
        {"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/name"},
        {"op": "add", "path": "/metadata/labels/example.com~1team", "value": "shop"},
        {"op": "add", "path": "/spec/ports/-", "value": {"name": "metrics", "port": 9090}},
        {"op": "remove", "path": "/spec/selector"},
    ])));
    let patched = services.patch("cart", &PatchParams::default(), &operations).await.unwrap();
    let labels: Vec<(&str, &str)> = patched.labels().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(labels, [("example.com/team", "shop"), ("layer", "web"), ("name", "cart"), ("tier", "web")]);
    let spec = patched.spec.unwrap();
    assert_eq!(spec.ports.unwrap().iter().map(|p| p.port).collect::<Vec<_>>(), [80, 9090]);
    assert_eq!(spec.selector, None);

    let out_of_range = Patch::Json::<()>(from_json(json!([{"op": "remove", "path": "/spec/ports/2"}])));
    let failed = api_error(services.patch("cart", &PatchParams::default(), &out_of_range).await);
    assert_eq!((failed.code, failed.reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn server_side_apply_creates_then_updates() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let params = PatchParams::apply("bellwether").force();
    let applied = services.patch("cart", &params, &Patch::Apply(service("cart", "cart"))).await.unwrap();
    assert_eq!(applied.metadata.generation, Some(1));

    let mut desired = service("cart", "cart");
    desired.spec.as_mut().unwrap().selector = Some([("app".to_string(), "cart-v2".to_string())].into());
    let updated = services.patch("cart", &params, &Patch::Apply(desired)).await.unwrap();
    assert_eq!(updated.spec.as_ref().unwrap().selector.as_ref().unwrap()["app"], "cart-v2");
    assert_eq!(updated.metadata.generation, Some(2));
    assert_eq!(updated.uid(), applied.uid());

    let mut stale = service("cart", "cart");
    stale.metadata.resource_version = applied.metadata.resource_version.clone();
    let conflict = api_error(services.patch("cart", &params, &Patch::Apply(stale)).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));

    let unmanaged =
        services.patch("cart", &PatchParams::default(), &Patch::Apply(service("cart", "cart"))).await;
    assert_eq!(api_error(unmanaged).code, 422, "apply needs a field manager");
}

#[tokio::test]
async fn server_side_apply_conflicts_on_fields_another_manager_applied() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let apply = |manager: &str| PatchParams::apply(manager);
    services.patch("cart", &apply("first"), &Patch::Apply(service("cart", "cart"))).await.unwrap();

    let same = services.patch("cart", &apply("second"), &Patch::Apply(service("cart", "cart"))).await;
    assert!(same.is_ok(), "applying the value a field has shares it: {same:?}");
    let conflict =
        api_error(services.patch("cart", &apply("second"), &Patch::Apply(service("cart", "v2"))).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(conflict.message.contains("conflict with \"first\": .spec.selector.app"), "{}", conflict.message);

    let forced = PatchParams::apply("second").force();
    services.patch("cart", &forced, &Patch::Apply(service("cart", "v2"))).await.unwrap();
    let taken =
        api_error(services.patch("cart", &apply("first"), &Patch::Apply(service("cart", "v3"))).await);
    assert_eq!(taken.code, 409, "forcing took the fields from the first manager");

    let merge = Patch::Merge(json!({"metadata": {"labels": null}, "spec": {"selector": null}}));
    services.patch("cart", &PatchParams::default(), &merge).await.unwrap();
    let freed = services.patch("cart", &apply("first"), &Patch::Apply(service("cart", "v3"))).await.unwrap();
    assert_eq!(freed.spec.unwrap().selector.unwrap()["app"], "v3", "removed fields have no owner left");
}

#[tokio::test]
async fn deployments_and_replica_sets_read_back_with_the_defaults_a_real_server_fills_in() {
    // Pods that never become ready, so that the simulated ReplicaSet controller writes the status
    // once and then leaves the ReplicaSet alone.
    let server = TestApiServer::start_with(Options {
        replica_set_delay: Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let replica_sets: Api<ReplicaSet> = Api::namespaced(server.client(), NAMESPACE);
    let written = replica_set("web", "registry.example/web:1", 2);
    let created = replica_sets.create(&PostParams::default(), &written).await.unwrap();
    let template = created.spec.as_ref().and_then(|s| s.template.clone()).expect("a template");
    let pod = template.spec.as_ref().expect("a pod spec");
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    let container = &pod.containers[0];
    assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(container.termination_message_path.as_deref(), Some("/dev/termination-log"));
    let settled = eventually("the ReplicaSet's status", || async {
        let stored = replica_sets.get("web").await.ok()?;
        stored.status.as_ref().is_some_and(|s| s.observed_generation == Some(1)).then_some(stored)
    })
    .await;
    assert_eq!(settled.spec, created.spec, "stored as returned");

    // Applying or patching the template as written changes nothing: the server defaults a write
    // before it compares it with what it has.
    let params = PatchParams::apply("bellwether").force();
    let applied = replica_sets.patch("web", &params, &Patch::Apply(&written)).await.unwrap();
    let template_patch = json!({"spec": {"template": written.spec.as_ref().unwrap().template}});
    let patched = replica_sets.patch("web", &PatchParams::default(), &Patch::Merge(&template_patch)).await;
    for (write, stored) in [("apply", applied), ("merge patch", patched.unwrap())] {
        assert_eq!(stored.resource_version(), settled.resource_version(), "the {write} wrote");
    }
    // A real change is still one, and keeps its defaults.
    let mut changed = written.clone();
    let pod = changed.spec.as_mut().and_then(|s| s.template.as_mut()).and_then(|t| t.spec.as_mut()).unwrap();
    pod.containers[0].image = Some("registry.example/web".into());
    let changed = replica_sets.patch("web", &params, &Patch::Apply(&changed)).await.unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    let pod = changed.spec.and_then(|s| s.template).and_then(|t| t.spec).unwrap();
    assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("Always"), "untagged means latest");

    let deployments: Api<Deployment> = Api::namespaced(server.client(), NAMESPACE);
    let mut deployment: Deployment = from_json(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
    }));
    deployment.spec.as_mut().unwrap().template = written.spec.unwrap().template.unwrap();
    let stored = deployments.create(&PostParams::default(), &deployment).await.unwrap().spec.unwrap();
    assert_eq!(
        (stored.replicas, stored.revision_history_limit, stored.progress_deadline_seconds),
        (Some(1), Some(10), Some(600))
    );
    let strategy = stored.strategy.expect("a strategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(stored.template.spec.unwrap().scheduler_name.as_deref(), Some("default-scheduler"));
}

#[tokio::test]
async fn status_subresource_is_isolated_and_only_spec_changes_bump_the_generation() {
    let server = TestApiServer::start().await;
    let rollouts: Api<Rollout> = Api::namespaced(server.client(), NAMESPACE);
    let created = rollouts.create(&PostParams::default(), &example("rollout.yaml")).await.unwrap();
    assert!(created.status.is_none());

    let status =
        json!({"spec": {"replicas": 9}, "status": {"message": "progressing", "observedGeneration": 1}});
    let with_status =
        rollouts.patch_status("checkout", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    assert_eq!(with_status.status.as_ref().unwrap().message.as_deref(), Some("progressing"));
    assert_eq!(with_status.spec.replicas, created.spec.replicas, "a status write ignores the spec");
    assert_eq!(with_status.metadata.generation, Some(1));

    let spec = json!({"spec": {"replicas": 9}, "status": {"message": "overwritten"}});
    let scaled = rollouts.patch("checkout", &PatchParams::default(), &Patch::Merge(&spec)).await.unwrap();
    assert_eq!(scaled.spec.replicas, 9);
    assert_eq!(
        scaled.status.as_ref().unwrap().message.as_deref(),
        Some("progressing"),
        "a spec write ignores the status"
    );
    assert_eq!(scaled.metadata.generation, Some(2));

    let labels = json!({"metadata": {"labels": {"team": "checkout"}}});
    let labelled = rollouts.patch("checkout", &PatchParams::default(), &Patch::Merge(&labels)).await.unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));

    let mut replacement = labelled.clone();
    replacement.status.as_mut().unwrap().message = Some("replaced".into());
    let replaced = rollouts.replace_status("checkout", &PostParams::default(), &replacement).await.unwrap();
    assert_eq!(replaced.status.unwrap().message.as_deref(), Some("replaced"));
    assert_eq!(replaced.metadata.generation, Some(2));
}

#[tokio::test]
async fn invalid_rollouts_are_rejected_with_the_field_named() {
    let server = TestApiServer::start().await;
    let rollouts: Api<Rollout> = Api::namespaced(server.client(), NAMESPACE);
    let mut rollout: Value = serde_json::to_value(example::<Rollout>("rollout.yaml")).unwrap();
    rollout["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!(150);
    let invalid = api_error(rollouts.create(&PostParams::default(), &from_json(rollout)).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert!(invalid.message.contains("spec.strategy.canary.steps[0].setWeight"), "{}", invalid.message);
    let causes = invalid.details.unwrap().causes;
    assert!(causes.iter().any(|c| c.field == "spec.strategy.canary.steps[0].setWeight"), "{causes:?}");

    rollouts.create(&PostParams::default(), &example("rollout.yaml")).await.unwrap();
    let selector = json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}});
    let immutable =
        api_error(rollouts.patch("checkout", &PatchParams::default(), &Patch::Merge(&selector)).await);
    assert_eq!(immutable.code, 422, "the selector is immutable: {}", immutable.message);
}

#[tokio::test]
async fn invalid_routes_are_rejected_by_the_gateway_api_schema() {
    let server = TestApiServer::start().await;
    let routes: Api<HttpRoute> = Api::namespaced(server.client(), NAMESPACE);
    let mut route: Value = serde_json::to_value(example::<HttpRoute>("httproute.yaml")).unwrap();
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(1_000_001);
    let invalid = api_error(routes.create(&PostParams::default(), &from_json(route)).await);
    assert_eq!(invalid.code, 422);
    assert!(invalid.message.contains("spec.rules[0].backendRefs[0].weight"), "{}", invalid.message);
}

/// Waits for the next event of a watcher, skipping the errors it reports while it recovers.
async fn next_event<S>(events: &mut S) -> watcher::Event<Service>
where
    S: Stream<Item = Result<watcher::Event<Service>, watcher::Error>> + Unpin,
{
    loop {
        if let Ok(event) = next(events).await {
            return event;
        }
    }
}

/// Waits for the watcher to deliver a change to `name`, ignoring others and re-lists.
async fn next_change<S>(events: &mut S, name: &str) -> watcher::Event<Service>
where
    S: Stream<Item = Result<watcher::Event<Service>, watcher::Error>> + Unpin,
{
    loop {
        let event = next_event(events).await;
        if let watcher::Event::Apply(s) | watcher::Event::Delete(s) = &event
            && s.name_any() == name
        {
            return event;
        }
    }
}

/// Waits for a complete (re-)list, returning the names it listed. A streaming list has no `Init`.
async fn next_relist<S>(events: &mut S) -> Vec<String>
where
    S: Stream<Item = Result<watcher::Event<Service>, watcher::Error>> + Unpin,
{
    let mut names = Vec::new();
    loop {
        match next_event(events).await {
            watcher::Event::Init => names.clear(),
            watcher::Event::InitApply(s) => names.push(s.name_any()),
            watcher::Event::InitDone => return names,
            other => panic!("expected a re-list, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn watcher_sees_changes_and_recovers_from_gone_and_dropped_streams() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    services.create(&PostParams::default(), &service("existing", "cart")).await.unwrap();
    let mut events = watcher(services.clone(), watcher::Config::default()).boxed();
    assert_eq!(next_relist(&mut events).await, ["existing"]);

    services.create(&PostParams::default(), &service("cart", "cart")).await.unwrap();
    assert!(matches!(next_change(&mut events, "cart").await, watcher::Event::Apply(_)));
    let label = Patch::Merge(json!({"metadata": {"labels": {"tier": "web"}}}));
    services.patch("cart", &PatchParams::default(), &label).await.unwrap();
    match next_change(&mut events, "cart").await {
        watcher::Event::Apply(s) => assert_eq!(s.labels()["tier"], "web"),
        other => panic!("expected the modification, got {other:?}"),
    }
    services.delete("cart", &DeleteParams::default()).await.unwrap();
    assert!(matches!(next_change(&mut events, "cart").await, watcher::Event::Delete(_)));

    // The watch the client reopens is answered 410 Gone, so it lists again.
    server.expire_next_watch();
    server.drop_watches();
    assert_eq!(next_relist(&mut events).await, ["existing"]);
    services.create(&PostParams::default(), &service("after-gone", "cart")).await.unwrap();
    assert!(matches!(next_change(&mut events, "after-gone").await, watcher::Event::Apply(_)));

    // A change made while no stream is open reaches the client when it resumes from its version,
    // without a re-list.
    server.drop_watches();
    services.create(&PostParams::default(), &service("after-drop", "cart")).await.unwrap();
    match next_event(&mut events).await {
        watcher::Event::Apply(s) => assert_eq!(s.name_any(), "after-drop"),
        other => panic!("expected the change made while the stream was closed, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_watcher_starts_from_the_initial_events() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    services.create(&PostParams::default(), &service("existing", "cart")).await.unwrap();
    let mut events = watcher(services.clone(), watcher::Config::default().streaming_lists()).boxed();
    assert_eq!(next_relist(&mut events).await, ["existing"]);
    services.create(&PostParams::default(), &service("cart", "cart")).await.unwrap();
    assert!(matches!(next_change(&mut events, "cart").await, watcher::Event::Apply(_)));
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_is_gone() {
    let server = TestApiServer::start_with(Options { history_limit: 2, ..Options::default() }).await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let first = services.create(&PostParams::default(), &service("first", "cart")).await.unwrap();
    for name in ["second", "third", "fourth"] {
        services.create(&PostParams::default(), &service(name, "cart")).await.unwrap();
    }
    let mut stream =
        services.watch(&WatchParams::default(), &first.resource_version().unwrap()).await.unwrap().boxed();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Error(status) => assert_eq!((status.code, status.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410 Gone, got {other:?}"),
    }

    let third = services.get("third").await.unwrap();
    let mut stream =
        services.watch(&WatchParams::default(), &third.resource_version().unwrap()).await.unwrap().boxed();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Added(s) => assert_eq!(s.name_any(), "fourth"),
        other => panic!("expected the retained event, got {other:?}"),
    }
}

#[tokio::test]
async fn a_lagging_watch_delivers_every_event_in_order_but_late() {
    let max = Duration::from_millis(400);
    let options = Options {
        watch_delays: vec![("services".to_string(), max)],
        watch_delay_seed: 7,
        ..Options::default()
    };
    let server = TestApiServer::start_with(options).await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let existing = services.create(&PostParams::default(), &service("existing", "cart")).await.unwrap();
    let mut stream = services.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let started = tokio::time::Instant::now();

    let mut expected = vec![("ADDED", existing.name_any())];
    let names: Vec<String> = (0..15).map(|i| format!("cart-{i:02}")).collect();
    for name in &names {
        services.create(&PostParams::default(), &service(name, "cart")).await.unwrap();
        expected.push(("ADDED", name.clone()));
    }
    let label = Patch::Merge(json!({"metadata": {"labels": {"tier": "web"}}}));
    for name in &names {
        services.patch(name, &PatchParams::default(), &label).await.unwrap();
        expected.push(("MODIFIED", name.clone()));
    }
    for name in names.iter().step_by(2) {
        services.delete(name, &DeleteParams::default()).await.unwrap();
        expected.push(("DELETED", name.clone()));
    }

    let (mut delivered, mut versions) = (Vec::new(), Vec::new());
    while delivered.len() < expected.len() {
        let (event_type, service) = match next(&mut stream).await.unwrap() {
            WatchEvent::Added(s) => ("ADDED", s),
            WatchEvent::Modified(s) => ("MODIFIED", s),
            WatchEvent::Deleted(s) => ("DELETED", s),
            other => panic!("expected a change, got {other:?}"),
        };
        versions.push(service.resource_version().unwrap().parse::<u64>().unwrap());
        delivered.push((event_type, service.name_any()));
    }
    assert_eq!(delivered, expected, "every event, in the order of the changes");
    assert!(versions.is_sorted(), "{versions:?}");
    // Each event comes a random delay of up to `max` after its change, so the last no sooner than the
    // longest delay drawn after the first change. That the longest of these 38 draws is below half
    // the maximum has a chance of 2^-38.
    assert!(started.elapsed() >= max / 2, "the watch lags");
}

#[tokio::test]
async fn delete_waits_for_finalizers() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let mut guarded = service("cart", "cart");
    guarded.meta_mut().finalizers = Some(vec!["bellwether.dev/cleanup".into()]);
    services.create(&PostParams::default(), &guarded).await.unwrap();

    let pending = services.delete("cart", &DeleteParams::default()).await.unwrap();
    assert!(pending.left().is_some_and(|s| s.metadata.deletion_timestamp.is_some()));
    let terminating = services.get("cart").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    let again = services.delete("cart", &DeleteParams::default()).await.unwrap();
    assert_eq!(again.left().unwrap().resource_version(), terminating.resource_version());

    let add = Patch::Json::<()>(from_json(
        json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "late"}]),
    ));
    assert_eq!(api_error(services.patch("cart", &PatchParams::default(), &add).await).code, 422);
    let release = Patch::Json::<()>(from_json(json!([{"op": "remove", "path": "/metadata/finalizers"}])));
    services.patch("cart", &PatchParams::default(), &release).await.unwrap();
    assert_eq!(api_error(services.get("cart").await).code, 404);

    let plain = services.create(&PostParams::default(), &service("plain", "cart")).await.unwrap();
    let stale = DeleteParams {
        preconditions: Some(Preconditions { resource_version: Some("1".into()), uid: None }),
        ..DeleteParams::default()
    };
    assert_eq!(api_error(services.delete("plain", &stale).await).code, 409);
    let done = services.delete("plain", &DeleteParams::default()).await.unwrap();
    assert_eq!(done.right().unwrap().details.unwrap().uid, plain.uid().unwrap());
    assert_eq!(api_error(services.get("plain").await).code, 404);
}

async fn available(replica_sets: &Api<ReplicaSet>, name: &str) -> Option<(i32, i64)> {
    let replica_set = replica_sets.get(name).await.unwrap();
    let status = replica_set.status?;
    Some((status.available_replicas.unwrap_or(0), status.observed_generation?))
}

#[tokio::test]
async fn replica_sets_become_available_unless_they_crash_loop() {
    let server = TestApiServer::start().await;
    let replica_sets: Api<ReplicaSet> = Api::namespaced(server.client(), NAMESPACE);
    // The crashing one first: by the time the healthy one is available, it has waited at least as long.
    replica_sets
        .create(&PostParams::default(), &replica_set("broken", "example/crashloop:1", 2))
        .await
        .unwrap();
    replica_sets.create(&PostParams::default(), &replica_set("healthy", "example/app:1", 3)).await.unwrap();

    eventually("the healthy ReplicaSet to be available", || async {
        (available(&replica_sets, "healthy").await == Some((3, 1))).then_some(())
    })
    .await;
    let broken = replica_sets.get("broken").await.unwrap().status.unwrap();
    assert_eq!((broken.replicas, broken.ready_replicas, broken.available_replicas), (2, Some(0), Some(0)));

    let scale = Patch::Merge(json!({"spec": {"replicas": 5}}));
    replica_sets.patch("healthy", &PatchParams::default(), &scale).await.unwrap();
    eventually("the scaled ReplicaSet to be available", || async {
        (available(&replica_sets, "healthy").await == Some((5, 2))).then_some(())
    })
    .await;
}

/// A Job running `script` with `sh -c`, its `REVISION` set to `revision`.
fn job(name: &str, script: &str, revision: &str, spec: Value) -> Job {
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "smoke",
                "image": "busybox:1.36",
                "command": ["sh", "-c"],
                "args": [script],
                "env": [{"name": "REVISION", "value": revision}],
            }],
        }}},
    });
    for (key, value) in spec.as_object().into_iter().flatten() {
        job["spec"][key] = value.clone();
    }
    from_json(job)
}

/// The Job's conditions that are True, as (type, reason), once it has `Complete` or `Failed`.
async fn finished(jobs: &Api<Job>, name: &str) -> Option<(Vec<(String, String)>, JobStatus)> {
    let status = jobs.get(name).await.unwrap().status?;
    let conditions: Vec<(String, String)> = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "True")
        .map(|c| (c.type_.clone(), c.reason.clone().unwrap_or_default()))
        .collect();
    conditions.iter().any(|(kind, _)| kind == "Complete" || kind == "Failed").then_some((conditions, status))
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn a_job_runs_its_command_and_its_status_says_how_it_ended() {
    let server = TestApiServer::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), NAMESPACE);
    let script = r#"test "$REVISION" != bad"#;
    jobs.create(&PostParams::default(), &job("good", script, "abc", json!({}))).await.unwrap();
    jobs.create(&PostParams::default(), &job("bad", script, "bad", json!({"backoffLimit": 1})))
        .await
        .unwrap();
    // Past its deadline long before the command would end.
    let slow = job("slow", "sleep 30", "abc", json!({"activeDeadlineSeconds": 1}));
    jobs.create(&PostParams::default(), &slow).await.unwrap();

    let running = eventually("the slow Job to start", || async {
        jobs.get("slow").await.unwrap().status.filter(|s| s.start_time.is_some())
    })
    .await;
    assert_eq!((running.active, running.conditions), (Some(1), None));

    let (conditions, good) = eventually("the good Job to finish", || finished(&jobs, "good")).await;
    assert_eq!(
        conditions,
        pairs(&[("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")])
    );
    assert_eq!((good.succeeded, good.failed, good.active), (Some(1), None, None));
    assert!(good.completion_time.is_some() && good.start_time.is_some());

    let (conditions, bad) = eventually("the bad Job to fail", || finished(&jobs, "bad")).await;
    assert_eq!(
        conditions,
        pairs(&[("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")])
    );
    assert_eq!(
        (bad.failed, bad.succeeded, bad.completion_time),
        (Some(2), None, None),
        "ran twice: backoffLimit 1"
    );

    let (conditions, slow) =
        eventually("the slow Job to pass its deadline", || finished(&jobs, "slow")).await;
    assert_eq!(conditions, pairs(&[("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded")]));
    let failed = slow.conditions.iter().flatten().find(|c| c.type_ == "Failed").unwrap();
    assert_eq!(failed.message.as_deref(), Some("Job was active longer than specified deadline"));
    let took = failed.last_transition_time.as_ref().unwrap().0.as_second()
        - slow.start_time.as_ref().unwrap().0.as_second();
    assert!((1..30).contains(&took), "killed at its deadline, after {took}s");
}

#[tokio::test]
async fn a_job_the_api_server_would_refuse_is_refused_and_jobs_are_discovered() {
    let server = TestApiServer::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), NAMESPACE);
    let mut always = job("always", "true", "abc", json!({}));
    always.spec.as_mut().unwrap().template.spec.as_mut().unwrap().restart_policy = Some("Always".into());
    let refused = api_error(jobs.create(&PostParams::default(), &always).await);
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert!(
        refused.message.contains(
            r#"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#
        ),
        "{}",
        refused.message
    );
    let batch = server.client().list_api_group_resources("batch/v1").await.expect("discovery of batch/v1");
    let names: Vec<&str> = batch.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["jobs", "jobs/status"]);
}

/// The route's parents that the simulated Gateway accepted, with the generation it observed.
fn accepted_parents(status: Option<Value>) -> Vec<(String, i64)> {
    let parents = status.and_then(|s| s["parents"].as_array().cloned()).unwrap_or_default();
    parents
        .iter()
        .filter(|p| p["controllerName"] == GATEWAY_CONTROLLER)
        .filter_map(|p| {
            let accepted = p["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Accepted" && c["status"] == "True")?;
            Some((p["parentRef"]["name"].as_str()?.to_string(), accepted["observedGeneration"].as_i64()?))
        })
        .collect()
}

#[tokio::test]
async fn routes_are_accepted_for_their_current_generation() {
    let server = TestApiServer::start().await;
    let http_routes: Api<HttpRoute> = Api::namespaced(server.client(), NAMESPACE);
    let mut route: Value = serde_json::to_value(example::<HttpRoute>("httproute.yaml")).unwrap();
    route["spec"]["parentRefs"].as_array_mut().unwrap().push(json!({"name": "internal"}));
    http_routes.create(&PostParams::default(), &from_json(route)).await.unwrap();
    let accepted =
        |generation: i64| vec![("public".to_string(), generation), ("internal".to_string(), generation)];

    let status = |route: HttpRoute| route.status.map(|s| serde_json::to_value(s).unwrap());
    eventually("the route to be accepted", || async {
        let parents = accepted_parents(status(http_routes.get("checkout").await.unwrap()));
        (parents == accepted(1)).then_some(())
    })
    .await;

    let hostnames = Patch::Merge(json!({"spec": {"hostnames": ["shop.example.com"]}}));
    let changed = http_routes.patch("checkout", &PatchParams::default(), &hostnames).await.unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    eventually("the new generation to be accepted", || async {
        let parents = accepted_parents(status(http_routes.get("checkout").await.unwrap()));
        (parents == accepted(2)).then_some(())
    })
    .await;

    let grpc_routes: Api<GrpcRoute> = Api::namespaced(server.client(), NAMESPACE);
    let grpc: GrpcRoute = from_json(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "payments"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [{"backendRefs": [{"name": "payments-stable", "port": 9090, "weight": 100}]}],
        },
    }));
    grpc_routes.create(&PostParams::default(), &grpc).await.unwrap();
    eventually("the GRPCRoute to be accepted", || async {
        let route = grpc_routes.get("payments").await.unwrap();
        let parents = accepted_parents(route.status.map(|s| serde_json::to_value(s).unwrap()));
        (parents == [("public".to_string(), 1)]).then_some(())
    })
    .await;
}

/// The ReplicaSets' `(availableReplicas, observedGeneration)` and the routes' accepted generation of
/// their one parent, by name, once the simulated controllers have written them.
async fn simulated_status(
    replica_sets: &Api<ReplicaSet>,
    routes: &Api<HttpRoute>,
) -> (Vec<(String, Option<(i32, i64)>)>, Vec<(String, Option<i64>)>) {
    let listed = replica_sets.list(&ListParams::default()).await.unwrap().items;
    let replica_sets = listed
        .into_iter()
        .map(|rs| {
            let status =
                rs.status.as_ref().and_then(|s| Some((s.available_replicas?, s.observed_generation?)));
            (rs.name_any(), status)
        })
        .collect();
    let listed = routes.list(&ListParams::default()).await.unwrap().items;
    let routes = listed
        .into_iter()
        .map(|route| {
            let name = route.name_any();
            match accepted_parents(route.status.map(|s| serde_json::to_value(s).unwrap())).as_slice() {
                [(_, generation)] => (name, Some(*generation)),
                _ => (name, None),
            }
        })
        .collect();
    (replica_sets, routes)
}

#[tokio::test]
async fn the_simulated_controllers_keep_up_with_many_objects() {
    const COUNT: usize = 200;
    let delay = Duration::from_millis(300);
    // The default history lets the simulated controllers look only at what changed; a short one
    // makes them list everything again.
    for history_limit in [Options::default().history_limit, 8] {
        let options = Options { history_limit, replica_set_delay: delay, ..Options::default() };
        let server = TestApiServer::start_with(options).await;
        let replica_sets: Api<ReplicaSet> = Api::namespaced(server.client(), NAMESPACE);
        let routes: Api<HttpRoute> = Api::namespaced(server.client(), NAMESPACE);
        let names: Vec<String> = (0..COUNT).map(|i| format!("app-{i:03}")).collect();
        // Every write of a route is checked against the Gateway API schema, which is slow: fewer.
        let routed: Vec<&String> = names.iter().step_by(10).collect();
        let started = tokio::time::Instant::now();
        for name in &names {
            let image = if name == "app-007" { "example/crashloop:1" } else { "example/app:1" };
            replica_sets.create(&PostParams::default(), &replica_set(name, image, 3)).await.unwrap();
        }
        for name in &routed {
            let mut route = examples("httproute.yaml").remove(0);
            route["metadata"] = json!({"name": name});
            routes.create(&PostParams::default(), &from_json(route)).await.unwrap();
        }
        let expected = |changed: &[&String], generation: i64| {
            let replica_sets = names.iter().map(|name| {
                let (replicas, generation) = if changed.contains(&name) { (4, generation) } else { (3, 1) };
                let available = if name == "app-007" { 0 } else { replicas };
                (name.clone(), Some((available, generation)))
            });
            let routes = routed
                .iter()
                .map(|name| (name.to_string(), Some(if changed.contains(name) { generation } else { 1 })));
            (replica_sets.collect::<Vec<_>>(), routes.collect::<Vec<_>>())
        };
        let all_settled = |changed, generation| {
            let expected = expected(changed, generation);
            let (replica_sets, routes) = (&replica_sets, &routes);
            eventually("every ReplicaSet available and every route accepted", move || {
                let expected = expected.clone();
                async move { (simulated_status(replica_sets, routes).await == expected).then_some(()) }
            })
        };
        all_settled(&[], 1).await;
        assert!(started.elapsed() >= delay, "pods are ready only after the delay");

        let changed: Vec<&String> = routed.iter().copied().step_by(2).collect();
        let started = tokio::time::Instant::now();
        for name in &changed {
            let scale = Patch::Merge(json!({"spec": {"replicas": 4}}));
            replica_sets.patch(name, &PatchParams::default(), &scale).await.unwrap();
            let hostnames = Patch::Merge(json!({"spec": {"hostnames": [format!("{name}.example.com")]}}));
            routes.patch(name, &PatchParams::default(), &hostnames).await.unwrap();
        }
        all_settled(&changed, 2).await;
        assert!(started.elapsed() >= delay, "the new pods are ready only after the delay");
    }
}

#[tokio::test]
async fn injected_conflicts_refuse_the_next_writes() {
    let server = TestApiServer::start().await;
    let rollouts: Api<Rollout> = Api::namespaced(server.client(), NAMESPACE);
    rollouts.create(&PostParams::default(), &example("rollout.yaml")).await.unwrap();
    server.inject_conflicts("rollouts", 2);

    let pause = Patch::Merge(json!({"spec": {"paused": true}}));
    for _ in 0..2 {
        let conflict = api_error(rollouts.patch("checkout", &PatchParams::default(), &pause).await);
        assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    }
    assert_eq!(rollouts.get("checkout").await.unwrap().metadata.generation, Some(1), "reads are not refused");
    let paused = rollouts.patch("checkout", &PatchParams::default(), &pause).await.unwrap();
    assert_eq!(paused.metadata.generation, Some(2));
}

#[tokio::test]
async fn namespaced_and_cluster_scoped_templates() {
    let server = TestApiServer::start().await;
    let templates: Api<AnalysisTemplate> = Api::namespaced(server.client(), NAMESPACE);
    let cluster_templates: Api<ClusterAnalysisTemplate> = Api::all(server.client());
    for document in examples("analysis-templates.yaml") {
        if document["kind"] == "AnalysisTemplate" {
            templates.create(&PostParams::default(), &from_json(document)).await.unwrap();
        } else {
            let created =
                cluster_templates.create(&PostParams::default(), &from_json(document)).await.unwrap();
            assert_eq!(created.metadata.namespace, None);
        }
    }

    let listed = cluster_templates.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        listed.iter().map(|t| t.name_any()).collect::<Vec<_>>(),
        ["gateway-error-rate", "gateway-latency"]
    );
    assert!(cluster_templates.get("gateway-latency").await.is_ok());
    let everywhere: Api<AnalysisTemplate> = Api::all(server.client());
    assert_eq!(everywhere.list(&ListParams::default()).await.unwrap().items[0].name_any(), "error-rate");
}

#[tokio::test]
async fn the_event_recorder_creates_then_patches_a_series() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let cart = services.create(&PostParams::default(), &service("cart", "cart")).await.unwrap();
    let reporter = events::Reporter { controller: "bellwether".into(), instance: None };
    let recorder = events::Recorder::new(server.client(), reporter);
    let event = events::Event {
        type_: events::EventType::Normal,
        reason: "Promoted".into(),
        note: Some("canary promoted".into()),
        action: "Promote".into(),
        secondary: None,
    };
    recorder.publish(&event, &cart.object_ref(&())).await.unwrap();
    recorder.publish(&event, &cart.object_ref(&())).await.unwrap();

    let recorded: Api<Event> = Api::namespaced(server.client(), NAMESPACE);
    let [event] = recorded.list(&ListParams::default()).await.unwrap().items.try_into().expect("one event");
    assert_eq!(event.reason.as_deref(), Some("Promoted"));
    assert_eq!(event.series.map(|s| s.count), Some(2));
}

#[tokio::test]
async fn its_kubeconfig_gives_another_process_a_working_client() {
    let server = TestApiServer::start().await;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig()).expect("a valid kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client configuration from the kubeconfig");
    let client = kube::Client::try_from(config).expect("a client");
    let services: Api<Service> = Api::namespaced(client, NAMESPACE);
    assert!(services.list(&ListParams::default()).await.expect("listing through it").items.is_empty());
}

#[tokio::test]
async fn forbidden_writes_are_refused_as_rbac_would_and_reads_still_work() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    server.forbid_writes("services");
    let service: Service = from_json(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}));
    let Err(Error::Api(status)) = services.create(&PostParams::default(), &service).await else {
        panic!("a forbidden create succeeded");
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert!(status.message.contains("cannot create resource \"services\""), "{}", status.message);
    assert!(status.message.contains("User \"test-admin\""), "{}", status.message);
    assert!(services.list(&ListParams::default()).await.expect("reads still work").items.is_empty());
    let as_alice: Api<Service> = Api::namespaced(server.client_as("alice"), NAMESPACE);
    let Err(Error::Api(status)) = as_alice.create(&PostParams::default(), &service).await else {
        panic!("a forbidden create succeeded");
    };
    assert!(status.message.contains("User \"alice\" cannot create"), "the refused user: {}", status.message);
}

#[tokio::test]
async fn discovery_lists_a_group_versions_resources_and_an_unserved_group_is_404_throughout() {
    let server = TestApiServer::start().await;
    let client = server.client();
    let bellwether = client.list_api_group_resources("bellwether.dev/v1alpha1").await.expect("discovery");
    assert_eq!(bellwether.group_version, "bellwether.dev/v1alpha1");
    let rollouts = bellwether.resources.iter().find(|r| r.name == "rollouts").expect("rollouts are served");
    assert_eq!((rollouts.kind.as_str(), rollouts.namespaced), ("Rollout", true));
    assert!(bellwether.resources.iter().any(|r| r.name == "rollouts/status"));
    let core = client.list_core_api_resources("v1").await.expect("discovery of the core group");
    assert!(core.resources.iter().any(|r| r.name == "services"));
    let Err(Error::Api(status)) = client.list_api_group_resources("bellwether.dev/v1").await else {
        panic!("a version the server does not serve was discovered");
    };
    assert_eq!(status.code, 404);

    server.stop_serving_group("bellwether.dev");
    let Err(Error::Api(status)) = client.list_api_group_resources("bellwether.dev/v1alpha1").await else {
        panic!("an unserved group was discovered");
    };
    assert_eq!(status.code, 404);
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    let Err(Error::Api(status)) = rollouts.list(&ListParams::default()).await else {
        panic!("an unserved group's resources were listed");
    };
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            404,
            "the server could not find the requested resource (/apis/bellwether.dev/v1alpha1/namespaces/shop/rollouts)"
        )
    );
    let services: Api<Service> = Api::namespaced(client, NAMESPACE);
    assert!(
        services.list(&ListParams::default()).await.expect("other groups are still served").items.is_empty()
    );
}

/// Injected failures answer the next requests of a resource, reads and watches included, and only
/// as many as asked; a 403 is worded as RBAC words it, with the verb refused.
#[tokio::test]
async fn injected_failures_answer_the_next_requests_then_stop() {
    let server = TestApiServer::start().await;
    let services: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    let service: Service = from_json(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}));
    services.create(&PostParams::default(), &service).await.expect("creating a Service");
    let code = |result: Result<Service, Error>| match result {
        Err(Error::Api(status)) => (status.code, status.reason),
        other => panic!("not an API error: {other:?}"),
    };
    server.fail_requests("services", 500, 2);
    assert_eq!(code(services.get("web").await), (500, "InternalError".into()));
    let mut watch = services.watch(&WatchParams::default(), "0").await.expect("a watch stream").boxed();
    let Some(Err(Error::Api(status))) = watch.next().await else { panic!("the watch was not refused") };
    assert_eq!(status.code, 500);
    services.get("web").await.expect("served again after two failures");

    server.fail_requests("services", 403, usize::MAX);
    let Err(Error::Api(status)) = services.list(&ListParams::default()).await else { panic!("listed") };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert!(status.message.contains("cannot list resource \"services\""), "{}", status.message);
    assert_eq!(code(services.get("web").await).0, 403, "still refused");
}

#[tokio::test]
async fn the_call_log_records_each_users_calls_in_rbac_terms() {
    let server = TestApiServer::start().await;
    let log = server.call_log();
    let as_alice: Api<Service> = Api::namespaced(server.client_as("alice"), NAMESPACE);
    let service: Service = from_json(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}));
    as_alice.create(&PostParams::default(), &service).await.expect("creating a Service");
    as_alice.list(&ListParams::default()).await.expect("listing Services");
    let anonymous: Api<Service> = Api::namespaced(server.client(), NAMESPACE);
    anonymous.get("web").await.expect("reading the Service");
    let call = |verb: &str| (String::new(), "services".to_string(), verb.to_string());
    assert_eq!(log.calls_of("alice"), [call("create"), call("list")].into_iter().collect());
    assert_eq!(log.calls_of(""), [call("get")].into_iter().collect());
    assert!(log.groups_of("alice").is_empty());
}

#[tokio::test]
async fn the_call_log_records_the_groups_a_user_acts_as() {
    let server = TestApiServer::start().await;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig()).expect("a kubeconfig");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("a configuration");
    config.auth_info.impersonate = Some("alice".into());
    config.auth_info.impersonate_groups = Some(vec!["ops".into(), "oncall".into()]);
    let client = kube::Client::try_from(config).expect("a client");
    Api::<Service>::namespaced(client, NAMESPACE).list(&ListParams::default()).await.expect("listing");
    let groups: Vec<String> = server.call_log().groups_of("alice").into_iter().collect();
    assert_eq!(groups, ["oncall", "ops"]);
}

#[tokio::test]
async fn the_call_log_counts_repeated_calls_and_its_counts_only_grow() {
    let server = TestApiServer::start().await;
    let log = server.call_log();
    let as_alice: Api<Service> = Api::namespaced(server.client_as("alice"), NAMESPACE);
    let service: Service = from_json(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}));
    as_alice.create(&PostParams::default(), &service).await.expect("creating a Service");
    for _ in 0..3 {
        as_alice.list(&ListParams::default()).await.expect("listing Services");
    }
    let call = |verb: &str| (String::new(), "services".to_string(), verb.to_string());
    let before = log.counts_of("alice");
    assert_eq!(before, [(call("create"), 1), (call("list"), 3)].into_iter().collect());

    as_alice.get("web").await.expect("reading the Service");
    as_alice.list(&ListParams::default()).await.expect("listing Services");
    let after = log.counts_of("alice");
    let made: Vec<_> =
        after.iter().map(|(call, n)| (call.clone(), n - before.get(call).unwrap_or(&0))).collect();
    assert_eq!(made, [(call("create"), 0), (call("get"), 1), (call("list"), 1)]);
    assert_eq!(log.calls_of("alice"), after.into_keys().collect());
    assert!(log.counts_of("bob").is_empty());
}

#[tokio::test]
async fn a_namespace_lists_and_watches_only_its_own_objects_in_name_order() {
    let server = TestApiServer::start().await;
    let client = server.client();
    // Namespaces that share a prefix with NAMESPACE sort right before and after it.
    for (namespace, name) in
        [("shop-2", "b"), (NAMESPACE, "c"), ("sho", "z"), (NAMESPACE, "a"), ("shop-2", "a"), (NAMESPACE, "b")]
    {
        let services: Api<Service> = Api::namespaced(client.clone(), namespace);
        services.create(&PostParams::default(), &service(name, "cart")).await.unwrap();
    }
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NAMESPACE);
    replica_sets.create(&PostParams::default(), &replica_set("0", "example/app:1", 1)).await.unwrap();

    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let listed = services.list(&ListParams::default()).await.unwrap().items;
    let names: Vec<String> = listed.iter().map(|s| s.name_any()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(listed.iter().all(|s| s.namespace().as_deref() == Some(NAMESPACE)));

    let everywhere: Api<Service> = Api::all(client);
    let listed = everywhere.list(&ListParams::default()).await.unwrap().items;
    let keys: Vec<(String, String)> = listed.iter().map(|s| (s.namespace().unwrap(), s.name_any())).collect();
    let expected = [
        ("sho", "z"),
        (NAMESPACE, "a"),
        (NAMESPACE, "b"),
        (NAMESPACE, "c"),
        ("shop-2", "a"),
        ("shop-2", "b"),
    ];
    assert_eq!(keys, expected.map(|(namespace, name)| (namespace.to_string(), name.to_string())));

    let mut stream = services.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let mut initial = Vec::new();
    while initial.len() < 3 {
        match next(&mut stream).await.unwrap() {
            WatchEvent::Added(s) => initial.push((s.namespace().unwrap(), s.name_any())),
            other => panic!("expected the initial events, got {other:?}"),
        }
    }
    assert_eq!(initial, ["a", "b", "c"].map(|name| (NAMESPACE.to_string(), name.to_string())));
    services.create(&PostParams::default(), &service("d", "cart")).await.unwrap();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Added(s) => assert_eq!(s.name_any(), "d", "no initial event came from elsewhere"),
        other => panic!("expected the new Service, got {other:?}"),
    }
}
