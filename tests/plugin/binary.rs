//! The plugin binary's own behaviour: exit codes and output of the offline commands, as a pipeline
//! sees them.

use std::process::Command;

fn plugin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-bellwether"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("running the plugin")
}

#[test]
fn lint_exits_0_on_the_examples_and_1_on_broken_manifests() {
    let clean = plugin(&["lint", "-f", "examples", "-f", "analysis-templates"]);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
    let broken = plugin(&["lint", "-f", "tests/plugin/broken"]);
    assert_eq!(broken.status.code(), Some(1));
    let out = String::from_utf8_lossy(&broken.stdout);
    assert!(out.contains("two-kinds.yaml:") && out.contains("error:"), "{out}");
    let json = plugin(&["lint", "-f", "tests/plugin/broken", "-o", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("lint -o json prints JSON");
    assert!(value.is_object(), "{value}");
}

#[test]
fn a_missing_file_and_a_usage_error_have_their_own_exit_codes() {
    let missing = plugin(&["lint", "-f", "no/such/dir"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error: no/such/dir"), "{:?}", missing);
    let usage = plugin(&["status"]);
    assert_eq!(usage.status.code(), Some(2), "a missing NAME is a usage error");
    let version = plugin(&["version"]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("kubectl-bellwether "));
}
