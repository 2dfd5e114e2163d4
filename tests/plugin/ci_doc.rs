//! The GitHub Actions job in docs/ci.md: it parses as a workflow (`on`, `jobs`, each job with
//! `runs-on` and `steps`, each step with `run` or `uses`), it downloads the plugin from the archive
//! the krew manifest names, and every `kubectl bellwether`, `kubectl-bellwether` and `bellwether`
//! command it runs names a subcommand and flags that exist, with values they take. The binaries'
//! own parsers are asked: each command is run with `--help` after its arguments, which clap answers
//! with the subcommand's help only when every argument before it parses.

use serde_yaml::Value;
use std::path::Path;
use std::process::Command;

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

/// What stands in for a value only known when the job runs: `${{ vars.X }}`, `$ROLLOUT`.
const PLACEHOLDER: &str = "placeholder";

/// The simple commands of a shell script, as words: split at newlines, `;`, `&&`, `||` and `|`
/// outside quotes, quotes removed, comments dropped, and any word holding a variable or an
/// expression replaced by [`PLACEHOLDER`]. Enough of the shell for the scripts of a workflow.
fn simple_commands(script: &str) -> Vec<Vec<String>> {
    let script = script.replace("\\\n", " ");
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut comment = false;
    for c in script.chars() {
        if comment {
            comment = c != '\n';
            if comment {
                continue;
            }
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, '#') if word.is_none() => comment = true,
            (None, ' ' | '\t') => words.extend(word.take()),
            (None, '\n' | ';' | '&' | '|') => {
                words.extend(word.take());
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
        .into_iter()
        .map(|words| {
            words
                .into_iter()
                .skip_while(|w| {
                    let assignment = w.split_once('=').is_some_and(|(name, _)| {
                        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                    assignment || matches!(w.as_str(), "if" | "then" | "else" | "elif" | "do" | "!" | "exec")
                })
                .map(|w| if w.contains('$') { PLACEHOLDER.to_string() } else { w })
                .collect::<Vec<_>>()
        })
        .filter(|words| !words.is_empty())
        .collect()
}

/// The binary a command runs, its name as its usage line says it, and its arguments; `None` for
/// commands that are not Bellwether's.
fn bellwether_command(words: &[String]) -> Option<(&'static str, &'static str, &[String])> {
    const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-bellwether");
    match words {
        [kubectl, plugin, rest @ ..] if kubectl == "kubectl" && plugin == "bellwether" => {
            Some((PLUGIN, "kubectl bellwether", rest))
        }
        [plugin, rest @ ..] if plugin == "kubectl-bellwether" => Some((PLUGIN, "kubectl bellwether", rest)),
        [admin, rest @ ..] if admin == "bellwether" => {
            Some((env!("CARGO_BIN_EXE_bellwether"), "bellwether", rest))
        }
        _ => None,
    }
}

/// Asks the binary whether `args` parse: its help for the subcommand, with exit 0, means they do.
fn assert_parses(binary: &str, name: &str, args: &[String]) {
    let subcommand = args.first().filter(|a| !a.starts_with('-')).unwrap_or_else(|| {
        panic!("`{name} {}` names no subcommand", args.join(" "));
    });
    let output = Command::new(binary).args(args).arg("--help").output().expect("running the binary");
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "`{name} {}` does not parse: {said}", args.join(" "));
    let help = String::from_utf8_lossy(&output.stdout);
    let usage = format!("Usage: {name} {subcommand}");
    assert!(help.contains(&usage), "`{name} {}`: no {usage:?} in\n{help}", args.join(" "));
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

#[test]
fn the_github_actions_job_is_a_workflow_whose_commands_exist() {
    let workflows = workflows(&repo("docs/ci.md"));
    assert_eq!(workflows.len(), 1, "docs/ci.md has one workflow");
    let workflow = &workflows[0];
    let jobs = workflow["jobs"].as_mapping().expect("jobs is a mapping");
    assert!(!jobs.is_empty());
    let mut subcommands = Vec::new();
    for (name, job) in jobs {
        let name = name.as_str().expect("a job's name is a string");
        assert!(job.get("runs-on").is_some_and(|r| r.is_string() || r.is_sequence()), "{name}: runs-on");
        let steps = job["steps"].as_sequence().unwrap_or_else(|| panic!("{name}: steps is a list"));
        assert!(!steps.is_empty(), "{name}: no steps");
        for step in steps {
            match (text(step, "run"), text(step, "uses")) {
                (Some(script), None) => {
                    for words in simple_commands(script) {
                        if let Some((binary, bin_name, args)) = bellwether_command(&words) {
                            assert_parses(binary, bin_name, args);
                            subcommands.push(format!("{bin_name} {}", args.join(" ")));
                        }
                    }
                }
                (None, Some(action)) => {
                    let (repository, version) =
                        action.split_once('@').expect("an action is pinned: owner/repo@ref");
                    assert!(repository.contains('/') && !version.is_empty(), "{action}");
                }
                _ => panic!("{name}: a step has exactly one of run and uses: {step:?}"),
            }
        }
    }
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

#[test]
fn shell_commands_are_split_as_a_shell_would() {
    let script = "code=0\nkubectl bellwether status \"$ROLLOUT\" --timeout 45m || code=$?\n\
                  # kubectl bellwether commented out\nif kubectl bellwether lint -f 'a dir/'; then echo ok; fi\n\
                  bellwether simulate \\\n  --runs 20 | tee out";
    let commands = simple_commands(script);
    let words = |c: &[&str]| c.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    assert_eq!(
        commands,
        [
            words(&["kubectl", "bellwether", "status", PLACEHOLDER, "--timeout", "45m"]),
            words(&["kubectl", "bellwether", "lint", "-f", "a dir/"]),
            words(&["echo", "ok"]),
            words(&["fi"]),
            words(&["bellwether", "simulate", "--runs", "20"]),
            words(&["tee", "out"]),
        ]
    );
}
