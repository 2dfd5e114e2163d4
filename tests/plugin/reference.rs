//! `docs/reference.md`: every command of `kubectl bellwether` and `bellwether` with its `--help`,
//! generated from the binaries themselves, so that the reference cannot drift from the flags.
//! `BELLWETHER_UPDATE_DOCS=1 cargo test --test plugin reference` writes it again.

use std::path::Path;
use std::process::Command;

/// The `--help` of `binary` for the subcommand `path`, as a pipe gets it: no colour, 100 columns.
fn help(binary: &str, path: &[String]) -> String {
    let output = Command::new(binary)
        .args(path)
        .arg("--help")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{path:?} --help: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The subcommands a help text lists under `Commands:`, but `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// A section per command, depth first: the command's name as a heading and its help as text.
fn sections(binary: &str, shown: &str, path: Vec<String>, out: &mut String) {
    let text = help(binary, &path);
    let level = "#".repeat(2 + path.len().min(1));
    let name = std::iter::once(shown.to_string()).chain(path.iter().cloned()).collect::<Vec<_>>().join(" ");
    out.push_str(&format!("{level} `{name}`\n\n```text\n{}\n```\n\n", text.trim_end()));
    for sub in subcommands(&text) {
        let mut deeper = path.clone();
        deeper.push(sub);
        sections(binary, shown, deeper, out);
    }
}

fn reference() -> String {
    let mut out = String::from(
        "# Command reference\n\nEvery command with its `--help`, generated from the binaries by\n\
         `BELLWETHER_UPDATE_DOCS=1 cargo test --test plugin reference`; a test fails when this page and\n\
         the commands differ. The guides are [the plugin](plugin.md), [CI pipelines](ci.md),\n\
         [simulate](simulate.md), [analyze](analysis.md#try-a-template-with-bellwether-analyze) and\n\
         [the controller's flags](operations.md#flags).\n\n",
    );
    sections(env!("CARGO_BIN_EXE_kubectl-bellwether"), "kubectl bellwether", Vec::new(), &mut out);
    sections(env!("CARGO_BIN_EXE_bellwether"), "bellwether", Vec::new(), &mut out);
    out.trim_end().to_string() + "\n"
}

#[test]
fn the_command_reference_is_the_commands_own_help() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let generated = reference();
    if std::env::var_os("BELLWETHER_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("writing docs/reference.md");
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == generated,
        "docs/reference.md differs from the commands' --help: run \
         BELLWETHER_UPDATE_DOCS=1 cargo test --test plugin reference"
    );
    for command in ["`kubectl bellwether status`", "`kubectl bellwether set image`", "`bellwether simulate`"]
    {
        assert!(generated.contains(command), "{command} is missing");
    }
}

#[test]
fn subcommands_are_read_from_the_commands_section() {
    let text =
        "Usage: x\n\nCommands:\n  get   Show\n          more of its text\n  help  Print\n\nOptions:\n  -n\n";
    assert_eq!(subcommands(text), vec!["get".to_string()]);
}
