//! scripts/kind-cluster, run against stand-ins for `kind`, `kubectl` and `helm` that record what
//! they were asked to do: the steps, in order, the versions, and a second run that keeps the cluster.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// A stand-in for a tool: it appends its name, its arguments and anything piped to it to `calls`,
/// and answers `kind get clusters` and `kind get kubeconfig` as kind would.
const STAND_IN: &str = r#"#!/bin/sh
dir=$(dirname "$0")
printf '%s %s\n' "$(basename "$0")" "$*" >> "$dir/calls"
case "$(basename "$0") $*" in
    "kind get clusters") cat "$dir/clusters" 2>/dev/null ;;
    "kind get kubeconfig"*) echo "kubeconfig of the cluster" ;;
    "kubectl"*"apply -f -") cat >> "$dir/calls" ;;
esac
"#;

fn stand_ins(dir: &Path, tools: &[&str]) {
    for tool in tools {
        let path = dir.join(tool);
        std::fs::write(&path, STAND_IN).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The utilities the script and the stand-ins use, found where they are installed.
const UTILITIES: [&str; 5] = ["bash", "grep", "cat", "dirname", "basename"];

fn run(dir: &Path, args: &[&str]) -> Output {
    // The stand-ins and the utilities alone on the PATH, so that no real kind, kubectl or helm
    // installed on this machine answers.
    let utilities = dir.join("utilities");
    std::fs::create_dir_all(&utilities).unwrap();
    for utility in UTILITIES {
        let found = bellwether_testkit::prometheus::find_binary(utility).unwrap_or_else(|e| panic!("{e}"));
        let link = utilities.join(utility);
        if !link.exists() {
            std::os::unix::fs::symlink(found, link).unwrap();
        }
    }
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kind-cluster"))
        .args(args)
        .current_dir(dir)
        .env("PATH", format!("{}:{}", dir.display(), utilities.display()))
        .env_remove("ENVOY_GATEWAY_VERSION")
        .output()
        .expect("the script runs")
}

fn calls(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("calls")).unwrap_or_default()
}

#[test]
fn it_creates_the_cluster_installs_envoy_gateway_and_writes_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    stand_ins(dir.path(), &["kind", "kubectl", "helm"]);
    let output = run(dir.path(), &["bellwether-e2e"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected = "\
kind get clusters
kind create cluster --name bellwether-e2e
helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm --version v1.5.0 --kube-context kind-bellwether-e2e -n envoy-gateway-system --create-namespace
kubectl --context kind-bellwether-e2e wait --timeout=5m -n envoy-gateway-system deployment/envoy-gateway --for=condition=Available
kubectl --context kind-bellwether-e2e apply -f -
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: eg
spec:
  controllerName: gateway.envoyproxy.io/gatewayclass-controller
kind get kubeconfig --name bellwether-e2e
kubectl config use-context kind-bellwether-e2e
";
    assert_eq!(calls(dir.path()), expected);
    let kubeconfig = std::fs::read_to_string(dir.path().join("bellwether-e2e.kubeconfig")).unwrap();
    assert_eq!(kubeconfig, "kubeconfig of the cluster\n");
}

#[test]
fn a_second_run_keeps_the_cluster_and_the_default_name_is_bellwether() {
    let dir = tempfile::tempdir().unwrap();
    stand_ins(dir.path(), &["kind", "kubectl", "helm"]);
    std::fs::write(dir.path().join("clusters"), "other\nbellwether\n").unwrap();
    let output = run(dir.path(), &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let calls = calls(dir.path());
    assert!(!calls.contains("kind create"), "{calls}");
    assert!(calls.contains("helm upgrade --install eg "), "{calls}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("kind cluster bellwether exists; keeping it"));
    assert!(dir.path().join("bellwether.kubeconfig").exists());
}

#[test]
fn missing_tools_are_named_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    stand_ins(dir.path(), &["kind"]);
    let output = run(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs kubectl helm on the PATH"), "{stderr}");
    assert_eq!(calls(dir.path()), "");
}
