//! The GitHub Actions job in docs/ci.md: it parses as a workflow (`on`, `jobs`, each job with
//! `runs-on` and `steps`, each step with `run` or `uses`), it downloads the plugin from the archive
//! the krew manifest names, and every `kubectl bellwether`, `kubectl-bellwether` and `bellwether`
//! command it runs names a subcommand and flags that exist, with values they take. The binaries'
//! own parsers are asked: each command is run with `--help` after its arguments, which clap answers
//! with the subcommand's help only when every argument before it parses.

use crate::workflow::{PLACEHOLDER, assert_parses, bellwether_command, check, simple_commands, text};
use serde_yaml::Value;
use std::path::Path;

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("reading a file")
}

/// The YAML blocks of a Markdown text that are GitHub Actions workflows: those with `on` and `jobs`.
fn workflows(markdown: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut block: Option<String> = None;
    for line in markdown.lines() {
        match block.as_mut() {
            None if line.trim_start() == "```yaml" => block = Some(String::new()),
            None => {}
            Some(_) if line.trim_start() == "```" => {
                let text = block.take().unwrap_or_default();
                let value: Value = serde_yaml::from_str(&text)
                    .unwrap_or_else(|e| panic!("a YAML block of docs/ci.md does not parse: {e}\n{text}"));
                if value.get("on").is_some() && value.get("jobs").is_some() {
                    found.push(value);
                }
            }
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    found
}

#[test]
fn the_github_actions_job_is_a_workflow_whose_commands_exist() {
    let workflows = workflows(&repo("docs/ci.md"));
    assert_eq!(workflows.len(), 1, "docs/ci.md has one workflow");
    let mut subcommands = Vec::new();
    check(&workflows[0], |_, script| {
        for words in simple_commands(script) {
            if let Some((binary, bin_name, args)) = bellwether_command(&words) {
                assert_parses(binary, bin_name, args);
                subcommands.push(format!("{bin_name} {}", args.join(" ")));
            }
        }
    });
    // What the job is for is there: the status a pipeline waits on, with the flags docs/ci.md names.
    let status = format!("kubectl bellwether status {PLACEHOLDER} -n {PLACEHOLDER} --watch --timeout 45m");
    for expected in [status.as_str(), "kubectl bellwether lint -f deploy/", "bellwether simulate -f deploy/"]
    {
        assert!(subcommands.iter().any(|c| c.starts_with(expected)), "no {expected:?} in {subcommands:#?}");
    }
}

/// The job downloads the Linux amd64 archive at the address the krew manifest gives it, with the
/// release's host and version filled in.
#[test]
fn the_github_actions_job_installs_the_archive_the_krew_manifest_names() {
    let manifest: serde_json::Value = serde_yaml::from_str(&repo("dist/krew/bellwether.yaml")).unwrap();
    let platforms = manifest["spec"]["platforms"].as_array().expect("platforms");
    let linux = platforms
        .iter()
        .find(|p| p["selector"]["matchLabels"] == serde_json::json!({"os": "linux", "arch": "amd64"}))
        .expect("a Linux amd64 archive");
    let uri = linux["uri"]
        .as_str()
        .expect("a uri")
        .replace("REPOSITORY", "${BELLWETHER_REPOSITORY}")
        .replace("VERSION", "${BELLWETHER_VERSION}");
    let (directory, archive) = uri.rsplit_once('/').expect("a path");
    let workflow = &workflows(&repo("docs/ci.md"))[0];
    let scripts: Vec<&str> = workflow["jobs"]
        .as_mapping()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_sequence().unwrap())
        .filter_map(|step| text(step, "run"))
        .collect();
    let install = scripts.iter().find(|s| s.contains("curl")).expect("a step that downloads the plugin");
    assert!(install.contains(&format!("archive=\"{archive}\"")), "{install}");
    assert!(install.contains(&format!("\"{directory}/${{archive}}\"")), "{install}");
    assert!(
        install.contains(&format!("-C \"$HOME/.local/bin\" {}", linux["bin"].as_str().unwrap())),
        "{install}"
    );
}
