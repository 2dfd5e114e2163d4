//! Many runs of one scenario, summed up: how often each outcome happened and how long it took.

use super::{Expect, Outcome, Scenario};
use chrono::Duration;

/// The distribution of outcomes over many seeded runs of one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub expect: Expect,
    pub runs: usize,
    pub promoted: usize,
    pub aborted: usize,
    pub held: usize,
    /// Onset to abort, for the runs that aborted, sorted.
    pub detect_times: Vec<Duration>,
    /// Start to promotion, for the runs that promoted, sorted.
    pub promote_times: Vec<Duration>,
}

impl Summary {
    /// How many runs went wrong for this scenario: good canaries aborted, bad ones not aborted,
    /// canaries without evidence promoted.
    pub fn wrong(&self) -> usize {
        match self.expect {
            Expect::Promote => self.aborted,
            Expect::Abort => self.runs - self.aborted,
            Expect::NotPromote => self.promoted,
        }
    }

    /// The share of runs that went wrong for this scenario; see [`Self::wrong`].
    pub fn wrong_rate(&self) -> f64 {
        share(self.wrong(), self.runs)
    }

    pub fn rate(&self, count: usize) -> f64 {
        share(count, self.runs)
    }
}

fn share(count: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { count as f64 / of as f64 }
}

/// Sums up the outcomes of runs of `scenario`.
pub fn summarize(scenario: &Scenario, outcomes: &[Outcome]) -> Summary {
    let onset = scenario.onset().unwrap_or_else(Duration::zero);
    let mut summary = Summary {
        scenario: scenario.name().to_string(),
        expect: scenario.expect(),
        runs: outcomes.len(),
        promoted: 0,
        aborted: 0,
        held: 0,
        detect_times: Vec::new(),
        promote_times: Vec::new(),
    };
    for outcome in outcomes {
        match outcome {
            Outcome::Promoted { after } => {
                summary.promoted += 1;
                summary.promote_times.push(*after);
            }
            Outcome::Aborted { after, .. } => {
                summary.aborted += 1;
                summary.detect_times.push((*after - onset).max(Duration::zero()));
            }
            Outcome::Held { .. } => summary.held += 1,
        }
    }
    summary.detect_times.sort();
    summary.promote_times.sort();
    summary
}

/// The `q`-quantile (nearest rank) of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}
