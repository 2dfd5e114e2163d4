//! The application the tests ship, as Prometheus sees it: for each (namespace, revision) a real
//! demo app (`bellwether demo-app`, in-process) sent a steady 200 requests a second by its own load
//! generator (`bellwether demo-load`), and a real Prometheus scraping them. A test switches a
//! revision's share of failing requests through the app's admin endpoint, `PATCH /admin/faults`,
//! to make a canary good or bad. The apps fail their requests evenly spaced (`--error-pattern
//! even`), so that each of the templates' 2 s windows shows the configured share, and a good
//! canary is never failed by an unlucky window.
//!
//! In a cluster, Prometheus scrapes each pod and adds the `namespace` and `revision` labels the
//! templates select on, from the pod's namespace and its `bellwether.dev/revision` label (the
//! relabelling of `examples/http-app/podmonitor.yaml`). Here the apps come and go with the tests,
//! faster than Prometheus's service discovery would find them (it passes new targets on at most
//! every 5 s), so Prometheus scrapes one fixed target instead: a relabelling endpoint that reads
//! every app's own `/metrics` at each scrape and adds the same two labels to its series.

use crate::prometheus::{Prometheus, get};
use bellwether::demo::{DemoApp, ErrorPattern, Faults, Load, RunningDemoApp};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::runtime::Runtime;

/// How often Prometheus scrapes the apps.
pub const SCRAPE: Duration = Duration::from_millis(500);
/// Requests per second each revision serves.
const RPS: f64 = 200.0;

/// One revision's app and the load sent to it; both stop when it is dropped.
struct Instance {
    app: RunningDemoApp,
    _load: Load,
}

/// The apps of the tests running, by (namespace, revision).
#[derive(Clone, Default)]
pub struct Apps {
    running: Arc<Mutex<BTreeMap<(String, String), Instance>>>,
}

impl Apps {
    /// Makes `revision` in `namespace` fail `error_ratio` of its requests from now on, starting its
    /// app if it has none yet.
    pub async fn serve(&self, namespace: &str, revision: &str, error_ratio: f64) {
        let key = (namespace.to_owned(), revision.to_owned());
        let apps = self.clone();
        // The apps run on a runtime of their own, as if in another process: they outlive no test,
        // but they do not share a test's runtime with the controller they are judged by.
        telemetry()
            .runtime
            .spawn(async move {
                let admin = apps.lock().get(&key).map(|instance| instance.app.admin);
                match admin {
                    Some(admin) => set_error_ratio(admin, error_ratio).await,
                    None => {
                        let instance = start(error_ratio).await;
                        apps.lock().insert(key, instance);
                    }
                }
            })
            .await
            .expect("the demo app starts or changes");
    }

    /// Stops the apps of `namespace`: its test is over.
    pub fn stop_namespace(&self, namespace: &str) {
        self.lock().retain(|(ns, _), _| ns != namespace);
    }

    /// Where each app serves `/metrics`, with the labels Prometheus would give its series.
    fn targets(&self) -> Vec<(SocketAddr, String)> {
        self.lock()
            .iter()
            .map(|((namespace, revision), instance)| {
                let labels = format!("namespace=\"{}\",revision=\"{}\"", escape(namespace), escape(revision));
                (instance.app.traffic, labels)
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Instance>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn start(error_ratio: f64) -> Instance {
    let faults = Faults { error_rate: error_ratio, error_pattern: ErrorPattern::Even, ..Faults::default() }
        .validated()
        .expect("a valid error ratio");
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let app = DemoApp::new("e2e", faults).start(local, local).await.expect("the demo app listens");
    let load = Load::start(&format!("http://{}/", app.traffic), RPS).expect("a valid load");
    Instance { app, _load: load }
}

async fn set_error_ratio(admin: SocketAddr, error_ratio: f64) {
    let response = reqwest::Client::new()
        .patch(format!("http://{admin}/admin/faults"))
        .json(&serde_json::json!({"errorRate": error_ratio}))
        .send()
        .await
        .expect("the admin endpoint answers");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "the admin endpoint refused errorRate {error_ratio}: {status} {body}");
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The series of every app, each with its labels added, as one exposition: each family once, with
/// the samples of every app under it.
fn relabelled(apps: &Apps) -> String {
    let mut families: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    // Read at once rather than one after another, so that one slow app does not make the whole
    // scrape overrun and every test's series go stale together.
    let targets = apps.targets();
    let texts: Vec<(Option<String>, &String)> = std::thread::scope(|scope| {
        let reads: Vec<_> = targets
            .iter()
            .map(|(address, labels)| (scope.spawn(move || get(*address, "/metrics")), labels))
            .collect();
        reads.into_iter().map(|(read, labels)| (read.join().unwrap_or(None), labels)).collect()
    });
    for (text, labels) in texts {
        // An app stopped since it was listed has nothing more to say.
        let Some(text) = text else { continue };
        let mut family = None;
        for line in text.lines().filter(|line| !line.is_empty()) {
            let header = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE "));
            if let Some(name) = header.and_then(|rest| rest.split(' ').next()) {
                let index = match families.iter().position(|(known, ..)| known == name) {
                    Some(index) => index,
                    None => {
                        families.push((name.to_owned(), Vec::new(), Vec::new()));
                        families.len() - 1
                    }
                };
                let headers = &mut families[index].1;
                if !headers.iter().any(|known| known == line) {
                    headers.push(line.to_owned());
                }
                family = Some(index);
            } else if let (Some(index), Some(sample)) = (family, with_labels(line, labels)) {
                families[index].2.push(sample);
            }
        }
    }
    families.into_iter().flat_map(|(_, headers, samples)| headers.into_iter().chain(samples)).fold(
        String::new(),
        |mut out, line| {
            out += &line;
            out.push('\n');
            out
        },
    )
}

/// A sample line with `labels` added first among its labels; `None` for comments.
fn with_labels(line: &str, labels: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let (name, rest) = line.split_at(name_end);
    Some(match rest.strip_prefix('{') {
        Some(rest) if rest.starts_with('}') => format!("{name}{{{labels}{rest}"),
        Some(rest) => format!("{name}{{{labels},{rest}"),
        None => format!("{name}{{{labels}}}{rest}"),
    })
}

/// The apps, the runtime they run on, and the Prometheus scraping them, shared by every test of
/// the binary; tests keep apart by namespace.
pub struct Telemetry {
    pub apps: Apps,
    pub prometheus: Prometheus,
    runtime: Runtime,
}

pub fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("demo-apps")
            .enable_all()
            .build()
            .expect("a runtime for the demo apps");
        let apps = Apps::default();
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the relabelling endpoint");
        let target = listener.local_addr().expect("a bound address").to_string();
        let scraped = apps.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let body = relabelled(&scraped);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let prometheus = Prometheus::scraping(&target, SCRAPE)
            .unwrap_or_else(|error| panic!("cannot start Prometheus for the tests: {error}"));
        prometheus.wait_for_targets().unwrap_or_else(|error| panic!("Prometheus does not scrape: {error}"));
        Telemetry { apps, prometheus, runtime }
    })
}

#[test]
fn labels_go_first_in_every_form_of_sample() {
    let labels = r#"namespace="ns",revision="abc""#;
    assert_eq!(
        with_labels(r#"http_requests_total{method="GET",code="200"} 5"#, labels).as_deref(),
        Some(r#"http_requests_total{namespace="ns",revision="abc",method="GET",code="200"} 5"#)
    );
    assert_eq!(with_labels("up 1", labels).as_deref(), Some(r#"up{namespace="ns",revision="abc"} 1"#));
    assert_eq!(with_labels("up{} 1", labels).as_deref(), Some(r#"up{namespace="ns",revision="abc"} 1"#));
    assert_eq!(with_labels("# HELP up whether the target is up", labels), None);
}
