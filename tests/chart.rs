//! Checks of the Helm chart in `charts/bellwether` that need no Helm: its files parse, its values
//! match its schema, its templates reference only values that exist, its CRDs are the generated
//! ones, and its RBAC rules grant exactly the API calls the controller makes.

#[path = "support/controller_calls.rs"]
mod controller_calls;

use controller_calls::CONTROLLER_CALLS;
use regex::Regex;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/bellwether")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn values() -> Yaml {
    serde_yaml::from_str(&read(&chart().join("values.yaml"))).expect("values.yaml parses")
}

fn schema() -> Json {
    serde_json::from_str(&read(&chart().join("values.schema.json"))).expect("values.schema.json parses")
}

#[test]
fn chart_yaml_parses_as_a_v2_chart() {
    let chart: Yaml = serde_yaml::from_str(&read(&chart().join("Chart.yaml"))).expect("Chart.yaml parses");
    assert_eq!(chart["apiVersion"].as_str(), Some("v2"));
    assert_eq!(chart["name"].as_str(), Some("bellwether"));
    assert!(chart["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(chart["appVersion"].as_str(), Some(env!("CARGO_PKG_VERSION")));
}

/// Whether `value` has the JSON Schema type `name`.
fn has_type(value: &Yaml, name: &str) -> bool {
    match name {
        "object" => value.is_mapping(),
        "array" => value.is_sequence(),
        "string" => value.is_string(),
        "boolean" => value.is_bool(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        other => panic!("unexpected schema type {other}"),
    }
}

/// Checks `value` against `schema` for what the chart's schema uses: `type`, `enum`, `properties`
/// with `additionalProperties: false`, `minimum`. Also requires every declared property to be in
/// values.yaml, so that the schema and the defaults document the same settings.
fn check(path: &str, value: &Yaml, schema: &Json, problems: &mut Vec<String>) {
    let types: Vec<&str> = match &schema["type"] {
        Json::String(t) => vec![t.as_str()],
        Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
        _ => {
            problems.push(format!("{path}: the schema gives no type"));
            return;
        }
    };
    if !types.iter().any(|t| has_type(value, t)) {
        problems.push(format!("{path}: {value:?} is not of type {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        let value = serde_json::to_value(value).expect("YAML values convert to JSON");
        if !allowed.contains(&value) {
            problems.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(minimum), Some(n)) = (schema["minimum"].as_i64(), value.as_i64())
        && n < minimum
    {
        problems.push(format!("{path}: {n} is below the minimum {minimum}"));
    }
    let Some(mapping) = value.as_mapping() else { return };
    match schema["properties"].as_object() {
        Some(properties) => {
            for (key, child) in mapping {
                let key = key.as_str().expect("string keys");
                match properties.get(key) {
                    Some(child_schema) => check(&format!("{path}.{key}"), child, child_schema, problems),
                    None => problems.push(format!("{path}.{key}: not declared in the schema")),
                }
            }
            for key in properties.keys() {
                if !mapping.contains_key(key.as_str()) {
                    problems.push(format!("{path}.{key}: declared in the schema but not in values.yaml"));
                }
            }
        }
        None if schema["additionalProperties"] == Json::Bool(false) => {
            problems.push(format!("{path}: closed to every property"));
        }
        None => {}
    }
}

#[test]
fn values_yaml_matches_the_schema() {
    let schema = schema();
    assert_eq!(schema["$schema"].as_str(), Some("http://json-schema.org/draft-07/schema#"));
    assert_eq!(schema["additionalProperties"], Json::Bool(false));
    let mut problems = Vec::new();
    check(".Values", &values(), &schema, &mut problems);
    assert!(problems.is_empty(), "values.yaml and values.schema.json disagree:\n{}", problems.join("\n"));
}

fn templates() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(chart().join("templates"))
        .expect("templates/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), read(&path)))
        .collect();
    files.sort();
    files
}

#[test]
fn templates_reference_only_values_that_exist() {
    let values = values();
    let reference = Regex::new(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").unwrap();
    let mut missing = BTreeSet::new();
    let mut seen = 0;
    for (file, text) in templates() {
        for found in reference.captures_iter(&text) {
            seen += 1;
            let mut node = &values;
            for key in found[1].trim_start_matches('.').split('.') {
                match node.get(key) {
                    Some(child) => node = child,
                    None => {
                        missing.insert(format!("{file}: .Values{}", &found[1]));
                        break;
                    }
                }
            }
        }
    }
    assert!(seen > 20, "only {seen} references found: is the pattern right?");
    assert!(missing.is_empty(), "templates reference values not in values.yaml:\n{missing:#?}");
}

#[test]
fn chart_crds_are_byte_identical_to_the_generated_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = |dir: &Path| -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let (generated, copied) = (root.join("crds"), chart().join("crds"));
    assert_eq!(names(&copied), names(&generated), "the chart's crds/ holds other files than crds/");
    for name in names(&generated) {
        assert!(
            fs::read(generated.join(&name)).unwrap() == fs::read(copied.join(&name)).unwrap(),
            "charts/bellwether/crds/{name} differs from crds/{name}: copy it again"
        );
    }
}

/// One permission: API group, resource (with subresource), verb.
type Grant = (String, String, String);

/// The rules of each `define` in templates/_rbac.tpl, with the template lines left out: every
/// rule, whichever values turn it on.
fn chart_grants() -> BTreeSet<Grant> {
    let text = read(&chart().join("templates/_rbac.tpl"));
    let define =
        Regex::new(r#"(?s)\{\{-? define "([^"]+)" -?\}\}(.*?)\{\{-? end -?\}\}\s*(?:\{\{/\*|\z)"#).unwrap();
    let mut grants = BTreeSet::new();
    let mut blocks = 0;
    for block in define.captures_iter(&text) {
        blocks += 1;
        let rules: String =
            block[2].lines().filter(|line| !line.contains("{{")).map(|line| format!("{line}\n")).collect();
        let rules: Vec<Yaml> =
            serde_yaml::from_str(&rules).unwrap_or_else(|e| panic!("the rules of {} parse: {e}", &block[1]));
        for rule in rules {
            let strings = |key: &str| -> Vec<String> {
                rule[key].as_sequence().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        grants.insert((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
        }
    }
    assert_eq!(blocks, 3, "expected the namespaced, cluster and leases rules in _rbac.tpl");
    grants
}

#[test]
fn rbac_rules_grant_exactly_the_controllers_calls() {
    let expected: BTreeSet<Grant> = CONTROLLER_CALLS
        .iter()
        .flat_map(|(group, resource, verbs)| {
            verbs.iter().map(|verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect();
    let granted = chart_grants();
    let extra: Vec<_> = granted.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&granted).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "granted but not used: {extra:?}\nused but not granted: {missing:?}"
    );
}

#[test]
fn secrets_are_readable_only_when_prometheus_auth_or_notifications_ask_for_it() {
    let text = read(&chart().join("templates/_rbac.tpl"));
    let guarded = Regex::new(
        r#"\{\{- if or \.Values\.prometheusAuth\.readSecrets \.Values\.notifications\.readSecrets \}\}\n- apiGroups: \[""\]\n  resources: \["secrets"\]\n  verbs: \["get"\]\n\{\{- end \}\}"#,
    )
    .unwrap();
    assert_eq!(text.matches("secrets").count(), 1, "secrets appear once in the rules");
    assert!(
        guarded.is_match(&text),
        "the secrets rule is not guarded by prometheusAuth.readSecrets or notifications.readSecrets"
    );
    assert_eq!(values()["prometheusAuth"]["readSecrets"], Yaml::Bool(false));
    assert_eq!(values()["notifications"]["readSecrets"], Yaml::Bool(false));
}

#[test]
fn config_maps_are_readable_by_the_notifications_name_only() {
    let text = read(&chart().join("templates/_rbac.tpl"));
    let rule = format!(
        "- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  resourceNames: [\"{}\"]\n  verbs: [\"get\"]\n",
        bellwether::api::NAMESPACE_CONFIGMAP
    );
    assert_eq!(text.matches("configmaps").count(), 1, "configmaps appear once in the rules");
    assert!(text.contains(&rule), "no rule granting get on the notifications ConfigMap by name:\n{rule}");
}

#[test]
fn values_default_to_a_locked_down_pod() {
    let values = values();
    let (pod, container) = (&values["podSecurityContext"], &values["securityContext"]);
    assert_eq!(pod["runAsNonRoot"], Yaml::Bool(true));
    assert_eq!(pod["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"));
    assert_eq!(container["runAsNonRoot"], Yaml::Bool(true));
    assert_eq!(container["readOnlyRootFilesystem"], Yaml::Bool(true));
    assert_eq!(container["allowPrivilegeEscalation"], Yaml::Bool(false));
    assert_eq!(container["capabilities"]["drop"], serde_yaml::from_str::<Yaml>("[ALL]").unwrap());
    assert_eq!(container["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"));
    let deployment = read(&chart().join("templates/deployment.yaml"));
    assert!(deployment.contains("toYaml .Values.podSecurityContext"));
    assert!(deployment.contains("toYaml .Values.securityContext"));
}
