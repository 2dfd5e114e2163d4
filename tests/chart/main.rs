//! Checks of the Helm chart in `charts/bellwether` that need no Helm: its files parse, its values
//! match its schema, its templates reference only values that exist, its CRDs are the generated
//! ones, and its RBAC rules grant exactly the API calls the controller makes.

mod request_policy;

use bellwether_testkit::controller_calls;

use controller_calls::CONTROLLER_CALLS;
use regex::Regex;
use serde::Deserialize;
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
    assert_eq!(
        blocks, 5,
        "expected the namespaced, cluster, leases, alert receiver and readableSecrets rules in _rbac.tpl"
    );
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
fn secrets_are_readable_only_by_name_and_only_those_listed() {
    let rules = read(&chart().join("templates/_rbac.tpl"));
    let by_name = Regex::new(
        r#"- apiGroups: \[""\]\n  resources: \["secrets"\]\n  resourceNames: (.+)\n  verbs: \["get"\]"#,
    )
    .unwrap();
    assert_eq!(
        rules.matches("\"secrets\"").count(),
        2,
        "two secrets rules: readableSecrets and the alert receiver's"
    );
    let names: Vec<String> = by_name.captures_iter(&rules).map(|c| c[1].to_string()).collect();
    assert_eq!(names, ["[{{ .Values.alerts.authSecret | quote }}]", "{{ toJson . }}"], "both by name");
    let rbac = read(&chart().join("templates/rbac.yaml"));
    assert_eq!(
        conditions_around(&rbac, "include \"bellwether.rules.readableSecrets\" $names"),
        [vec![
            "if .Values.rbac.create".to_string(),
            "range $namespace, $names := $secretsByNamespace".into()
        ]],
        "one Role per namespace of readableSecrets"
    );
    let deployment = read(&chart().join("templates/deployment.yaml"));
    assert_eq!(
        conditions_around(&deployment, "--readable-secret={{ .namespace }}/{{ .name }}").concat(),
        ["range .Values.readableSecrets"],
        "the controller is told exactly the Secrets RBAC grants"
    );
    assert!(deployment.contains("--cluster-secrets-namespace={{ .Release.Namespace }}"));
    assert_eq!(values()["readableSecrets"], Yaml::Sequence(vec![]), "no Secret is readable by default");
}

/// Every permission the user roles grant.
fn user_grants() -> BTreeSet<Grant> {
    let text = read(&chart().join("templates/user-roles.yaml"));
    let text = Regex::new(r"(?s)\{\{/\*.*?\*/\}\}").unwrap().replace_all(&text, "");
    let yaml: String =
        text.lines().filter(|line| !line.contains("{{")).map(|line| format!("{line}\n")).collect();
    let mut grants = BTreeSet::new();
    for document in serde_yaml::Deserializer::from_str(&yaml) {
        let role = Yaml::deserialize(document).expect("a user role parses");
        for rule in role["rules"].as_sequence().expect("rules") {
            let strings = |key: &str| -> Vec<String> {
                rule[key].as_sequence().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
            };
            for (group, resource, verb) in strings("apiGroups").iter().flat_map(|g| {
                strings("resources")
                    .into_iter()
                    .flat_map(move |r| strings("verbs").into_iter().map(move |v| (g.clone(), r.clone(), v)))
            }) {
                grants.insert((group, resource, verb));
            }
        }
    }
    grants
}

#[test]
fn people_never_get_to_write_analysis_runs_or_any_status() {
    let grants = user_grants();
    assert!(
        grants.contains(&("bellwether.dev".into(), "rollouts".into(), "patch".into())),
        "the plugin's requests"
    );
    assert!(grants.contains(&("bellwether.dev".into(), "analysisruns".into(), "get".into())));
    let reads = ["get", "list", "watch"];
    let writes: Vec<&Grant> = grants
        .iter()
        .filter(|(_, resource, verb)| {
            (resource.starts_with("analysisruns") || resource.ends_with("/status"))
                && !reads.contains(&verb.as_str())
        })
        .collect();
    assert!(writes.is_empty(), "the chart lets people write verdicts: {writes:?}");
    assert!(grants.iter().all(|(group, _, _)| group == "bellwether.dev"), "only Bellwether's own resources");
    let text = read(&chart().join("templates/user-roles.yaml"));
    assert!(text.starts_with("{{- if and .Values.rbac.create .Values.rbac.aggregateToDefaultRoles }}"));
}

#[test]
fn config_maps_are_readable_by_the_notifications_name_only() {
    let text = read(&chart().join("templates/_rbac.tpl"));
    let rule = format!(
        "- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  resourceNames: [\"{}\"]\n  verbs: [\"list\", \"watch\"]\n",
        bellwether::api::NAMESPACE_CONFIGMAP
    );
    assert_eq!(text.matches("configmaps").count(), 1, "configmaps appear once in the rules");
    assert!(text.contains(&rule), "no rule granting a watch of the notifications ConfigMap by name:\n{rule}");
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

/// The conditions enclosing each occurrence of `needle` in the template `text`, innermost last:
/// `if X` for the branch of `{{ if X }}`, `not X` for its `{{ else }}`, and likewise `with X`,
/// `range X` and `define X`. Helm is not run, so this is how the tests tell which values turn a
/// line of a template on.
fn conditions_around(text: &str, needle: &str) -> Vec<Vec<String>> {
    let action = Regex::new(r"(?s)\{\{-?\s*(.*?)\s*-?\}\}").unwrap();
    let actions: Vec<(usize, String)> =
        action.captures_iter(text).map(|c| (c.get(0).unwrap().start(), c[1].to_string())).collect();
    assert!(text.contains(needle), "{needle:?} is not in the template");
    text.match_indices(needle)
        .map(|(at, _)| {
            let mut stack: Vec<String> = Vec::new();
            for (_, body) in actions.iter().take_while(|(start, _)| *start < at) {
                let keyword = body.split_whitespace().next().unwrap_or("");
                match keyword {
                    "if" | "with" | "range" | "define" => stack.push(body.clone()),
                    "else" => {
                        let top = stack.pop().expect("an else inside a block");
                        let negated = format!("not {}", top.split_once(' ').map_or("", |(_, c)| c));
                        match body.strip_prefix("else").map(str::trim) {
                            Some(rest) if !rest.is_empty() => stack.push(format!("{negated} and {rest}")),
                            _ => stack.push(negated),
                        }
                    }
                    "end" => {
                        stack.pop().expect("an end closing a block");
                    }
                    _ => {}
                }
            }
            stack
        })
        .collect()
}

/// Asserts that every occurrence of `needle` in the template `file` lies inside `{{ if <condition> }}`.
fn assert_only_when(file: &str, needle: &str, condition: &str) {
    let text = read(&chart().join("templates").join(file));
    for stack in conditions_around(&text, needle) {
        assert!(
            stack.iter().any(|c| c == &format!("if {condition}")),
            "{file}: {needle:?} is rendered outside `if {condition}` (inside {stack:?})"
        );
    }
}

/// The controller's flags with their defaults.
fn controller_defaults() -> bellwether::cli::controller::ControllerArgs {
    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        args: bellwether::cli::controller::ControllerArgs,
    }
    <Command as clap::Parser>::parse_from(["bellwether-controller"]).args
}

#[test]
fn the_alert_receiver_is_off_by_default() {
    let alerts = &values()["alerts"];
    assert_eq!(alerts["enabled"], Yaml::Bool(false));
    assert_eq!(alerts["authSecret"].as_str(), Some(""));
    assert_eq!(alerts["insecureNoAuth"], Yaml::Bool(false));
    assert_eq!(
        alerts["maxBodyBytes"].as_u64(),
        Some(1048576),
        "the controller's --alerts-max-body-bytes default"
    );
    assert_eq!(
        alerts["rateLimitPerMinute"].as_u64(),
        Some(120),
        "the controller's --alerts-rate-limit default"
    );
    assert_eq!(
        alerts["unauthenticatedRateLimitPerMinute"].as_u64(),
        Some(u64::from(controller_defaults().alerts_unauthenticated_rate_limit)),
        "the controller's --alerts-unauthenticated-rate-limit default"
    );
    assert_eq!(alerts["tls"]["secretName"].as_str(), Some(""), "plain HTTP unless a Secret is named");
    assert_eq!(alerts["service"]["type"].as_str(), Some("ClusterIP"));
    let port = alerts["port"].as_u64().expect("alerts.port is a number");
    assert!(![8080, 8081].contains(&port), "alerts.port {port} collides with the metrics or health port");
}

#[test]
fn the_alert_receivers_args_and_port_appear_only_when_enabled() {
    let deployment = read(&chart().join("templates/deployment.yaml"));
    for arg in [
        "- --alerts-addr=0.0.0.0:{{ .Values.alerts.port }}\n",
        "- --alerts-auth-secret={{ .Values.alerts.authSecret }}\n",
        "- --alerts-auth-secret-namespace={{ .Release.Namespace }}\n",
        "- --alerts-insecure-no-auth\n",
        "- --alerts-max-body-bytes={{ int64 .Values.alerts.maxBodyBytes }}\n",
        "- --alerts-rate-limit={{ int64 .Values.alerts.rateLimitPerMinute }}\n",
        "- --alerts-unauthenticated-rate-limit={{ int64 .Values.alerts.unauthenticatedRateLimitPerMinute }}\n",
    ] {
        assert_eq!(deployment.matches(arg).count(), 1, "deployment.yaml has not exactly one {arg:?}");
    }
    assert_only_when("deployment.yaml", "--alerts-", ".Values.alerts.enabled");
    assert_only_when("deployment.yaml", "--alerts-auth-secret", ".Values.alerts.authSecret");
    let port = "- name: alerts\n              containerPort: {{ .Values.alerts.port }}\n";
    assert_eq!(deployment.matches(port).count(), 1, "no container port named alerts");
    assert_only_when("deployment.yaml", "- name: alerts", ".Values.alerts.enabled");
    // Without a Secret, the namespace flag would be refused (it requires --alerts-auth-secret), and
    // the insecure flag conflicts with it: the two must be exclusive branches.
    for stack in conditions_around(&deployment, "--alerts-insecure-no-auth") {
        assert!(
            stack.iter().any(|c| c == "not .Values.alerts.authSecret and if .Values.alerts.insecureNoAuth"),
            "--alerts-insecure-no-auth is not the else branch of alerts.authSecret: {stack:?}"
        );
    }
}

#[test]
fn the_alert_receivers_tls_secret_is_mounted_and_passed_only_when_set() {
    let deployment = read(&chart().join("templates/deployment.yaml"));
    let set = "and .Values.alerts.enabled .Values.alerts.tls.secretName";
    let volume = "\n      volumes:\n        # Mounted as a directory, not with subPath, so that a renewed certificate reaches the pod.\n        - name: alert-receiver-tls\n          secret:\n            secretName: {{ .Values.alerts.tls.secretName }}\n";
    assert_eq!(
        deployment.matches(volume).count(),
        1,
        "no pod volume alert-receiver-tls from the Secret:\n{volume}"
    );
    let mount = Regex::new(
        r"\n          volumeMounts:\n            - name: alert-receiver-tls\n              mountPath: (\S+)\n              readOnly: true\n",
    )
    .unwrap();
    let found: Vec<_> = mount.captures_iter(&deployment).collect();
    assert_eq!(found.len(), 1, "no read-only mount of alert-receiver-tls in the container");
    let directory = &found[0][1];
    for (flag, file) in [("--alerts-tls-cert-file", "tls.crt"), ("--alerts-tls-key-file", "tls.key")] {
        let arg = format!("            - {flag}={directory}/{file}\n");
        assert_eq!(deployment.matches(&arg).count(), 1, "deployment.yaml has not exactly one {arg:?}");
        assert_only_when("deployment.yaml", flag, ".Values.alerts.tls.secretName");
        assert_only_when("deployment.yaml", flag, ".Values.alerts.enabled");
    }
    // Without the Secret, no volume (nor an empty list) is rendered.
    for needle in ["volumes:", "volumeMounts:", "alert-receiver-tls", "/etc/bellwether/alerts-tls"] {
        for stack in conditions_around(&deployment, needle) {
            let flags = stack.iter().any(|c| c == "if .Values.alerts.tls.secretName")
                && stack.iter().any(|c| c == "if .Values.alerts.enabled");
            assert!(
                flags || stack.iter().any(|c| c == &format!("if {set}")),
                "{needle:?} is rendered without the TLS Secret set: {stack:?}"
            );
        }
    }
}

#[test]
fn the_alert_receiver_without_credentials_fails_to_render() {
    let deployment = read(&chart().join("templates/deployment.yaml"));
    let missing = Regex::new(
        r#"\{\{- (?:else )?if not \(or \.Values\.alerts\.authSecret \.Values\.alerts\.insecureNoAuth\) \}\}\n\s*\{\{- fail "([^"]+)" \}\}"#,
    )
    .unwrap();
    let message =
        &missing.captures(&deployment).expect("no fail when neither authSecret nor insecureNoAuth is set")[1];
    assert!(
        message.contains("alerts.authSecret") && message.contains("alerts.insecureNoAuth"),
        "the failure does not name the values to set: {message}"
    );
    let both = Regex::new(
        r#"\{\{- (?:else )?if and \.Values\.alerts\.authSecret \.Values\.alerts\.insecureNoAuth \}\}\n\s*\{\{- fail "[^"]+" \}\}"#,
    )
    .unwrap();
    assert!(both.is_match(&deployment), "no fail when both authSecret and insecureNoAuth are set");
    assert_only_when("deployment.yaml", "fail \"", ".Values.alerts.enabled");
}

#[test]
fn the_alert_receivers_service_exists_only_when_enabled() {
    let service = read(&chart().join("templates/service-alerts.yaml"));
    assert!(service.contains("kind: Service\n"));
    assert!(service.contains("  name: {{ include \"bellwether.fullname\" . }}-alerts\n"));
    assert!(service.contains("  type: {{ .Values.alerts.service.type }}\n"));
    assert!(service.contains("      port: {{ .Values.alerts.service.port }}\n      targetPort: alerts\n"));
    for needle in ["apiVersion:", "kind: Service", "targetPort: alerts"] {
        assert_only_when("service-alerts.yaml", needle, ".Values.alerts.enabled");
    }
}

#[test]
fn the_alert_receiver_reads_its_one_secret_by_name() {
    let rules = read(&chart().join("templates/_rbac.tpl"));
    let rule = "- apiGroups: [\"\"]\n  resources: [\"secrets\"]\n  resourceNames: [{{ .Values.alerts.authSecret | quote }}]\n  verbs: [\"get\"]\n";
    assert!(rules.contains(rule), "no rule granting get on the alert receiver's Secret by name:\n{rule}");
    for stack in conditions_around(&rules, rule) {
        assert_eq!(
            stack,
            ["define \"bellwether.rules.alertsAuthSecret\""],
            "the rule is not alone in its define"
        );
    }
    let rbac = read(&chart().join("templates/rbac.yaml"));
    let include = "include \"bellwether.rules.alertsAuthSecret\"";
    assert_eq!(rbac.matches(include).count(), 1, "the alert receiver's rule is included once");
    assert_only_when("rbac.yaml", include, ".Values.rbac.create");
    assert_only_when("rbac.yaml", include, "and .Values.alerts.enabled .Values.alerts.authSecret");
    assert_only_when("rbac.yaml", "-alerts", "and .Values.alerts.enabled .Values.alerts.authSecret");
    // A Role in the release namespace, bound to the controller's ServiceAccount.
    let role = Regex::new(
        r"kind: Role\nmetadata:\n  name: \{\{ \$fullname \}\}-alerts\n  namespace: \{\{ \.Release\.Namespace \}\}\n(?:.*\n){2}rules:\n  \{\{- include .bellwether\.rules\.alertsAuthSecret. \. \| nindent 2 \}\}\n",
    )
    .unwrap();
    assert!(
        role.is_match(&rbac),
        "no Role <fullname>-alerts in the release namespace with the receiver's rule"
    );
    let binding = Regex::new(
        r"kind: RoleBinding\nmetadata:\n  name: \{\{ \$fullname \}\}-alerts\n  namespace: \{\{ \.Release\.Namespace \}\}\n(?:.*\n){2}roleRef:\n  apiGroup: rbac\.authorization\.k8s\.io\n  kind: Role\n  name: \{\{ \$fullname \}\}-alerts\nsubjects:\n  - \{\{- toYaml \$subject \| nindent 4 \}\}\n",
    )
    .unwrap();
    assert!(
        binding.is_match(&rbac),
        "no RoleBinding of <fullname>-alerts to the controller's ServiceAccount"
    );
}
