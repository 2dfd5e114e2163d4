//! Argo CD's health check for Rollouts (`integrations/argocd/health.lua`), run by a real Lua 5.1
//! interpreter (Argo CD runs gopher-lua, a Lua 5.1) over Rollouts as the e2e suite captures them at
//! each phase, and over hand-made objects that no controller would write. The argocd-cm snippet
//! must embed the same script, and ignore exactly the fields Bellwether patches.

use serde_json::{Value, json};
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

const HEALTH: &str = include_str!("../../integrations/argocd/health.lua");

/// `value` as a Lua expression: a table constructor for objects and arrays, `nil` for null.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for byte in s.bytes() {
                match byte {
                    b'"' | b'\\' => {
                        out.push('\\');
                        out.push(byte as char);
                    }
                    b' '..=b'~' => out.push(byte as char),
                    _ => write!(out, "\\{byte}").expect("writing to a String"),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let fields: Vec<String> =
                map.iter().map(|(k, v)| format!("[{}] = {}", lua(&json!(k)), lua(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// The health Argo CD would show for `object`: its status and message.
pub fn argocd_health(object: &Value) -> (String, String) {
    let program = format!(
        "local obj = {}\nlocal function health(obj)\n{HEALTH}\nend\nlocal hs = health(obj)\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua(object)
    );
    let output = Command::new("lua5.1").arg("-e").arg(&program).output().unwrap_or_else(|e| {
        panic!("running lua5.1 ({e}): install Debian's lua5.1 package (./scripts/test installs it)")
    });
    assert!(output.status.success(), "lua5.1 failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let (status, message) = text.split_once('\n').expect("a status line");
    (status.to_string(), message.to_string())
}

/// A Rollout at generation 1, its status as given.
fn rollout(status: Value) -> Value {
    json!({"apiVersion": "bellwether.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "web", "generation": 1}, "status": status})
}

#[test]
fn objects_no_controller_would_write_still_get_a_health() {
    let none =
        json!({"apiVersion": "bellwether.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"}});
    assert_eq!(argocd_health(&none).0, "Progressing", "no status yet");
    let stale = rollout(json!({"phase": "Healthy", "observedGeneration": 0}));
    assert_eq!(
        argocd_health(&stale),
        ("Progressing".into(), "Waiting for Bellwether to act on generation 1".into())
    );
    let unknown = rollout(json!({"phase": "Exploded", "observedGeneration": 1, "message": "?"}));
    let (status, message) = argocd_health(&unknown);
    assert_eq!(status, "Unknown");
    assert!(message.contains("Unknown phase Exploded"), "{message}");
    let invalid = rollout(json!({
        "phase": "Healthy", "observedGeneration": 1,
        "conditions": [{"type": "InvalidSpec", "status": "True", "message": "invalid spec: \"quotes\" and \\ back"}],
    }));
    assert_eq!(argocd_health(&invalid), ("Degraded".into(), "invalid spec: \"quotes\" and \\ back".into()));
    let scaled_to_zero = rollout(json!({
        "phase": "Paused", "observedGeneration": 1, "pauseConditions": [{"reason": "ScaledToZero"}],
    }));
    assert_eq!(argocd_health(&scaled_to_zero).0, "Progressing", "waits for an autoscaler, not a person");
    let healthy_unverified = rollout(json!({"phase": "Healthy", "observedGeneration": 1, "conditions": []}));
    assert_eq!(argocd_health(&healthy_unverified).0, "Progressing", "Healthy but not Ready");
}

#[test]
fn the_argocd_cm_snippet_embeds_the_health_check_and_ignores_what_bellwether_patches() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/argocd/argocd-cm.yaml");
    let snippet: Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("the snippet")).expect("YAML");
    let data = &snippet["data"];
    assert_eq!(data["resource.customizations.health.bellwether.dev_Rollout"].as_str(), Some(HEALTH));

    // What the controller's own patch builders add to a route, each kind of addition named by the
    // jq path expression that leaves it out of the diff. Argo CD runs each expression as
    // `del(...)` in turn, so the empty `filters` list a removed mirror leaves is dropped after the
    // mirror is.
    const WEIGHTS: &str = ".spec.rules[].backendRefs[].weight";
    const HEADER_ROUTE_RULES: &str = r#".spec.rules[] | select(.name // "" | endswith(".bellwether.dev"))"#;
    const MIRRORS: &str = r#".spec.rules[] | . as $rule | .filters[]? | select(.type == "RequestMirror" and (.requestMirror.backendRef.name as $name | any($rule.backendRefs[]?; .name == $name)))"#;
    const EMPTY_FILTERS: &str = ".spec.rules[] | select(.filters == []) | .filters";
    let route: Value = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web", "resourceVersion": "1"},
        "spec": {"rules": [
            {"backendRefs": [{"name": "web-stable", "weight": 100}, {"name": "web-canary", "weight": 0}]},
            {"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "a", "value": "b"}]}}],
             "backendRefs": [{"name": "web-stable", "weight": 100}, {"name": "web-canary", "weight": 0}]},
        ]},
    }))
    .expect("a route");
    let services = bellwether::controller::routes::Services {
        rollout: "web",
        namespace: "default",
        stable: "web-stable",
        canary: "web-canary",
    };
    let header = bellwether::api::HeaderMatch {
        name: "X-Canary".into(),
        type_: bellwether::api::HeaderMatchType::Exact,
        value: "always".into(),
    };
    let mut everything = bellwether::engine::Traffic::split(30);
    everything.exposure.header_routes.insert("testers".into(), vec![header]);
    everything.exposure.mirror = Some(20);
    let mut needed = std::collections::BTreeSet::new();
    for traffic in [bellwether::engine::Traffic::split(30), everything] {
        let patch = bellwether::controller::routes::traffic_patch(&route, services, &traffic)
            .expect("a managed route")
            .expect("a change");
        for op in patch.as_array().expect("a JSON patch").iter().filter(|op| op["op"] == "add") {
            let pointer = op["path"].as_str().expect("a path");
            let steps: Vec<&str> = pointer.split('/').skip(1).collect();
            let value = &op["value"];
            match steps.as_slice() {
                ["spec", "rules", _, "backendRefs", _, "weight"] => needed.insert(WEIGHTS),
                ["spec", "rules", "-"] => {
                    let name = value["name"].as_str().unwrap_or_default();
                    assert!(name.ends_with(".bellwether.dev"), "{name}");
                    needed.insert(HEADER_ROUTE_RULES)
                }
                ["spec", "rules", rule, "filters", rest @ ..] => {
                    let filters =
                        if rest.is_empty() { value.as_array().unwrap().clone() } else { vec![value.clone()] };
                    let backends = &route["spec"]["rules"][rule.parse::<usize>().unwrap()]["backendRefs"];
                    for filter in &filters {
                        assert_eq!(filter["type"], "RequestMirror", "{filter}");
                        let target = &filter["requestMirror"]["backendRef"]["name"];
                        assert!(
                            backends.as_array().unwrap().iter().any(|b| b["name"] == *target),
                            "{filter}"
                        );
                    }
                    if rest.is_empty() {
                        // A list created for the mirror is left empty when the mirror goes.
                        needed.insert(EMPTY_FILTERS);
                    }
                    needed.insert(MIRRORS)
                }
                _ => panic!("{pointer}: a path the argocd-cm snippet does not know"),
            };
        }
    }
    let route_paths: Vec<&str> = [WEIGHTS, HEADER_ROUTE_RULES, MIRRORS, EMPTY_FILTERS]
        .into_iter()
        .filter(|p| needed.contains(p))
        .collect();
    assert_eq!(route_paths.len(), 4, "every kind of addition is made: {needed:?}");
    let selector = bellwether::controller::rollouts::service_selector_patch(Some("abc"));
    let keys: Vec<&String> = selector["spec"]["selector"].as_object().expect("a selector").keys().collect();
    let service_paths: Vec<String> = keys.iter().map(|k| format!(".spec.selector[\"{k}\"]")).collect();

    let ignored = |kind: &str| -> Vec<String> {
        let text = data[&format!("resource.customizations.ignoreDifferences.{kind}")].as_str().expect(kind);
        let rule: Value = serde_yaml::from_str(text).expect("YAML");
        rule["jqPathExpressions"]
            .as_array()
            .expect("jqPathExpressions")
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ignored("gateway.networking.k8s.io_HTTPRoute"), route_paths);
    assert_eq!(ignored("gateway.networking.k8s.io_GRPCRoute"), route_paths);
    assert_eq!(ignored("Service"), service_paths);
}
