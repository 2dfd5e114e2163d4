//! The goals the recommended judgment is held to, per scenario and traffic, and the check of each
//! against a run of the bench: met, or missed by how much and where.

use super::bound::Bound;
use bellwether::api::format_duration;
use bellwether::sim::{Expect, Summary};
use chrono::Duration;

/// Good canaries rolled back, at most; and 30-second spikes.
pub const FALSE_ROLLBACKS: f64 = 0.01;
const SPIKE_ROLLBACKS: f64 = 0.05;
/// Good canaries held for a person, at most.
const HELD: f64 = 0.02;
/// Subtle regressions caught within the schedule, at least.
const CAUGHT: f64 = 0.99;
/// How far above the fixed-sample bound a median time to detect may be.
const BOUND_FACTOR: i32 = 2;

/// The regressions that must be caught [`CAUGHT`] of the time, at a traffic level.
fn must_catch(scenario: &str, rps: f64) -> bool {
    match scenario {
        "regression-2x" | "latency-1.5x" => rps >= 200.0,
        "regression-5x" => rps < 200.0,
        _ => false,
    }
}

/// The goal of one row, as the table shows it.
pub fn describe(summary: &Summary, rps: f64, bound: Option<Bound>) -> String {
    match (summary.expect, summary.scenario.as_str()) {
        (Expect::Promote, "spike") => format!("rolled back ≤ {}", percent(SPIKE_ROLLBACKS)),
        (Expect::Promote, _) => {
            format!("rolled back ≤ {}, held ≤ {}", percent(FALSE_ROLLBACKS), percent(HELD))
        }
        (Expect::NotPromote, _) => "never promoted".into(),
        (Expect::Abort, scenario) => {
            let mut parts = Vec::new();
            if must_catch(scenario, rps) {
                parts.push(format!("caught ≥ {}", percent(CAUGHT)));
            }
            if bound.is_some_and(|b| b.time.is_some()) {
                parts.push(format!("median ≤ {BOUND_FACTOR}× bound"));
            }
            parts.push("median ≤ peers'".into());
            parts.join(", ")
        }
    }
}

/// The median time to detect over all runs, a run that was not caught counting as later than
/// any: `None` when fewer than half were caught.
pub fn median_detect(summary: &Summary) -> Option<Duration> {
    let rank = summary.runs.div_ceil(2).max(1);
    summary.detect_times.get(rank - 1).copied()
}

/// One row of results: a scenario at a traffic level, the recommended judgment's summary, and
/// each peer's.
pub struct Row<'a> {
    pub rps: f64,
    pub bound: Option<Bound>,
    pub recommended: &'a Summary,
    pub peers: Vec<(&'a str, &'a Summary)>,
}

/// Where the recommended judgment missed each goal, by goal; empty lists are goals met.
pub fn check(rows: &[Row<'_>]) -> Vec<(&'static str, Vec<String>)> {
    let mut rollbacks = Vec::new();
    let mut held = Vec::new();
    let mut caught = Vec::new();
    let mut against_bound = Vec::new();
    let mut against_peers = Vec::new();
    let mut blind = Vec::new();
    for row in rows {
        let s = row.recommended;
        let at = format!("{} at {} rps", s.scenario, row.rps);
        match s.expect {
            Expect::Promote => {
                let limit = if s.scenario == "spike" { SPIKE_ROLLBACKS } else { FALSE_ROLLBACKS };
                let rate = s.rate(s.aborted);
                if rate > limit {
                    rollbacks.push(format!(
                        "{at}: {} rolled back, by {}",
                        percent(rate),
                        percent(rate - limit)
                    ));
                }
                let rate = s.rate(s.held);
                if s.scenario != "spike" && rate > HELD {
                    held.push(format!("{at}: {} held, by {}", percent(rate), percent(rate - HELD)));
                }
            }
            Expect::NotPromote if s.promoted > 0 => blind.push(format!("{at}: {} promoted", s.promoted)),
            Expect::NotPromote => {}
            Expect::Abort => {
                let rate = s.rate(s.aborted);
                if must_catch(&s.scenario, row.rps) && rate < CAUGHT {
                    caught.push(format!("{at}: {} caught, by {}", percent(rate), percent(CAUGHT - rate)));
                }
                let median = median_detect(s);
                if let Some(time) = row.bound.and_then(|b| b.time) {
                    let limit = time * BOUND_FACTOR;
                    if median.is_none_or(|m| m > limit) {
                        against_bound.push(format!(
                            "{at}: median {} > {}",
                            shown(median),
                            format_duration(limit)
                        ));
                    }
                }
                for (peer, summary) in &row.peers {
                    let Some(theirs) = median_detect(summary) else { continue };
                    if median.is_none_or(|m| m > theirs) {
                        let earliest = row.bound.and_then(|b| b.earliest_median).filter(|&e| theirs < e);
                        let why = earliest.map(|e| {
                            format!(
                                " (unattainable: no judgment rolling back ≤ {} of good canaries has a median \
                                 under {})",
                                percent(FALSE_ROLLBACKS),
                                format_duration(e)
                            )
                        });
                        against_peers.push(format!(
                            "{at}: median {} > {peer}'s {}{}",
                            shown(median),
                            format_duration(theirs),
                            why.unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }
    vec![
        ("false rollbacks ≤ 1% of good canaries and ≤ 5% of spikes", rollbacks),
        ("good canaries held ≤ 2%", held),
        ("≥ 99% of 2× errors and +50% latency caught at 200 rps, of 5× at 30 rps", caught),
        ("median time to detect ≤ 2× the fixed-sample bound", against_bound),
        ("median time to detect ≤ every peer's on every scenario it catches", against_peers),
        ("never promoted without evidence", blind),
    ]
}

/// A median time to detect, or `–` when fewer than half the runs were caught.
pub fn shown(median: Option<Duration>) -> String {
    median.map(format_duration).unwrap_or_else(|| "–".into())
}

pub fn percent(share: f64) -> String {
    format!("{:.1}%", 100.0 * share)
}
