//! The observability endpoints over real HTTP on 127.0.0.1, and the metrics text checked by
//! `promtool`.

use bellwether_testkit::prometheus;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bellwether::api::RolloutPhase;
use bellwether::server::{Health, Metrics, serve_health, serve_metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long to keep polling for a state that should come soon. Only a guard against hanging: no
/// test depends on anything happening within a given time.
const PATIENCE: Duration = Duration::from_secs(60);

struct Server {
    address: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start<F, S>(serve: S) -> Self
    where
        S: FnOnce(TcpListener, oneshot::Receiver<()>) -> F,
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(serve(listener, stop));
        Server { address, shutdown, task }
    }

    async fn health(health: Health) -> Self {
        Self::start(|listener, stop| async move {
            serve_health(listener, health, async {
                let _ = stop.await;
            })
            .await
        })
        .await
    }

    async fn metrics(metrics: Metrics) -> Self {
        Self::start(|listener, stop| async move {
            serve_metrics(listener, metrics, async {
                let _ = stop.await;
            })
            .await
        })
        .await
    }

    async fn stop(self) {
        self.shutdown.send(()).expect("the server is still running");
        let result = tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the server stops after its shutdown future completes")
            .expect("the server task does not panic");
        result.expect("the server ends without an error");
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

fn request_text(method: &str, path: &str, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{connection}\r\n")
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {head:?}"));
    Reply { status, head: head.to_owned(), body: body.to_owned() }
}

/// Sends one request on a fresh connection that the server closes after answering.
async fn request(address: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(address).await.expect("connect to the server");
    stream.write_all(request_text(method, path, true).as_bytes()).await.expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read the response");
    parse(&raw)
}

async fn get(address: SocketAddr, path: &str) -> Reply {
    request(address, "GET", path).await
}

/// Repeats `attempt` until it returns a reply with `status`, and returns that reply.
async fn poll_status<F, A>(status: u16, mut attempt: A) -> Reply
where
    A: FnMut() -> F,
    F: Future<Output = Reply>,
{
    let start = Instant::now();
    loop {
        let reply = attempt().await;
        if reply.status == status {
            return reply;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "still {} {:?} instead of {status} after {PATIENCE:?}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn healthz_is_ok_while_the_loop_beats_and_fails_after_a_stall() {
    let health = Health::new(Duration::from_millis(300));
    let server = Server::health(health.clone()).await;

    let live = poll_status(200, || {
        health.beat();
        get(server.address, "/healthz")
    })
    .await;
    assert_eq!(live.body, "ok\n");
    assert_eq!(live.header("content-type"), Some("text/plain; charset=utf-8"));

    let stalled = poll_status(503, || get(server.address, "/healthz")).await;
    assert!(
        stalled.body.starts_with("the reconcile loop has not run for "),
        "unexpected reason: {:?}",
        stalled.body
    );
    assert!(stalled.body.ends_with("(limit 300ms)\n"), "unexpected reason: {:?}", stalled.body);
    assert_eq!(stalled.body.lines().count(), 1);

    poll_status(200, || {
        health.beat();
        get(server.address, "/healthz")
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn healthz_fails_once_the_loop_stopped_until_it_beats_again() {
    let health = Health::new(Duration::from_secs(3600));
    let server = Server::health(health.clone()).await;

    assert_eq!(get(server.address, "/healthz").await.status, 200);
    health.stopped();
    let stopped = get(server.address, "/healthz").await;
    assert_eq!((stopped.status, stopped.body.as_str()), (503, "the reconcile loop stopped\n"));
    health.beat();
    assert_eq!(get(server.address, "/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn readyz_names_the_unsynced_caches_until_all_have_synced() {
    let health = Health::new(Duration::from_secs(3600));
    health.expect("rollouts");
    health.expect("replicasets");
    let server = Server::health(health.clone()).await;

    let waiting = get(server.address, "/readyz").await;
    assert_eq!(
        (waiting.status, waiting.body.as_str()),
        (503, "caches not synced yet: replicasets, rollouts\n")
    );

    health.synced("rollouts");
    let waiting = get(server.address, "/readyz").await;
    assert_eq!((waiting.status, waiting.body.as_str()), (503, "caches not synced yet: replicasets\n"));

    health.synced("replicasets");
    let ready = get(server.address, "/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ok\n"));

    // Readiness is about caches only: a stopped loop fails liveness, not readiness.
    health.stopped();
    assert_eq!(get(server.address, "/readyz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_get_404_and_other_methods_405() {
    let server = Server::health(Health::new(Duration::from_secs(3600))).await;

    assert_eq!(get(server.address, "/metrics").await.status, 404);
    assert_eq!(get(server.address, "/").await.status, 404);
    let post = request(server.address, "POST", "/healthz").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    let head = request(server.address, "HEAD", "/healthz").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(get(server.address, "/healthz?verbose=1").await.status, 200);

    // A client that connects and leaves at once does not disturb the server.
    drop(TcpStream::connect(server.address).await.expect("connect"));
    assert_eq!(get(server.address, "/readyz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_closes_idle_connections_and_ends_the_serve_future() {
    let server = Server::health(Health::new(Duration::from_secs(3600))).await;

    // A keep-alive connection, idle after its first answer.
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    stream.write_all(request_text("GET", "/readyz", false).as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let mut buffer = [0; 1024];
    while !String::from_utf8_lossy(&raw).ends_with("ok\n") {
        let read = stream.read(&mut buffer).await.expect("read the response");
        assert!(read > 0, "the server closed a keep-alive connection: {raw:?}");
        raw.extend_from_slice(&buffer[..read]);
    }
    assert_eq!(parse(&raw).status, 200);

    server.stop().await;
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
        .await
        .expect("the server closes idle connections on shutdown");
    assert!(matches!(read, Ok(0) | Err(_)), "the connection stays open: {read:?}");
}

#[tokio::test]
async fn metrics_endpoint_serves_the_registry_in_the_text_format() {
    let metrics = Metrics::new();
    metrics.rollout_phase("shop", "checkout", RolloutPhase::Progressing);
    metrics.canary_weight("shop", "checkout", 25);
    let server = Server::metrics(metrics.clone()).await;

    let reply = get(server.address, "/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(reply.body, metrics.render());
    assert!(
        reply.body.contains("bellwether_rollout_canary_weight{namespace=\"shop\",rollout=\"checkout\"} 25\n")
    );

    // Updates show on the next scrape.
    metrics.canary_weight("shop", "checkout", 50);
    let reply = get(server.address, "/metrics").await;
    assert!(
        reply.body.contains("bellwether_rollout_canary_weight{namespace=\"shop\",rollout=\"checkout\"} 50\n")
    );

    assert_eq!(get(server.address, "/healthz").await.status, 404);
    assert_eq!(request(server.address, "DELETE", "/metrics").await.status, 405);
    server.stop().await;
}

#[test]
fn the_phase_gauge_has_one_series_per_phase() {
    let metrics = Metrics::new();
    metrics.rollout_phase("shop", "checkout", RolloutPhase::Paused);
    metrics.rollout_phase("shop", "checkout", RolloutPhase::Degraded);
    assert_eq!(
        metrics.render(),
        "# HELP bellwether_rollout_phase 1 for the rollout's current phase, 0 for the other phases.\n\
         # TYPE bellwether_rollout_phase gauge\n\
         bellwether_rollout_phase{namespace=\"shop\",rollout=\"checkout\",phase=\"Degraded\"} 1\n\
         bellwether_rollout_phase{namespace=\"shop\",rollout=\"checkout\",phase=\"Healthy\"} 0\n\
         bellwether_rollout_phase{namespace=\"shop\",rollout=\"checkout\",phase=\"Paused\"} 0\n\
         bellwether_rollout_phase{namespace=\"shop\",rollout=\"checkout\",phase=\"Progressing\"} 0\n"
    );
}

#[test]
fn label_values_are_escaped() {
    let metrics = Metrics::new();
    metrics.abort("shop", "checkout", "error rate \"5xx\" > 1%\nat C:\\step 2");
    let text = metrics.render();
    assert!(
        text.contains(
            "bellwether_aborts_total{namespace=\"shop\",rollout=\"checkout\",\
             reason=\"error rate \\\"5xx\\\" > 1%\\nat C:\\\\step 2\"} 1\n"
        ),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3, "a newline in a value must not start a line: {text}");
}

#[test]
fn counters_and_histograms_accumulate() {
    let metrics = Metrics::new();
    metrics.promotion("shop", "checkout");
    metrics.promotion("shop", "checkout");
    metrics.reconcile("rollout", Duration::from_millis(3), None);
    metrics.reconcile("rollout", Duration::from_secs(20), Some("api"));
    metrics.reconcile("rollout", Duration::from_millis(30), Some("api"));
    metrics.canary_finished("promoted", Duration::from_secs(45 * 60));
    let text = metrics.render();

    for line in [
        "bellwether_promotions_total{namespace=\"shop\",rollout=\"checkout\"} 2\n",
        "bellwether_reconcile_errors_total{controller=\"rollout\",kind=\"api\"} 2\n",
        "bellwether_reconcile_duration_seconds_bucket{controller=\"rollout\",le=\"0.001\"} 0\n",
        "bellwether_reconcile_duration_seconds_bucket{controller=\"rollout\",le=\"0.005\"} 1\n",
        "bellwether_reconcile_duration_seconds_bucket{controller=\"rollout\",le=\"0.05\"} 2\n",
        "bellwether_reconcile_duration_seconds_bucket{controller=\"rollout\",le=\"10\"} 2\n",
        "bellwether_reconcile_duration_seconds_bucket{controller=\"rollout\",le=\"+Inf\"} 3\n",
        "bellwether_reconcile_duration_seconds_sum{controller=\"rollout\"} 20.033\n",
        "bellwether_reconcile_duration_seconds_count{controller=\"rollout\"} 3\n",
        "bellwether_canary_duration_seconds_bucket{outcome=\"promoted\",le=\"1800\"} 0\n",
        "bellwether_canary_duration_seconds_bucket{outcome=\"promoted\",le=\"3600\"} 1\n",
        "bellwether_canary_duration_seconds_count{outcome=\"promoted\"} 1\n",
        "# TYPE bellwether_canary_duration_seconds histogram\n",
        "# TYPE bellwether_promotions_total counter\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(text, metrics.render(), "rendering is deterministic");
}

#[test]
fn forgotten_rollouts_and_analysis_runs_leave_no_series() {
    let metrics = Metrics::new();
    for rollout in ["checkout", "cart"] {
        metrics.rollout_phase("shop", rollout, RolloutPhase::Healthy);
        metrics.canary_weight("shop", rollout, 0);
        metrics.promotion("shop", rollout);
        metrics.abort("shop", rollout, "breach");
    }
    metrics.analysis_value("shop", "checkout-7", "error-rate", Some(0.01));
    metrics.analysis_value("shop", "checkout-7", "latency", Some(0.25));
    metrics.analysis_value("shop", "cart-3", "error-rate", Some(0.02));

    metrics.forget_rollout("shop", "checkout");
    metrics.forget_analysis_run("shop", "checkout-7");
    metrics.analysis_value("shop", "cart-3", "error-rate", None);
    let text = metrics.render();

    assert!(!text.contains("checkout"), "{text}");
    assert_eq!(text.matches("rollout=\"cart\"").count(), 4 + 1 + 1 + 1, "{text}");
    assert!(!text.contains("bellwether_analysis_metric_value"), "{text}");
}

#[test]
fn promtool_accepts_the_exposition() {
    let metrics = Metrics::new();
    metrics.rollout_phase("shop", "checkout", RolloutPhase::Progressing);
    metrics.canary_weight("shop", "checkout", 10);
    metrics.analysis_value("shop", "checkout-7", "p99 \"latency\"", Some(0.123));
    metrics.analysis_value("shop", "checkout-7", "error-rate", Some(f64::NAN));
    metrics.analysis_value("shop", "checkout-7", "rps", Some(f64::INFINITY));
    metrics.reconcile("rollout", Duration::from_millis(7), Some("conflict"));
    metrics.reconcile("analysisrun", Duration::from_millis(2), None);
    metrics.abort("shop", "checkout", "line one\nline \\two\\");
    metrics.promotion("shop", "cart");
    metrics.canary_finished("aborted", Duration::from_secs(90));
    metrics.alert_webhook("accepted");
    metrics.alert_abort_requested("shop", "checkout");
    metrics.notification("Aborted", "delivered");
    metrics.notification_retry("Aborted");
    assert_promtool_accepts(&metrics.render());
}

/// The registry a controller serves, over HTTP: the controller's families, its build and, on Linux,
/// the standard process series, all of which promtool accepts.
#[tokio::test]
async fn the_served_registry_adds_the_build_and_the_process() {
    let metrics = Metrics::for_process();
    metrics.rollout_phase("shop", "checkout", RolloutPhase::Progressing);
    metrics.abort("shop", "checkout", "line one\nline \\two\\");
    metrics.reconcile("rollout", Duration::from_millis(7), Some("conflict"));
    let server = Server::metrics(metrics.clone()).await;
    let reply = get(server.address, "/metrics").await;
    server.stop().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = reply.body;

    let families = metrics_families(&text);
    let mut expected = vec![
        ("bellwether_rollout_phase", "gauge"),
        ("bellwether_aborts_total", "counter"),
        ("bellwether_reconcile_duration_seconds", "histogram"),
        ("bellwether_reconcile_errors_total", "counter"),
        ("bellwether_build_info", "gauge"),
    ];
    if cfg!(target_os = "linux") {
        expected.extend([
            ("process_cpu_seconds_total", "counter"),
            ("process_open_fds", "gauge"),
            ("process_max_fds", "gauge"),
            ("process_virtual_memory_bytes", "gauge"),
            ("process_resident_memory_bytes", "gauge"),
            ("process_start_time_seconds", "gauge"),
        ]);
    }
    assert_eq!(families, expected, "{text}");
    let version = format!("bellwether_build_info{{version=\"{}\"}} 1\n", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version), "{text}");

    if cfg!(target_os = "linux") {
        let value = |name: &str| -> f64 {
            let line = text.lines().find_map(|line| line.strip_prefix(&format!("{name} ")));
            line.unwrap_or_else(|| panic!("no sample of {name}: {text}")).parse().expect("a number")
        };
        assert!(value("process_cpu_seconds_total") >= 0.0, "{text}");
        let (open, max) = (value("process_open_fds"), value("process_max_fds"));
        assert!(open >= 1.0 && open <= max, "{text}");
        let (resident, size) =
            (value("process_resident_memory_bytes"), value("process_virtual_memory_bytes"));
        assert!(resident > 0.0 && resident <= size, "{text}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
        let started = value("process_start_time_seconds");
        // The boot time is in whole seconds, and the clock may have been stepped since: a second of slack.
        assert!(started > 1.5e9 && started <= now.as_secs_f64() + 1.0, "{started} at {now:?}");
    }
    assert_promtool_accepts(&text);
}

/// Each family's name and type, from its `# TYPE` line, in order.
fn metrics_families(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' ')).collect()
}

/// `promtool check metrics` finds nothing to say about `text`, not even a lint warning.
fn assert_promtool_accepts(text: &str) {
    let promtool = prometheus::find_binary("promtool").unwrap_or_else(|error| panic!("{error}"));
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let output = child.wait_with_output().expect("wait for promtool");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics: {}\nstdout: {stdout}\nstderr: {stderr}\ninput:\n{text}",
        output.status
    );
}
