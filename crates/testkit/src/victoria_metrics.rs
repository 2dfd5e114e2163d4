//! A real single-node VictoriaMetrics server for tests, loaded with the same OpenMetrics data as the
//! Prometheus server of `prometheus.rs`.
//!
//! [`VictoriaMetrics::start`] starts `victoria-metrics` on a free 127.0.0.1 port with storage in a
//! temporary directory of its own, imports the OpenMetrics text (timestamps in seconds) through
//! `/api/v1/import/prometheus` (which takes the Prometheus text format, timestamps in milliseconds),
//! flushes it and waits until every sample is queryable. Use fixed timestamps in the past and query
//! at those times, as with the Prometheus server.
//!
//! VictoriaMetrics serves the Prometheus query API both at `/api/v1/...` and under the prefix
//! `/prometheus` ([`VictoriaMetrics::prefixed_address`]), as Mimir and other gateways do.
//!
//! The server is stopped when the value is dropped, and by a watchdog process once the test process
//! has exited. Needs `victoria-metrics` on PATH (Debian: `apt-get install -y victoria-metrics`).

#![allow(dead_code)]

use std::process::Command;
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::process::{READY_TIMEOUT, Server, encode, find_binary, get, request, temporary_dir};

const INSTALL_HINT: &str = "install it with `apt-get install -y victoria-metrics` (Debian/Ubuntu), \
     or run ./scripts/test, which installs it when missing";

/// A running VictoriaMetrics server with imported data.
pub struct VictoriaMetrics {
    server: Server,
}

/// The server of a test binary, started once from `fixture` and shared by its tests.
pub fn shared(
    cell: &'static OnceLock<Result<VictoriaMetrics, String>>,
    fixture: fn() -> String,
) -> &'static VictoriaMetrics {
    crate::process::shared(cell, VictoriaMetrics::start, fixture, "VictoriaMetrics")
}

impl VictoriaMetrics {
    /// Starts a server, imports `openmetrics` and waits until all of it is queryable, or explains
    /// why it could not.
    pub fn start(openmetrics: &str) -> Result<Self, String> {
        let import = prometheus_text(openmetrics)?;
        let server = Self::launch()?;
        server.import(&import.text)?;
        if let Some((first, last)) = import.span {
            server.wait_for_samples(import.samples, first, last)?;
        }
        Ok(server)
    }

    fn launch() -> Result<Self, String> {
        let binary = find_binary("victoria-metrics")
            .map_err(|error| format!("{error}; the VictoriaMetrics tests need it: {INSTALL_HINT}"))?;
        let dir = temporary_dir("victoria-metrics")?;
        let log = dir.path().join("victoria-metrics.log");
        let data = dir.path().join("data");
        let server = Server::start("victoria-metrics", dir, log, |port| {
            let mut command = Command::new(&binary);
            command
                .arg(format!("-storageDataPath={}", data.display()))
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg("-retentionPeriod=100y")
                // Backfilled data: an answer cached before the import is complete would hide some.
                .arg("-search.disableCache");
            command
        })?;
        Ok(Self { server })
    }

    /// Imports Prometheus text (timestamps in milliseconds) and flushes it to searchable storage.
    fn import(&self, text: &str) -> Result<(), String> {
        let addr = self.server.socket_address()?;
        let (status, body) =
            request(addr, "POST", "/api/v1/import/prometheus", "text/plain", text.as_bytes())
                .map_err(|e| format!("importing the test data: {e}"))?;
        if status != 204 {
            return Err(format!("VictoriaMetrics answered {status} to the import: {body}"));
        }
        get(addr, "/internal/force_flush").ok_or_else(|| {
            format!("VictoriaMetrics did not flush the import; its log:\n{}", self.server.log_tail(40))
        })?;
        Ok(())
    }

    /// Waits until a query counts `samples` samples from `first` to `last` (Unix milliseconds).
    fn wait_for_samples(&self, samples: u64, first: i64, last: i64) -> Result<(), String> {
        let addr = self.server.socket_address()?;
        // A window ending at the last sample and reaching just before the first.
        let window_ms = last - first + 1000;
        let query = format!("sum(count_over_time({{__name__=~\".+\"}}[{window_ms}ms]))");
        let path = format!(
            "/api/v1/query?query={}&time={}.{:03}",
            encode(&query),
            last.div_euclid(1000),
            last.rem_euclid(1000)
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut counted = String::new();
        while Instant::now() < deadline {
            let body = get(addr, &path).unwrap_or_default();
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            counted = value.pointer("/data/result/0/value/1").and_then(|v| v.as_str()).unwrap_or("").into();
            if counted == samples.to_string() {
                return Ok(());
            }
            sleep(Duration::from_millis(100));
        }
        Err(format!(
            "VictoriaMetrics counted {counted:?} samples of the {samples} imported after {READY_TIMEOUT:?}; \
             its log:\n{}",
            self.server.log_tail(40)
        ))
    }

    /// The base URL of the server's Prometheus API, such as `http://127.0.0.1:41234`.
    pub fn address(&self) -> &str {
        self.server.address()
    }

    /// The same API under the path prefix `/prometheus`, such as `http://127.0.0.1:41234/prometheus`.
    pub fn prefixed_address(&self) -> String {
        format!("{}/prometheus", self.server.address())
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// Test data as VictoriaMetrics imports it.
#[derive(Debug, PartialEq)]
struct Import {
    /// The Prometheus text format, timestamps in milliseconds.
    text: String,
    /// How many samples it holds.
    samples: u64,
    /// Its first and last timestamps, in milliseconds.
    span: Option<(i64, i64)>,
}

/// OpenMetrics text as the Prometheus text format VictoriaMetrics imports: each sample's timestamp
/// from seconds to milliseconds, and the comments (`# TYPE`, `# EOF`) left out.
fn prometheus_text(openmetrics: &str) -> Result<Import, String> {
    let mut text = String::with_capacity(openmetrics.len() + openmetrics.len() / 8);
    let mut samples = 0;
    let mut span: Option<(i64, i64)> = None;
    for line in openmetrics.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The timestamp is the last field; a label value may hold spaces, a timestamp never does.
        let (series, seconds) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("a sample without a timestamp in the test data: {line}"))?;
        let ms = seconds
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite())
            .map(|s| (s * 1000.0).round() as i64)
            .ok_or_else(|| format!("a sample with an invalid timestamp in the test data: {line}"))?;
        text.push_str(series);
        text.push(' ');
        text.push_str(&ms.to_string());
        text.push('\n');
        samples += 1;
        span = Some(span.map_or((ms, ms), |(first, last)| (first.min(ms), last.max(ms))));
    }
    Ok(Import { text, samples, span })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_becomes_prometheus_text_in_milliseconds() {
        let om =
            "# TYPE x counter\nx_total{a=\"b c\"} 1 1700000000\nx_total{a=\"d\"} 2.5 1700000060.25\n# EOF\n";
        let import = prometheus_text(om).unwrap();
        assert_eq!(import.text, "x_total{a=\"b c\"} 1 1700000000000\nx_total{a=\"d\"} 2.5 1700000060250\n");
        assert_eq!((import.samples, import.span), (2, Some((1_700_000_000_000, 1_700_000_060_250))));
        assert!(prometheus_text("x\n").is_err());
    }
}
