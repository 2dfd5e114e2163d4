//! The AnalysisRun reconciler: measures each metric when it is due, through the shared provider pool
//! (which limits the queries in flight to any one Prometheus), and writes the status that
//! [`record`] derives from the measurements. It stops once the run is terminal. A job metric's
//! measurement runs a Job over several passes instead ([`super::jobs`]).
//!
//! It measures only runs it can vouch for (the engine's [`entitlement`]): owned, through a controller owner
//! reference with its UID, by a Rollout this instance manages, and named in that Rollout's status
//! with the hash of the spec the Rollout created them with. Whoever can create or edit an
//! AnalysisRun can therefore not make Bellwether query another address, or read a Secret the
//! templates do not name. Secrets are read from the template's namespace: the run's for an
//! AnalysisTemplate, the controller's own for a ClusterAnalysisTemplate.
//!
//! The status write is guarded by the resourceVersion the run was cached at. A pass working from a
//! stale cache is refused (409) and retried once the cache shows the newer copy, so a measurement
//! is never recorded twice and a verdict never overwritten; after its own write, the run's next
//! pass waits until the cache shows it, so that it never measures twice for one interval. A write the API server refuses for what it holds (400,
//! 413, 422) would be refused again however often it is retried, so the run ends in Error with the
//! server's message instead.

use super::Context;
use super::acting::Permit;
use super::caches::expectations::{OWN_WRITE_PATIENCE, REFUSED_WRITE_PATIENCE};
use super::caches::{newer_than, written};
use super::error::Error;
use super::jobs::{self, Taken};
use super::rollouts::FIELD_MANAGER;
use super::secrets::resolve_auth;
use crate::api::template::Vars;
use crate::api::{AnalysisRun, AnalysisRunStatus, Measurement, Metric, Rollout};
use crate::engine::{Entitlement, due_since, entitlement, next_due, record, refused};
use crate::metrics::measure::vars;
use crate::metrics::provider::Provider;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the run reconciler works with: the shared context, and where ClusterAnalysisTemplates'
/// Secrets are read.
pub struct Runs {
    pub ctx: Arc<Context>,
    pub cluster_secrets_namespace: String,
    /// Whether job metrics may run their Jobs (`--job-metrics`).
    pub job_metrics: bool,
}

/// How often a run that is not measured is looked at again, in case its Rollout comes to name it.
const RECHECK: Duration = Duration::from_secs(60);

/// The managed Rollout that `run`'s controller owner reference names, if its UID matches.
fn owner(run: &AnalysisRun, rollouts: &Store<Rollout>) -> Option<Arc<Rollout>> {
    let reference = run.owner_references().iter().find(|o| {
        o.controller == Some(true) && o.kind == "Rollout" && o.api_version.starts_with("bellwether.dev/")
    })?;
    let key = ObjectRef::new(&reference.name).within(&run.namespace().unwrap_or_default());
    rollouts.get(&key).filter(|rollout| rollout.uid().as_deref() == Some(reference.uid.as_str()))
}

pub async fn reconcile(run: Arc<AnalysisRun>, runs: Arc<Runs>) -> Result<Action, Error> {
    let ctx = &runs.ctx;
    // A run is measured by whoever acts on its Rollout.
    let rollout = run.labels().get(crate::api::ROLLOUT_LABEL).cloned().unwrap_or_default();
    let Some(permit) = ctx.acting.permit(&run.namespace().unwrap_or_default(), &rollout) else {
        return Ok(Action::await_change());
    };
    // A run that has ended has nothing left to measure, whoever owns it, and no Job left to run.
    if run.status.as_ref().and_then(|s| s.phase).is_some_and(|p| p.is_terminal()) {
        if runs.job_metrics && jobs::has_job_metrics(&run) {
            jobs::ended(ctx, &run).await?;
        }
        return Ok(Action::await_change());
    }
    // Until the Rollouts are cached, no run can be vouched for.
    ctx.caches.wait_until_ready().await;
    let check = ctx.caches.check_run(&run);
    if !check.gave_up.is_empty() {
        tracing::warn!(analysis_run = %qualified_name(&run), "the cache never showed the last status write; measuring anyway");
    }
    if !check.ready() {
        // The watch event of the awaited write reconciles the run again when it arrives.
        return Ok(Action::requeue(check.recheck));
    }
    let started = Instant::now();
    let owner = owner(&run, &ctx.caches.rollouts);
    let now = Utc::now();
    let result = match entitlement(&run, owner.as_deref(), now) {
        Entitlement::Measure => match stagger_left(&run, now) {
            Some(left) => Ok(Action::requeue(left)),
            None => pass(&runs, &permit, &run, true).await,
        },
        Entitlement::RecordTermination => pass(&runs, &permit, &run, false).await,
        Entitlement::NotYetNamed => Ok(Action::requeue(Duration::from_secs(1))),
        Entitlement::Refused(why) => {
            tracing::debug!(analysis_run = %qualified_name(&run), %why, "not measured");
            Ok(if owner.is_some() { Action::requeue(RECHECK) } else { Action::await_change() })
        }
    };
    ctx.metrics.reconcile("analysisrun", started.elapsed(), result.as_ref().err().map(Error::kind));
    result
}

/// The longest a run waits before it starts: a run's first measurement is due `initialDelay` after
/// it starts, and every next one an interval after the last, so the stagger spreads the queries of
/// every interval, at the cost of starting a run up to this much later.
const MAX_STAGGER: Duration = Duration::from_secs(10);

/// How long a run created together with many others (a fleet shipping at once) waits before it
/// starts: a stagger of its own, from a hash of its UID, below its shortest interval and
/// [`MAX_STAGGER`], so that the fleet's runs do not query Prometheus at the same instants every
/// interval. `None` once the run has started or its stagger has passed.
fn stagger_left(run: &AnalysisRun, now: DateTime<Utc>) -> Option<Duration> {
    if run.status.as_ref().is_some_and(|s| s.started_at.is_some()) {
        return None;
    }
    let created = crate::api::created_at(&run.metadata)?;
    let at = created + chrono::Duration::from_std(stagger(&run.spec, &run.uid()?)).ok()?;
    (at - now).to_std().ok().filter(|left| !left.is_zero())
}

/// A run's stagger: the same for every pass over the run, spread evenly over the runs.
fn stagger(spec: &crate::api::AnalysisRunSpec, uid: &str) -> Duration {
    let shortest = spec
        .metrics
        .iter()
        .filter_map(|metric| crate::engine::MetricPlan::new(metric, None).ok()?.interval.to_std().ok())
        .min()
        .unwrap_or(MAX_STAGGER)
        .min(MAX_STAGGER);
    Duration::from_millis(super::stable_hash(uid) % (shortest.as_millis() as u64).max(1))
}

fn qualified_name(run: &AnalysisRun) -> String {
    format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any())
}

pub fn error_policy(run: Arc<AnalysisRun>, error: &Error, _runs: Arc<Runs>) -> Action {
    match error {
        Error::Conflict { .. } => {
            tracing::debug!(analysis_run = %qualified_name(&run), %error, "stale read; measuring again");
            Action::requeue(Duration::from_millis(100))
        }
        // Whoever acts on its Rollout measures it.
        Error::NotActing => Action::await_change(),
        _ => {
            tracing::warn!(analysis_run = %qualified_name(&run), %error, "reconcile failed");
            Action::requeue(Duration::from_secs(2))
        }
    }
}

/// One pass: measure what is due (when `measuring`; otherwise only record the run's end), write
/// the status when it changed.
async fn pass(runs: &Runs, permit: &Permit, run: &AnalysisRun, measuring: bool) -> Result<Action, Error> {
    let ctx = &runs.ctx;
    let namespace = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let clock = ctx.clock();
    let now = clock.now;
    let status = run.status.as_ref();
    let wanted = if measuring { due_since(&run.spec, status, now) } else { Vec::new() };
    tracing::debug!(analysis_run = %qualified_name(run), due = ?wanted, "measuring");
    let variables = vars(run);
    let taken = join_all(wanted.into_iter().filter_map(|(metric_name, since)| {
        let metric = run.spec.metrics.iter().find(|m| m.name == metric_name)?;
        let variables = &variables;
        Some(async move { (metric_name, measure(runs, run, metric, variables, since, now).await) })
    }))
    .await;
    let (mut measured, mut measured_jobs, mut running) = (Vec::new(), Vec::new(), Vec::new());
    for (metric_name, taken) in taken {
        match taken {
            Taken::Measured(measurement) => measured.push((metric_name, measurement)),
            Taken::FromJob(measurement, job) => {
                measured.push((metric_name, measurement));
                measured_jobs.push(job);
            }
            Taken::Running => running.push(metric_name),
        }
    }
    let mut updated = run.clone();
    updated.status = Some(record(&run.spec, status, measured, clock));
    if updated.status.as_ref() != status {
        permit.check()?;
        updated.status = Some(write_status(ctx, run, &updated).await?);
    }
    jobs::recorded(ctx, run, &measured_jobs).await;
    // Values are exported while a run measures; a finished run's series go, so that the number of
    // series follows the runs in flight rather than every run ever made.
    let terminal = updated.status.as_ref().and_then(|s| s.phase).is_some_and(|p| p.is_terminal());
    if terminal {
        ctx.metrics.forget_analysis_run(&namespace, &name);
        if runs.job_metrics && jobs::has_job_metrics(run) {
            jobs::ended(ctx, run).await?;
        }
    } else {
        for result in updated.status.iter().flat_map(|s| &s.metric_results) {
            let latest = result.measurements.last().and_then(|m| m.value);
            ctx.metrics.analysis_value(&namespace, &name, &result.name, latest);
        }
    }
    let later = Utc::now();
    let next = if running.is_empty() || terminal {
        next_due(&updated.spec, updated.status.as_ref(), later)
    } else {
        // A metric whose Job runs stays due until the Job ends: the other metrics say when the
        // next pass is due, and the Job that it is soon.
        let mut spec = updated.spec.clone();
        spec.metrics.retain(|metric| !running.contains(&metric.name));
        let poll = later + jobs::POLL;
        Some(next_due(&spec, updated.status.as_ref(), later).map_or(poll, |at| at.min(poll)))
    };
    Ok(match next.filter(|_| measuring) {
        Some(at) => Action::requeue((at - later).to_std().unwrap_or_default().max(Duration::from_millis(50))),
        None => Action::await_change(),
    })
}

/// One measurement of `metric`, due since `since`, with the Secrets its provider names read from
/// its template's namespace; or, for a job metric, this pass's part of it.
async fn measure(
    runs: &Runs,
    run: &AnalysisRun,
    metric: &Metric,
    variables: &Vars,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Taken {
    let failed = |error: String| {
        Taken::Measured(Measurement { at: now, error: Some(error), ..Measurement::default() })
    };
    let provider = match Provider::of(metric) {
        Ok(Provider::Job(job)) => return jobs::measure(runs, run, metric, job, variables, since, now).await,
        Ok(provider) => provider,
        Err(error) => return failed(error.to_string()),
    };
    let source = run.spec.sources.iter().find(|s| s.metric == metric.name);
    let secrets_namespace = match source {
        Some(source) if source.template.cluster_scope => runs.cluster_secrets_namespace.clone(),
        Some(_) => run.namespace().unwrap_or_default(),
        None => return failed("the run does not say which template the metric came from".into()),
    };
    match resolve_auth(&runs.ctx.client, &secrets_namespace, &runs.ctx.readable_secrets, provider).await {
        Ok(auth) => Taken::Measured(runs.ctx.providers.measure(metric, variables, &auth, now).await),
        Err(error) => failed(error.to_string()),
    }
}

/// Writes `updated`'s status, guarded by `run`'s resourceVersion, and returns what was stored. A
/// status the API server refuses for its content is replaced by an Error that keeps the stored
/// measurements.
async fn write_status(
    ctx: &Context,
    run: &AnalysisRun,
    updated: &AnalysisRun,
) -> Result<AnalysisRunStatus, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let api = Api::<AnalysisRun>::namespaced(ctx.client.clone(), &namespace);
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
    let action = || format!("writing the status of AnalysisRun {namespace}/{name}");
    let wanted = updated.status.clone().unwrap_or_default();
    let refusal = |error: &kube::Error| match error {
        kube::Error::Api(status) if matches!(status.code, 400 | 413 | 422) => Some(status.message.clone()),
        _ => None,
    };
    let stale = |error: kube::Error| {
        let error = Error::kube(action(), error);
        if matches!(error, Error::Conflict { .. }) {
            ctx.caches.expect_for_run(run, newer_than(run), REFUSED_WRITE_PATIENCE);
        }
        error
    };
    let stored =
        |stored: &AnalysisRun| ctx.caches.expect_for_run(run, written(stored, true), OWN_WRITE_PATIENCE);
    let reason = match api.replace_status(&name, &params, updated).await {
        Ok(written) => {
            stored(&written);
            return Ok(wanted);
        }
        Err(error) => refusal(&error).ok_or_else(|| stale(error))?,
    };
    tracing::warn!(analysis_run = %qualified_name(run), %reason, "status refused; the run ends in Error");
    // The Error keeps the measurements the server last stored; if even that is refused (the
    // message tipped it over a size limit), it goes without them.
    let mut errored = run.clone();
    errored.status = Some(refused(run.status.as_ref(), &wanted, &reason));
    match api.replace_status(&name, &params, &errored).await {
        Ok(written) => {
            stored(&written);
            return Ok(errored.status.unwrap_or_default());
        }
        Err(error) if refusal(&error).is_some() => {}
        Err(error) => return Err(stale(error)),
    }
    let status = errored.status.as_mut().expect("set above");
    status.metric_results.clear();
    let written = api.replace_status(&name, &params, &errored).await.map_err(stale)?;
    stored(&written);
    Ok(errored.status.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(intervals: &[&str]) -> crate::api::AnalysisRunSpec {
        let metrics: Vec<serde_json::Value> = intervals
            .iter()
            .enumerate()
            .map(|(i, interval)| {
                serde_json::json!({
                    "name": format!("m{i}"),
                    "interval": interval,
                    "count": 3,
                    "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "vector(1)"}},
                    "threshold": {"max": 1.0},
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({"metrics": metrics, "revision": "r1"}))
            .expect("a valid spec")
    }

    #[test]
    fn a_stagger_is_below_the_shortest_interval_and_the_cap() {
        let short = spec(&["5m", "2s"]);
        let long = spec(&["5m"]);
        for i in 0..200 {
            let uid = format!("00000000-0000-4000-8000-{i:012x}");
            assert!(stagger(&short, &uid) < Duration::from_secs(2));
            assert!(stagger(&long, &uid) < MAX_STAGGER);
            assert_eq!(stagger(&long, &uid), stagger(&long, &uid), "the same at every pass");
        }
    }

    #[test]
    fn staggers_spread_over_their_range() {
        let long = spec(&["5m"]);
        let tenths: std::collections::BTreeSet<u64> = (0..200)
            .map(|i| {
                stagger(&long, &format!("uid-{i}")).as_millis() as u64 * 10 / MAX_STAGGER.as_millis() as u64
            })
            .collect();
        assert_eq!(tenths.len(), 10, "200 runs fall in every tenth of the range: {tenths:?}");
    }
}
