//! Detection accuracy: Bellwether's judge and the policies of three other canary tools, each
//! driving the real engine through the same simulated rollouts of the bundled example.
//!
//! `cargo bench --bench accuracy` runs every scenario of the corpus with every policy for
//! 1,000 seeds and prints one Markdown table. Without `--bench`, as `cargo test --all-targets`
//! runs it, it checks the policies on hand-built series and runs a few seeds, asserting only what
//! must hold whatever the noise.

#[path = "accuracy/checks.rs"]
mod checks;
#[path = "accuracy/judgments.rs"]
mod judgments;
#[path = "accuracy/policies.rs"]
mod policies;

use bellwether::api::format_duration;
use bellwether::sim::{
    Bellwether, Expect, Options, Outcome, Policy, Scenario, Setup, Summary, percentile, run, summarize,
};
use chrono::Duration;
use judgments::{CompareAtSteps, SequentialErrors};
use policies::{ArgoRollouts, Flagger, Kayenta};

const SEEDS: u64 = 1000;
const SMOKE_SEEDS: u64 = 3;
/// Requests per second across both revisions: a quiet service, where a 5% canary sees a handful of
/// requests a minute, and a busy one.
const TRAFFIC: [f64; 2] = [30.0, 200.0];
const THREADS: u64 = 2;

/// The outcomes of one policy on one scenario, seed by seed, and the invariant violations seen.
fn outcomes(
    setup: &Setup,
    scenario: &Scenario,
    rps: f64,
    seeds: u64,
    policy: &dyn Policy,
) -> (Vec<Outcome>, usize) {
    let mut results: Vec<(u64, Outcome, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    (thread..seeds)
                        .step_by(THREADS as usize)
                        .map(|seed| {
                            let simulated =
                                run(setup, scenario, &Options { seed, rps, ..Options::default() }, policy);
                            (seed, simulated.outcome, simulated.violations.len())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a simulation worker panicked")).collect()
    });
    results.sort_by_key(|(seed, _, _)| *seed);
    let violations = results.iter().map(|(_, _, v)| v).sum();
    (results.into_iter().map(|(_, outcome, _)| outcome).collect(), violations)
}

fn percent(count: usize, of: usize) -> String {
    if of == 0 { "–".into() } else { format!("{:.1}%", 100.0 * count as f64 / of as f64) }
}

fn duration(sorted: &[Duration], q: f64) -> String {
    percentile(sorted, q).map(format_duration).unwrap_or_else(|| "–".into())
}

/// Sums the summaries of the scenarios that pass `keep`: runs, the count `of` picks, and the
/// pooled, sorted durations `times` picks.
fn pool(
    summaries: &[Summary],
    keep: impl Fn(&Summary) -> bool,
    of: impl Fn(&Summary) -> usize,
    times: impl Fn(&Summary) -> &[Duration],
) -> (usize, usize, Vec<Duration>) {
    let kept: Vec<&Summary> = summaries.iter().filter(|s| keep(s)).collect();
    let mut pooled: Vec<Duration> = kept.iter().flat_map(|s| times(s).iter().copied()).collect();
    pooled.sort();
    (kept.iter().map(|s| s.runs).sum(), kept.iter().map(|s| of(s)).sum(), pooled)
}

fn is_regression(summary: &Summary) -> bool {
    summary.scenario.starts_with("regression-")
}

/// One table row: a policy's rates and times over the corpus.
fn row(name: &str, summaries: &[Summary]) -> String {
    let mut cells = vec![name.to_string()];
    let good = |s: &Summary| s.scenario == Scenario::good().name();
    let (runs, false_rollbacks, promote_times) = pool(summaries, good, |s| s.aborted, |s| &s.promote_times);
    cells.push(percent(false_rollbacks, runs));
    let (_, held, _) = pool(summaries, good, |s| s.held, |s| &s.promote_times);
    cells.push(percent(held, runs));
    let spike = |s: &Summary| s.scenario == Scenario::spike().name();
    let (spikes, rolled_back, _) = pool(summaries, spike, |s| s.aborted, |s| &s.promote_times);
    cells.push(percent(rolled_back, spikes));
    for regression in summaries.iter().filter(|s| is_regression(s)) {
        cells.push(percent(regression.runs - regression.aborted, regression.runs));
    }
    let (other, other_missed, _) = pool(
        summaries,
        |s| s.expect == Expect::Abort && !is_regression(s),
        |s| s.runs - s.aborted,
        |s| &s.detect_times,
    );
    cells.push(percent(other_missed, other));
    let (_, _, detect_times) = pool(summaries, |s| s.expect == Expect::Abort, |_| 0, |s| &s.detect_times);
    cells.push(duration(&detect_times, 0.5));
    cells.push(duration(&detect_times, 0.95));
    cells.push(duration(&promote_times, 0.5));
    let (blind, promoted, _) =
        pool(summaries, |s| s.expect == Expect::NotPromote, |s| s.promoted, |s| &s.promote_times);
    cells.push(percent(promoted, blind));
    format!("| {} |", cells.join(" | "))
}

fn table(results: &[(String, Vec<Summary>)], scenarios: &[Scenario]) -> String {
    let regressions: Vec<&str> =
        scenarios.iter().map(Scenario::name).filter(|n| n.starts_with("regression-")).collect();
    let names = |expect: Expect| {
        scenarios.iter().filter(|s| s.expect() == expect).map(Scenario::name).collect::<Vec<_>>().join(", ")
    };
    let other_bad: Vec<&str> = scenarios
        .iter()
        .filter(|s| s.expect() == Expect::Abort && !s.name().starts_with("regression-"))
        .map(Scenario::name)
        .collect();
    let mut header = vec![
        "policy, traffic".to_string(),
        "false rollbacks (`good`)".into(),
        "held (`good`)".into(),
        "rolled back on a 30s spike".into(),
    ];
    header.extend(regressions.iter().map(|r| format!("missed {r}")));
    header.extend([
        "missed, other bad canaries".into(),
        "time to detect, median".into(),
        "time to detect, p95".into(),
        "rollout time, median (`good`)".into(),
        "promoted without evidence".into(),
    ]);
    let mut lines = vec![format!("| {} |", header.join(" | ")), format!("|{}", "---|".repeat(header.len()))];
    lines.extend(results.iter().map(|(name, summaries)| row(name, summaries)));
    lines.push(String::new());
    lines.push(format!(
        "Other bad canaries: {}. Rollout time is over the `good` runs that were promoted.",
        other_bad.join(", ")
    ));
    lines.push(format!(
        "Without evidence (must not be promoted): {}. Time to detect runs from the onset of the \
         regression to the abort, over every bad canary that was aborted.",
        names(Expect::NotPromote)
    ));
    lines.join("\n")
}

/// What must hold in any run, whatever the noise.
fn sanity(name: &str, summaries: &[Summary], violations: usize) {
    assert_eq!(violations, 0, "{name}: the engine broke an invariant");
    for summary in summaries {
        assert_eq!(
            summary.promoted + summary.aborted + summary.held,
            summary.runs,
            "{name}: {}",
            summary.scenario
        );
        if name.starts_with(Bellwether.name()) && summary.expect == Expect::NotPromote {
            assert_eq!(summary.promoted, 0, "bellwether promoted {} without evidence", summary.scenario);
        }
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    checks::run();
    let setup = Setup::example();
    let scenarios = Scenario::corpus();
    let seeds = if full { SEEDS } else { SMOKE_SEEDS };
    let argo = ArgoRollouts { failure_limit: 3 };
    let flagger = Flagger { threshold: 5 };
    let kayenta = Kayenta { judge_every: 5, pass: 90.0, marginal: 75.0 };
    let settings = format!(
        "argo-rollouts failureLimit {} and the metric's consecutiveErrorLimit; flagger threshold {}; kayenta \
         judged every {} measurements at 98% confidence, marginal {}, pass {}",
        argo.failure_limit, flagger.threshold, kayenta.judge_every, kayenta.marginal, kayenta.pass
    );
    let compare = CompareAtSteps { confidence: 0.95, max_ratio: 1.2, min_samples: 5 };
    let sequential = SequentialErrors { alpha: 0.05, max_increase: 4.0 };
    let settings = format!(
        "{settings}; bellwether compare at {:.0}% confidence, maxRatio {}, minSamples {} (threshold in \
         the background); bellwether sequential alpha {}, maxIncrease {} on error rates (threshold on \
         latency)",
        compare.confidence * 100.0,
        compare.max_ratio,
        compare.min_samples,
        sequential.alpha,
        sequential.max_increase
    );
    let policies: Vec<Box<dyn Policy>> = vec![
        Box::new(Bellwether),
        Box::new(compare),
        Box::new(sequential),
        Box::new(argo),
        Box::new(flagger),
        Box::new(kayenta),
    ];
    let mut results = Vec::new();
    let mut violations = Vec::new();
    for rps in TRAFFIC {
        for policy in &policies {
            let mut seen = 0;
            let summaries: Vec<Summary> = scenarios
                .iter()
                .map(|scenario| {
                    let (outcomes, broken) = outcomes(&setup, scenario, rps, seeds, policy.as_ref());
                    seen += broken;
                    summarize(scenario, &outcomes)
                })
                .collect();
            if !full {
                sanity(policy.name(), &summaries, seen);
            }
            violations.push(format!("{} at {rps} rps: {seen}", policy.name()));
            results.push((format!("`{}`, {rps} rps", policy.name()), summaries));
        }
    }
    println!("{}", table(&results, &scenarios));
    println!(
        "\nSettings: {settings}. {seeds} seeded runs per scenario and policy. Invariant violations: {}.",
        violations.join(", ")
    );
}
