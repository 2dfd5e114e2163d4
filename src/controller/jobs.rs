//! Job metrics in the AnalysisRun reconciler: each measurement of a `job` metric runs a Job, and
//! takes more than one pass.
//!
//! When the measurement is due, the pass creates its Job ([`job_name`]: the run, the metric and the
//! time the measurement became due), in the run's namespace whatever template the metric came
//! from, owned by the run. While the Job runs the pass records nothing, and the run is looked at
//! again every [`POLL`]. Once the Job has ended, the pass records 1 (it succeeded) or 0 (it failed)
//! and, once that status is stored, deletes the Job. A Job found already created (409) was created
//! by an earlier pass whose write did not show yet: it is the measurement's, in flight.
//!
//! Jobs are read with a GET by name at each poll: no watch or cache of Jobs is kept, since only
//! runs with a Job in flight look at one, one each. Every Job of a run that is left (a delete that
//! failed, a measurement that stopped being due) is deleted on a later pass: another of the metric's
//! before its next Job is created, and every one once the run has ended. The owner reference has the
//! garbage collector delete them along with the run.
//!
//! A Job metric lets whoever can write an AnalysisTemplate have the controller create pods, so the
//! controller runs none unless started with `--job-metrics`: without it, each measurement of a job
//! metric is an error naming the flag.

use super::Context;
use super::error::Error;
use super::measure::Runs;
use super::rollouts::FIELD_MANAGER;
use crate::api::template::Vars;
use crate::api::{AnalysisRun, JobProvider, Measurement, Metric};
use crate::metrics::job::{
    METRIC_LABEL, Outcome, RUN_LABEL, build, job_name, label_value, outcome, owned_by,
};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use std::time::Duration;

/// How often a run with a Job in flight is looked at again.
pub const POLL: Duration = Duration::from_secs(1);

/// The error of every measurement of a job metric when the controller does not run Jobs.
pub const NOT_ENABLED: &str = "provider.job: this controller does not run Job metrics: they create \
     pods for whoever can write an AnalysisTemplate, so its operator must allow them with \
     --job-metrics (the Helm chart's jobMetrics: true)";

/// What a due metric's measurement gave in one pass.
#[derive(Debug)]
pub enum Taken {
    /// A measurement to record.
    Measured(Measurement),
    /// A job metric's measurement, and its Job, to delete once the measurement is recorded.
    FromJob(Measurement, String),
    /// A job metric's Job that is running, or was just created: nothing to record yet.
    Running,
}

/// One pass's part of the measurement of the job metric `metric`, due since `due`: a measurement
/// once its Job has ended, and until then the Job created or left running.
pub async fn measure(
    runs: &Runs,
    run: &AnalysisRun,
    metric: &Metric,
    job: &JobProvider,
    vars: &Vars,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Taken {
    if !runs.job_metrics {
        return failed(now, NOT_ENABLED.into());
    }
    // The first measurement is due from when the run started, which its first write records.
    if run.status.as_ref().and_then(|s| s.started_at).is_none() {
        return Taken::Running;
    }
    let namespace = run.namespace().unwrap_or_default();
    let name = job_name(&run.name_any(), &metric.name, due);
    let jobs = Api::<Job>::namespaced(runs.ctx.client.clone(), &namespace);
    match jobs.get_opt(&name).await {
        Ok(Some(found)) if owned_by(&found, run) => match outcome(&found) {
            None => Taken::Running,
            Some(ended) => {
                if let Outcome::Failed { reason, message } = &ended {
                    let note = format!("Job {name} of metric {} failed ({reason}): {message}", metric.name);
                    warn(&runs.ctx, run, &found, note).await;
                }
                let measurement =
                    Measurement { at: now, value: Some(ended.value()), ..Measurement::default() };
                Taken::FromJob(measurement, name)
            }
        },
        Ok(Some(_)) => failed(
            now,
            format!("provider.job: Job {namespace}/{name} exists, and this run is not its controller owner"),
        ),
        Ok(None) => start(runs, run, metric, job, vars, &name, now).await,
        Err(error) => {
            failed(now, format!("provider.job: reading Job {namespace}/{name}: {}", describe(&error)))
        }
    }
}

/// Creates the Job `name`, after deleting the metric's other Jobs that are left; `Running` once it
/// exists.
async fn start(
    runs: &Runs,
    run: &AnalysisRun,
    metric: &Metric,
    job: &JobProvider,
    vars: &Vars,
    name: &str,
    now: DateTime<Utc>,
) -> Taken {
    let client = &runs.ctx.client;
    let namespace = run.namespace().unwrap_or_default();
    let selector =
        format!("{RUN_LABEL}={},{METRIC_LABEL}={}", label_value(&run.name_any()), label_value(&metric.name));
    if let Err(error) = delete_jobs(client, run, &selector, Some(name)).await {
        tracing::warn!(%error, "cannot delete the Jobs of earlier measurements; deleting them later");
    }
    let object = match build(run, metric, job, vars, name).and_then(|object| {
        serde_json::from_value::<DynamicObject>(object).map_err(|error| format!("provider.job: {error}"))
    }) {
        Ok(object) => object,
        Err(error) => return failed(now, error),
    };
    let api =
        Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &ApiResource::erase::<Job>(&()));
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() };
    match api.create(&params, &object).await {
        Ok(_) => {
            tracing::info!(job = %format!("{namespace}/{name}"), metric = %metric.name, "started a Job");
            Taken::Running
        }
        // An earlier pass created it, and its measurement is in flight.
        Err(kube::Error::Api(status)) if status.code == 409 => Taken::Running,
        Err(error) => {
            failed(now, format!("provider.job: creating Job {namespace}/{name}: {}", describe(&error)))
        }
    }
}

/// Deletes the Jobs of measurements just recorded. One that cannot be deleted now is deleted on a
/// later pass.
pub async fn recorded(ctx: &Context, run: &AnalysisRun, jobs: &[String]) {
    let api = Api::<Job>::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    for name in jobs {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => {
                tracing::warn!(job = %name, %error, "cannot delete a measured Job; deleting it later")
            }
        }
    }
}

/// Deletes every Job of a run that has ended.
pub async fn ended(ctx: &Context, run: &AnalysisRun) -> Result<(), Error> {
    let selector = format!("{RUN_LABEL}={}", label_value(&run.name_any()));
    delete_jobs(&ctx.client, run, &selector, None)
        .await
        .map_err(|error| Error::kube(format!("deleting the Jobs of AnalysisRun {}", run.name_any()), error))
}

/// Whether a run measures any metric through a Job.
pub fn has_job_metrics(run: &AnalysisRun) -> bool {
    run.spec.metrics.iter().any(|metric| metric.provider.job.is_some())
}

/// Deletes the Jobs matching `selector` that `run` owns, but `keep`.
async fn delete_jobs(
    client: &kube::Client,
    run: &AnalysisRun,
    selector: &str,
    keep: Option<&str>,
) -> Result<(), kube::Error> {
    let api = Api::<Job>::namespaced(client.clone(), &run.namespace().unwrap_or_default());
    let listed = api.list(&ListParams::default().labels(selector)).await?;
    for job in listed.items.iter().filter(|job| owned_by(job, run) && Some(job.name_any().as_str()) != keep) {
        match api.delete(&job.name_any(), &DeleteParams::background()).await {
            Ok(_) => tracing::debug!(job = %job.name_any(), "deleted a Job"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Records a Warning Event on the run about its Job.
async fn warn(ctx: &Context, run: &AnalysisRun, job: &Job, note: String) {
    let event = Event {
        type_: EventType::Warning,
        reason: "JobFailed".into(),
        action: "Measuring".into(),
        note: Some(note),
        secondary: Some(job.object_ref(&())),
    };
    if let Err(error) = ctx.recorder.publish(&event, &run.object_ref(&())).await {
        tracing::warn!(analysis_run = %run.name_any(), %error, "cannot record an Event");
    }
}

/// A measurement at `now` that failed with `error`.
fn failed(now: DateTime<Utc>, error: String) -> Taken {
    Taken::Measured(Measurement { at: now, error: Some(error), ..Measurement::default() })
}

/// An API error as the API server words it; another failure as the client does.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
