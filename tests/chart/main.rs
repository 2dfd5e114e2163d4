//! Checks of the Helm chart in `charts/bellwether`. Without Helm: its files parse, its values match
//! its schema, its templates reference only values that exist, its CRDs are the generated ones.
//! With real Helm (`helm.rs`, installed by ./scripts/test): every documented combination of values
//! lints and renders objects the Kubernetes API accepts, and each setting renders what it says
//! (`rendered.rs`), down to the CEL of the admission policy (`request_policy.rs`).

mod helm;
mod rendered;
mod request_policy;
mod values_doc;

use bellwether::cli::controller::ControllerArgs;
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

/// Checks that values.yaml and the schema declare the same settings: every value has a schema and
/// every property the schema declares has a default in values.yaml, so that values.yaml documents
/// them all. (helm lint, in helm.rs, validates values.yaml against the schema.)
fn check_declared(path: &str, value: &Yaml, schema: &Json, root: &Json, problems: &mut Vec<String>) {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/definitions/").expect("references to definitions only");
            &root["definitions"][name]
        }
        None => schema,
    };
    let Some(mapping) = value.as_mapping() else { return };
    match schema["properties"].as_object() {
        Some(properties) => {
            for (key, child) in mapping {
                let key = key.as_str().expect("string keys");
                match properties.get(key) {
                    Some(child_schema) => {
                        check_declared(&format!("{path}.{key}"), child, child_schema, root, problems)
                    }
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
fn values_yaml_and_the_schema_declare_the_same_settings() {
    let schema = schema();
    assert_eq!(schema["$schema"].as_str(), Some("http://json-schema.org/draft-07/schema#"));
    assert_eq!(schema["additionalProperties"], Json::Bool(false));
    let mut problems = Vec::new();
    check_declared(".Values", &values(), &schema, &schema, &mut problems);
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

/// The controller's flags `args` as the controller's own parser reads them, the way the image
/// runs it (`bellwether controller ARGS`).
fn parse_controller_args(args: &[String]) -> Result<ControllerArgs, clap::Error> {
    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        args: ControllerArgs,
    }
    let argv = std::iter::once("bellwether-controller").chain(args.iter().map(String::as_str));
    <Command as clap::Parser>::try_parse_from(argv).map(|command| command.args)
}

/// The controller's flags with their defaults.
fn controller_defaults() -> ControllerArgs {
    parse_controller_args(&[]).expect("no flags is a valid command line")
}

#[test]
fn the_alert_receivers_defaults_are_the_controllers() {
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
