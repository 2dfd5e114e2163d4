//! Real Helm: `helm template` and `helm lint --strict` for the default values and each documented
//! combination of values, every rendered object validated against the Kubernetes API's own schemas
//! with no field they do not define, and the controller's flags parsed by the controller's parser.
//!
//! Helm is the Helm library that PyPI's helm-python-sdk ships, and the schemas are
//! kubernetes-validate's: `tests/chart/chart_tools.py` drives both, from the directory where
//! ./scripts/test installs them.

use super::{chart, parse_controller_args};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;

const RELEASE: &str = "t";
pub const NAMESPACE: &str = "bellwether";
/// The oldest Kubernetes that serves all the chart renders (ValidatingAdmissionPolicy v1 is 1.30),
/// and the newest whose schemas kubernetes-validate ships: an API removed since fails there.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];
/// What `--api-versions` adds for a cluster that serves ValidatingAdmissionPolicy.
pub const ADMISSION_POLICY_API: &str = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy";
/// The value without which the chart refuses to render: no public image exists.
pub const IMAGE: &str = "image.repository=registry.example.com/bellwether";

/// Where ./scripts/test installs Helm and kubernetes-validate: `chart-tools` in the target
/// directory, beside the `tmp` directory cargo gives integration tests.
fn installed_tools() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target directory").join("chart-tools")
}

/// Runs `chart_tools.py args` with the tools in `tools`, `input` on its stdin: its exit status,
/// stdout and stderr. Fails, saying how to install them, when they are not there.
fn run_tools_from(tools: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    // ./scripts/test writes `installed` last: the Python version, then the requirements.
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chart/requirements.txt");
    let installed = std::fs::read_to_string(tools.join("installed")).unwrap_or_default();
    let installed_requirements = installed.split_once('\n').map_or("", |(_python, rest)| rest);
    assert!(
        installed_requirements.trim_end() == super::read(&requirements).trim_end(),
        "Helm and kubernetes-validate are not installed in {}, or not the versions of \
         tests/chart/requirements.txt: run ./scripts/test, which installs them with pip",
        tools.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chart/chart_tools.py");
    let mut child = Command::new("python3")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg(&script)
        .args(args)
        .env("PYTHONPATH", tools)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}; run ./scripts/test", script.display()));
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes())
        .expect("chart_tools.py reads its input");
    let output = child.wait_with_output().expect("chart_tools.py runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("Traceback"),
        "chart_tools.py {args:?} crashed (is the install complete? run ./scripts/test):\n{stderr}"
    );
    (output.status.success(), String::from_utf8(output.stdout).expect("UTF-8 output"), stderr)
}

/// Runs `chart_tools.py args` in the repository, `input` on its stdin: its exit status, stdout and
/// stderr.
pub fn run_tools(args: &[&str], input: &str) -> (bool, String, String) {
    run_tools_from(&installed_tools(), args, input)
}

/// The arguments of `helm COMMAND` on the chart, for release `t` in namespace `bellwether` on
/// Kubernetes 1.30: `extra`, and a `--set` for each of `sets`.
fn helm_args<'a>(command: &'a str, sets: &'a [&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    static CHART: LazyLock<String> = LazyLock::new(|| chart().to_string_lossy().into_owned());
    let mut args = vec![command];
    if command == "template" {
        args.push(RELEASE);
    }
    args.extend([CHART.as_str(), "--namespace", NAMESPACE, "--kube-version", "v1.30.0"]);
    args.extend(extra);
    for set in sets {
        args.extend(["--set", set]);
    }
    args
}

/// One object Helm rendered, and the template it came from.
#[derive(Debug, Clone)]
pub struct Object {
    pub template: String,
    pub value: Json,
}

impl Object {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
}

/// What `helm template` rendered: the objects, in template order, and NOTES.txt.
#[derive(Debug)]
pub struct Rendered {
    pub objects: Vec<Object>,
    pub notes: String,
}

impl Rendered {
    /// The objects of `kind`.
    pub fn all(&self, kind: &str) -> Vec<&Json> {
        self.objects.iter().filter(|o| o.kind() == kind).map(|o| &o.value).collect()
    }

    /// The one object of `kind` named `name`.
    pub fn get(&self, kind: &str, name: &str) -> &Json {
        let found: Vec<&Object> =
            self.objects.iter().filter(|o| o.kind() == kind && o.name() == name).collect();
        assert_eq!(found.len(), 1, "not exactly one {kind} {name} among {:?}", self.names());
        &found[0].value
    }

    /// The one object of `kind` named `name` in `namespace` (None: cluster-scoped).
    pub fn get_in(&self, kind: &str, name: &str, namespace: Option<&str>) -> &Json {
        let found: Vec<&Object> = self
            .objects
            .iter()
            .filter(|o| o.kind() == kind && o.name() == name)
            .filter(|o| o.value["metadata"]["namespace"].as_str() == namespace)
            .collect();
        assert_eq!(found.len(), 1, "not exactly one {kind} {name} in {namespace:?} among {:?}", self.names());
        &found[0].value
    }

    pub fn has(&self, kind: &str, name: &str) -> bool {
        self.objects.iter().any(|o| o.kind() == kind && o.name() == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.objects.iter().map(|o| format!("{} {}", o.kind(), o.name())).collect()
    }

    /// The controller container's arguments.
    pub fn args(&self) -> Vec<String> {
        let deployments = self.all("Deployment");
        assert_eq!(deployments.len(), 1, "one Deployment");
        let deployment = deployments[0];
        let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "one container");
        serde_json::from_value(containers[0]["args"].clone()).expect("args are strings")
    }
}

/// `helm template t charts/bellwether --namespace bellwether` with `sets` and `api_versions`:
/// what it rendered, or Helm's message.
pub fn template(sets: &[&str], api_versions: &[&str]) -> Result<Rendered, String> {
    let extra: Vec<&str> = api_versions.iter().flat_map(|api| ["--api-versions", api]).collect();
    let (ok, stdout, stderr) = run_tools(&helm_args("template", sets, &extra), "");
    if ok { Ok(parse_rendered(&stdout)) } else { Err(stderr) }
}

/// The objects and notes in what `chart_tools.py template` prints.
pub fn parse_rendered(stdout: &str) -> Rendered {
    #[derive(Deserialize)]
    struct Output {
        manifests: BTreeMap<String, String>,
    }
    let output: Output = serde_json::from_str(stdout).expect("chart_tools.py prints JSON");
    let mut objects = Vec::new();
    let mut notes = None;
    for (template, text) in output.manifests {
        if template.ends_with("/NOTES.txt") {
            notes = Some(text);
            continue;
        }
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{template} renders YAML that does not parse: {e}\n{text}"));
            if value.is_null() {
                continue;
            }
            let value = serde_json::to_value(value).expect("YAML objects convert to JSON");
            objects.push(Object { template: template.clone(), value });
        }
    }
    Rendered { objects, notes: notes.expect("NOTES.txt is rendered") }
}

/// `template` for values Helm must accept.
pub fn rendered(sets: &[&str], api_versions: &[&str]) -> Rendered {
    template(sets, api_versions).unwrap_or_else(|e| panic!("helm template refuses {sets:?}:\n{e}"))
}

/// `helm lint --strict charts/bellwether --namespace bellwether` with `sets`: Ok, or every
/// message of a lint that fails.
pub fn lint(sets: &[&str]) -> Result<(), String> {
    let (ok, stdout, stderr) = run_tools(&helm_args("lint", sets, &["--strict"]), "");
    if ok {
        return Ok(());
    }
    let report: Json = serde_json::from_str(&stdout).map_err(|_| stderr.clone())?;
    Err(report["messages"].to_string())
}

/// An object's verdict against the schemas of a Kubernetes version.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
enum Verdict {
    Valid(bool),
    Invalid(String),
    NoSchema(String),
}

/// Each object's verdict by Kubernetes version.
fn validate(objects: &[Json]) -> BTreeMap<String, Vec<Verdict>> {
    let mut args = vec!["validate"];
    for version in KUBERNETES_VERSIONS {
        args.extend(["--kube-version", version]);
    }
    let (ok, stdout, stderr) = run_tools(&args, &serde_json::to_string(objects).unwrap());
    assert!(ok, "kubernetes-validate fails: {stderr}");
    let verdicts: BTreeMap<String, Vec<Verdict>> = serde_json::from_str(&stdout).expect("verdicts");
    assert_eq!(verdicts.len(), KUBERNETES_VERSIONS.len());
    assert!(verdicts.values().all(|v| v.len() == objects.len()));
    verdicts
}

/// A check standing in for the schema of a kind Kubernetes does not define: its problems with an
/// object, given all that was rendered beside it.
type StandIn = fn(&Json, &Rendered) -> Vec<String>;

/// Kinds the Kubernetes schemas do not have (apiVersion, kind), each with its stand-in check.
const CUSTOM_KINDS: &[(&str, &str, StandIn)] =
    &[("monitoring.coreos.com/v1", "ServiceMonitor", service_monitor_problems)];

/// What a ServiceMonitor may hold of the Prometheus Operator's monitoring.coreos.com/v1 API (the
/// fields the chart uses), checked without the CRD: every field known, the interval a duration
/// the operator takes, and the selector and port those of the metrics Service.
fn service_monitor_problems(monitor: &Json, rendered: &Rendered) -> Vec<String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code, reason = "deserialized only to refuse unknown fields")]
    struct ServiceMonitor {
        api_version: String,
        kind: String,
        metadata: Json,
        spec: Spec,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Spec {
        selector: Selector,
        namespace_selector: NamespaceSelector,
        endpoints: Vec<Endpoint>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Selector {
        match_labels: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct NamespaceSelector {
        match_names: Vec<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Endpoint {
        port: String,
        path: String,
        interval: String,
    }
    let monitor: ServiceMonitor = match serde_json::from_value(monitor.clone()) {
        Ok(monitor) => monitor,
        Err(e) => return vec![format!("ServiceMonitor: {e}")],
    };
    let duration =
        regex::Regex::new(r"^(0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$")
            .unwrap();
    let service = rendered.get("Service", "t-bellwether-metrics");
    let selected = monitor
        .spec
        .selector
        .match_labels
        .iter()
        .all(|(key, value)| service["metadata"]["labels"][key].as_str() == Some(value.as_str()));
    let ports: Vec<&str> =
        service["spec"]["ports"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    let mut problems = Vec::new();
    if !selected || monitor.spec.selector.match_labels.is_empty() {
        problems.push("the ServiceMonitor does not select the metrics Service".to_string());
    }
    if monitor.spec.namespace_selector.match_names != [NAMESPACE] {
        problems.push("the ServiceMonitor looks outside the release namespace".to_string());
    }
    for endpoint in &monitor.spec.endpoints {
        if !ports.contains(&endpoint.port.as_str()) {
            problems.push(format!("the metrics Service has no port named {}", endpoint.port));
        }
        if endpoint.path != "/metrics" {
            problems.push(format!("the controller serves /metrics, not {}", endpoint.path));
        }
        if endpoint.interval.is_empty() || !duration.is_match(&endpoint.interval) {
            problems.push(format!("{:?} is not a Prometheus duration", endpoint.interval));
        }
    }
    problems
}

/// What the API server checks beyond the OpenAPI schemas, for the names and labels the chart
/// writes: object names, namespaces, label keys and values, and selectors.
fn metadata_problems(object: &Json) -> Vec<String> {
    let subdomain =
        regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").unwrap();
    let dns_label = regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap();
    let rfc1035_label = regex::Regex::new(r"^[a-z]([-a-z0-9]*[a-z0-9])?$").unwrap();
    let label_name = regex::Regex::new(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$").unwrap();
    let key_ok = |key: &str| {
        let (prefix, name) = key.rsplit_once('/').map_or((None, key), |(p, n)| (Some(p), n));
        prefix.is_none_or(|p| p.len() <= 253 && subdomain.is_match(p))
            && name.len() <= 63
            && label_name.is_match(name)
    };
    let value_ok = |value: &str| value.is_empty() || (value.len() <= 63 && label_name.is_match(value));
    let mut problems = Vec::new();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let name_ok = if kind == "Service" {
        name.len() <= 63 && rfc1035_label.is_match(name)
    } else {
        name.len() <= 253 && subdomain.is_match(name)
    };
    if !name_ok {
        problems.push(format!("{kind} name {name:?} is not a valid name"));
    }
    if let Some(namespace) = object["metadata"]["namespace"].as_str()
        && !(namespace.len() <= 63 && dns_label.is_match(namespace))
    {
        problems.push(format!("{kind} {name}: namespace {namespace:?} is not a DNS-1123 label"));
    }
    // A Service's selector is a map of labels; a workload's, a LabelSelector.
    let selector = if kind == "Service" {
        &object["spec"]["selector"]
    } else {
        &object["spec"]["selector"]["matchLabels"]
    };
    let label_maps = [
        ("labels", &object["metadata"]["labels"]),
        ("selector", selector),
        ("pod labels", &object["spec"]["template"]["metadata"]["labels"]),
        ("object selector", &object["spec"]["matchResources"]["objectSelector"]["matchLabels"]),
        ("node selector", &object["spec"]["template"]["spec"]["nodeSelector"]),
    ];
    for (what, map) in label_maps {
        for (key, value) in map.as_object().into_iter().flatten() {
            let value = value.as_str().unwrap_or("<not a string>");
            if !key_ok(key) || !value_ok(value) {
                problems.push(format!("{kind} {name}: {what} {key}={value:?} is not a valid label"));
            }
        }
    }
    for map in [&object["metadata"]["annotations"], &object["spec"]["template"]["metadata"]["annotations"]] {
        for key in map.as_object().into_iter().flat_map(|m| m.keys()) {
            if !key_ok(key) {
                problems.push(format!("{kind} {name}: annotation key {key:?} is not valid"));
            }
        }
    }
    problems
}

/// Every problem with what Helm rendered: objects the Kubernetes schemas refuse (or that they do
/// not know and no stand-in check accepts), names and labels the API server would refuse, and
/// controller flags the controller would refuse or that are given twice.
pub fn problems(rendered: &Rendered) -> Vec<String> {
    let values: Vec<Json> = rendered.objects.iter().map(|o| o.value.clone()).collect();
    let mut problems = Vec::new();
    for (version, verdicts) in validate(&values) {
        for (object, verdict) in rendered.objects.iter().zip(verdicts) {
            let what =
                format!("{} {} ({}), Kubernetes {version}", object.kind(), object.name(), object.template);
            match verdict {
                Verdict::Valid(_) => {}
                Verdict::Invalid(message) => problems.push(format!("{what}: {message}")),
                Verdict::NoSchema(message) => {
                    let api_version = object.value["apiVersion"].as_str().unwrap_or_default();
                    match CUSTOM_KINDS.iter().find(|(a, k, _)| *a == api_version && *k == object.kind()) {
                        Some((_, _, check)) => problems.extend(
                            check(&object.value, rendered).into_iter().map(|p| format!("{what}: {p}")),
                        ),
                        None => problems.push(format!("{what}: {message}, and no check stands in for it")),
                    }
                }
            }
        }
    }
    for object in &rendered.objects {
        problems.extend(metadata_problems(&object.value));
    }
    let args = rendered.args();
    let mut once = BTreeMap::<&str, usize>::new();
    // Repeatable flags: each adds one more.
    let repeatable = ["--readable-secret=", "--web-allowed-url-prefix="];
    for arg in args.iter().filter(|a| a.starts_with("--") && !repeatable.iter().any(|r| a.starts_with(r))) {
        *once.entry(arg.split('=').next().unwrap()).or_default() += 1;
    }
    problems
        .extend(once.iter().filter(|(_, n)| **n > 1).map(|(flag, n)| format!("{flag} is given {n} times")));
    if let Err(e) = parse_controller_args(&args) {
        problems.push(format!("the controller refuses its arguments {args:?}: {e}"));
    }
    problems
}

/// The documented combinations of values (values.yaml and the chart's README), each a list of
/// `--set` flags beside [`IMAGE`].
const COMBINATIONS: &[(&str, &[&str])] = &[
    ("the default values", &[]),
    (
        "leader election with one replica",
        &["leaderElection.enabled=true", "leaderElection.leaseDurationSeconds=30"],
    ),
    ("two replicas and a PodDisruptionBudget", &["replicas=2", "podDisruptionBudget.enabled=true"]),
    (
        "a PodDisruptionBudget as a percentage",
        &["replicas=4", "podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=50%"],
    ),
    ("sharding", &["sharding.replicas=3", "sharding.shards=32"]),
    ("one namespace and an instance ID", &["watchNamespace=shop", "instanceId=blue"]),
    (
        "readable Secrets in two namespaces",
        &[
            "readableSecrets[0].namespace=shop",
            "readableSecrets[0].name=prometheus-token",
            "readableSecrets[1].namespace=bellwether",
            "readableSecrets[1].name=slack-webhook",
            "readableSecrets[2].namespace=shop",
            "readableSecrets[2].name=prometheus-headers",
        ],
    ),
    (
        "the alert receiver with a Secret and TLS",
        &[
            "alerts.enabled=true",
            "alerts.authSecret=bellwether-alerts",
            "alerts.tls.secretName=bellwether-alerts-tls",
        ],
    ),
    (
        "the alert receiver without credentials",
        &["alerts.enabled=true", "alerts.insecureNoAuth=true", "alerts.service.type=LoadBalancer"],
    ),
    (
        "a ServiceMonitor",
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.serviceMonitor.interval=1m30s",
            "metrics.serviceMonitor.labels.release=prometheus",
        ],
    ),
    (
        "the request policy reporting only, with a CI account",
        &[
            "requestPolicy.extraRequesters={system:serviceaccount:ci:deployer}",
            "requestPolicy.validationActions={Warn,Audit}",
        ],
    ),
    ("job metrics", &["jobMetrics=true"]),
    ("no request policy", &["requestPolicy.enabled=false"]),
    (
        "no RBAC and an existing ServiceAccount",
        &["rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=bellwether-controller"],
    ),
    (
        "a named ServiceAccount with annotations",
        &[
            "serviceAccount.name=bellwether-controller",
            "serviceAccount.annotations.example\\.com/role=canary",
        ],
    ),
    ("no aggregation to the default roles", &["rbac.aggregateToDefaultRoles=false"]),
    (
        "text logs and tuned concurrency",
        &["logFormat=text", "concurrency=64", "prometheusConcurrency=32", "resyncSeconds=300"],
    ),
    (
        "extra flags overriding the chart's",
        &["replicas=2", "extraArgs={--lease-duration-seconds=20,--log-format,text}"],
    ),
    (
        "pod placement and metadata",
        &[
            "priorityClassName=system-cluster-critical",
            "nodeSelector.kubernetes\\.io/os=linux",
            "tolerations[0].key=dedicated",
            "tolerations[0].operator=Exists",
            "tolerations[0].effect=NoSchedule",
            "podLabels.team=platform",
            "podAnnotations.example\\.com/owner=platform team",
            "imagePullSecrets[0].name=registry-credentials",
            "image.tag=0.1.0-rc.1",
            "image.pullPolicy=Always",
            "metrics.service.type=NodePort",
        ],
    ),
    (
        "everything at once",
        &[
            "sharding.replicas=2",
            "watchNamespace=shop",
            "instanceId=blue",
            "readableSecrets[0].namespace=shop",
            "readableSecrets[0].name=prometheus-token",
            "alerts.enabled=true",
            "alerts.authSecret=bellwether-alerts",
            "alerts.tls.secretName=bellwether-alerts-tls",
            "metrics.serviceMonitor.enabled=true",
            "podDisruptionBudget.enabled=true",
            "requestPolicy.extraRequesters={system:serviceaccount:ci:deployer}",
            "jobMetrics=true",
        ],
    ),
];

/// `sets` and [`IMAGE`].
pub fn with_image<'a>(sets: &[&'a str]) -> Vec<&'a str> {
    [IMAGE].into_iter().chain(sets.iter().copied()).collect()
}

#[test]
fn every_documented_combination_lints_and_renders_what_the_api_server_accepts() {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let checks: Vec<_> = COMBINATIONS
            .iter()
            .map(|(what, sets)| {
                scope.spawn(move || {
                    let sets = with_image(sets);
                    let mut failures = Vec::new();
                    if let Err(e) = lint(&sets) {
                        failures.push(format!("{what}: helm lint --strict fails: {e}"));
                    }
                    for api_versions in [&[][..], &[ADMISSION_POLICY_API]] {
                        match template(&sets, api_versions) {
                            Ok(rendered) => failures.extend(
                                problems(&rendered)
                                    .into_iter()
                                    .map(|p| format!("{what} {api_versions:?}: {p}")),
                            ),
                            Err(e) => {
                                failures.push(format!("{what} {api_versions:?}: helm template fails: {e}"))
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        checks.into_iter().flat_map(|check| check.join().expect("a combination's check panics")).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_crds_helm_installs_first_are_valid_definitions() {
    let mut crds = Vec::new();
    for entry in std::fs::read_dir(chart().join("crds")).expect("crds/") {
        let path = entry.expect("a directory entry").path();
        crds.push(serde_yaml::from_str::<Json>(&super::read(&path)).expect("a CRD parses"));
    }
    assert_eq!(crds.len(), 4, "Rollout, AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun");
    let mut problems: Vec<String> = crds.iter().flat_map(metadata_problems).collect();
    for (version, verdicts) in validate(&crds) {
        for (crd, verdict) in crds.iter().zip(verdicts) {
            if verdict != Verdict::Valid(true) {
                problems.push(format!("{}, Kubernetes {version}: {verdict:?}", crd["metadata"]["name"]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checks_catch_what_the_api_server_or_the_controller_would_refuse() {
    let original = rendered(&[IMAGE], &[]);
    assert_eq!(problems(&original), Vec::<String>::new());
    type Change = fn(&mut Vec<Object>);
    fn deployment(objects: &mut [Object]) -> &mut Json {
        &mut objects.iter_mut().find(|o| o.kind() == "Deployment").unwrap().value
    }
    let changes: [(Change, &str); 8] = [
        (|o| deployment(o)["spec"]["replica"] = json!(2), "'replica' was unexpected"),
        (|o| deployment(o)["spec"]["replicas"] = json!("two"), "'two' is not of type 'integer'"),
        (
            |o| deployment(o)["metadata"]["labels"]["team"] = json!("platform team"),
            "team=\"platform team\" is not a valid label",
        ),
        (
            |o| deployment(o)["metadata"]["name"] = json!("T_Bellwether"),
            "Deployment name \"T_Bellwether\" is not a valid name",
        ),
        (
            |o| {
                o.iter_mut().find(|o| o.kind() == "Service").unwrap().value["metadata"]["namespace"] =
                    json!("Shop_1")
            },
            "namespace \"Shop_1\" is not a DNS-1123 label",
        ),
        (
            |o| {
                o.push(Object {
                    template: "a stand-in".into(),
                    value: json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
                })
            },
            "Widget w (a stand-in), Kubernetes 1.30.0: Couldn't find schema",
        ),
        (
            |o| {
                deployment(o)["spec"]["template"]["spec"]["containers"][0]["args"] =
                    json!(["--log-format=json", "--log-format=text"])
            },
            "--log-format is given 2 times",
        ),
        (
            |o| {
                deployment(o)["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--no-such-flag"])
            },
            "the controller refuses its arguments [\"--no-such-flag\"]",
        ),
    ];
    for (change, expected) in changes {
        let mut objects = original.objects.clone();
        change(&mut objects);
        let found = problems(&Rendered { objects, notes: original.notes.clone() }).join("\n");
        assert!(found.contains(expected), "no problem {expected:?} in:\n{found}");
    }
}

#[test]
fn a_service_monitor_is_checked_without_its_crd() {
    let mut rendered = rendered(&[IMAGE, "metrics.serviceMonitor.enabled=true"], &[]);
    assert_eq!(problems(&rendered), Vec::<String>::new());
    let monitor = rendered.objects.iter_mut().find(|o| o.kind() == "ServiceMonitor").unwrap();
    monitor.value["spec"]["endpoints"][0]["port"] = json!("metrics");
    monitor.value["spec"]["endpoints"][0]["interval"] = json!("30 seconds");
    monitor.value["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = json!("other");
    let found = problems(&rendered).join("\n");
    for expected in [
        "the metrics Service has no port named metrics",
        "\"30 seconds\" is not a Prometheus duration",
        "does not select the metrics Service",
    ] {
        assert!(found.contains(expected), "no problem {expected:?} in:\n{found}");
    }
    let monitor = rendered.objects.iter_mut().find(|o| o.kind() == "ServiceMonitor").unwrap();
    monitor.value["spec"]["endpoints"][0]["scheme"] = json!("https");
    assert!(problems(&rendered).join("\n").contains("unknown field `scheme`"));
}

#[test]
fn missing_or_outdated_tools_fail_the_test_saying_how_to_install_them() {
    let tools = tempfile::tempdir().unwrap();
    let message = |tools: &Path| -> String {
        let panic = std::panic::catch_unwind(|| run_tools_from(tools, &["lint", "charts/bellwether"], ""))
            .expect_err("the tools are not there");
        panic.downcast_ref::<String>().expect("a formatted message").clone()
    };
    assert!(message(tools.path()).contains("run ./scripts/test"), "{}", message(tools.path()));
    std::fs::write(tools.path().join("installed"), "Python 3.11.7\nhelm-python-sdk==0.1.0\n").unwrap();
    assert!(message(tools.path()).contains("not the versions of tests/chart/requirements.txt"));
}
