//! Placeholder until the sequential judgment lands.

use super::judge::MetricVerdict;
use crate::api::{Sequential, AnalysisPhase, HysteresisState, Measurement, Metric};
use chrono::{DateTime, Duration, Utc};

pub fn judge(
    metric: &Metric,
    _judgment: &Sequential,
    _measurements: &[Measurement],
    _started_at: DateTime<Utc>,
    _run_duration: Option<Duration>,
) -> MetricVerdict {
    MetricVerdict {
        phase: AnalysisPhase::Error,
        message: format!("{}: not judged yet", metric.name),
        state: HysteresisState::Healthy,
        since: None,
        consecutive_errors: 0,
        decided_at: None,
        dry_run: metric.dry_run,
    }
}
