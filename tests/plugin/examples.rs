//! The complete setups in `examples/` lint clean with the ready-made templates, and the Grafana
//! dashboard queries only metrics the controller exports.

use bellwether::api::RolloutPhase;
use bellwether::cli::lint::{LintArgs, Output, lint};
use bellwether::server::Metrics;
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Lints one example directory together with `analysis-templates/`: no findings at all, not even
/// warnings, since each example holds everything its Rollout names.
fn assert_lints_clean(example: &str) {
    let args = LintArgs {
        paths: vec![repo(&format!("examples/{example}")), repo("analysis-templates")],
        output: Output::Text,
    };
    let report = lint(&args, &mut std::io::empty()).unwrap_or_else(|e| panic!("lint {example}: {e}"));
    assert!(report.findings.is_empty(), "{}", report.text());
    assert!(report.files > 0);
}

#[test]
fn the_envoy_gateway_example_lints_clean() {
    assert_lints_clean("envoy-gateway");
}

#[test]
fn the_istio_example_lints_clean() {
    assert_lints_clean("istio");
}

#[test]
fn the_http_app_example_lints_clean() {
    assert_lints_clean("http-app");
}

#[test]
fn the_grpc_example_lints_clean() {
    assert_lints_clean("grpc");
}

#[test]
fn the_quickstart_lints_clean() {
    assert_lints_clean("quickstart");
}

/// The metric families the controller exports, from a registry where every family has a series.
fn exported_families() -> BTreeSet<String> {
    let metrics = Metrics::new();
    metrics.rollout_phase("shop", "checkout", RolloutPhase::Progressing);
    metrics.canary_weight("shop", "checkout", 10);
    metrics.analysis_value("shop", "checkout-1", "error-rate", Some(0.001));
    metrics.reconcile("rollout", Duration::from_millis(3), Some("kube"));
    metrics.abort("shop", "checkout", "AnalysisFailed");
    metrics.promotion("shop", "checkout");
    metrics.canary_finished("promoted", Duration::from_secs(600));
    metrics
        .render()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
        .map(String::from)
        .collect()
}

/// Every PromQL expression in the dashboard: its panels' targets and its variables' queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    let targets = dashboard["panels"].as_array().expect("panels").iter().flat_map(|panel| {
        panel["targets"].as_array().expect("every panel has targets").iter().map(|t| t["expr"].clone())
    });
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| v["definition"].clone());
    targets.chain(variables).filter_map(|e| e.as_str().map(String::from)).collect()
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let text = std::fs::read_to_string(repo("dashboards/bellwether.json")).expect("reading the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let exported = exported_families();
    let name = Regex::new("bellwether_[a-z_]+").expect("a valid regex");
    let mut used = BTreeSet::new();
    for expr in expressions(&dashboard) {
        for found in name.find_iter(&expr) {
            let found = found.as_str();
            used.insert(found.strip_suffix("_bucket").unwrap_or(found).to_string());
        }
    }
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(unknown.is_empty(), "not exported: {unknown:?}; exported: {exported:?}");
    // Every family is on the dashboard.
    let unused: Vec<&String> = exported.difference(&used).collect();
    assert!(unused.is_empty(), "not on the dashboard: {unused:?}");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(variables, ["datasource", "namespace", "rollout"]);
}
