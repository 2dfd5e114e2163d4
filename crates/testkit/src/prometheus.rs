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

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::process::{self, READY_TIMEOUT, Server};
// The process helpers lived here first; tests still reach them through this module.
pub use crate::process::{free_port, get, spawn_logged, spawn_watchdog, stop, wait_ready};

const INSTALL_HINT: &str = "install them with `apt-get install -y prometheus` (Debian/Ubuntu), \
     or run ./scripts/test, which installs them when missing";

/// A target to scrape: `host:port` (path `/metrics`) and the labels its series get.
pub struct Target<'a> {
    pub address: &'a str,
    pub labels: &'a [(&'a str, &'a str)],
}

/// A running Prometheus server with backfilled data.
pub struct Prometheus {
    server: Server,
}

/// The server of a test binary, started once from `fixture` and shared by its tests.
pub fn shared(
    cell: &'static OnceLock<Result<Prometheus, String>>,
    fixture: fn() -> String,
) -> &'static Prometheus {
    crate::process::shared(cell, Prometheus::start, fixture, "Prometheus")
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
        let addr = self.server.socket_address()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let body = get(addr, "/api/v1/query?query=min(up)").unwrap_or_default();
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if value.pointer("/data/result/0/value/1").and_then(|v| v.as_str()) == Some("1") {
                return Ok(());
            }
            sleep(Duration::from_millis(100));
        }
        Err(format!("no target was scraped within {READY_TIMEOUT:?}; the log:\n{}", self.server.log_tail(40)))
    }

    /// Starts `prometheus` on a free 127.0.0.1 port with `config`, on the TSDB in `dir/data`.
    fn launch(dir: tempfile::TempDir, config_text: &str) -> Result<Self, String> {
        let prometheus = find_binary("prometheus")?;
        let data = dir.path().join("data");
        let config = dir.path().join("prometheus.yml");
        let log = dir.path().join("prometheus.log");
        fs::write(&config, config_text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let server = Server::start("prometheus", dir, log, |port| {
            let mut command = Command::new(&prometheus);
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--storage.tsdb.retention.time=100y");
            command
        })?;
        Ok(Self { server })
    }

    /// The base URL of the server's HTTP API, such as `http://127.0.0.1:41234`.
    pub fn address(&self) -> &str {
        self.server.address()
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

fn temporary_dir() -> Result<tempfile::TempDir, String> {
    process::temporary_dir("prometheus")
}

/// Looks `name` up on PATH, saying how to install the Prometheus binaries when it is missing.
pub fn find_binary(name: &str) -> Result<PathBuf, String> {
    process::find_binary(name).map_err(|error| {
        format!("{error}; the Prometheus tests need `prometheus` and `promtool`: {INSTALL_HINT}")
    })
}
