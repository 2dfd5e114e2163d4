//! `kubectl bellwether status NAME`: waits until a rollout has finished, for CI pipelines, and says
//! how it finished with its exit code.
//!
//! A rollout has finished when the controller has seen its latest spec (`observedGeneration`) and
//! it is Healthy (0), Degraded (1) or paused until a person acts (4, or 0 with
//! `--success-on-pause`). A pause that ends by itself (a timed pause step) is not finished. Waiting
//! past `--timeout` exits 3; a usage error exits 2, as clap does.

use crate::api::{Rollout, RolloutPhase};
use kube::Client;
use kube::api::Api;
use std::io::Write;
use std::time::Duration;

/// How often the rollout is read while waiting.
const POLL: Duration = Duration::from_millis(500);

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
            Self::Healthy(_) => 0,
            Self::Degraded(_) => 1,
            Self::TimedOut(_) => 3,
            Self::Paused(_) => 4,
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

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("rollout {name} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("reading Rollout {namespace}/{name}: {}", crate::cli::kube_error::describe(source))]
    Kube {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// How `rollout` has finished, or `None` while it has not. `success_on_pause` counts a pause for a
/// person as finished successfully.
pub fn ending(rollout: &Rollout, success_on_pause: bool) -> Option<Ending> {
    let status = rollout.status.as_ref()?;
    if status.observed_generation < rollout.metadata.generation {
        return None;
    }
    let message = status.message.clone().unwrap_or_default();
    // The engine reports a timed pause as Progressing: only a pause for a person is Paused.
    match status.phase? {
        RolloutPhase::Healthy => Some(Ending::Healthy(message)),
        RolloutPhase::Degraded => Some(Ending::Degraded(message)),
        RolloutPhase::Paused if success_on_pause => Some(Ending::Healthy(message)),
        RolloutPhase::Paused => Some(Ending::Paused(message)),
        RolloutPhase::Progressing => None,
    }
}

/// One line for a rollout still on its way, for `--watch`.
fn progress_line(rollout: &Rollout) -> String {
    let status = rollout.status.clone().unwrap_or_default();
    let phase = status.phase.map_or("Pending".to_string(), |p| format!("{p:?}"));
    let step = status.step.map_or(String::new(), |s| format!(" step {s}"));
    format!("{phase}{step}, canary weight {}%: {}", status.weights.canary, status.message.unwrap_or_default())
}

/// Waits until the rollout finishes or `timeout` passes; with `watch`, writes a line to `out` each
/// time what the rollout says changes.
pub async fn wait(
    client: &Client,
    namespace: &str,
    name: &str,
    success_on_pause: bool,
    timeout: Option<Duration>,
    watch: bool,
    out: &mut impl Write,
) -> Result<Ending, StatusError> {
    let api: Api<Rollout> = Api::namespaced(client.clone(), namespace);
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut last = String::new();
    loop {
        let rollout = api
            .get_opt(name)
            .await
            .map_err(|e| StatusError::Kube {
                namespace: namespace.into(),
                name: name.into(),
                source: Box::new(e),
            })?
            .ok_or_else(|| StatusError::NotFound { name: name.into(), namespace: namespace.into() })?;
        if let Some(ending) = ending(&rollout, success_on_pause) {
            return Ok(ending);
        }
        let line = progress_line(&rollout);
        if watch && line != last {
            // A pipeline's log is the audience; a failed write there is no reason to stop waiting.
            let _ = writeln!(out, "{line}");
            last = line;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Ok(Ending::TimedOut(progress_line(&rollout)));
        }
        tokio::time::sleep(POLL).await;
    }
}
