//! `bellwether`: the controller process and the admin commands.

/// jemalloc rather than the system allocator: the controller holds many small objects (its caches)
/// among many short-lived ones (watch events, passes). In the controller bench at 10,000 Rollouts,
/// jemalloc kept its resident memory 7% lower with the fleet deployed and 10% lower after a canary,
/// at the same CPU (docs/scale.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::Context;
use bellwether::cli::{analyze, simulate};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Bellwether ships each new revision of a Rollout as a canary: it moves traffic to it step by step
/// through Gateway API route weights, judges it on its own error rate and latency from Prometheus,
/// promotes it when it is good and sends all traffic back to stable when an SLO breaks.
#[derive(Parser)]
#[command(name = "bellwether", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: reconcile Rollouts and AnalysisRuns until SIGTERM.
    Controller(Box<bellwether::cli::controller::ControllerArgs>),
    /// Write the CustomResourceDefinitions (one YAML file per CRD) generated from the API types.
    Crds {
        /// Directory to write into; created when missing.
        #[arg(long, default_value = "crds")]
        out: PathBuf,
    },
    /// Run an AnalysisTemplate against Prometheus or Datadog, now or as a backtest over a past
    /// window (--from/--to), and show each measurement, the hysteresis state and the verdict.
    ///
    /// The template is checked first as the API server and the controller check it, and refused
    /// with every error located by line and field.
    ///
    /// A Datadog metric's API and application keys are read from DD_API_KEY and DD_APP_KEY; no
    /// Secret is read.
    ///
    /// Exit codes: 0 Successful, 1 Failed, 2 usage error, 3 Inconclusive, 4 Error, 5 no verdict yet
    /// (the window ended before every metric decided), 6 could not run (unreadable file, invalid
    /// template, missing arg or key, backtest too long, Prometheus or Datadog unreachable).
    Analyze(Box<analyze::AnalyzeArgs>),
    /// Simulate releases of a Rollout with no cluster and no Prometheus: a timeline of every step,
    /// weight, measurement and decision, or with --runs N the distribution of outcomes.
    ///
    /// Each scenario has the outcome a correct judge reaches: good and spike promoted; regression,
    /// latency, slow-leak, flapping and crash-loop aborted; no-traffic and source-down not
    /// promoted.
    ///
    /// Exit codes: 0 every run ended as expected, 1 some run did not (or broke an invariant of the
    /// engine), 2 usage error, 6 could not run (unreadable manifests, an object defined twice
    /// differently, no valid Rollout).
    Simulate(Box<simulate::SimulateArgs>),
    /// Run the demo app: an HTTP service answering any path, with an error rate and a latency set
    /// by flags and changed at run time by PATCH /admin/faults, and the `http_requests_total` and
    /// `http_request_duration_seconds` metrics the `http-app` templates read, on /metrics.
    DemoApp(Box<bellwether::cli::demo::DemoAppArgs>),
    /// Send GET requests to a URL at a steady rate (the demo app's traffic), logging what they got.
    DemoLoad(Box<bellwether::cli::demo::DemoLoadArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Controller(args) => bellwether::cli::controller::main(*args).await?,
        Command::Crds { out } => {
            let written = bellwether::cli::crds::write_all(&out)
                .with_context(|| format!("writing CRDs to {}", out.display()))?;
            for path in written {
                println!("wrote {}", path.display());
            }
        }
        Command::Analyze(args) => {
            let report = match analyze::analyze(&args, &mut std::io::stdin()).await {
                Ok(report) => report,
                Err(error) => {
                    eprintln!("error: {error}");
                    return Ok(ExitCode::from(error.exit_code()));
                }
            };
            match args.output {
                analyze::Output::Table => print!("{}", report.table()),
                analyze::Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            }
            return Ok(ExitCode::from(report.exit_code()));
        }
        Command::Simulate(args) => {
            let simulation = match simulate::simulate(&args, &mut std::io::stdin()) {
                Ok(simulation) => simulation,
                Err(error) => {
                    eprintln!("error: {error}");
                    return Ok(ExitCode::from(simulate::exit::COULD_NOT_RUN));
                }
            };
            match args.output {
                simulate::Output::Text => print!("{}", simulation.text()),
                simulate::Output::Json => print!("{}", simulation.json()),
            }
            return Ok(ExitCode::from(simulation.exit_code()));
        }
        Command::DemoApp(args) => bellwether::cli::demo::run_app(*args).await?,
        Command::DemoLoad(args) => bellwether::cli::demo::run_load(*args).await?,
    }
    Ok(ExitCode::SUCCESS)
}
