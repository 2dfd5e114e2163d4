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
    assert_eq!(missing.status.code(), Some(6), "not 1, which says the manifests have errors");
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error: no/such/dir"), "{:?}", missing);
    let usage = plugin(&["status"]);
    assert_eq!(usage.status.code(), Some(2), "a missing NAME is a usage error");
    let no_kubeconfig = plugin(&["promote", "web", "--kubeconfig", "no/such/kubeconfig"]);
    assert_eq!(no_kubeconfig.status.code(), Some(1));
    let said = String::from_utf8_lossy(&no_kubeconfig.stderr);
    assert!(said.starts_with("error: cannot read the kubeconfig no/such/kubeconfig"), "{said}");
    let version = plugin(&["version"]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("kubectl-bellwether "));
}

/// Every command that acts on a rollout takes it as kubectl names a resource, by any of the names
/// of Bellwether's Rollouts: these get past the command line to the missing kubeconfig (exit 1, or
/// `status`'s 5). A type that names Argo Rollouts' Rollouts, or another kind, is a usage error
/// (exit 2).
#[test]
fn commands_take_a_rollout_as_kubectl_names_it() {
    let missing = ["--kubeconfig", "no/such/kubeconfig"];
    let named: [&[&str]; 6] = [
        &["web"],
        &["rollout/web"],
        &["ro", "web"],
        &["rollouts", "web"],
        &["bwro", "web"],
        &["rollouts.bellwether.dev", "web"],
    ];
    let commands: [&[&str]; 9] = [
        &["history"],
        &["promote"],
        &["promote", "--full"],
        &["abort"],
        &["retry"],
        &["pause"],
        &["resume"],
        &["status"],
        &["undo"],
    ];
    let reached_the_cluster = |args: &[&str]| {
        let output = plugin(&[args, &missing[..]].concat());
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        let code = if args[0] == "status" { 5 } else { 1 };
        assert_eq!(output.status.code(), Some(code), "{args:?}: {said}");
        assert!(said.starts_with("error: cannot read the kubeconfig"), "{args:?}: {said}");
    };
    for words in named {
        for command in commands {
            reached_the_cluster(&[command, words].concat());
        }
        reached_the_cluster(&[&["set", "image"][..], words, &["app=registry.example/web:2"]].concat());
        if words.len() == 2 || words[0].contains('/') {
            reached_the_cluster(&[&["get"][..], words].concat());
        }
    }
    for (args, reason) in [
        (&["promote", "rollouts.argoproj.io", "web"][..], "names Argo Rollouts' Rollouts"),
        (&["status", "rollout.argoproj.io/web"], "names Argo Rollouts' Rollouts"),
        (&["abort", "deployment/web"], "unknown resource type \"deployment\""),
        (&["get", "web"], "the resource type is missing: write rollout web"),
        (&["get", "bwro"], "\"bwro\" has no rollout name"),
        (&["pause", "ro", "a/b"], "names cannot contain '/'"),
    ] {
        let output = plugin(&[args, &missing[..]].concat());
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(reason), "{args:?}: {said}");
    }
}

/// Where kubectl is installed, it finds the plugin on the PATH and passes its exit code through.
#[test]
fn kubectl_finds_the_plugin_and_passes_its_exit_codes_through() {
    let Ok(kubectl) = which("kubectl") else {
        println!("skipped: kubectl is not installed");
        return;
    };
    let plugin_dir =
        std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-bellwether")).parent().expect("a directory");
    let path = format!("{}:{}", plugin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let list =
        Command::new(&kubectl).args(["plugin", "list"]).env("PATH", &path).output().expect("kubectl runs");
    assert!(String::from_utf8_lossy(&list.stdout).contains("kubectl-bellwether"), "{list:?}");
    let usage = Command::new(&kubectl)
        .args(["bellwether", "status"])
        .env("PATH", &path)
        .output()
        .expect("kubectl runs");
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}

pub fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file()).ok_or(())
}

/// The krew manifest template names this binary on every platform, with its completer beside it,
/// so that a release only fills in the version, the host and the checksums; krew links only the
/// plugin onto the PATH, so the caveats say how to add the completer.
#[test]
fn the_krew_manifest_installs_this_binary() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/krew/bellwether.yaml");
    let text = std::fs::read_to_string(path).expect("reading the krew manifest");
    let manifest: serde_json::Value = serde_yaml::from_str(&text).expect("the krew manifest is YAML");
    assert_eq!(manifest["kind"], "Plugin");
    let platforms = manifest["spec"]["platforms"].as_array().expect("platforms");
    assert!(!platforms.is_empty());
    for platform in platforms {
        assert_eq!(platform["bin"], "kubectl-bellwether", "{platform}");
        assert!(
            platform["uri"].as_str().is_some_and(|uri| uri.contains("kubectl-bellwether-VERSION")),
            "{platform}"
        );
        let files: Vec<&str> = platform["files"]
            .as_array()
            .map(|files| files.iter().filter_map(|f| f["from"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(files, ["kubectl-bellwether", "kubectl_complete-bellwether"], "{platform}");
    }
    let caveats = manifest["spec"]["caveats"].as_str().expect("caveats");
    assert!(caveats.contains("kubectl_complete-bellwether") && caveats.contains("__complete"), "{caveats}");
}
