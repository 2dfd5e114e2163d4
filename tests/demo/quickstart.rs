//! What of docs/quickstart.md can run without Docker and kind runs here: its template judging real
//! demo apps through a real Prometheus with the settings the quickstart ships, and every flag,
//! image, Dockerfile target and script step its commands and manifests name.

use bellwether::cli::demo::{DemoAppArgs, DemoLoadArgs};
use bellwether::demo::{Faults, Load};
use bellwether_testkit::prometheus::{Prometheus, Target, find_binary};
use clap::Parser;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The YAML documents of a file, as JSON.
fn documents(path: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(&read(path))
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("parsing {path}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn document(path: &str, kind: &str) -> Value {
    documents(path).into_iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("{path} has no {kind}"))
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().expect("a list").iter().map(|v| v.as_str().expect("a string").to_owned()).collect()
}

#[derive(Parser)]
struct AppCommand {
    #[command(flatten)]
    args: DemoAppArgs,
}

#[derive(Parser)]
struct LoadCommand {
    #[command(flatten)]
    args: DemoLoadArgs,
}

/// The demo app's flags as `bellwether demo-app` parses them.
fn app_args(args: &[String]) -> DemoAppArgs {
    let argv = std::iter::once("demo-app".to_owned()).chain(args.iter().cloned());
    AppCommand::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?} are not demo-app flags: {e}")).args
}

/// The shell commands of the quickstart, in order, from its `sh` blocks, each with the heading of
/// its section.
fn sections_and_commands() -> Vec<(String, String)> {
    let text = read("docs/quickstart.md");
    let mut commands = Vec::new();
    let mut section = String::new();
    let mut in_shell = false;
    for line in text.lines() {
        let line = line.trim();
        match line {
            "```sh" => in_shell = true,
            "```" => in_shell = false,
            _ if !in_shell && line.starts_with("## ") => section = line[3..].to_owned(),
            _ if in_shell && !line.is_empty() && !line.starts_with('#') => {
                // Without a trailing comment.
                let command = line.split(" #").next().unwrap_or(line).trim_end();
                commands.push((section.clone(), command.to_owned()))
            }
            _ => {}
        }
    }
    commands
}

fn commands() -> Vec<String> {
    sections_and_commands().into_iter().map(|(_, command)| command).collect()
}

/// The args each `kubectl patch` of the quickstart gives the demo app's container, in order.
fn shipped_args() -> Vec<Vec<String>> {
    commands()
        .iter()
        .filter(|c| c.contains("/spec/template/spec/containers/0/args"))
        .map(|command| {
            let patch = command.split('\'').nth(1).unwrap_or_else(|| panic!("no quoted patch in {command}"));
            let patch: Value = serde_json::from_str(patch).unwrap_or_else(|e| panic!("{patch}: {e}"));
            strings(&patch[0]["value"])
        })
        .collect()
}

/// The faults of the releases the quickstart ships: v1 (the manifest), v2 and v3 (its patches).
fn releases() -> [Faults; 3] {
    let rollout = document("examples/quickstart/rollout.yaml", "Rollout");
    let v1 = strings(&rollout["spec"]["template"]["spec"]["containers"][0]["args"]);
    let [v2, v3]: [Vec<String>; 2] = shipped_args().try_into().expect("two releases shipped");
    [v1, v2, v3].map(|args| app_args(&args).faults().expect("valid faults"))
}

/// The load generator as loadgen.yaml runs it.
fn loadgen() -> (Vec<String>, DemoLoadArgs) {
    let deployment = document("examples/quickstart/loadgen.yaml", "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let argv = std::iter::once("demo-load".to_owned()).chain(strings(&container["args"]));
    let args = LoadCommand::try_parse_from(argv).unwrap_or_else(|e| panic!("loadgen.yaml: {e}")).args;
    (strings(&container["command"]), args)
}

/// The requests per second the canary gets at the Rollout's first weight.
fn canary_rate() -> f64 {
    let rollout = document("examples/quickstart/rollout.yaml", "Rollout");
    let weight = rollout["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|step| step["setWeight"].as_f64())
        .expect("a setWeight step");
    loadgen().1.rate * weight / 100.0
}

/// Prometheus's configuration in prometheus.yaml.
fn prometheus_config() -> String {
    let config_map = document("examples/quickstart/prometheus.yaml", "ConfigMap");
    config_map["data"]["prometheus.yml"].as_str().expect("prometheus.yml").to_owned()
}

fn scrape_interval() -> Duration {
    let config: Value = serde_yaml::from_str(&prometheus_config()).expect("YAML");
    let interval = config["global"]["scrape_interval"].as_str().expect("a scrape interval");
    bellwether::demo::parse_duration("scrape_interval", interval).expect("a duration")
}

#[test]
fn v2_is_v1_renamed_and_v3_fails_a_fifth_of_its_requests() {
    let [v1, v2, v3] = releases();
    assert_eq!(v2, v1, "the good canary has the stable version's faults");
    assert_eq!(v3.error_rate, 0.2);
    assert_eq!(Faults { error_rate: v1.error_rate, ..v3 }, v1, "v3 differs in its error rate alone");
    let versions: Vec<String> = shipped_args().iter().map(|args| app_args(args).app_version).collect();
    assert_eq!(versions, ["v2", "v3"]);
}

/// The quickstart's template on the demo app as it ships: two apps with v2's and v3's faults, each
/// sent the canary's share of the load generator's rate, scraped as prometheus.yaml scrapes them,
/// and judged by `bellwether analyze` over the time a canary's analysis takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_passes_the_good_canary_and_fails_the_bad_one() {
    let [_, good, bad] = releases();
    let (good_app, good_running) = crate::started(good).await;
    let (_, bad_running) = crate::started(bad).await;
    let rate = canary_rate();
    let _loads = [&good_running, &bad_running]
        .map(|app| Load::start(&format!("http://{}/", app.traffic), rate).expect("a valid load"));
    let addresses = [good_running.traffic.to_string(), bad_running.traffic.to_string()];
    let prometheus = tokio::task::spawn_blocking(move || {
        let good = [("namespace", "demo"), ("revision", "good")];
        let bad = [("namespace", "demo"), ("revision", "bad")];
        let targets = [
            Target { address: &addresses[0], labels: &good },
            Target { address: &addresses[1], labels: &bad },
        ];
        let prometheus =
            Prometheus::scraping_targets(&targets, scrape_interval()).unwrap_or_else(|e| panic!("{e}"));
        prometheus.wait_for_targets().unwrap_or_else(|e| panic!("{e}"));
        prometheus
    })
    .await
    .unwrap();
    // The analysis starts now, as when the canary's first pod takes its share of the traffic.
    let from = chrono::Utc::now();
    // The longest the template takes: its success window, and a scrape for the last window to close.
    let template = document("examples/quickstart/analysis-template.yaml", "AnalysisTemplate");
    let window = template["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|metric| {
            let duration = |field: &str| {
                bellwether::demo::parse_duration("template", metric[field].as_str().unwrap()).unwrap()
            };
            duration("initialDelay") + duration("interval") * (metric["count"].as_u64().unwrap() as u32 - 1)
        })
        .max()
        .unwrap()
        + scrape_interval();
    tokio::time::sleep(window).await;
    let to = from + chrono::Duration::from_std(window).unwrap();

    let analyze = |revision: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_bellwether"))
            .args(["analyze", "-f", repo("examples/quickstart/analysis-template.yaml").to_str().unwrap()])
            .args(["--prometheus", prometheus.address(), "-n", "demo", "--revision", revision, "-o", "json"])
            .args(["--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()])
            .output()
            .expect("bellwether analyze runs");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("no report ({e}): {}\n{}", String::from_utf8_lossy(&output.stderr), prometheus.log())
        });
        (output.status.code(), report)
    };
    let (code, report) = analyze("good");
    assert_eq!((code, report["phase"].as_str()), (Some(0), Some("Successful")), "{report:#}");
    let (code, report) = analyze("bad");
    assert_eq!((code, report["phase"].as_str()), (Some(1), Some("Failed")), "{report:#}");
    let errors = &report["metrics"][0];
    assert_eq!(
        (errors["name"].as_str(), errors["phase"].as_str()),
        (Some("error-rate"), Some("Failed")),
        "{report:#}"
    );
    assert_eq!(report["metrics"][1]["phase"], "Successful", "v3's latency is v1's: {report:#}");
    assert_eq!(good_app.faults(), good, "nothing changed the good app's faults");
}

#[test]
fn the_commands_build_load_and_run_the_images_the_manifests_name() {
    let commands = commands();
    let find = |prefix: &str| {
        commands.iter().find(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}` command"))
    };
    let words = |command: &str| command.split_whitespace().map(String::from).collect::<Vec<_>>();
    let after = |words: &[String], flag: &str| {
        words
            .iter()
            .skip_while(|w| *w != flag)
            .nth(1)
            .cloned()
            .unwrap_or_else(|| panic!("no {flag} in {words:?}"))
    };

    // The controller image is the repository the chart is given, tagged with its appVersion.
    let values: Value = serde_yaml::from_str(&read("charts/bellwether/values.yaml")).unwrap();
    let chart: Value = serde_yaml::from_str(&read("charts/bellwether/Chart.yaml")).unwrap();
    assert_eq!(values["image"]["tag"], "", "the chart runs its appVersion");
    let install = words(find("helm install bellwether charts/bellwether "));
    let repository = install
        .iter()
        .find_map(|word| word.strip_prefix("image.repository="))
        .expect("helm install sets image.repository");
    let chart_image = format!("{repository}:{}", chart["appVersion"].as_str().unwrap());
    let controller = words(find("docker build -t "));
    assert_eq!(after(&controller, "-t"), chart_image);

    // The demo image is the Dockerfile's demo-app target, and the one both Deployments run.
    let demo = words(find("docker build --target "));
    assert_eq!(after(&demo, "--target"), "demo-app");
    let demo_image = after(&demo, "-t");
    let rollout = document("examples/quickstart/rollout.yaml", "Rollout");
    assert_eq!(rollout["spec"]["template"]["spec"]["containers"][0]["image"], demo_image.as_str());
    let loadgen_deployment = document("examples/quickstart/loadgen.yaml", "Deployment");
    assert_eq!(loadgen_deployment["spec"]["template"]["spec"]["containers"][0]["image"], demo_image.as_str());

    // Both are loaded into the cluster the script makes.
    let load = words(find("kind load docker-image "));
    assert_eq!(load[3..5], [chart_image, demo_image]);
    let cluster = words(find("./scripts/kind-cluster "))[1].clone();
    assert_eq!(after(&load, "--name"), cluster);

    // The loadgen reaches the Gateway through the Service the EnvoyProxy names, in Envoy Gateway's
    // namespace.
    let (command, load_args) = loadgen();
    assert_eq!(command, ["/bellwether", "demo-load"]);
    let proxy = document("examples/quickstart/gateway.yaml", "EnvoyProxy");
    let service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]["name"].as_str().unwrap();
    assert_eq!(load_args.url, format!("http://{service}.envoy-gateway-system/"));
    let gateway = document("examples/quickstart/gateway.yaml", "Gateway");
    assert_eq!(gateway["spec"]["infrastructure"]["parametersRef"]["name"], service);
    assert_eq!(gateway["spec"]["listeners"][0]["port"], 80, "the Service's port is the listener's");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _inside = runtime.enter();
    drop(Load::start(&load_args.url, load_args.rate).unwrap_or_else(|e| panic!("loadgen.yaml: {e}")));

    // Twelve commands, as the quickstart says, after installing the plugin.
    let walkthrough: Vec<String> = sections_and_commands()
        .into_iter()
        .filter(|(section, _)| {
            ["Set up", "Ship a good canary", "Ship a bad canary"].contains(&section.as_str())
        })
        .map(|(_, command)| command)
        .collect();
    assert_eq!(walkthrough[0], "cargo install --locked --path . --bin kubectl-bellwether");
    assert_eq!(walkthrough.len() - 1, 12, "{walkthrough:#?}");
    assert!(read("docs/quickstart.md").contains("twelve commands"));
}

#[test]
fn prometheus_reads_the_scrape_configuration_and_labels_as_the_templates_select() {
    // Debian's Prometheus is built without Kubernetes service discovery, so its promtool refuses
    // `kubernetes_sd_configs`; it checks the rest of the configuration, the relabelling included,
    // with a static target in its place.
    let mut checked: Value = serde_yaml::from_str(&prometheus_config()).unwrap();
    let job = &mut checked["scrape_configs"][0];
    let discovery = job.as_object_mut().unwrap().remove("kubernetes_sd_configs").expect("pod discovery");
    assert_eq!(discovery, serde_json::json!([{"role": "pod", "namespaces": {"names": ["demo"]}}]));
    job["static_configs"] = serde_json::json!([{"targets": ["demo-app:8080"]}]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, serde_yaml::to_string(&checked).unwrap()).unwrap();
    let promtool = find_binary("promtool").unwrap_or_else(|e| panic!("{e}"));
    let check = Command::new(promtool).args(["check", "config"]).arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The relabelling is the one examples/http-app/podmonitor.yaml does with the Operator.
    let config: Value = serde_yaml::from_str(&prometheus_config()).unwrap();
    let rules = config["scrape_configs"][0]["relabel_configs"].as_array().unwrap();
    let podmonitor = document("examples/http-app/podmonitor.yaml", "PodMonitor");
    for relabeling in podmonitor["spec"]["podMetricsEndpoints"][0]["relabelings"].as_array().unwrap() {
        let found = rules.iter().any(|rule| {
            rule["source_labels"] == relabeling["sourceLabels"]
                && rule["target_label"] == relabeling["targetLabel"]
        });
        assert!(found, "prometheus.yaml lacks {relabeling}");
    }
    // Prometheus may list the demo app's pods in their namespace, and nothing else.
    let role = document("examples/quickstart/prometheus.yaml", "Role");
    assert_eq!(role["metadata"]["namespace"], "demo");
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}])
    );
    let template = read("examples/quickstart/analysis-template.yaml");
    let service = document("examples/quickstart/prometheus.yaml", "Service");
    let address = format!(
        "http://{}.{}:{}",
        service["metadata"]["name"].as_str().unwrap(),
        service["metadata"]["namespace"].as_str().unwrap(),
        service["spec"]["ports"][0]["port"]
    );
    assert!(template.contains(&format!("address: {address}\n")), "the template queries {address}");
}
