//! `bellwether simulate`: runs a Rollout through simulated releases, with no cluster and no
//! Prometheus, and shows what Bellwether would do minute by minute. With `--runs N` it answers
//! "are my thresholds and windows right for my traffic?" with the distribution of outcomes.

use crate::cli::lint::Finding;
use crate::cli::manifests::{self, LoadError, filename_help};
use crate::engine::format_value;
use crate::sim::{self, Bellwether, Expect, Options, Outcome, Row, Scenario, Setup, SetupError, percentile};
use chrono::Duration;
use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-",
        help = concat!(filename_help!(), " They must hold one Rollout and the templates it references; \
        without -f, the bundled example (examples/basic) is simulated."))]
    pub files: Vec<PathBuf>,
    /// A scenario to simulate; repeat for more: good, spike, regression[-Nx], latency[-Nx],
    /// slow-leak, flapping, crash-loop, no-traffic, source-down. Default: good and regression.
    #[arg(long)]
    pub scenario: Vec<String>,
    /// Requests per second across both revisions.
    #[arg(long, default_value_t = 200.0)]
    pub rps: f64,
    /// Seed of the first run; run i uses seed + i.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Runs per scenario. With more than one, the distribution of outcomes is shown instead of a
    /// timeline.
    #[arg(long, default_value_t = 1)]
    pub runs: u64,
    /// How long a pod takes to become available.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub pod_ready: Duration,
    /// How long the simulated person takes to promote an indefinite `pause: {}`.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub approve_after: Duration,
    /// Also draw the timeline of each scenario (the run with --seed) into this HTML file: the
    /// weight staircase, each metric against its threshold and recovery bound, and the outcome.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::Duration(text.to_string()).parse().map_err(|e| e.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("cannot read {0}")]
    Load(#[from] LoadError),
    #[error("the manifests cannot be read as the API server would:{}", .0.iter().map(|f| format!("\n  {f}")).collect::<String>())]
    Unreadable(Vec<Finding>),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("{0}")]
    Scenario(String),
    #[error("--rps must be a number of requests per second, at least 0")]
    Rps,
    #[error("--runs must be at least 1")]
    Runs,
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: std::io::Error },
}

/// Runs the simulation the arguments ask for, reading `-` from `stdin`, and returns the report to
/// print.
pub fn simulate(args: &SimulateArgs, stdin: &mut dyn Read) -> Result<String, SimulateError> {
    let setup = if args.files.is_empty() { Setup::example() } else { setup(&args.files, stdin)? };
    let scenarios = if args.scenario.is_empty() {
        vec![Scenario::good(), Scenario::regression(20.0)]
    } else {
        args.scenario
            .iter()
            .map(|name| Scenario::named(name))
            .collect::<Result<_, _>>()
            .map_err(SimulateError::Scenario)?
    };
    if !(args.rps >= 0.0 && args.rps.is_finite()) {
        return Err(SimulateError::Rps);
    }
    if args.runs == 0 {
        return Err(SimulateError::Runs);
    }
    let options = Options {
        rps: args.rps,
        seed: args.seed,
        pod_ready_after: args.pod_ready,
        approve_after: args.approve_after,
        ..Options::default()
    };
    let mut out = String::new();
    let steps = setup.spec.strategy.canary.steps.len();
    let _ = writeln!(
        out,
        "Simulating Rollout {}/{} ({steps} steps) at {} requests/s, seed {}.",
        setup.namespace, setup.name, args.rps, args.seed
    );
    let signals = setup.signals();
    let _ = writeln!(out, "Each metric is simulated as:");
    let width = signals.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, signal) in &signals {
        let _ = writeln!(out, "  {name:width$}  the canary's {}", signal.describe());
    }
    // The run with --seed of each scenario: the timelines shown, or drawn.
    let seeded: Vec<(String, sim::Run)> = if args.runs == 1 || args.html.is_some() {
        let run = |scenario: &Scenario| sim::run(&setup, scenario, &options, &Bellwether);
        scenarios.iter().map(|scenario| (scenario.name().to_string(), run(scenario))).collect()
    } else {
        Vec::new()
    };
    if let Some(path) = &args.html {
        std::fs::write(path, super::simulate_html::page(&setup, &seeded))
            .map_err(|reason| SimulateError::Write { path: path.clone(), reason })?;
    }
    if args.runs == 1 {
        for (name, run) in &seeded {
            let _ = writeln!(out, "\nScenario {name}:");
            out.push_str(&timeline(&run.timeline));
            let _ = writeln!(out, "Outcome: {}", describe(&run.outcome));
            let _ = writeln!(out, "Cost: {}", cost(run, setup.spec.replicas));
            for (at, violation) in &run.violations {
                let _ = writeln!(out, "Invariant broken at {}: {violation}", clock(*at));
            }
        }
    } else {
        out.push('\n');
        out.push_str(&distribution(&setup, &scenarios, &options, args.runs));
    }
    Ok(out)
}

/// The Rollout and templates the manifests `paths` name, each object named by where it is.
fn setup(paths: &[PathBuf], stdin: &mut dyn Read) -> Result<Setup, SimulateError> {
    let manifests = manifests::load(paths, stdin)?;
    let errors = manifests.errors();
    if !errors.is_empty() {
        return Err(SimulateError::Unreadable(errors));
    }
    let objects = manifests
        .documents
        .into_iter()
        .map(|doc| (format!("{}:{}", doc.file.display(), doc.line_of("")), doc.value));
    Ok(Setup::from_objects(objects)?)
}

/// `41400 pod-seconds, 1.38× the 10 replicas alone`: what the canary cost in pods, from the ship
/// to the outcome, against stable alone over the same time.
pub fn cost(run: &sim::Run, replicas: i32) -> String {
    let alone = f64::from(replicas) * run.elapsed.num_milliseconds() as f64 / 1000.0;
    let ratio = if alone > 0.0 {
        format!(", {:.2}× the {replicas} replicas alone", run.pod_seconds / alone)
    } else {
        String::new()
    };
    format!("{:.0} pod-seconds{ratio}", run.pod_seconds)
}

/// `promoted after 23m10s`, `aborted after 4m10s: error-rate: 0.034 > max 0.01 …`.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Promoted { after } => format!("promoted after {}", clock(*after)),
        Outcome::Aborted { after, reason } => {
            format!("aborted after {}, all traffic back on stable: {reason}", clock(*after))
        }
        Outcome::Held { after, reason } => {
            format!("held after {}, waiting for a person: {reason}", clock(*after))
        }
    }
}

/// `4m10s`: minutes and seconds, which is how rollouts are timed.
fn clock(duration: Duration) -> String {
    format!("{}m{:02}s", duration.num_minutes(), duration.num_seconds() % 60)
}

/// The timeline as an aligned table: time, step, canary weight, one column per metric, decisions.
pub fn timeline(rows: &[Row]) -> String {
    let mut metrics: Vec<&str> = Vec::new();
    for cell in rows.iter().flat_map(|r| &r.cells) {
        if !metrics.contains(&cell.metric.as_str()) {
            metrics.push(&cell.metric);
        }
    }
    let mut table: Vec<Vec<String>> = vec![
        ["time", "step", "weight"]
            .iter()
            .map(|s| s.to_string())
            .chain(metrics.iter().map(|m| m.to_string()))
            .chain(["decision".to_string()])
            .collect(),
    ];
    for row in rows {
        let mut line =
            vec![clock(row.at), row.step.clone().unwrap_or_else(|| "-".into()), row.weight.to_string()];
        for metric in &metrics {
            let cell = row.cells.iter().find(|c| c.metric == *metric);
            line.push(cell.map_or(String::new(), |c| {
                let value = match (&c.error, c.value) {
                    (Some(_), _) => "error".to_string(),
                    (None, Some(v)) => format_value(v),
                    (None, None) => "no data".to_string(),
                };
                format!("{value} {}", format!("{:?}", c.state).to_lowercase())
            }));
        }
        line.push(row.decisions.join("; "));
        table.push(line);
    }
    let columns = table[0].len();
    let widths: Vec<usize> =
        (0..columns).map(|i| table.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for line in table {
        let text: Vec<String> =
            line.iter().zip(&widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        let _ = writeln!(out, "  {}", text.join("  ").trim_end());
    }
    out
}

/// Shows on the terminal how many of a scenario's `runs` are `done`, until all are; the line is
/// erased at the end, so that the table that follows reads as if it had never been there.
fn progress(scenario: &str, done: &AtomicU64, runs: u64) {
    let mut stderr = std::io::stderr();
    loop {
        let finished = done.load(Ordering::Relaxed);
        let filled = (30 * finished / runs) as usize;
        let _ = write!(stderr, "\r  {scenario} [{:<30}] {finished}/{runs} runs", "#".repeat(filled));
        let _ = stderr.flush();
        if finished >= runs {
            let _ = write!(stderr, "\r\x1b[2K");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs every scenario `runs` times, spread over the machine's cores, and tabulates the outcomes.
fn distribution(setup: &Setup, scenarios: &[Scenario], options: &Options, runs: u64) -> String {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<16} {:>6} {:>9} {:>8} {:>6}  {:<26} {:>14} {:>14}",
        "scenario", "runs", "promoted", "aborted", "held", "verdict", "detect p50/p95", "promote p50/p95"
    );
    for scenario in scenarios {
        let done = AtomicU64::new(0);
        let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|worker| {
                    let done = &done;
                    scope.spawn(move || {
                        (worker..runs)
                            .step_by(threads as usize)
                            .map(|i| {
                                let options = Options { seed: options.seed + i, ..options.clone() };
                                let outcome = sim::run(setup, scenario, &options, &Bellwether).outcome;
                                done.fetch_add(1, Ordering::Relaxed);
                                (i, outcome)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            if std::io::stderr().is_terminal() {
                scope.spawn(|| progress(scenario.name(), &done, runs));
            }
            let mut all: Vec<(u64, Outcome)> =
                workers.into_iter().flat_map(|w| w.join().expect("a simulation panicked")).collect();
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, o)| o).collect()
        });
        let summary = sim::summarize(scenario, &outcomes);
        let verdict = match summary.expect {
            Expect::Promote => format!("false-abort rate {:.1}%", 100.0 * summary.wrong_rate()),
            Expect::Abort => format!("catch rate {:.1}%", 100.0 * summary.rate(summary.aborted)),
            Expect::NotPromote => format!("promoted w/o data {:.1}%", 100.0 * summary.wrong_rate()),
        };
        let pair = |times: &[Duration]| match (percentile(times, 0.5), percentile(times, 0.95)) {
            (Some(p50), Some(p95)) => format!("{}/{}", clock(p50), clock(p95)),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "  {:<16} {:>6} {:>9} {:>8} {:>6}  {:<26} {:>14} {:>14}",
            summary.scenario,
            summary.runs,
            summary.promoted,
            summary.aborted,
            summary.held,
            verdict,
            pair(&summary.detect_times),
            pair(&summary.promote_times),
        );
    }
    out
}
