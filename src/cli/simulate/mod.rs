//! `bellwether simulate`: runs a Rollout through simulated releases, with no cluster and no
//! Prometheus, and shows what Bellwether would do minute by minute. With `--runs N` it answers
//! "are my thresholds and windows right for my traffic?" with the distribution of outcomes.
//!
//! Each scenario has the outcome a correct judge reaches ([`Expect`]): a good canary promoted, a
//! bad one aborted, one without evidence not promoted. The exit code says whether every run of
//! every scenario reached it ([`exit`]), so that a pipeline can check a Rollout's thresholds
//! before they reach a cluster; `-o json` prints the same as a stable shape ([`json`]).

pub mod html;
mod json;

use crate::cli::lint::Finding;
use crate::cli::manifests::{self, LoadError, filename_help};
use crate::engine::{Exposure, format_value};
use crate::sim::{
    self, Bellwether, Expect, Options, Outcome, Row, Scenario, Setup, SetupError, Summary, percentile,
};
use chrono::Duration;
use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The exit codes of `bellwether simulate`.
pub mod exit {
    /// Every run of every scenario ended as a correct judge would end it.
    pub const AS_EXPECTED: u8 = 0;
    /// Some run did not: a good canary aborted, a bad one not aborted, one without evidence
    /// promoted, or an invariant of the engine broken.
    pub const NOT_AS_EXPECTED: u8 = 1;
    pub const USAGE: u8 = 2;
    /// The manifests could not be read, or hold no Rollout that can run.
    pub const COULD_NOT_RUN: u8 = 6;
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-",
        help = concat!(filename_help!(), " They must hold one Rollout and the templates it references; \
        without -f, the bundled example (examples/basic) is simulated."))]
    pub files: Vec<PathBuf>,
    /// A scenario to simulate; repeat for more: good, spike, regression[-Nx], latency[-Nx],
    /// slow-leak, flapping, crash-loop, no-traffic, source-down. Default: good and regression.
    #[arg(long, value_parser = Scenario::named)]
    pub scenario: Vec<Scenario>,
    /// Requests per second across both revisions.
    #[arg(long, default_value_t = 200.0, value_parser = parse_rps)]
    pub rps: f64,
    /// Seed of the first run; run i uses seed + i.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Runs per scenario. With more than one, the distribution of outcomes is shown instead of a
    /// timeline.
    #[arg(long, default_value_t = 1, value_parser = parse_runs)]
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
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Each scenario's timeline and outcome, or with --runs the table of outcomes.
    Text,
    /// The same as one JSON object, in the shape docs/ci.md describes.
    Json,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::Duration(text.to_string()).parse().map_err(|e| e.to_string())
}

fn parse_rps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rps) if rps >= 0.0 && rps.is_finite() => Ok(rps),
        _ => Err("must be a number of requests per second, at least 0".into()),
    }
}

fn parse_runs(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(runs) if runs >= 1 => Ok(runs),
        _ => Err("must be a whole number, at least 1".into()),
    }
}

/// Why nothing could be simulated, or its drawing written; each exits [`exit::COULD_NOT_RUN`].
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("cannot read {0}")]
    Load(#[from] LoadError),
    #[error("the manifests cannot be read as the API server would:{}", .0.iter().map(|f| format!("\n  {f}")).collect::<String>())]
    Unreadable(Vec<Finding>),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: std::io::Error },
}

/// What the simulation of each scenario found.
pub struct Simulation {
    setup: Setup,
    options: Options,
    runs: u64,
    scenarios: Vec<Simulated>,
}

/// One scenario, run once (with its timeline) or many times (as a distribution).
enum Simulated {
    Once { scenario: Scenario, run: Box<sim::Run> },
    Many { scenario: Scenario, summary: Summary, invariants_broken: u64 },
}

impl Simulated {
    /// Whether every run ended as a correct judge would end it, with the engine's invariants kept.
    fn as_expected(&self) -> bool {
        match self {
            Self::Once { scenario, run } => {
                run.violations.is_empty()
                    && sim::summarize(scenario, std::slice::from_ref(&run.outcome)).wrong() == 0
            }
            Self::Many { summary, invariants_broken, .. } => summary.wrong() == 0 && *invariants_broken == 0,
        }
    }
}

/// Runs the simulation the arguments ask for, reading `-` from `stdin`.
pub fn simulate(args: &SimulateArgs, stdin: &mut dyn Read) -> Result<Simulation, SimulateError> {
    let setup = if args.files.is_empty() { Setup::example() } else { setup(&args.files, stdin)? };
    let scenarios = if args.scenario.is_empty() {
        vec![Scenario::good(), Scenario::regression(20.0)]
    } else {
        args.scenario.clone()
    };
    let options = Options {
        rps: args.rps,
        seed: args.seed,
        pod_ready_after: args.pod_ready,
        approve_after: args.approve_after,
        ..Options::default()
    };
    let scenarios = scenarios
        .into_iter()
        .map(|scenario| match args.runs {
            1 => {
                let run = Box::new(sim::run(&setup, &scenario, &options, &Bellwether));
                Simulated::Once { scenario, run }
            }
            runs => {
                let (outcomes, invariants_broken) = many(&setup, &scenario, &options, runs);
                let summary = sim::summarize(&scenario, &outcomes);
                Simulated::Many { scenario, summary, invariants_broken }
            }
        })
        .collect();
    let simulation = Simulation { setup, options, runs: args.runs, scenarios };
    if let Some(path) = &args.html {
        std::fs::write(path, html::page(&simulation.setup, &simulation.seeded()))
            .map_err(|reason| SimulateError::Write { path: path.clone(), reason })?;
    }
    Ok(simulation)
}

impl Simulation {
    /// The run with --seed of each scenario, for drawing: the one shown, or the first of many.
    fn seeded(&self) -> Vec<(String, sim::Run)> {
        self.scenarios
            .iter()
            .map(|simulated| match simulated {
                Simulated::Once { scenario, run } => (scenario.name().to_string(), (**run).clone()),
                Simulated::Many { scenario, .. } => {
                    (scenario.name().to_string(), sim::run(&self.setup, scenario, &self.options, &Bellwether))
                }
            })
            .collect()
    }

    /// The exit code: whether every scenario ended as expected; see [`exit`].
    pub fn exit_code(&self) -> u8 {
        if self.scenarios.iter().all(Simulated::as_expected) {
            exit::AS_EXPECTED
        } else {
            exit::NOT_AS_EXPECTED
        }
    }

    /// The simulation as JSON; see [`json`].
    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&json::Report::of(self)).expect("a report serializes");
        text.push('\n');
        text
    }

    /// The report for people: how each metric is simulated, then each scenario's timeline, outcome
    /// and cost, or the table of outcomes of many runs.
    pub fn text(&self) -> String {
        let setup = &self.setup;
        let mut out = String::new();
        let steps = setup.spec.strategy.canary.steps.len();
        let _ = writeln!(
            out,
            "Simulating Rollout {}/{} ({steps} steps) at {} requests/s, seed {}.",
            setup.namespace, setup.name, self.options.rps, self.options.seed
        );
        let signals = setup.signals();
        let _ = writeln!(out, "Each metric is simulated as:");
        let width = signals.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, signal) in &signals {
            let _ = writeln!(out, "  {name:width$}  the canary's {}", signal.describe());
        }
        if self.runs > 1 {
            out.push('\n');
            out.push_str(&distribution(&self.scenarios));
        }
        for simulated in &self.scenarios {
            let Simulated::Once { scenario, run } = simulated else { continue };
            let _ = writeln!(out, "\nScenario {}:", scenario.name());
            out.push_str(&timeline(&run.timeline));
            let _ = writeln!(out, "Outcome: {}", describe(&run.outcome));
            let _ = writeln!(out, "Cost: {}", cost(run, setup.spec.replicas));
            for (at, violation) in &run.violations {
                let _ = writeln!(out, "Invariant broken at {}: {violation}", clock(*at));
            }
        }
        out
    }
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

/// What the canary cost in pods, from the ship to the outcome, against stable's replicas alone
/// over the same time; `None` for a run of no time.
fn ratio_to_stable_alone(run: &sim::Run, replicas: i32) -> Option<f64> {
    let alone = f64::from(replicas) * run.elapsed.num_milliseconds() as f64 / 1000.0;
    (alone > 0.0).then(|| run.pod_seconds / alone)
}

/// `41400 pod-seconds, 1.38× the 10 replicas alone`.
fn cost(run: &sim::Run, replicas: i32) -> String {
    let ratio = ratio_to_stable_alone(run, replicas)
        .map_or(String::new(), |ratio| format!(", {ratio:.2}× the {replicas} replicas alone"));
    format!("{:.0} pod-seconds{ratio}", run.pod_seconds)
}

/// `promoted after 23m10s`, `aborted after 4m10s: error-rate: 0.034 > max 0.01 …`.
pub(crate) fn describe(outcome: &Outcome) -> String {
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

/// What reaches the canary besides its weight, shortly: `hdr testers, mirror 40%`, or `-`.
fn also(exposure: &Exposure) -> String {
    let mut parts: Vec<String> = exposure.header_routes.keys().map(|name| format!("hdr {name}")).collect();
    parts.extend(exposure.mirror.map(|percent| format!("mirror {percent}%")));
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

/// The timeline as an aligned table: time, step, canary weight, what else reaches the canary, one
/// column per metric, decisions.
fn timeline(rows: &[Row]) -> String {
    let mut metrics: Vec<&str> = Vec::new();
    for cell in rows.iter().flat_map(|r| &r.cells) {
        if !metrics.contains(&cell.metric.as_str()) {
            metrics.push(&cell.metric);
        }
    }
    let mut table: Vec<Vec<String>> = vec![
        ["time", "step", "weight", "also"]
            .iter()
            .map(|s| s.to_string())
            .chain(metrics.iter().map(|m| m.to_string()))
            .chain(["decision".to_string()])
            .collect(),
    ];
    for row in rows {
        let mut line = vec![
            clock(row.at),
            row.step.clone().unwrap_or_else(|| "-".into()),
            row.weight.to_string(),
            also(&row.exposure),
        ];
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

/// The outcomes of `runs` runs of `scenario`, spread over the machine's cores, in seed order, and
/// how many of them broke an invariant of the engine.
fn many(setup: &Setup, scenario: &Scenario, options: &Options, runs: u64) -> (Vec<Outcome>, u64) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let done = AtomicU64::new(0);
    let all: Vec<(u64, Outcome, bool)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let done = &done;
                scope.spawn(move || {
                    (worker..runs)
                        .step_by(threads as usize)
                        .map(|i| {
                            let options = Options { seed: options.seed + i, ..options.clone() };
                            let run = sim::run(setup, scenario, &options, &Bellwether);
                            done.fetch_add(1, Ordering::Relaxed);
                            (i, run.outcome, !run.violations.is_empty())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        if std::io::stderr().is_terminal() {
            scope.spawn(|| progress(scenario.name(), &done, runs));
        }
        let mut all: Vec<(u64, Outcome, bool)> =
            workers.into_iter().flat_map(|w| w.join().expect("a simulation panicked")).collect();
        all.sort_by_key(|(i, _, _)| *i);
        all
    });
    let broken = all.iter().filter(|(_, _, broke)| *broke).count() as u64;
    (all.into_iter().map(|(_, outcome, _)| outcome).collect(), broken)
}

/// The table of outcomes of scenarios run many times.
fn distribution(scenarios: &[Simulated]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<16} {:>6} {:>9} {:>8} {:>6}  {:<26} {:>14} {:>14}",
        "scenario", "runs", "promoted", "aborted", "held", "verdict", "detect p50/p95", "promote p50/p95"
    );
    for simulated in scenarios {
        let Simulated::Many { summary, invariants_broken, .. } = simulated else { continue };
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
        if *invariants_broken > 0 {
            let _ = writeln!(out, "  {invariants_broken} runs of {} broke an invariant", summary.scenario);
        }
    }
    out
}
