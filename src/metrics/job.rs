//! The `job` provider: the Job that one measurement of a job metric runs, and what its end
//! measures, 1 when it succeeded and 0 when it failed.
//!
//! The AnalysisRun reconciler creates the Job, polls it and deletes it (`crate::controller::jobs`);
//! this module builds the Job from the metric and reads how it ended, without an API server.

use crate::api::template::{self, Vars};
use crate::api::{AnalysisRun, DEFAULT_INTERVAL, JobProvider, Metric, format_duration};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The label naming the AnalysisRun a Job measures for.
pub const RUN_LABEL: &str = "bellwether.dev/analysis-run";
/// The label naming the metric a Job measures.
pub const METRIC_LABEL: &str = "bellwether.dev/metric";

/// The longest a Job's name may be, since its pods carry it in a label, and a label value.
const MAX_NAME: usize = 63;
/// The hexadecimal digits of the hash that keeps a shortened or changed name unique.
const HASH_DIGITS: usize = 8;

/// The name of the Job that measures `metric` of the run `run` for the measurement due at `due`:
/// `<run>-<metric>-<due, in Unix seconds>`, made a valid name of at most 63 characters. It is the
/// same on every pass until the measurement is recorded, and the next measurement's is another,
/// since each is due at least a second after the last.
pub fn job_name(run: &str, metric: &str, due: DateTime<Utc>) -> String {
    let suffix = format!("-{}", due.timestamp());
    format!("{}{suffix}", dns_label(&format!("{run}-{metric}"), MAX_NAME - suffix.len()))
}

/// A label value standing for `name`, a run's or a metric's, which may be longer than 63
/// characters or hold characters a label value cannot.
pub fn label_value(name: &str) -> String {
    dns_label(name, MAX_NAME)
}

/// `text` as lower-case letters, digits and inner hyphens, in at most `max` characters. When that
/// changes it, a hash of all of it ends the result, so that two texts never come out the same.
fn dns_label(text: &str, max: usize) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' }).collect();
    let cleaned = cleaned.trim_matches('-');
    if cleaned == text && text.len() <= max {
        return cleaned.to_owned();
    }
    let hash: String =
        Sha256::digest(text.as_bytes()).iter().take(HASH_DIGITS / 2).map(|b| format!("{b:02x}")).collect();
    let head = cleaned[..cleaned.len().min(max - HASH_DIGITS - 1)].trim_end_matches('-');
    if head.is_empty() { hash } else { format!("{head}-{hash}") }
}

/// The Job of one measurement, as JSON: the metric's spec and metadata with every string rendered
/// from `vars` (`{{interval}}` the metric's own), named `name`, in the run's namespace, labelled
/// with the run and the metric, and owned by the run, whose deletion takes it along. Unless the spec
/// sets them, the Job tries once (`backoffLimit` 0) and its pod is not restarted in place
/// (`restartPolicy` Never). Every field of the spec is kept as written, those this build does not
/// know included. Errors name the field at fault.
pub fn build(
    run: &AnalysisRun,
    metric: &Metric,
    job: &JobProvider,
    vars: &Vars,
    name: &str,
) -> Result<Value, String> {
    let interval =
        metric.interval.as_ref().map_or_else(|| format_duration(DEFAULT_INTERVAL), ToString::to_string);
    let vars = Vars { interval, ..vars.clone() };
    let render = |document: &Value, prefix: &str| {
        template::render_strings(document, prefix, &vars).map_err(|error| error.to_string())
    };
    let metadata = serde_json::to_value(job.metadata.clone().unwrap_or_default())
        .expect("labels and annotations always serialize");
    let metadata = render(&metadata, "provider.job.metadata")?;
    let rendered = JobProvider { metadata: None, spec: render(&job.spec, "provider.job.spec")? };
    let parsed = rendered
        .job_spec()
        .map_err(|error| format!("provider.job.spec: is not a batch/v1 JobSpec: {error}"))?;
    let mut spec = rendered.spec;
    if parsed.backoff_limit.is_none() {
        spec["backoffLimit"] = json!(0);
    }
    if parsed.template.spec.as_ref().is_some_and(|pod| pod.restart_policy.is_none()) {
        spec["template"]["spec"]["restartPolicy"] = json!("Never");
    }
    let uid = run.uid().ok_or("the AnalysisRun has no UID to own its Jobs")?;
    let run_name = run.name_any();
    let mut labels = metadata.get("labels").and_then(Value::as_object).cloned().unwrap_or_default();
    labels.insert(RUN_LABEL.into(), label_value(&run_name).into());
    labels.insert(METRIC_LABEL.into(), label_value(&metric.name).into());
    let annotations = metadata.get("annotations").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut object_metadata = Map::new();
    object_metadata.insert("name".into(), name.into());
    object_metadata.insert("namespace".into(), run.namespace().unwrap_or_default().into());
    object_metadata.insert("labels".into(), labels.into());
    if !annotations.is_empty() {
        object_metadata.insert("annotations".into(), annotations.into());
    }
    object_metadata.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "AnalysisRun",
            "name": run_name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]),
    );
    Ok(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": object_metadata, "spec": spec}))
}

/// Whether `job` is one of `run`'s: its controller owner reference names the run's UID.
pub fn owned_by(job: &Job, run: &AnalysisRun) -> bool {
    job.owner_references().iter().any(|owner| {
        owner.controller == Some(true)
            && owner.kind == "AnalysisRun"
            && Some(&owner.uid) == run.uid().as_ref()
    })
}

/// How a Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// With the reason and message of its `Failed` condition, such as `BackoffLimitExceeded` or
    /// `DeadlineExceeded`.
    Failed {
        reason: String,
        message: String,
    },
}

impl Outcome {
    /// The measurement: 1 for a Job that succeeded, 0 for one that failed, whatever the reason.
    pub fn value(&self) -> f64 {
        match self {
            Self::Succeeded => 1.0,
            Self::Failed { .. } => 0.0,
        }
    }
}

/// How `job` ended, once its status has the condition `Complete` or `Failed` True; `None` while it
/// runs. Only these two are read: every version of the Job controller writes them last, after
/// `SuccessCriteriaMet` or `FailureTarget` where it writes those, once its pods are gone.
pub fn outcome(job: &Job) -> Option<Outcome> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    let holds = |kind: &str| conditions.iter().find(|c| c.type_ == kind && c.status == "True");
    if holds("Complete").is_some() {
        return Some(Outcome::Succeeded);
    }
    holds("Failed").map(|failed| Outcome::Failed {
        reason: failed.reason.clone().unwrap_or_default(),
        message: failed.message.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due() -> DateTime<Utc> {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    fn run() -> AnalysisRun {
        let mut run: AnalysisRun = serde_json::from_value(json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {"name": "checkout-abc123-1-step1", "namespace": "shop", "uid": "run-uid"},
            "spec": {"metrics": [metric()], "revision": "abc123", "args": [{"name": "suite", "value": "smoke"}]},
        }))
        .unwrap();
        run.metadata.uid = Some("run-uid".into());
        run
    }

    fn metric() -> Value {
        json!({
            "name": "smoke",
            "interval": "30s",
            "provider": {"job": {
                "metadata": {"labels": {"suite": "{{args.suite}}", RUN_LABEL: "forged"}, "annotations": {"every": "{{interval}}"}},
                "spec": {
                    "activeDeadlineSeconds": 60,
                    "futureField": {"kept": true},
                    "template": {"spec": {"containers": [{
                        "name": "smoke",
                        "image": "busybox:1.36",
                        "command": ["sh", "-c", "test \"$REVISION\" != bad"],
                        "env": [{"name": "REVISION", "value": "{{revision}}"}],
                    }]}},
                },
            }},
            "threshold": {"min": 1},
        })
    }

    fn built(run: &AnalysisRun) -> Result<Value, String> {
        let metric = &run.spec.metrics[0];
        let job = metric.provider.job.as_ref().unwrap();
        build(run, metric, job, &crate::metrics::measure::vars(run), "the-job")
    }

    #[test]
    fn a_job_is_rendered_owned_labelled_and_tries_once() {
        let job = built(&run()).unwrap();
        assert_eq!(job["metadata"]["name"], "the-job");
        assert_eq!(job["metadata"]["namespace"], "shop");
        assert_eq!(
            job["metadata"]["labels"],
            json!({"suite": "smoke", RUN_LABEL: "checkout-abc123-1-step1", METRIC_LABEL: "smoke"}),
            "its own labels cannot be forged"
        );
        assert_eq!(job["metadata"]["annotations"], json!({"every": "30s"}));
        assert_eq!(
            job["metadata"]["ownerReferences"],
            json!([{
                "apiVersion": "bellwether.dev/v1alpha1",
                "kind": "AnalysisRun",
                "name": "checkout-abc123-1-step1",
                "uid": "run-uid",
                "controller": true,
                "blockOwnerDeletion": true,
            }])
        );
        let spec = &job["spec"];
        assert_eq!(
            (spec["backoffLimit"].clone(), spec["activeDeadlineSeconds"].clone()),
            (json!(0), json!(60))
        );
        assert_eq!(spec["futureField"], json!({"kept": true}), "a field this build does not know is kept");
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["containers"][0]["env"][0]["value"], "abc123");
        let parsed: Job = serde_json::from_value(job).expect("a Job");
        assert!(owned_by(&parsed, &run()));
        let mut other = run();
        other.metadata.uid = Some("another-uid".into());
        assert!(!owned_by(&parsed, &other));
    }

    #[test]
    fn what_the_spec_sets_is_kept_and_errors_name_their_field() {
        let mut run = run();
        let job = run.spec.metrics[0].provider.job.as_mut().unwrap();
        job.spec["backoffLimit"] = json!(2);
        job.spec["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        let spec = built(&run).unwrap()["spec"].clone();
        assert_eq!(
            (spec["backoffLimit"].clone(), spec["template"]["spec"]["restartPolicy"].clone()),
            (json!(2), json!("OnFailure"))
        );

        let job = run.spec.metrics[0].provider.job.as_mut().unwrap();
        job.spec["template"]["spec"]["containers"][0]["args"] = json!(["{{args.missing}}"]);
        let error = built(&run).unwrap_err();
        assert_eq!(
            error,
            "provider.job.spec.template.spec.containers[0].args[0]: arg \"missing\" has no value: the Rollout passes none and the template has no default"
        );
        let job = run.spec.metrics[0].provider.job.as_mut().unwrap();
        job.spec = json!({"backoffLimit": "twice"});
        assert!(
            built(&run)
                .unwrap_err()
                .starts_with("provider.job.spec: is not a batch/v1 JobSpec: invalid type")
        );
    }

    #[test]
    fn names_are_valid_unique_and_at_most_63_characters() {
        assert_eq!(
            job_name("checkout-abc123-1-step1", "smoke", due()),
            "checkout-abc123-1-step1-smoke-1780315200"
        );
        let long = "a-very-long-rollout-name-that-goes-on-and-on-abc123-1-background";
        let name = job_name(long, "smoke-test", due());
        assert_eq!(name.len(), 63, "{name}");
        assert!(
            name.starts_with("a-very-long-rollout-name-that-goes-on-and-o-") && name.ends_with("-1780315200"),
            "{name}"
        );
        assert_ne!(name, job_name(&long.replace("background", "backgrounds"), "smoke-test", due()));
        let odd = job_name("web.v2-abc-1-step1", "P99_Latency", due());
        assert!(odd.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{odd}");
        assert_ne!(odd, job_name("web.v2-abc-1-step1", "p99-latency", due()), "changed names keep apart");
        assert_ne!(job_name("r", "m", due()), job_name("r", "m", due() + chrono::Duration::seconds(1)));
        assert_eq!(label_value("smoke"), "smoke");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
    }

    fn job_with(conditions: Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j"}, "status": {"conditions": conditions}}))
            .unwrap()
    }

    fn condition(kind: &str, status: &str, reason: &str) -> Value {
        json!({"type": kind, "status": status, "reason": reason, "message": format!("{reason} happened")})
    }

    #[test]
    fn complete_measures_1_and_failed_0_whatever_the_reason() {
        let running: Job =
            serde_json::from_value(json!({"metadata": {"name": "j"}, "status": {"active": 1}})).unwrap();
        assert_eq!(outcome(&running), None);
        // Kubernetes 1.31 and later write SuccessCriteriaMet or FailureTarget first; only the
        // final condition counts.
        assert_eq!(
            outcome(&job_with(json!([condition("SuccessCriteriaMet", "True", "CompletionsReached")]))),
            None
        );
        assert_eq!(
            outcome(&job_with(json!([condition("FailureTarget", "True", "BackoffLimitExceeded")]))),
            None
        );
        let complete = job_with(json!([
            condition("SuccessCriteriaMet", "True", "CompletionsReached"),
            condition("Complete", "True", "CompletionsReached"),
        ]));
        assert_eq!(outcome(&complete), Some(Outcome::Succeeded));
        assert_eq!(Outcome::Succeeded.value(), 1.0);
        for reason in ["BackoffLimitExceeded", "DeadlineExceeded", "PodFailurePolicy"] {
            let failed = outcome(&job_with(json!([condition("Failed", "True", reason)]))).unwrap();
            assert_eq!(
                failed,
                Outcome::Failed { reason: reason.into(), message: format!("{reason} happened") }
            );
            assert_eq!(failed.value(), 0.0);
        }
        assert_eq!(outcome(&job_with(json!([condition("Failed", "False", "x")]))), None);
    }
}
