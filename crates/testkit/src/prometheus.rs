//! A real Prometheus server for tests, loaded with backfilled data or scraping a test's exporter.
//!
//! [`Prometheus::start`] takes OpenMetrics text (timestamps in seconds, ending in `# EOF`), turns it
//! into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`, and starts `prometheus` on a
//! free 127.0.0.1 port with that data. Use fixed timestamps in the past and query at those times:
//! the server scrapes nothing, so "now" has no data. [`Prometheus::scraping`] instead scrapes one
//! target every interval, for tests that run in real time.
//!
//! The server is stopped when the value is dropped. A watchdog process also stops it (and removes its
//! data) once the test process has exited, so a server kept in a `static` does not outlive the tests.
//!
//! Needs the `prometheus` and `promtool` binaries on PATH (Debian: `apt-get install -y prometheus`).

#![allow(dead_code)]

use std::env;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a server may take to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many ports to try when the chosen one is taken between choosing and binding.
const START_ATTEMPTS: usize = 3;

const INSTALL_HINT: &str = "install them with `apt-get install -y prometheus` (Debian/Ubuntu), \
     or run ./scripts/test, which installs them when missing";

/// A target to scrape: `host:port` (path `/metrics`) and the labels its series get.
pub struct Target<'a> {
    pub address: &'a str,
    pub labels: &'a [(&'a str, &'a str)],
}

/// A running Prometheus server with backfilled data.
pub struct Prometheus {
    child: Child,
    watchdog: Option<Child>,
    address: String,
    log: PathBuf,
    dir: tempfile::TempDir,
}

/// The server of a test binary, started once from `fixture` and shared by its tests.
pub fn shared(
    cell: &'static OnceLock<Result<Prometheus, String>>,
    fixture: fn() -> String,
) -> &'static Prometheus {
    match cell.get_or_init(|| Prometheus::start(&fixture())) {
        Ok(server) => server,
        Err(error) => panic!("cannot start Prometheus for the tests: {error}"),
    }
}

impl Prometheus {
    /// Backfills `openmetrics` and starts a server on it, or explains why it could not.
    pub fn start(openmetrics: &str) -> Result<Self, String> {
        let promtool = find_binary("promtool")?;
        let dir = temporary_dir()?;
        let input = dir.path().join("data.om");
        let data = dir.path().join("data");
        fs::write(&input, openmetrics).map_err(|e| format!("cannot write {}: {e}", input.display()))?;
        let backfill = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", promtool.display()))?;
        if !backfill.status.success() {
            return Err(format!(
                "promtool could not backfill the test data ({}):\n{}{}",
                backfill.status,
                String::from_utf8_lossy(&backfill.stdout),
                String::from_utf8_lossy(&backfill.stderr),
            ));
        }
        // No scrape configuration: the server only serves the backfilled data.
        Self::launch(dir, "global:\n  scrape_interval: 1h\n")
    }

    /// Starts a server that scrapes `target` (`host:port`, path `/metrics`) every `interval`, so
    /// that "now" has data: what a test's application exports is queryable a scrape later.
    pub fn scraping(target: &str, interval: Duration) -> Result<Self, String> {
        Self::scraping_targets(&[Target { address: target, labels: &[] }], interval)
    }

    /// Starts a server that scrapes every one of `targets` every `interval`, adding each target's
    /// labels to its series, as relabelling adds a pod's labels in a cluster.
    pub fn scraping_targets(targets: &[Target<'_>], interval: Duration) -> Result<Self, String> {
        let dir = temporary_dir()?;
        let interval = format!("{}ms", interval.as_millis().max(1));
        let mut config = vec![
            "global:".to_string(),
            format!("  scrape_interval: {interval}"),
            "scrape_configs:".into(),
            "  - job_name: app".into(),
            format!("    scrape_interval: {interval}"),
            format!("    scrape_timeout: {interval}"),
            "    static_configs:".into(),
        ];
        for target in targets {
            // JSON strings are YAML strings, quoted and escaped.
            config.push(format!("      - targets: [{}]", serde_json::Value::from(target.address)));
            let labels: serde_json::Map<String, serde_json::Value> =
                target.labels.iter().map(|(name, value)| (name.to_string(), (*value).into())).collect();
            config.push(format!("        labels: {}", serde_json::Value::Object(labels)));
        }
        Self::launch(dir, &config.join("\n"))
    }

    /// Waits until a scrape of every target succeeded. Prometheus discovers targets some seconds
    /// after it starts, so until then a scraping server has no data.
    pub fn wait_for_targets(&self) -> Result<(), String> {
        let addr: SocketAddr =
            self.address.trim_start_matches("http://").parse().map_err(|e| format!("{e}"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let body = get(addr, "/api/v1/query?query=min(up)").unwrap_or_default();
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if value.pointer("/data/result/0/value/1").and_then(|v| v.as_str()) == Some("1") {
                return Ok(());
            }
            sleep(Duration::from_millis(100));
        }
        Err(format!("no target was scraped within {READY_TIMEOUT:?}; the log:\n{}", tail(&self.log, 40)))
    }

    /// Starts `prometheus` on a free 127.0.0.1 port with `config`, on the TSDB in `dir/data`.
    fn launch(dir: tempfile::TempDir, config_text: &str) -> Result<Self, String> {
        let prometheus = find_binary("prometheus")?;
        let data = dir.path().join("data");
        let config = dir.path().join("prometheus.yml");
        let log = dir.path().join("prometheus.log");
        fs::write(&config, config_text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut command = Command::new(&prometheus);
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--storage.tsdb.retention.time=100y");
            let mut child = spawn_logged(&mut command, &log)?;
            let mut watchdog = spawn_watchdog(child.id(), dir.path());
            let address = format!("http://127.0.0.1:{port}");
            match wait_ready("prometheus", &mut child, port, &log) {
                Ok(()) => {
                    return Ok(Prometheus { child, watchdog, address, log, dir });
                }
                Err(error) => {
                    last_error = error;
                    stop(&mut child, &mut watchdog);
                }
            }
        }
        Err(last_error)
    }

    /// The base URL of the server's HTTP API, such as `http://127.0.0.1:41234`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        stop(&mut self.child, &mut self.watchdog);
    }
}

fn temporary_dir() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("bellwether-prometheus-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))
}

/// Waits until the server `name` started as `child` answers `GET /-/ready` on `port`, or says why
/// not, with the end of its `log`.
pub fn wait_ready(name: &str, child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited before it was ready ({status}); its log:\n{}", tail(log, 40)));
        }
        if get(addr, "/-/ready").is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{name} was not ready on 127.0.0.1:{port} after {READY_TIMEOUT:?}; its log:\n{}",
                tail(log, 40)
            ));
        }
        sleep(Duration::from_millis(50));
    }
}

pub fn stop(child: &mut Child, watchdog: &mut Option<Child>) {
    // The watchdog first, so that it never signals a process id that has been reused.
    if let Some(mut watchdog) = watchdog.take() {
        let _ = watchdog.kill();
        let _ = watchdog.wait();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Looks `name` up on PATH.
pub fn find_binary(name: &str) -> Result<PathBuf, String> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| {
            format!(
                "`{name}` was not found on PATH; the Prometheus tests need `prometheus` and \
                 `promtool`: {INSTALL_HINT}"
            )
        })
}

/// Starts `command` with its output (both streams) in the file `log`.
pub fn spawn_logged(command: &mut Command, log: &Path) -> Result<Child, String> {
    let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", command.get_program().to_string_lossy()))
}

/// Ports a test hands to a server by number: below the range the kernel takes the source ports
/// of outgoing connections from (32768 and up on Linux). A port that `bind(0)` found free, in that
/// range, can be taken by some connection of another test before the server binds it.
const TEST_PORTS: std::ops::Range<u16> = 20000..32000;

/// A port of [`TEST_PORTS`] that is free now, drawn at random so that tests running at once rarely
/// draw the same one.
pub fn free_port() -> Result<u16, String> {
    use std::hash::BuildHasher;
    let span = u64::from(TEST_PORTS.end - TEST_PORTS.start);
    let start = std::collections::hash_map::RandomState::new().hash_one(std::process::id()) % span;
    for step in 0..span {
        let port = TEST_PORTS.start + ((start + step * 7919) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!("no free port on 127.0.0.1 from {} to {}", TEST_PORTS.start, TEST_PORTS.end))
}

/// The body of a 200 answer to `GET path`, or `None`.
pub fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).ok()?;
    let mut response = Vec::new();
    // A body cut short by the read timeout is no answer: passed on, one broken line would make
    // Prometheus refuse the whole scrape.
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_string())
}

/// A shell loop that kills the server and removes its directory once this process is gone.
pub fn spawn_watchdog(server_pid: u32, dir: &Path) -> Option<Child> {
    const SCRIPT: &str = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
        kill -KILL "$2" 2>/dev/null
        sleep 0.5
        rm -rf -- "$3"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("prometheus-watchdog")
        .arg(std::process::id().to_string())
        .arg(server_pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// The last `lines` lines of a log file.
pub fn tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
