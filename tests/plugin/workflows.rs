//! The repository's own GitHub Actions workflows (`.github/workflows/`), which cannot run here:
//! they parse as workflows, and every script, file, binary, test target and Dockerfile stage they
//! name exists. The release's own scripts, `scripts/package-plugin` and `scripts/krew-manifest`,
//! are run for real: the archives they pack are the ones the krew manifest they fill names.

use crate::workflow::{PLACEHOLDER, assert_parses, bellwether_command, check, simple_commands, text};
use serde_yaml::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn workflows() -> Vec<(String, Value)> {
    let dir = root().join(".github/workflows");
    let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect(".github/workflows exists")
        .map(|entry| entry.expect("a directory entry").path())
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable workflow");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
            (name, value)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The names of the files in `dir` with `extension`, without it; for `tests`, also the folders
/// with a `main.rs`, as cargo finds test targets.
fn targets(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join(dir))
        .expect("a readable folder")
        .map(|entry| entry.expect("a directory entry").path())
        .filter_map(|path| {
            let name = path.file_stem()?.to_string_lossy().into_owned();
            let target = path.extension().is_some_and(|e| e == "rs") || path.join("main.rs").exists();
            target.then_some(name)
        })
        .collect()
}

/// The stages of the Dockerfile, `FROM ... AS <stage>`.
fn dockerfile_stages() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("a Dockerfile");
    text.lines()
        .filter(|line| line.starts_with("FROM "))
        .filter_map(|line| line.split_whitespace().skip_while(|w| !w.eq_ignore_ascii_case("AS")).nth(1))
        .map(str::to_string)
        .collect()
}

/// The values each `flag` has in `words`.
fn values_of<'w>(words: &'w [String], flag: &str) -> Vec<&'w str> {
    words.windows(2).filter(|pair| pair[0] == flag).map(|pair| pair[1].as_str()).collect()
}

#[test]
fn the_workflows_name_only_what_exists() {
    let workflows = workflows();
    let names: Vec<&str> = workflows.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["e2e-kind.yml", "release.yml"]);
    let (binaries, tests, stages) = (targets("src/bin"), targets("tests"), dockerfile_stages());
    let mut named = BTreeSet::new();
    for (file, workflow) in &workflows {
        assert!(workflow.get("on").is_some() && text(workflow, "name").is_some(), "{file}: name and on");
        check(workflow, |job, script| {
            for words in simple_commands(script) {
                if let Some((binary, bin_name, args)) = bellwether_command(&words) {
                    assert_parses(binary, bin_name, args);
                }
                for word in &words {
                    if word.starts_with("scripts/") || word.starts_with("charts/") {
                        let path = root().join(word);
                        assert!(path.exists(), "{file}: {job}: {word} does not exist");
                        named.insert(word.clone());
                    }
                }
                if words.first().is_some_and(|w| w == "cargo") {
                    for bin in values_of(&words, "--bin") {
                        assert!(binaries.contains(bin), "{file}: {job}: no binary {bin} in {binaries:?}");
                        named.insert(format!("--bin {bin}"));
                    }
                    for test in values_of(&words, "--test") {
                        assert!(tests.contains(test), "{file}: {job}: no test target {test} in {tests:?}");
                        named.insert(format!("--test {test}"));
                    }
                }
            }
        });
        for job in workflow["jobs"].as_mapping().unwrap().values() {
            for step in job["steps"].as_sequence().unwrap() {
                if let Some(stage) = step.get("with").and_then(|with| text(with, "target")) {
                    assert!(stages.contains(stage), "{file}: no Dockerfile stage {stage} in {stages:?}");
                    named.insert(format!("stage {stage}"));
                }
            }
        }
    }
    // What each workflow is for is there.
    for expected in [
        "scripts/kind-cluster",
        "--test e2e",
        "scripts/package-plugin",
        "scripts/krew-manifest",
        "--bin kubectl-bellwether",
        "--bin kubectl_complete-bellwether",
        "charts/bellwether",
        "stage controller",
        "stage demo-app",
    ] {
        assert!(named.contains(expected), "the workflows never name {expected}: {named:?}");
    }
}

/// The e2e workflow hands the suite the kubeconfig that scripts/kind-cluster writes.
#[test]
fn the_e2e_workflow_runs_the_suite_on_the_cluster_it_made() {
    let workflows = workflows();
    let workflow = &workflows.iter().find(|(name, _)| name == "e2e-kind.yml").unwrap().1;
    let steps = workflow["jobs"]["e2e"]["steps"].as_sequence().unwrap();
    let cluster = steps.iter().filter_map(|s| text(s, "run")).find(|r| r.contains("scripts/kind-cluster"));
    let name = cluster.and_then(|r| r.split_whitespace().nth(1)).expect("a named cluster");
    let suite = steps.iter().find(|s| text(s, "run").is_some_and(|r| r.contains("--test e2e"))).unwrap();
    let kubeconfig = text(&suite["env"], "BELLWETHER_E2E_KUBECONFIG").expect("the real-cluster mode");
    assert!(kubeconfig.ends_with(&format!("/{name}.kubeconfig")), "{kubeconfig} for cluster {name}");
    assert_ne!(kubeconfig, PLACEHOLDER);
}

fn run(script: &str, args: &[&str]) -> std::process::Output {
    Command::new(root().join("scripts").join(script)).args(args).output().expect("running a script")
}

fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_kubectl-bellwether")).parent().unwrap().to_path_buf()
}

#[test]
fn the_release_packs_the_archives_its_krew_manifest_names() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let bin_dir = plugin_dir();
    let manifest: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("dist/krew/bellwether.yaml")).unwrap())
            .unwrap();
    let platforms = manifest["spec"]["platforms"].as_array().expect("platforms");
    for platform in platforms {
        let uri = platform["uri"].as_str().unwrap();
        let target = uri.rsplit_once("VERSION-").unwrap().1.trim_end_matches(".tar.gz");
        let packed = run("package-plugin", &[target, "1.2.3", bin_dir.to_str().unwrap(), out_dir]);
        assert!(packed.status.success(), "{}", String::from_utf8_lossy(&packed.stderr));
        let archive = String::from_utf8(packed.stdout).unwrap().trim().to_string();
        let listed = Command::new("tar").args(["-tzf", &archive]).output().unwrap();
        let files: Vec<String> =
            String::from_utf8(listed.stdout).unwrap().lines().map(str::to_string).collect();
        let wanted: Vec<String> = platform["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["from"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(files, wanted, "{archive} holds what krew takes from it");
    }

    let filled = run("krew-manifest", &["github.com/example/bellwether", "1.2.3", out_dir]);
    assert!(filled.status.success(), "{}", String::from_utf8_lossy(&filled.stderr));
    let text = String::from_utf8(filled.stdout).unwrap();
    for placeholder in ["REPOSITORY", "VERSION", "SHA256_"] {
        assert!(!text.contains(placeholder), "{placeholder} left in\n{text}");
    }
    let filled: serde_json::Value = serde_yaml::from_str(&text).expect("the manifest is YAML");
    assert_eq!(filled["spec"]["version"], "v1.2.3");
    for platform in filled["spec"]["platforms"].as_array().unwrap() {
        let uri = platform["uri"].as_str().unwrap();
        let prefix =
            "https://github.com/example/bellwether/releases/download/v1.2.3/kubectl-bellwether-1.2.3-";
        assert!(uri.starts_with(prefix), "{uri}");
        let archive = std::fs::read(out.path().join(uri.rsplit_once('/').unwrap().1)).expect("the archive");
        let sum: String = Sha256::digest(&archive).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(platform["sha256"].as_str(), Some(sum.as_str()), "{uri}");
    }
}

#[test]
fn the_release_scripts_refuse_what_they_cannot_do() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let missing = run("krew-manifest", &["github.com/example/bellwether", "1.2.3", out_dir]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is missing"), "{missing:?}");
    assert!(missing.stdout.is_empty(), "no manifest without its archives");

    let empty = tempfile::tempdir().unwrap();
    let packed = run(
        "package-plugin",
        &["x86_64-unknown-linux-musl", "1.2.3", empty.path().to_str().unwrap(), out_dir],
    );
    assert_eq!(packed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&packed.stderr).contains("kubectl-bellwether is missing"), "{packed:?}");
    assert_eq!(run("package-plugin", &["only-one"]).status.code(), Some(2));
    assert_eq!(run("krew-manifest", &[]).status.code(), Some(2));
}
