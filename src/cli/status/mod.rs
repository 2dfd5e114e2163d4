//! `kubectl bellwether status NAME`: waits until a rollout has finished, for CI pipelines, and says
//! how it finished with its exit code ([`exit`]).
//!
//! A rollout has finished when the controller has seen its latest spec (`observedGeneration`) and
//! it is Healthy (0), Degraded (1) or paused until a person acts (4, or 0 with
//! `--success-on-pause`). A pause that ends by itself (a timed pause step) is not finished. Waiting
//! past `--timeout` exits 3; a usage error exits 2, as clap does.
//!
//! The rollout is read once and then watched ([`follow`]), never polled. Failures that may pass
//! (no connection, 5xx, 429, a dropped watch) are retried with backoff until `--timeout`, and said
//! on standard error; when `--timeout` passes while the API server is still failing, or on a
//! failure that will not pass (a refusal, no such rollout, no CRDs), the command exits 5. So the
//! cluster is not asked anything before the first read, which is retried like any other.
//!
//! With `--watch`, a line is written each time something a person acts on changes ([`Progress`]):
//! each with its time in RFC 3339 UTC, so that a pipeline's log reads the same whenever it is read.

mod follow;
mod progress;

pub use progress::Progress;

use crate::api::{PauseReason, Rollout, RolloutPhase};
use crate::cli::cluster::{Cluster, ConnectError};
use crate::cli::kube_error::is_unreachable;
use chrono::{SecondsFormat, Utc};
use follow::{Follow, FollowError, Update};
use kube::api::Api;
use std::io::Write;
use std::time::Duration;

/// The exit codes of `status`.
pub mod exit {
    pub const HEALTHY: u8 = 0;
    pub const DEGRADED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const TIMED_OUT: u8 = 3;
    pub const PAUSED: u8 = 4;
    /// The Rollout could not be read: no cluster, no such rollout, a refusal, or an API server
    /// still failing when `--timeout` passed.
    pub const COULD_NOT_READ: u8 = 5;
}

/// How a wait ended, and the exit code each ending has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Healthy: promoted, or nothing to do. Exit 0.
    Healthy(String),
    /// Degraded: aborted or invalid. Exit 1.
    Degraded(String),
    /// Waiting for a person. Exit 4.
    Paused(String),
    /// Still going at the timeout. Exit 3.
    TimedOut(String),
}

impl Ending {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Healthy(_) => exit::HEALTHY,
            Self::Degraded(_) => exit::DEGRADED,
            Self::TimedOut(_) => exit::TIMED_OUT,
            Self::Paused(_) => exit::PAUSED,
        }
    }

    /// The one line that explains the exit.
    pub fn line(&self) -> String {
        match self {
            Self::Healthy(m) => format!("Healthy: {m}"),
            Self::Degraded(m) => format!("Degraded: {m}"),
            Self::Paused(m) => format!("Paused, waiting for a person: {m}"),
            Self::TimedOut(m) => format!("timed out: {m}"),
        }
    }
}

/// Why the rollout could not be read; every one exits [`exit::COULD_NOT_READ`].
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("rollout {name} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("rollout {name} was deleted from namespace {namespace} while waiting for it")]
    Deleted { name: String, namespace: String },
    /// The cluster does not serve Rollouts at all.
    #[error(transparent)]
    Cluster(ConnectError),
    /// A failure that will not pass by waiting, such as a refusal.
    #[error("{0}")]
    Refused(String),
    /// Failures that might have passed, until `--timeout`.
    #[error("{last} (retried for {lasted}, until --timeout passed)")]
    GaveUp { last: String, lasted: String },
    #[error("no answer from the Kubernetes API at {0} before --timeout passed")]
    NoAnswer(String),
}

/// How `rollout` has finished, or `None` while it has not. `success_on_pause` counts a pause for a
/// person as finished successfully.
pub fn ending(rollout: &Rollout, success_on_pause: bool) -> Option<Ending> {
    let status = rollout.status.as_ref()?;
    if status.observed_generation < rollout.metadata.generation {
        return None;
    }
    let message = status.message.clone().unwrap_or_default();
    // An invalid spec stops the rollout where it is, whatever phase it was in: the engine leaves
    // the phase alone and says so in the InvalidSpec condition.
    if status.conditions.iter().any(|c| c.type_ == "InvalidSpec" && c.status == "True") {
        return Some(Ending::Degraded(message));
    }
    // A canary held at zero replicas goes on by itself once an autoscaler scales the Rollout up:
    // nobody need act, and nothing was judged yet.
    let scaled_to_zero = !status.pause_conditions.is_empty()
        && status.pause_conditions.iter().all(|c| c.reason == PauseReason::ScaledToZero);
    // The engine reports a timed pause as Progressing: only a pause for a person is Paused.
    match status.phase? {
        RolloutPhase::Healthy => Some(Ending::Healthy(message)),
        RolloutPhase::Degraded => Some(Ending::Degraded(message)),
        RolloutPhase::Paused if scaled_to_zero => None,
        RolloutPhase::Paused if success_on_pause => Some(Ending::Healthy(message)),
        RolloutPhase::Paused => Some(Ending::Paused(message)),
        RolloutPhase::Progressing => None,
    }
}

/// What a wait is for.
#[derive(Clone, Copy, Debug, Default)]
pub struct WaitOptions {
    /// Count a pause for a person as finished successfully.
    pub success_on_pause: bool,
    /// Give up after this long; wait as long as it takes without it.
    pub timeout: Option<Duration>,
    /// Write a line for each change on the way.
    pub watch: bool,
}

/// The time now as the lines of `status` write it: RFC 3339 UTC, to the second.
fn timestamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long ago `since` was, as durations are written: `2m10s`.
fn elapsed(since: tokio::time::Instant) -> String {
    crate::api::format_duration(chrono::Duration::from_std(since.elapsed()).unwrap_or_default())
}

/// A failed request in words: naming the server when it could not be reached (as every command
/// of the plugin does), the Rollout otherwise.
fn explain(cluster: &Cluster, name: &str, error: &FollowError) -> String {
    if is_unreachable(&error.source) {
        format!("cannot reach the Kubernetes API at {}: {error}", cluster.server)
    } else {
        format!("reading Rollout {}/{name}: {error}", cluster.namespace)
    }
}

/// Waits until the rollout `name` of `cluster` finishes or `options.timeout` passes; with
/// `options.watch`, writes a line to `out` each time what the rollout says changes. Failures of the
/// API server that may pass are retried, and said on `notices` once each time they start and once
/// when they end.
pub async fn wait(
    cluster: &Cluster,
    name: &str,
    options: WaitOptions,
    out: &mut impl Write,
    notices: &mut impl Write,
) -> Result<Ending, StatusError> {
    let namespace = cluster.namespace.as_str();
    let mut follow = Follow::new(Api::<Rollout>::namespaced(cluster.client.clone(), namespace), name);
    let deadline = options.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut last: Option<Rollout> = None;
    let mut printed: Option<Progress> = None;
    // Since when, and why, the API server has been failing.
    let mut outage: Option<(tokio::time::Instant, String)> = None;
    loop {
        let next = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, follow.next()).await.ok(),
            None => Some(follow.next().await),
        };
        let update = match next {
            None => {
                return match (outage, &last) {
                    (Some((since, last)), _) => Err(StatusError::GaveUp { last, lasted: elapsed(since) }),
                    (None, Some(rollout)) => Ok(Ending::TimedOut(Progress::of(rollout).describe())),
                    (None, None) => Err(StatusError::NoAnswer(cluster.server.clone())),
                };
            }
            Some(Err(error)) if error.transient => {
                let explained = explain(cluster, name, &error);
                if outage.is_none() {
                    // Said once per outage: a pipeline's log is no place for a retry a second.
                    let _ = writeln!(notices, "{} {explained}; retrying", timestamp());
                }
                outage.get_or_insert((tokio::time::Instant::now(), String::new())).1 = explained;
                continue;
            }
            Some(Err(error)) => return Err(StatusError::Refused(explain(cluster, name, &error))),
            Some(Ok(update)) => update,
        };
        if let Some((since, _)) = outage.take() {
            let _ = writeln!(
                notices,
                "{} reading Rollout {namespace}/{name} again, after {} of failures",
                timestamp(),
                elapsed(since)
            );
        }
        let rollout = match update {
            Update::Object(rollout) => rollout,
            Update::Missing if last.is_some() => {
                return Err(StatusError::Deleted { name: name.into(), namespace: namespace.into() });
            }
            // A server without Bellwether's CRDs answers 404 too: told apart, it is no missing rollout.
            Update::Missing => {
                return Err(match cluster.check().await {
                    Err(error @ ConnectError::NoCrds { .. }) => StatusError::Cluster(error),
                    _ => StatusError::NotFound { name: name.into(), namespace: namespace.into() },
                });
            }
        };
        if let Some(ending) = ending(&rollout, options.success_on_pause) {
            return Ok(ending);
        }
        let progress = Progress::of(&rollout);
        if options.watch && printed.as_ref() != Some(&progress) {
            // A pipeline's log is the audience; a failed write there is no reason to stop waiting.
            let _ = writeln!(out, "{} {}", timestamp(), progress.describe());
            printed = Some(progress);
        }
        last = Some(rollout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(status: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "generation": 2},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
                "strategy": {"canary": {"stableService": "s", "canaryService": "c",
                    "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "r"}]}}, "steps": []}},
            },
            "status": status,
        }))
        .expect("a Rollout")
    }

    #[test]
    fn an_invalid_spec_is_degraded_whatever_the_phase_says() {
        for phase in ["Healthy", "Progressing", "Paused"] {
            let invalid = rollout(json!({
                "phase": phase, "observedGeneration": 2, "message": "invalid spec: template x not found",
                "conditions": [{"type": "InvalidSpec", "status": "True", "reason": "InvalidSpec",
                    "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            }));
            let ending = ending(&invalid, true);
            assert_eq!(
                ending,
                Some(Ending::Degraded("invalid spec: template x not found".into())),
                "{phase}"
            );
        }
        let stale = rollout(json!({"phase": "Healthy", "observedGeneration": 1}));
        assert_eq!(ending(&stale, false), None, "a generation not acted on yet");
    }

    #[test]
    fn a_canary_held_at_zero_replicas_is_not_waiting_for_a_person() {
        let pause = |reasons: &[&str]| {
            let conditions: Vec<_> =
                reasons.iter().map(|r| json!({"reason": r, "startedAt": "2026-01-01T00:00:00Z"})).collect();
            rollout(
                json!({"phase": "Paused", "observedGeneration": 2, "message": "m", "pauseConditions": conditions}),
            )
        };
        assert_eq!(ending(&pause(&["ScaledToZero"]), false), None);
        assert_eq!(ending(&pause(&["ScaledToZero"]), true), None, "nothing judged yet to succeed on");
        assert_eq!(ending(&pause(&["ScaledToZero", "UserPause"]), false), Some(Ending::Paused("m".into())));
        assert_eq!(ending(&pause(&["UserPause"]), false), Some(Ending::Paused("m".into())));
    }
}
