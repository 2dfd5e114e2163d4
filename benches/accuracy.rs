//! Detection accuracy: Bellwether's recommended judgment, its other judgments and the policies of
//! three other canary tools, each driving the real engine through the same simulated rollouts.
//!
//! `cargo bench --bench accuracy` runs every scenario of the corpus with every judgment for
//! 1,000 seeds (`-- --seeds N` for another number) and prints one Markdown table per traffic
//! level, with the goal and the fixed-sample bound beside each scenario, then one line per goal:
//! met, or missed by how much. Without `--bench`, as `cargo test --all-targets` runs it, it checks
//! the policies on hand-built series and runs a few seeds, asserting only what must hold whatever
//! the noise.

#[path = "accuracy/bound.rs"]
mod bound;
#[path = "accuracy/checks.rs"]
mod checks;
#[path = "accuracy/goals.rs"]
mod goals;
#[path = "accuracy/judgments.rs"]
mod judgments;
#[path = "accuracy/policies.rs"]
mod policies;

use bellwether::sim::{
    Bellwether, Expect, Options, Outcome, Policy, Scenario, Setup, Summary, run, summarize,
};
use bound::{Bound, Oracle};
use judgments::{CompareAtSteps, SequentialErrors};
use policies::{ArgoRollouts, Flagger, Kayenta};

const SEEDS: u64 = 1000;
const SMOKE_SEEDS: u64 = 3;
/// Requests per second across both revisions: a quiet service, where a 5% canary sees a handful of
/// requests a minute, and a busy one.
const TRAFFIC: [f64; 2] = [30.0, 200.0];
const THREADS: u64 = 2;
/// Draws of the error-rate wobble behind each earliest median.
const ORACLE_DRAWS: usize = 2000;

/// The bundled example as it was written with thresholds only, which the peers and Bellwether's
/// other judgments run on.
const THRESHOLDS: &str = include_str!("accuracy/thresholds.yaml");

/// One judgment under test: a policy, the manifests it runs on, and whether it is a peer (another
/// tool's policy) whose times the recommended judgment must beat.
struct Judged<'a> {
    label: String,
    setup: &'a Setup,
    policy: Box<dyn Policy>,
    peer: bool,
}

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

/// One cell: rolled back / held for a canary that should be promoted, caught and the median time
/// to detect for one that should be aborted, promoted for one without evidence.
fn cell(summary: &Summary) -> String {
    match summary.expect {
        Expect::Promote => format!(
            "{} / {}",
            goals::percent(summary.rate(summary.aborted)),
            goals::percent(summary.rate(summary.held))
        ),
        Expect::Abort => format!(
            "{}, {}",
            goals::percent(summary.rate(summary.aborted)),
            goals::shown(goals::median_detect(summary))
        ),
        Expect::NotPromote => format!("{} promoted", goals::percent(summary.rate(summary.promoted))),
    }
}

/// The table of one traffic level: a row per scenario, a column per judgment.
fn table(rps: f64, judged: &[Judged<'_>], summaries: &[Vec<Summary>], bounds: &[Option<Bound>]) -> String {
    let mut header = vec!["scenario".to_string(), "goal".into(), "fixed-sample bound".into()];
    header.extend(judged.iter().map(|j| format!("`{}`", j.label)));
    let mut lines = vec![
        format!("#### {rps} requests/s"),
        String::new(),
        format!("| {} |", header.join(" | ")),
        format!("|{}", "---|".repeat(header.len())),
    ];
    for (index, bound) in bounds.iter().enumerate() {
        let first = &summaries[0][index];
        let mut cells = vec![
            first.scenario.clone(),
            goals::describe(first, rps, *bound),
            bound.map(|b| b.describe()).unwrap_or_else(|| "–".into()),
        ];
        cells.extend(summaries.iter().map(|per_scenario| cell(&per_scenario[index])));
        lines.push(format!("| {} |", cells.join(" | ")));
    }
    lines.join("\n")
}

/// The earliest median of a judgment rolling back at most 1% of good canaries, against a figure
/// worked by hand: a 5× of a 0.1% error rate at 30 rps, where the Argo Rollouts-style policy's
/// median was 7m (while rolling back 5.1% of good canaries). By 7m the canary has served 585
/// requests at 5%; told stable's rate, the best one-shot test at 1% fails 4 or more of them (and 3
/// with a chance of 0.36), which a 5× canary (2.9 failures expected) does 42% of the time.
fn unattainable_by_argo_rollouts_median(schedule: &[bellwether::sim::Row], rps: f64) {
    let oracle = Oracle { alpha: goals::FALSE_ROLLBACKS, draws: 200 };
    let earliest = bound::earliest_median(0.001, 0.005, rps, schedule, oracle).expect("within the schedule");
    assert!(
        earliest > chrono::Duration::minutes(7) && earliest < chrono::Duration::minutes(9),
        "earliest median of a 5x at {rps} rps: {earliest}"
    );
}

/// What must hold in any run, whatever the noise.
fn sanity(name: &str, peer: bool, summaries: &[Summary], violations: usize) {
    assert_eq!(violations, 0, "{name}: the engine broke an invariant");
    for summary in summaries {
        assert_eq!(
            summary.promoted + summary.aborted + summary.held,
            summary.runs,
            "{name}: {}",
            summary.scenario
        );
        if !peer && summary.expect == Expect::NotPromote {
            assert_eq!(summary.promoted, 0, "bellwether promoted {} without evidence", summary.scenario);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let seeds = match args.iter().position(|a| a == "--seeds") {
        Some(i) => args.get(i + 1).and_then(|n| n.parse().ok()).expect("--seeds takes a number"),
        None if full => SEEDS,
        None => SMOKE_SEEDS,
    };
    checks::run();
    let recommended = Setup::example();
    let thresholds = Setup::from_manifests([("thresholds.yaml".to_string(), THRESHOLDS.to_string())])
        .expect("the thresholds example is valid");
    let scenarios = Scenario::corpus();
    let argo = ArgoRollouts { failure_limit: 3 };
    let flagger = Flagger { threshold: 5 };
    let kayenta = Kayenta { judge_every: 5, pass: 90.0, marginal: 75.0 };
    let compare = CompareAtSteps { confidence: 0.95, max_ratio: 1.2, min_samples: 5 };
    let sequential = SequentialErrors { alpha: 0.05, max_increase: 4.0 };
    let settings = format!(
        "argo-rollouts failureLimit {} and the metric's consecutiveErrorLimit; flagger threshold {}; kayenta \
         judged every {} measurements at 98% confidence, marginal {}, pass {}; bellwether compare at {:.0}% \
         confidence, maxRatio {}, minSamples {} (threshold in the background); bellwether sequential alpha \
         {}, maxIncrease {} on error rates (threshold on latency)",
        argo.failure_limit,
        flagger.threshold,
        kayenta.judge_every,
        kayenta.marginal,
        kayenta.pass,
        compare.confidence * 100.0,
        compare.max_ratio,
        compare.min_samples,
        sequential.alpha,
        sequential.max_increase
    );
    let entry = |label: &str, setup, policy: Box<dyn Policy>, peer| Judged {
        label: label.to_string(),
        setup,
        policy,
        peer,
    };
    let judged = vec![
        entry("recommended", &recommended, Box::new(Bellwether), false),
        entry("threshold", &thresholds, Box::new(Bellwether), false),
        entry("compare", &thresholds, Box::new(compare), false),
        entry("sequential", &thresholds, Box::new(sequential), false),
        entry("argo-rollouts", &thresholds, Box::new(argo), true),
        entry("flagger", &thresholds, Box::new(flagger), true),
        entry("kayenta", &thresholds, Box::new(kayenta), true),
    ];
    assert!(
        (bound::requests(0.001, 0.002) - 31_496.0).abs() < 5.0,
        "the fixed-sample bound of a 2x of 0.1% at alpha = beta = 0.01"
    );
    let mut tables = Vec::new();
    let mut rows_of_all = Vec::new();
    let mut violations = Vec::new();
    for rps in TRAFFIC {
        let schedule =
            run(&recommended, &Scenario::good(), &Options { rps, ..Options::default() }, &Bellwether);
        let oracle = full.then_some(Oracle { alpha: goals::FALSE_ROLLBACKS, draws: ORACLE_DRAWS });
        let bounds: Vec<Option<Bound>> =
            scenarios.iter().map(|s| bound::of(s, rps, &schedule.timeline, oracle)).collect();
        if !full && rps < 200.0 {
            unattainable_by_argo_rollouts_median(&schedule.timeline, rps);
        }
        let mut summaries = Vec::new();
        for j in &judged {
            let mut seen = 0;
            let per_scenario: Vec<Summary> = scenarios
                .iter()
                .map(|scenario| {
                    let (outcomes, broken) = outcomes(j.setup, scenario, rps, seeds, j.policy.as_ref());
                    seen += broken;
                    summarize(scenario, &outcomes)
                })
                .collect();
            if !full {
                sanity(&j.label, j.peer, &per_scenario, seen);
            }
            violations.push(format!("{} at {rps} rps: {seen}", j.label));
            summaries.push(per_scenario);
        }
        tables.push(table(rps, &judged, &summaries, &bounds));
        rows_of_all.push((rps, bounds, summaries));
    }
    println!("{}", tables.join("\n\n"));
    println!(
        "\nEach cell: rolled back / held for a canary that should be promoted; caught, and the median time \
         to detect over all runs (– when under half were caught) for one that should be aborted. The bound \
         is the canary requests a one-shot test at alpha = beta = 0.01 needs, and when the example's \
         schedule has sent them. Peers and the threshold, compare and sequential columns run on the \
         example as written with thresholds only (benches/accuracy/thresholds.yaml).\n"
    );
    let judged = &judged;
    let rows: Vec<goals::Row<'_>> = rows_of_all
        .iter()
        .flat_map(|(rps, bounds, summaries)| {
            bounds.iter().enumerate().map(move |(index, bound)| goals::Row {
                rps: *rps,
                bound: *bound,
                recommended: &summaries[0][index],
                peers: judged
                    .iter()
                    .zip(summaries)
                    .filter(|(j, _)| j.peer)
                    .map(|(j, per_scenario)| (j.label.as_str(), &per_scenario[index]))
                    .collect(),
            })
        })
        .collect();
    for (goal, misses) in goals::check(&rows) {
        if misses.is_empty() {
            println!("- {goal}: goal met");
        } else {
            println!("- {goal}: goal missed by {}", misses.join("; "));
        }
    }
    println!(
        "\nSettings: {settings}. {seeds} seeded runs per scenario and judgment. Invariant violations: {}.",
        violations.join(", ")
    );
}
