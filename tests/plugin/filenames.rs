//! `-f` means the same in every command that takes manifests (`lint`, `convert`, `simulate`,
//! `analyze`): files and directories, directories searched recursively for `.yaml`, `.yml` and
//! `.json`, a file named directly read whatever its name, `-` for standard input, a file read once
//! however it is named, an object defined twice identically counted once, and one defined twice
//! differently refused with both places named. Each rule is checked in each command, through the
//! real binaries, on manifests where the rule decides the outcome: each command needs both of its
//! two documents, one at the top of a directory and one two levels down in JSON.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A command that takes `-f`, and two documents it needs together.
struct Case {
    name: &'static str,
    binary: &'static str,
    args: &'static [&'static str],
    /// The document at the top of the directory, and a change that makes it another definition.
    top: &'static str,
    changed: (&'static str, &'static str),
    /// The document two levels down, written as JSON.
    nested: &'static str,
    /// Whether the output says that both documents were read and used.
    used_both: fn(&Output) -> bool,
    /// The exit code of manifests that define an object twice differently.
    conflict_code: i32,
}

const ROLLOUT: &str = "apiVersion: bellwether.dev/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: app
          image: shop:1
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      trafficRouting:
        gatewayAPI:
          httpRoutes:
            - name: web
      steps:
        - setWeight: 20
        - analysis:
            templates:
              - templateName: errors
";

const TEMPLATE: &str = r#"apiVersion: bellwether.dev/v1alpha1
kind: AnalysisTemplate
metadata:
  name: errors
  namespace: shop
spec:
  metrics:
    - name: errors
      interval: 1m
      count: 3
      provider:
        prometheus:
          address: http://127.0.0.1:1
          query: sum(rate(http_requests_total{revision="{{revision}}", code=~"5.."}[1m])) / sum(rate(http_requests_total{revision="{{revision}}"}[1m]))
      threshold:
        max: 0.01
"#;

const ARGO_TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: error-rate
  namespace: payments
spec:
  metrics:
    - name: error-rate
      interval: 1m
      count: 5
      successCondition: result[0] < 0.01
      provider:
        prometheus:
          address: http://prometheus.monitoring:9090
          query: sum(rate(http_requests_total{code=~"5.."}[2m])) / sum(rate(http_requests_total[2m]))
"#;

const ARGO_CLUSTER_TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata:
  name: latency
spec:
  metrics:
    - name: p99-latency
      interval: 30s
      count: 4
      successCondition: result[0] <= 500
      provider:
        prometheus:
          address: https://prometheus.example.net
          query: histogram_quantile(0.99, sum by (le) (rate(latency_ms_bucket[1m])))
"#;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const CASES: [Case; 4] = [
    Case {
        name: "lint",
        binary: env!("CARGO_BIN_EXE_kubectl-bellwether"),
        args: &["lint"],
        top: ROLLOUT,
        changed: ("replicas: 2", "replicas: 3"),
        nested: TEMPLATE,
        // Without the template, lint warns that the Rollout's is not among the files.
        used_both: |output| {
            output.status.code() == Some(0)
                && !stdout(output).contains("AnalysisTemplate \"errors\" is not in")
        },
        conflict_code: 1,
    },
    Case {
        name: "simulate",
        binary: env!("CARGO_BIN_EXE_bellwether"),
        args: &["simulate", "--scenario", "good"],
        top: ROLLOUT,
        changed: ("replicas: 2", "replicas: 3"),
        nested: TEMPLATE,
        // Without the template, the Rollout cannot run.
        used_both: |output| output.status.code() == Some(0) && stdout(output).contains("Outcome: promoted"),
        conflict_code: 6,
    },
    Case {
        name: "analyze",
        binary: env!("CARGO_BIN_EXE_bellwether"),
        args: &["analyze", "--prometheus", "http://127.0.0.1:1"],
        top: ROLLOUT,
        changed: ("replicas: 2", "replicas: 3"),
        nested: TEMPLATE,
        // The template was found and is valid: analyze got as far as its Prometheus.
        used_both: |output| {
            output.status.code() == Some(6)
                && stderr(output).contains("Prometheus at http://127.0.0.1:1 is unreachable")
        },
        conflict_code: 6,
    },
    Case {
        name: "convert",
        binary: env!("CARGO_BIN_EXE_kubectl-bellwether"),
        args: &["convert"],
        top: ARGO_TEMPLATE,
        changed: ("count: 5", "count: 6"),
        nested: ARGO_CLUSTER_TEMPLATE,
        used_both: |output| output.status.code() == Some(0) && stderr(output).contains("2 objects converted"),
        conflict_code: 1,
    },
];

impl Case {
    /// `top.yml` at the top of a new directory, the nested document as `nested/deeper/doc.json`,
    /// and a note that is no manifest; returns the directory.
    fn tree(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("top.yml"), self.top).unwrap();
        let deeper = dir.path().join("nested/deeper");
        std::fs::create_dir_all(&deeper).unwrap();
        let json: serde_json::Value = serde_yaml::from_str(self.nested).unwrap();
        std::fs::write(deeper.join("doc.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not: [a manifest").unwrap();
        dir
    }

    fn run(&self, paths: &[&Path], stdin: &str) -> Output {
        let mut command = Command::new(self.binary);
        command.args(self.args);
        for path in paths {
            command.arg("-f").arg(path);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running the command");
        child.stdin.take().expect("a stdin").write_all(stdin.as_bytes()).expect("writing stdin");
        child.wait_with_output().expect("the command ran")
    }

    /// Runs with `paths`, which must lead to both documents being used.
    fn assert_used_both(&self, rule: &str, paths: &[&Path], stdin: &str) -> Output {
        let output = self.run(paths, stdin);
        assert!(
            (self.used_both)(&output),
            "{} ({rule}): exit {:?}\n{}{}",
            self.name,
            output.status.code(),
            stdout(&output),
            stderr(&output)
        );
        output
    }
}

/// The line of `metadata.name` in a document written as these are.
fn name_line(text: &str) -> usize {
    text.lines().position(|l| l.starts_with("  name: ")).expect("a metadata.name") + 1
}

fn lint_files(output: &Output) -> u64 {
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("lint -o json prints JSON");
    report["files"].as_u64().expect("a file count")
}

#[test]
fn directories_are_searched_recursively_for_yaml_yml_and_json() {
    for case in &CASES {
        let dir = case.tree();
        case.assert_used_both("a directory", &[dir.path()], "");
        // Named directly, a file is read whatever its name: the note is read, and refused.
        let named = case.run(&[dir.path(), &dir.path().join("notes.txt")], "");
        assert_ne!(named.status.code(), Some(0), "{}: the note was not read", case.name);
        assert!(
            stderr(&named).contains("notes.txt") || stdout(&named).contains("notes.txt"),
            "{}",
            case.name
        );
        let other = dir.path().join("top.manifest");
        std::fs::rename(dir.path().join("top.yml"), &other).unwrap();
        case.assert_used_both("a file named directly", &[&other, &dir.path().join("nested")], "");
    }
}

#[test]
fn a_dash_reads_standard_input_once() {
    for case in &CASES {
        let dir = case.tree();
        std::fs::remove_file(dir.path().join("top.yml")).unwrap();
        let nested = dir.path().join("nested");
        case.assert_used_both("standard input", &[Path::new("-"), &nested], case.top);
        case.assert_used_both("standard input twice", &[Path::new("-"), &nested, Path::new("-")], case.top);
    }
    let case = &CASES[0];
    let dir = case.tree();
    let mut command = Command::new(case.binary);
    let output = command
        .args(["lint", "-o", "json", "-f", "-", "-f", "-", "-f"])
        .arg(dir.path().join("nested"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(lint_files(&output), 2, "standard input is one file however often it is named");
}

#[test]
fn a_file_counts_once_however_it_is_named() {
    for case in &CASES {
        let dir = case.tree();
        let top = dir.path().join("top.yml");
        let link = dir.path().join("link.yml");
        std::os::unix::fs::symlink(&top, &link).unwrap();
        let dotted = dir.path().join(".").join("top.yml");
        case.assert_used_both("named four ways", &[dir.path(), &top, &dotted, &link], "");
        if case.name == "lint" {
            let output = Command::new(case.binary)
                .args(["lint", "-o", "json", "-f"])
                .args([dir.path(), &top, &dotted, &link].iter().flat_map(|p| [p.as_os_str(), "-f".as_ref()]))
                .arg(dir.path().join("nested"))
                .output()
                .unwrap();
            assert_eq!(lint_files(&output), 2, "{}", stdout(&output));
        }
    }
}

#[test]
fn an_object_defined_twice_identically_counts_once() {
    for case in &CASES {
        let dir = case.tree();
        // The same object again, as JSON: what counts is what it defines, not how it is written.
        let copy = dir.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        let json: serde_json::Value = serde_yaml::from_str(case.top).unwrap();
        std::fs::write(copy.join("again.json"), json.to_string()).unwrap();
        case.assert_used_both("defined twice identically", &[dir.path()], "");
    }
}

#[test]
fn an_object_defined_twice_differently_is_an_error_naming_both_places() {
    for case in &CASES {
        let dir = case.tree();
        let copy = dir.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        let (from, to) = case.changed;
        std::fs::write(copy.join("other.yaml"), case.top.replace(from, to)).unwrap();
        let output = case.run(&[dir.path()], "");
        let said = format!("{}{}", stdout(&output), stderr(&output));
        assert_eq!(output.status.code(), Some(case.conflict_code), "{}: {said}", case.name);
        // Directories are read in name order: the copy first.
        let line = name_line(case.top);
        let both = format!(
            "is defined differently at {first}:{line} and {second}:{line}: ",
            first = copy.join("other.yaml").display(),
            second = dir.path().join("top.yml").display()
        );
        assert!(said.contains(&both), "{}: no {both:?} in\n{said}", case.name);
        let field = from.split(':').next().unwrap();
        let named = [format!("spec.{field}"), format!("spec.metrics[0].{field}")];
        assert!(
            named.iter().any(|path| said.contains(&format!("{both}{path} differs"))),
            "{}: {said}",
            case.name
        );
    }
}

/// What a directory may hold besides manifests: a link back to itself, which must not make the walk
/// endless, and a named pipe called `*.yaml`, which must not block it. A pipe named directly is read
/// (`-f <(helm template ...)`), and a file larger than any manifest is refused, not read to the end.
#[test]
fn links_pipes_and_endless_files_neither_hang_nor_exhaust_the_walk() {
    for case in &CASES {
        let dir = case.tree();
        std::os::unix::fs::symlink(".", dir.path().join("nested/loop")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("nested/deeper/up")).unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
        assert!(made.success());
        case.assert_used_both("links and a pipe", &[dir.path()], "");

        let piped = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "cat {top:?} > {fifo:?} & {binary} {args} -f {fifo:?} -f {nested:?}",
                top = dir.path().join("top.yml"),
                binary = case.binary,
                args = case.args.join(" "),
                nested = dir.path().join("nested"),
            ))
            .output()
            .expect("bash runs");
        assert!((case.used_both)(&piped), "{}: a pipe named directly: {}", case.name, stderr(&piped));
    }
    let case = &CASES[0];
    let endless = case.run(&[Path::new("/dev/zero")], "");
    assert_ne!(endless.status.code(), Some(0));
    assert!(stderr(&endless).contains("/dev/zero: larger than 64 MiB"), "{}", stderr(&endless));
}
