//! GitHub Actions workflows as the tests check them: the structure GitHub requires (`on`, `jobs`,
//! each job with `runs-on` and `steps`, each step with `run` or `uses`, each action pinned), and the
//! commands their scripts run, split as a shell would.

use serde_yaml::Value;
use std::process::Command;

/// What stands in for a value only known when the job runs: `${{ vars.X }}`, `$ROLLOUT`.
pub const PLACEHOLDER: &str = "placeholder";

/// The simple commands of a shell script, as words: split at newlines, `;`, `&&`, `||` and `|`
/// outside quotes, quotes removed, comments dropped, and any word holding a variable or an
/// expression replaced by [`PLACEHOLDER`]. Enough of the shell for the scripts of a workflow.
pub fn simple_commands(script: &str) -> Vec<Vec<String>> {
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
pub fn bellwether_command(words: &[String]) -> Option<(&'static str, &'static str, &[String])> {
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
pub fn assert_parses(binary: &str, name: &str, args: &[String]) {
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

pub fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// Checks the structure of `workflow` and calls `script` with each job's name and each step's
/// `run` script.
pub fn check(workflow: &Value, mut script: impl FnMut(&str, &str)) {
    let jobs = workflow["jobs"].as_mapping().expect("jobs is a mapping");
    assert!(!jobs.is_empty(), "no jobs");
    for (name, job) in jobs {
        let name = name.as_str().expect("a job's name is a string");
        assert!(job.get("runs-on").is_some_and(|r| r.is_string() || r.is_sequence()), "{name}: runs-on");
        let steps = job["steps"].as_sequence().unwrap_or_else(|| panic!("{name}: steps is a list"));
        assert!(!steps.is_empty(), "{name}: no steps");
        for step in steps {
            match (text(step, "run"), text(step, "uses")) {
                (Some(run), None) => script(name, run),
                (None, Some(action)) => {
                    let (repository, version) =
                        action.split_once('@').expect("an action is pinned: owner/repo@ref");
                    assert!(repository.contains('/') && !version.is_empty(), "{action}");
                }
                _ => panic!("{name}: a step has exactly one of run and uses: {step:?}"),
            }
        }
    }
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
