//! The simulated Job controller: a Job's command runs as a process on this machine, and the Job's
//! status follows it as the real Job controller writes it.
//!
//! A simplification, which no test of Bellwether should depend on beyond the status it writes:
//! - No pod is created or simulated. The Job's *first* container's `command` followed by its
//!   `args` runs as a local process, with that container's literal `env` values (`valueFrom` is
//!   ignored) and this machine's `PATH`, in the temporary directory, its output discarded. The image
//!   is not pulled, so the command must exist here: `sh -c '...'` runs the same as in `busybox`.
//!   A container without a command cannot start, and counts as a failed pod.
//! - `backoffLimit` (6 when unset, as the API server defaults it) is honoured by running the
//!   command again after each failure; `activeDeadlineSeconds` by killing it, counted from when the
//!   Job was first seen. `completions`, `parallelism`, `suspend`, pod failure policies and success
//!   policies are not.
//! - The status is written as the Job controller of Kubernetes 1.31 and later writes it: `startTime`,
//!   `active` and `ready` while the command runs, then `succeeded` or `failed`, `completionTime` on
//!   success, and the conditions `SuccessCriteriaMet` and `Complete`, or `FailureTarget` and `Failed`
//!   with the reason `BackoffLimitExceeded` or `DeadlineExceeded`. A Job whose status already has
//!   `Complete` or `Failed` is left alone.
//! - Deleting a Job kills its process; nothing else is cleaned up, since there are no pods.

use super::controllers::Feed;
use super::resources;
use super::store::{ObjectKey, Store};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// The retries a Job gets when its spec sets no `backoffLimit`, as the API server defaults it.
const DEFAULT_BACKOFF_LIMIT: i64 = 6;

pub(super) struct Jobs {
    feed: Feed,
    /// The Jobs seen and not finished yet, by (namespace, name).
    runs: HashMap<ObjectKey, Run>,
}

/// One Job being run.
struct Run {
    /// The Job's UID: a Job deleted and created again under its name is another Job.
    uid: String,
    /// When the Job was first seen, for `activeDeadlineSeconds`, and as its status says it.
    started: Instant,
    start_time: String,
    /// The attempts that failed so far.
    failed: i64,
    /// The current attempt's process; `None` when its command could not start.
    child: Option<Child>,
    /// The final status, once decided, kept until the store holds it.
    outcome: Option<Value>,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Run {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the current attempt has ended, and if so whether it succeeded.
    fn exited(&mut self) -> Option<bool> {
        let Some(child) = &mut self.child else { return Some(false) };
        match child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.success()),
            Err(_) => Some(false),
        }
    }
}

impl Jobs {
    pub(super) fn new() -> Self {
        Self { feed: Feed::new(&resources::JOBS), runs: HashMap::new() }
    }

    pub(super) fn reconcile(&mut self, store: &Store) {
        // A running command changes nothing in the store: its Job is looked at every tick.
        for key in self.runs.keys() {
            self.feed.revisit(key.clone());
        }
        let (jobs, everything) = self.feed.take(store);
        if everything {
            self.runs.retain(|key, _| jobs.get(key).is_some_and(Option::is_some));
        }
        for (key, job) in jobs {
            match job {
                Some(job) => self.step(store, key, &job),
                // Deleted: dropping the run kills its process.
                None => drop(self.runs.remove(&key)),
            }
        }
    }

    fn step(&mut self, store: &Store, key: ObjectKey, job: &Value) {
        if finished(job) {
            self.runs.remove(&key);
            return;
        }
        let uid = job["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        if self.runs.get(&key).is_none_or(|run| run.uid != uid) {
            // A Job of the same name that was replaced is stopped as its run is dropped.
            let run = Run {
                uid,
                started: Instant::now(),
                start_time: now(),
                failed: 0,
                child: spawn(job),
                outcome: None,
            };
            self.runs.insert(key.clone(), run);
        }
        let run = self.runs.get_mut(&key).expect("inserted above");
        if run.outcome.is_none() {
            run.outcome = decide(run, job);
        }
        let status = match &run.outcome {
            Some(outcome) => outcome.clone(),
            None => {
                let mut status = json!({"startTime": run.start_time, "active": 1, "ready": 0});
                if run.failed > 0 {
                    status["failed"] = run.failed.into();
                }
                status
            }
        };
        self.feed.write_status(store, key, job, status);
    }
}

/// The Job's final status once its command succeeded, failed once too often or ran past the
/// deadline; `None` while it runs (after starting it again when an attempt failed).
fn decide(run: &mut Run, job: &Value) -> Option<Value> {
    let deadline = job["spec"]["activeDeadlineSeconds"].as_u64().map(Duration::from_secs);
    if deadline.is_some_and(|deadline| run.started.elapsed() >= deadline) {
        run.stop();
        run.failed += 1;
        return Some(failed(run, "DeadlineExceeded", "Job was active longer than specified deadline"));
    }
    match run.exited()? {
        true => {
            let message = "Reached expected number of succeeded pods";
            let mut status = json!({
                "startTime": run.start_time,
                "completionTime": now(),
                "succeeded": 1,
                "ready": 0,
                "conditions": [
                    condition("SuccessCriteriaMet", "CompletionsReached", message),
                    condition("Complete", "CompletionsReached", message),
                ],
            });
            if run.failed > 0 {
                status["failed"] = run.failed.into();
            }
            Some(status)
        }
        false => {
            run.failed += 1;
            let limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(DEFAULT_BACKOFF_LIMIT);
            if run.failed > limit {
                return Some(failed(
                    run,
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ));
            }
            run.child = spawn(job);
            None
        }
    }
}

fn failed(run: &Run, reason: &str, message: &str) -> Value {
    json!({
        "startTime": run.start_time,
        "failed": run.failed,
        "ready": 0,
        "conditions": [condition("FailureTarget", reason, message), condition("Failed", reason, message)],
    })
}

/// Whether the Job's status says it has finished: `Complete` or `Failed` is True.
fn finished(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

fn condition(kind: &str, reason: &str, message: &str) -> Value {
    let now = now();
    json!({
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    })
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Starts the first container's command and args, with its literal env values; `None` when there
/// is no command or it cannot start.
fn spawn(job: &Value) -> Option<Child> {
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let strings = |field: &str| -> Vec<&str> {
        container[field].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
    };
    let words: Vec<&str> = strings("command").into_iter().chain(strings("args")).collect();
    let (program, args) = words.split_first()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for variable in container["env"].as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (variable["name"].as_str(), variable["value"].as_str()) {
            command.env(name, value);
        }
    }
    command.spawn().ok()
}
