//! `bellwether demo-app` and `bellwether demo-load`: the demo app and its load generator as
//! processes, for the quickstart and for trying templates by hand (see `crate::demo`).

use crate::cli::controller::{LogFormat, init_logging, shutdown_on_signal};
use crate::demo::{DemoApp, ErrorPattern, Faults, FaultsError, Load, LoadError, Tally, parse_duration};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(clap::Args, Debug)]
pub struct DemoAppArgs {
    /// Where to serve traffic (any path), `/metrics` and `/healthz`.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Where to serve `/admin/faults` (GET shows the faults, PATCH changes them). The default keeps
    /// it inside the pod, out of reach of traffic through a Gateway; `kubectl port-forward` reaches
    /// it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// The version every answer names, in its body and its `x-demo-app-version` header.
    #[arg(long, value_name = "NAME", default_value = "dev")]
    pub app_version: String,
    /// The share of requests answered with 500, from 0 to 1.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_error_rate)]
    pub error_rate: f64,
    /// How the failing requests are chosen: `random` (each independently, as real faults) or
    /// `even` (exactly one in every 1/RATE).
    #[arg(long, value_enum, default_value_t = ErrorPattern::Random)]
    pub error_pattern: ErrorPattern,
    /// How long every request is held before it is answered, such as 50ms.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = |t: &str| parse_flag("--latency", t))]
    pub latency: Duration,
    /// Up to this much more latency, drawn uniformly for each request. Latency and jitter together
    /// may hold a request one minute at most.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = |t: &str| parse_flag("--latency-jitter", t))]
    pub latency_jitter: Duration,
    /// A request header that marks mirrored requests, for Gateways that do not mark them in the
    /// Host (Envoy's `-shadow` suffix is always recognised): they are counted with `mirrored="true"`.
    #[arg(long, value_name = "NAME")]
    pub mirror_header: Option<hyper::header::HeaderName>,
}

#[derive(clap::Args, Debug)]
pub struct DemoLoadArgs {
    /// Where to send GET requests, in plain HTTP (http://): the app, or the Gateway in front of it.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Requests per second, sent whether or not earlier ones were answered.
    #[arg(long, value_name = "RPS", default_value_t = 20.0)]
    pub rate: f64,
    /// How often to log what the requests got.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = |t: &str| parse_flag("--report-every", t))]
    pub report_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Faults(#[from] FaultsError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot listen on {addr} ({flag}): {source}")]
    Listen {
        flag: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--report-every must be longer than 0s")]
    ReportEvery,
    #[error("cannot wait for SIGTERM: {0}")]
    Signal(#[source] std::io::Error),
    #[error("the server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl DemoAppArgs {
    /// The faults the flags set, if together they are valid (each flag is checked on its own as it
    /// is parsed).
    pub fn faults(&self) -> Result<Faults, FaultsError> {
        Faults {
            error_rate: self.error_rate,
            error_pattern: self.error_pattern,
            latency: self.latency,
            latency_jitter: self.latency_jitter,
        }
        .validated()
    }
}

/// Runs the demo app until SIGTERM or Ctrl-C.
pub async fn run_app(args: DemoAppArgs) -> Result<(), DemoError> {
    let faults = args.faults()?;
    init_logging(LogFormat::Text);
    let listen = |flag, addr| async move {
        TcpListener::bind(addr).await.map_err(|source| DemoError::Listen { flag, addr, source })
    };
    let traffic = listen("--listen", args.listen).await?;
    let admin = listen("--admin-listen", args.admin_listen).await?;
    let shutdown = shutdown_on_signal().map_err(DemoError::Signal)?;
    tracing::info!(version = %args.app_version, faults = %faults.to_json(), "demo app starting");
    let mut app = DemoApp::new(args.app_version, faults);
    if let Some(header) = args.mirror_header {
        app = app.with_mirror_header(header);
    }
    app.serve(traffic, admin, shutdown).await.map_err(DemoError::Serve)
}

/// Sends load until SIGTERM or Ctrl-C, logging what it got every `--report-every`.
pub async fn run_load(args: DemoLoadArgs) -> Result<(), DemoError> {
    if args.report_every.is_zero() {
        return Err(DemoError::ReportEvery);
    }
    let load = Load::start(&args.url, args.rate)?;
    init_logging(LogFormat::Text);
    let mut shutdown = shutdown_on_signal().map_err(DemoError::Signal)?;
    tracing::info!(url = %args.url, rate = args.rate, "sending load");
    let mut reports =
        tokio::time::interval_at(tokio::time::Instant::now() + args.report_every, args.report_every);
    let mut last = Tally::default();
    loop {
        tokio::select! {
            _ = reports.tick() => {
                let now = load.tally();
                tracing::info!("in the last {:?}: {}", args.report_every, now.since(last));
                last = now;
            }
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    tracing::info!("sent in all: {}", load.tally());
    Ok(())
}

fn parse_error_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    Faults { error_rate: rate, ..Faults::default() }
        .validated()
        .map(|f| f.error_rate)
        .map_err(|e| e.to_string())
}

/// Parses a duration flag; clap names the flag in its message, so the message does not.
fn parse_flag(flag: &'static str, text: &str) -> Result<Duration, String> {
    parse_duration(flag, text).map_err(|error| match error {
        FaultsError::Duration { source, .. } => source.to_string(),
        other => other.to_string(),
    })
}
