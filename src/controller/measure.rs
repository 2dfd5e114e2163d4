//! The AnalysisRun reconciler: measures each metric when it is due, through the shared provider pool
//! (which limits the queries in flight to any one Prometheus), and writes the status that
//! [`record`] derives from the measurements. It stops once the run is terminal.
//!
//! The status write is guarded by the resourceVersion the run was read at. A pass working from a
//! stale cache is refused (409) and retried, measuring again, so a measurement is never recorded
//! twice and a verdict never overwritten.

use super::Context;
use super::analysis_runs::{due, next_due, record};
use super::error::Error;
use super::rollouts::FIELD_MANAGER;
use super::secrets::resolve_auth;
use crate::api::{AnalysisRun, Measurement};
use crate::metrics::measure::vars;
use chrono::Utc;
use futures::future::join_all;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn reconcile(run: Arc<AnalysisRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.leadership.is_leader() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let result = pass(&ctx, &run).await;
    ctx.metrics.reconcile("analysisrun", started.elapsed(), result.as_ref().err().map(Error::kind));
    result
}

pub fn error_policy(run: Arc<AnalysisRun>, error: &Error, _ctx: Arc<Context>) -> Action {
    let name = format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any());
    match error {
        Error::Conflict { .. } => Action::requeue(Duration::from_millis(100)),
        _ => {
            tracing::warn!(analysis_run = %name, %error, "reconcile failed");
            Action::requeue(Duration::from_secs(2))
        }
    }
}

async fn pass(ctx: &Context, run: &AnalysisRun) -> Result<Action, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let now = Utc::now();
    let variables = vars(run);
    let measured = join_all(due(run, now).into_iter().filter_map(|metric_name| {
        let metric = run.spec.metrics.iter().find(|m| m.name == metric_name)?;
        let variables = &variables;
        let namespace = &namespace;
        Some(async move {
            let measurement = match &metric.provider.prometheus {
                Some(prometheus) => match resolve_auth(&ctx.client, namespace, prometheus).await {
                    Ok(auth) => ctx.providers.measure(metric, variables, &auth, now).await,
                    Err(error) => {
                        Measurement { at: now, error: Some(error.to_string()), ..Measurement::default() }
                    }
                },
                None => Measurement {
                    at: now,
                    error: Some("the metric has no provider".into()),
                    ..Measurement::default()
                },
            };
            (metric_name, measurement)
        })
    }))
    .await;
    let status = record(run, measured, now);
    let mut updated = run.clone();
    updated.status = Some(status);
    if updated.status != run.status {
        let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
        Api::<AnalysisRun>::namespaced(ctx.client.clone(), &namespace)
            .replace_status(&name, &params, &updated)
            .await
            .map_err(|e| Error::kube(format!("writing the status of AnalysisRun {namespace}/{name}"), e))?;
    }
    // Values are exported while a run measures; a finished run's series go, so that the number of
    // series follows the runs in flight rather than every run ever made.
    let terminal = updated.status.as_ref().and_then(|s| s.phase).is_some_and(|p| p.is_terminal());
    if terminal {
        ctx.metrics.forget_analysis_run(&namespace, &name);
    } else {
        for result in updated.status.iter().flat_map(|s| &s.metric_results) {
            let latest = result.measurements.last().and_then(|m| m.value);
            ctx.metrics.analysis_value(&namespace, &name, &result.name, latest);
        }
    }
    let later = Utc::now();
    Ok(match next_due(&updated, later) {
        Some(at) => Action::requeue((at - later).to_std().unwrap_or_default().max(Duration::from_millis(50))),
        None => Action::await_change(),
    })
}
