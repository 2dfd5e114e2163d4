//! `lint` on the repository's own manifests, which must be clean, and on a corpus of broken ones in
//! `tests/plugin/broken/`.
//!
//! A broken manifest says what is wrong in a comment and lists every finding it must produce, in
//! order, as `# expect: LINE: SEVERITY: ...` lines: the finding as printed, without the file name,
//! and with the corpus's files named without their directory where a finding names one.

use bellwether::cli::lint::{LintArgs, Output, Report, lint};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(paths: &[&str], output: Output) -> Report {
    let args = LintArgs { paths: paths.iter().map(|p| repo(p)).collect(), output };
    lint(&args, &mut std::io::empty()).unwrap_or_else(|e| panic!("lint {paths:?}: {e}"))
}

fn assert_clean(paths: &[&str]) {
    let report = run(paths, Output::Text);
    assert!(report.is_clean(), "{}", report.text());
    assert!(report.files > 0);
}

#[test]
fn examples_and_analysis_templates_are_clean_together() {
    assert_clean(&["examples", "analysis-templates"]);
}

#[test]
fn examples_are_clean() {
    assert_clean(&["examples"]);
}

#[test]
fn analysis_templates_are_clean_without_a_rollout() {
    assert_clean(&["analysis-templates"]);
}

/// Lints one file of the corpus and checks its findings against its `# expect:` lines.
fn broken(name: &str) -> Report {
    let relative = format!("tests/plugin/broken/{name}");
    let text = std::fs::read_to_string(repo(&relative)).expect("reading the case");
    let expected: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
    assert!(!expected.is_empty(), "{name} has no # expect: line");
    let report = run(&[&relative], Output::Text);
    let prefix = format!("{}:", repo(&relative).display());
    let directory = format!("{}/", repo("tests/plugin/broken").display());
    let found: Vec<String> = report
        .findings
        .iter()
        .map(|f| f.to_string().strip_prefix(&prefix).expect("findings name the file").replace(&directory, ""))
        .collect();
    assert_eq!(found, expected, "{name}:\n{}", report.text());
    report
}

#[test]
fn a_step_with_two_kinds() {
    assert!(!broken("two-kinds.yaml").is_clean());
}

#[test]
fn a_header_route_on_a_header_the_route_already_matches() {
    assert!(!broken("header-taken.yaml").is_clean());
}

#[test]
fn a_weight_of_101() {
    assert!(!broken("weight-101.yaml").is_clean());
}

#[test]
fn an_unknown_template_is_a_warning() {
    assert!(broken("unknown-template.yaml").is_clean());
}

#[test]
fn a_missing_required_arg() {
    assert!(!broken("missing-arg.yaml").is_clean());
}

#[test]
fn an_unknown_query_variable() {
    assert!(!broken("unknown-variable.yaml").is_clean());
}

#[test]
fn a_route_whose_rules_miss_the_canary_service() {
    assert!(!broken("unmanaged-route.yaml").is_clean());
}

#[test]
fn a_missing_service_is_a_warning() {
    assert!(broken("missing-service.yaml").is_clean());
}

#[test]
fn malformed_yaml_names_the_line() {
    assert!(!broken("malformed.yaml").is_clean());
}

#[test]
fn an_unknown_field() {
    assert!(!broken("unknown-field.yaml").is_clean());
}

#[test]
fn a_key_given_twice() {
    assert!(!broken("duplicate-keys.yaml").is_clean());
}

#[test]
fn an_object_defined_twice_differently_in_one_file() {
    assert!(!broken("duplicate-objects.yaml").is_clean());
}

/// Each number is said to be wrong once, in its own words: not as the `null` it becomes in JSON,
/// nor as a threshold without bounds.
#[test]
fn numbers_json_cannot_carry() {
    assert!(!broken("not-finite.yaml").is_clean());
}

fn config_map(name: &str, namespace: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  key: {value}\n"
    )
}

fn lint_paths(paths: &[PathBuf]) -> Report {
    lint(&LintArgs { paths: paths.to_vec(), output: Output::Text }, &mut std::io::empty()).expect("lint runs")
}

/// Two files that define one object differently, as a GitOps directory can after a copy and paste,
/// whatever else they hold. The same name in another namespace is another object.
#[test]
fn an_object_defined_twice_differently_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.yaml");
    let second = dir.path().join("b.yaml");
    std::fs::write(&first, config_map("settings", "shop", "1")).unwrap();
    let other =
        format!("{}---\n{}", config_map("settings", "staging", "2"), config_map("settings", "shop", "2"));
    std::fs::write(&second, other).unwrap();
    let report = lint_paths(&[dir.path().to_path_buf()]);
    let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [format!(
            "{second}:12: error: ConfigMap/settings: is defined differently at {first}:4 and {second}:12: \
             data.key differs",
            second = second.display(),
            first = first.display()
        )],
        "{}",
        report.text()
    );
}

/// A file named directly and through its directory, or through another spelling of its path, is
/// one file: neither counted twice nor a duplicate of itself.
#[test]
fn a_file_named_twice_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.yaml");
    std::fs::write(&file, config_map("settings", "shop", "1")).unwrap();
    std::fs::write(dir.path().join("other.yaml"), config_map("other", "shop", "1")).unwrap();
    let again = dir.path().join(".").join("settings.yaml");
    let report = lint_paths(&[file.clone(), dir.path().to_path_buf(), again]);
    assert_eq!(report.files, 2, "{}", report.text());
    assert!(report.findings.is_empty(), "{}", report.text());
}

#[test]
fn json_output() {
    let report = run(&["tests/plugin/broken/weight-101.yaml"], Output::Json);
    let json = serde_json::to_value(&report).expect("serializes");
    let errors = report.findings.len();
    assert_eq!(json["clean"], false);
    assert_eq!(json["errors"], errors);
    assert_eq!(json["warnings"], 0);
    assert_eq!(json["files"], 1);
    let finding = &json["findings"][0];
    let keys: Vec<&str> = finding.as_object().expect("an object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["field", "file", "line", "message", "object", "severity"]);
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["object"], "Rollout/weight");
    assert_eq!(finding["field"], "spec.strategy.canary.steps[1].setWeight");
    assert!(finding["file"].as_str().is_some_and(|f| f.ends_with("weight-101.yaml")));
    assert!(finding["line"].as_u64().is_some_and(|l| l > 0));
    assert!(matches!(&finding["message"], Value::String(m) if !m.is_empty()));
}

#[test]
fn a_deployment_the_selector_misses_and_a_template_beside_a_workload_ref() {
    broken("workload-labels.yaml");
}
