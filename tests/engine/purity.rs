//! The pure layers stay pure. The compiler holds most of it: `bellwether-api` and
//! `bellwether-engine` are crates of their own, so they cannot name the controller, the metric
//! providers or the server. These tests hold the rest: what those crates may depend on, what their
//! sources may call, and that the engine's modules import one another in one direction only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that would bring a Kubernetes client, an async runtime, an HTTP stack or the shell.
const FORBIDDEN_CRATES: &[&str] = &[
    "bellwether",
    "bellwether-openapi",
    "bellwether-testkit",
    "hyper",
    "hyper-util",
    "kube",
    "kube-client",
    "kube-runtime",
    "prometheus-http-query",
    "reqwest",
    "tokio",
];

/// Calls that read a clock or do I/O, which no source file of the pure crates may make.
const FORBIDDEN_CALLS: &[&str] = &[
    "async fn",
    ".await",
    "Utc::now",
    "Local::now",
    "SystemTime",
    "Instant::now",
    "std::env",
    "std::fs",
    "std::io",
    "std::net",
    "std::process",
    "std::thread",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The crates `package` depends on to build (not its tests), from `cargo tree`.
fn dependencies(package: &str) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--locked", "-e", "normal", "--prefix", "none", "-p", package])
        .current_dir(root())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).expect("cargo tree writes UTF-8");
    let names: BTreeSet<String> =
        tree.lines().filter_map(|line| line.split_whitespace().next()).map(str::to_string).collect();
    assert!(names.contains(package), "cargo tree -p {package} lists the package itself:\n{tree}");
    names
}

#[test]
fn the_pure_crates_depend_on_no_client_runtime_or_http_stack() {
    for package in ["bellwether-api", "bellwether-engine"] {
        let dependencies = dependencies(package);
        let forbidden: Vec<&&str> = FORBIDDEN_CRATES.iter().filter(|c| dependencies.contains(**c)).collect();
        assert!(forbidden.is_empty(), "{package} depends on {forbidden:?}; it must stay pure");
        assert!(dependencies.contains("chrono"), "the tree of {package} was read: {dependencies:?}");
    }
    assert!(dependencies("bellwether").contains("tokio"), "the check sees a crate that is there");
}

/// Every `.rs` file under `dir`, recursively, in a stable order.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_pure_crates_read_no_clock_and_do_no_io() {
    for dir in ["crates/engine/src", "crates/api/src"] {
        let files = sources(&root().join(dir));
        assert!(files.len() >= 5, "expected the modules of {dir}, found {files:?}");
        for path in files {
            let source = std::fs::read_to_string(&path).expect("readable source");
            for call in FORBIDDEN_CALLS {
                assert!(!source.contains(call), "{} uses {call}: it must stay pure", path.display());
            }
        }
    }
}

#[test]
fn the_metric_providers_do_not_reach_into_the_engine() {
    for path in sources(&root().join("src/metrics")) {
        let source = std::fs::read_to_string(&path).expect("readable source");
        assert!(!source.contains("crate::engine"), "{} imports the engine", path.display());
    }
}

/// The sibling modules each module of `dir` names. A file's module is the file; a folder's is
/// every file in it. At the crate root a file names a sibling as `crate::x` or `super::x`, a folder
/// as `crate::x` (its own `super::` is the folder); in a module folder a file names one as `super::x`.
fn imports(dir: &Path, at_root: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules: BTreeMap<String, (String, &[&str])> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("readable entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if path.is_dir() && at_root {
            let source: String =
                sources(&path).iter().map(|p| std::fs::read_to_string(p).expect("readable")).collect();
            modules.insert(name, (source, &["crate::"]));
        } else if path.extension().is_some_and(|e| e == "rs") && !matches!(name.as_str(), "mod" | "lib") {
            let prefixes: &[&str] = if at_root { &["crate::", "super::"] } else { &["super::"] };
            modules.insert(name, (std::fs::read_to_string(&path).expect("readable source"), prefixes));
        }
    }
    modules
        .iter()
        .map(|(name, (source, prefixes))| {
            let named = modules
                .keys()
                .filter(|other| *other != name)
                .filter(|other| {
                    prefixes.iter().any(|prefix| {
                        source.contains(&format!("{prefix}{other}::")) || braced(source, prefix, other)
                    })
                })
                .cloned()
                .collect();
            (name.clone(), named)
        })
        .collect()
}

/// Whether a braced import from `prefix` (`use super::{a, b::C};`) names `module`.
fn braced(source: &str, prefix: &str, module: &str) -> bool {
    source.match_indices(&format!("{prefix}{{")).any(|(at, open)| {
        let rest = &source[at + open.len()..];
        let list = &rest[..rest.find('}').unwrap_or(rest.len())];
        list.split(',').map(str::trim).any(|item| item == module || item.starts_with(&format!("{module}::")))
    })
}

/// A cycle in `graph`, if it has one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_engine_modules_import_one_another_in_one_direction() {
    let engine = root().join("crates/engine/src");
    for (dir, at_root) in [(engine.clone(), true), (engine.join("analysis"), false)] {
        let graph = imports(&dir, at_root);
        assert!(graph.len() >= 5, "expected the modules of {}, found {graph:?}", dir.display());
        if let Some(cycle) = cycle(&graph) {
            panic!("the modules of {} import in a circle: {}", dir.display(), cycle.join(" → "));
        }
    }
}

#[test]
fn a_module_circle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("judge", vec!["compare"]), ("compare", vec!["verdict", "judge"]), ("verdict", vec![])]
            .into_iter()
            .map(|(node, next)| (node.to_string(), next.into_iter().map(str::to_string).collect()))
            .collect();
    assert_eq!(cycle(&graph), Some(vec!["compare".into(), "judge".into(), "compare".into()]));
    assert!(braced("use super::{judge, verdict::Window};", "super::", "verdict"));
    assert!(!braced("use super::{judgement};", "super::", "judge"));
}
