//! Placeholder until the compare judgment lands.

use super::judge::MetricVerdict;
use crate::api::{Compare, AnalysisPhase, HysteresisState, Measurement, Metric};
use chrono::{DateTime, Duration, Utc};

pub fn judge(
    metric: &Metric,
    _judgment: &Compare,
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
