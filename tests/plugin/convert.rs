//! `kubectl bellwether convert` on a corpus of Argo Rollouts and Flagger manifests in
//! `tests/fixtures/convert/`, through the real plugin binary:
//! - `good/` converts whole; its output lints clean with the plugin's own `lint` and is the same as
//!   `expected/` (run with `BELLWETHER_BLESS=1` to write `expected/` again after a deliberate change,
//!   and read the difference);
//! - `refused/` is refused: each file lists, as `# expect: LINE: SEVERITY: ...` lines, every finding
//!   it must produce, in order and without the file name, and as `# writes: Kind/name` lines the
//!   objects that still convert.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FIXTURES: &str = "tests/fixtures/convert";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn plugin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-bellwether"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the plugin");
    let mut input = child.stdin.take().expect("a stdin");
    input.write_all(stdin.unwrap_or_default().as_bytes()).expect("writing stdin");
    drop(input);
    child.wait_with_output().expect("the plugin ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The manifests under `dir` (relative to the repository), recursively, sorted as lint walks them.
fn manifests(dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .expect("reading the corpus")
        .map(|e| e.expect("an entry").path())
        .collect();
    entries.sort();
    for entry in entries {
        let relative = format!("{dir}/{}", entry.file_name().and_then(|n| n.to_str()).expect("a name"));
        if entry.is_dir() {
            found.extend(manifests(&relative));
        } else if relative.ends_with(".yaml") {
            found.push(relative);
        }
    }
    found
}

/// `Kind/name` of each object of a multi-document YAML text.
fn objects(yaml: &str) -> Vec<String> {
    yaml.split("\n---\n")
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            let value: serde_json::Value = serde_yaml::from_str(doc).expect("convert writes YAML");
            format!(
                "{}/{}",
                value["kind"].as_str().unwrap_or_default(),
                value["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Lints `yaml` with the plugin, as a file of its own.
fn lint(yaml: &str) -> Output {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("converted.yaml");
    std::fs::write(&file, yaml).expect("writing the output");
    plugin(&["lint", "-f", file.to_str().expect("a UTF-8 path")], None)
}

#[test]
fn every_good_manifest_converts_whole_and_lints_clean() {
    let good = manifests(&format!("{FIXTURES}/good"));
    assert!(good.len() >= 10, "{good:?}");
    let bless = std::env::var_os("BELLWETHER_BLESS").is_some();
    for file in good {
        let output = plugin(&["convert", "-f", &file], None);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "{file}:\n{stderr}");
        assert!(!stderr.contains("error:"), "{file}:\n{stderr}");
        let linted = lint(&stdout);
        assert_eq!(
            linted.status.code(),
            Some(0),
            "{file}: lint of the output:\n{}\n{stdout}",
            text(&linted.stdout)
        );
        let expected = repo(&file.replace("/good/", "/expected/"));
        if bless {
            std::fs::create_dir_all(expected.parent().expect("a directory")).expect("creating expected/");
            std::fs::write(&expected, &stdout).expect("writing the expected output");
        }
        let wanted = std::fs::read_to_string(&expected)
            .unwrap_or_else(|e| panic!("{}: {e} (BELLWETHER_BLESS=1 writes it)", expected.display()));
        assert_eq!(stdout, wanted, "{file}: the output differs from {}", expected.display());
    }
}

#[test]
fn every_refused_manifest_names_what_it_refuses_and_writes_nothing_for_it() {
    let refused = manifests(&format!("{FIXTURES}/refused"));
    assert!(refused.len() >= 8, "{refused:?}");
    for file in refused {
        let source = std::fs::read_to_string(repo(&file)).expect("reading the case");
        let expected: Vec<&str> = source.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        let writes: Vec<&str> = source.lines().filter_map(|l| l.strip_prefix("# writes: ")).collect();
        assert!(!expected.is_empty(), "{file} has no # expect: line");
        let output = plugin(&["convert", "-f", &file], None);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{file}:\n{stderr}");
        let prefix = format!("{file}:");
        let found: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix(&prefix)).collect();
        assert_eq!(found, expected, "{file}:\n{stderr}");
        assert_eq!(objects(&text(&output.stdout)), writes, "{file}: what was written");
    }
}

#[test]
fn allow_partial_writes_what_converts_and_succeeds() {
    let file = format!("{FIXTURES}/refused/partial.yaml");
    let strict = plugin(&["convert", "-f", &file], None);
    let partial = plugin(&["convert", "-f", &file, "--allow-partial"], None);
    assert_eq!((strict.status.code(), partial.status.code()), (Some(1), Some(0)));
    assert_eq!(objects(&text(&partial.stdout)), ["AnalysisTemplate/good"]);
    assert_eq!(partial.stdout, strict.stdout, "the flag changes the exit code only");
    let said = text(&partial.stderr);
    assert!(
        said.contains("AnalysisTemplate/bad")
            && said.ends_with("1 object converted, 1 refused, 0 of other kinds skipped\n"),
        "{said}"
    );
}

#[test]
fn a_dash_reads_standard_input() {
    let file = format!("{FIXTURES}/good/argo/analysis-steps.yaml");
    let source = std::fs::read_to_string(repo(&file)).expect("reading the case");
    let from_file = plugin(&["convert", "-f", &file], None);
    let from_stdin = plugin(&["convert", "-f", "-"], Some(&source));
    assert_eq!(from_stdin.status.code(), Some(0), "{}", text(&from_stdin.stderr));
    // The comments name the source, so they wrap differently; the manifests are the same.
    let manifests = |output: &Output| -> String {
        text(&output.stdout).lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(manifests(&from_stdin), manifests(&from_file));
    assert!(
        text(&from_stdin.stdout)
            .starts_with("# Converted from Argo Rollouts Rollout payments/checkout (<stdin>:3).")
    );
    let broken = plugin(&["convert", "-f", "-"], Some("kind: [\n"));
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        text(&broken.stderr).starts_with("<stdin>:2: error: did not find expected node"),
        "{}",
        text(&broken.stderr)
    );
}

/// A directory is walked recursively, in the order lint walks it: its output is the files' outputs
/// one after the other, and a file named again through its directory is read once.
#[test]
fn a_directory_is_walked_as_lint_walks_it() {
    let dir = format!("{FIXTURES}/good");
    let files = manifests(&dir);
    let whole = plugin(&["convert", "-f", &dir, "-f", &files[0]], None);
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole.stderr));
    let one_by_one: Vec<Output> = files.iter().map(|file| plugin(&["convert", "-f", file], None)).collect();
    let outputs: Vec<String> = one_by_one.iter().map(|output| text(&output.stdout)).collect();
    assert_eq!(text(&whole.stdout), outputs.join("---\n"));
    // The summaries add up: `N objects converted, 0 refused, M of other kinds skipped`.
    let count = |output: &Output, at: usize| -> usize {
        let summary = text(&output.stderr).lines().last().unwrap_or_default().to_string();
        summary.split(' ').nth(at).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{summary}"))
    };
    let total = |at: usize| one_by_one.iter().map(|output| count(output, at)).sum::<usize>();
    assert_eq!((count(&whole, 0), count(&whole, 5)), (total(0), total(5)));
    assert!(total(5) > 0, "the corpus has Deployments, skipped");
}

#[test]
fn a_missing_file_is_told_apart_from_a_refusal() {
    let missing = plugin(&["convert", "-f", "no/such/dir"], None);
    assert_eq!(missing.status.code(), Some(6));
    assert!(text(&missing.stderr).starts_with("error: no/such/dir"), "{}", text(&missing.stderr));
    assert_eq!(plugin(&["convert"], None).status.code(), Some(2), "-f is required");
}

/// The values that carry Argo's and Flagger's failure semantics, read from the output.
#[test]
fn failure_semantics_become_hysteresis() {
    let converted = |file: &str| -> Vec<serde_json::Value> {
        let output = plugin(&["convert", "-f", &format!("{FIXTURES}/good/{file}")], None);
        text(&output.stdout).split("\n---\n").map(|doc| serde_yaml::from_str(doc).expect("YAML")).collect()
    };
    // failureLimit 3 at interval 1m: a breach that lasts 3m fails; `result[0] < 0.01` is max 0.01.
    let argo = converted("argo/analysis-steps.yaml");
    let error_rate = &argo[1]["spec"]["metrics"][0];
    assert_eq!(error_rate["threshold"]["max"], 0.01);
    assert_eq!(error_rate["threshold"]["hysteresis"]["breachFor"], "3m");
    assert_eq!(error_rate["noData"], "fail");
    assert_eq!(error_rate["count"], 5);
    // `isNaN(result[0]) || result[0] <= 500`: no data passes, and failureLimit 0 fails at once.
    let latency = &argo[2]["spec"]["metrics"][0];
    assert_eq!((&latency["threshold"]["max"], &latency["noData"]), (&500.into(), &"pass".into()));
    assert!(latency["threshold"].get("hysteresis").is_none(), "{latency}");
    // Success and failure conditions together: the failure bound breaches, the success bound recovers.
    let band = &converted("argo/background-analysis.yaml")[1]["spec"]["metrics"][0]["threshold"];
    assert_eq!((&band["min"], &band["hysteresis"]["recover"]["min"]), (&0.99.into(), &0.999.into()));
    assert_eq!(band["hysteresis"]["breachFor"], "10m");
    // Flagger's threshold 5 at interval 1m: the fifth failed check came 4m after the first.
    let flagger = converted("flagger/builtin-metrics.yaml");
    let steps = flagger[0]["spec"]["strategy"]["canary"]["steps"].as_array().expect("steps").clone();
    let weights: Vec<i64> = steps.iter().filter_map(|s| s["setWeight"].as_i64()).collect();
    assert_eq!(weights, [10, 20, 30, 40, 50]);
    assert_eq!(steps[1]["analysis"]["duration"], "1m");
    let metrics = &flagger[1]["spec"]["metrics"];
    assert_eq!(metrics[0]["threshold"]["min"], 99);
    assert_eq!(metrics[0]["threshold"]["hysteresis"]["breachFor"], "4m");
    assert_eq!(metrics[1]["interval"], "1m", "measured at the analysis interval");
    assert!(metrics[1]["provider"]["prometheus"]["query"].as_str().is_some_and(|q| q.contains("[30s]")));
}

/// Argo's header routes and mirrors, read from the output: a prefix becomes an anchored, escaped
/// regular expression; a mirror without a percentage mirrors every request; removals keep only the name.
#[test]
fn header_routes_and_mirrors_keep_their_meaning() {
    let output = plugin(&["convert", "-f", &format!("{FIXTURES}/good/argo/traffic-steps.yaml")], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let rollout: serde_json::Value = serde_yaml::from_str(&text(&output.stdout)).expect("YAML");
    let steps = &rollout["spec"]["strategy"]["canary"]["steps"];
    assert_eq!(steps[0]["setMirrorRoute"], serde_json::json!({"name": "shadow", "percent": 20}));
    assert_eq!(steps[2]["setMirrorRoute"], serde_json::json!({"name": "shadow"}));
    assert_eq!(steps[3]["setHeaderRoute"]["headers"][0]["type"], "Exact");
    let beta = &steps[4]["setHeaderRoute"]["headers"];
    assert_eq!(
        beta[0],
        serde_json::json!({"name": "X-Version", "type": "RegularExpression", "value": r"^2\.0 \(beta\).*"})
    );
    assert_eq!(beta[1]["value"], r#"(^|;\s*)canary="1"(;|$)"#);
    assert_eq!(steps[6]["setHeaderRoute"], serde_json::json!({"name": "testers"}));
    assert_eq!(steps[7]["setMirrorRoute"], serde_json::json!({"name": "shadow", "percent": 100}));
}
