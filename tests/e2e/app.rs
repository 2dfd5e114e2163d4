//! A stand-in for the application's pods as Prometheus sees them: an exporter of the conventional
//! `http_requests_total{namespace, revision, code}` counter, which a real Prometheus scrapes.
//!
//! Each (namespace, revision) serves requests at a steady rate with a share of them failing; a
//! test changes that share to make a canary good or bad. Counters grow with real time between
//! scrapes, so `rate()` over them gives back the configured rates, and the Prometheus
//! `http-app`-style queries of the templates measure them as they would a real application.

use crate::prometheus::Prometheus;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often Prometheus scrapes the exporter.
pub const SCRAPE: Duration = Duration::from_millis(500);
/// Requests per second each revision serves.
const RPS: f64 = 200.0;

#[derive(Default)]
struct Series {
    /// The share of requests failing, from now on.
    error_ratio: f64,
    ok: f64,
    failed: f64,
    updated: Option<Instant>,
}

#[derive(Clone, Default)]
pub struct App {
    series: Arc<Mutex<BTreeMap<(String, String), Series>>>,
}

impl App {
    /// Makes `revision` in `namespace` fail `error_ratio` of its requests from now on.
    pub fn serve(&self, namespace: &str, revision: &str, error_ratio: f64) {
        let mut series = self.series.lock().unwrap();
        let entry = series.entry((namespace.into(), revision.into())).or_default();
        advance(entry, Instant::now());
        entry.error_ratio = error_ratio;
    }

    fn render(&self) -> String {
        let now = Instant::now();
        let mut out = String::from("# TYPE http_requests_total counter\n");
        for ((namespace, revision), series) in self.series.lock().unwrap().iter_mut() {
            advance(series, now);
            for (code, value) in [("200", series.ok), ("500", series.failed)] {
                out += &format!(
                    "http_requests_total{{namespace=\"{namespace}\",revision=\"{revision}\",code=\"{code}\"}} {value}\n"
                );
            }
        }
        out
    }
}

fn advance(series: &mut Series, now: Instant) {
    if let Some(then) = series.updated {
        let requests = RPS * (now - then).as_secs_f64();
        series.failed += requests * series.error_ratio;
        series.ok += requests * (1.0 - series.error_ratio);
    }
    series.updated = Some(now);
}

/// The exporter and the Prometheus scraping it, shared by every test of the binary; tests keep
/// apart by namespace.
pub struct Telemetry {
    pub app: App,
    pub prometheus: Prometheus,
}

pub fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let app = App::default();
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the exporter");
        let target = listener.local_addr().expect("a bound address").to_string();
        let exporter = app.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let body = exporter.render();
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
        Telemetry { app, prometheus }
    })
}
