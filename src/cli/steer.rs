//! `promote`, `abort`, `retry`, `pause` and `resume`: a person or a pipeline steers a rollout.
//!
//! Each command adds one request annotation to the Rollout (see `controller::requests`), naming
//! who asks (from a SelfSubjectReview, as `kubectl auth whoami` does), the canary revision it saw
//! and, for promote, the step. It never writes `spec`, so GitOps tools see no drift. It then waits
//! until the controller records the request as handled and reports what came of it, so that a
//! pipeline's step fails when its request was refused.
//!
//! A request that makes no sense in the rollout's current state is refused here, before anything
//! is written: promoting a rollout with no canary, retrying one that was not aborted.

use crate::api::Rollout;
use crate::cli::cluster::{CallError, failed, rollout_events};
use crate::controller::requests::annotation_patch;
use crate::engine::{UserAction, UserRequest, applicable};
use chrono::Utc;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

/// How often the outcome is polled for.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    #[error("rollout {name} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("{verb} makes no sense now: {reason}; nothing was changed")]
    Refused { verb: &'static str, reason: String },
    #[error("{verb} was ignored by the controller: {reason}")]
    Ignored { verb: &'static str, reason: String },
    #[error(
        "the controller has not handled the {verb} request within {waited:?}; it stays on the Rollout and will be handled when the controller runs"
    )]
    NotHandled { verb: &'static str, waited: Duration },
    #[error(transparent)]
    Call(#[from] CallError),
}

/// What came of a handled request: the controller's own words, from its Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub message: String,
}

/// Sends `action` to the Rollout `name` and waits up to `wait` for the controller to handle it.
pub async fn steer(
    client: &Client,
    namespace: &str,
    name: &str,
    action: UserAction,
    wait: Duration,
) -> Result<Outcome, SteerError> {
    let verb = action.verb();
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), namespace);
    let rollout = rollouts
        .get_opt(name)
        .await
        .map_err(failed(format!("reading Rollout {namespace}/{name}")))?
        .ok_or_else(|| SteerError::NotFound { name: name.into(), namespace: namespace.into() })?;
    let status = rollout.status.clone().unwrap_or_default();
    applicable(action, &status).map_err(|reason| SteerError::Refused { verb, reason })?;

    let by = whoami(client).await;
    let request = UserRequest {
        id: format!("{}-{:04x}", Utc::now().timestamp_millis(), rand::random::<u16>()),
        action,
        by: by.clone(),
        revision: status.canary_revision.clone(),
        step: matches!(action, UserAction::Promote).then_some(status.current_step_index).flatten(),
        alert: None,
    };
    let patch = annotation_patch(&request);
    rollouts
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(failed(format!("sending {verb} to Rollout {namespace}/{name}")))?;

    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let current =
            rollouts.get(name).await.map_err(failed(format!("reading Rollout {namespace}/{name}")))?;
        let handled =
            current.status.as_ref().is_some_and(|s| s.progress.handled_requests.contains(&request.id));
        if handled {
            return outcome(client, namespace, name, verb, &by).await;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(SteerError::NotHandled { verb, waited: wait });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The user the API server authenticates this client as, or `unknown` when it cannot say.
async fn whoami(client: &Client) -> String {
    let review: SelfSubjectReview = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
    }))
    .expect("a valid SelfSubjectReview");
    Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .ok()
        .and_then(|review| review.status?.user_info?.username)
        .unwrap_or_else(|| "unknown".into())
}

/// The controller's Event about the request: `<verb> requested by <who>: <what came of it>`.
async fn outcome(
    client: &Client,
    namespace: &str,
    name: &str,
    verb: &'static str,
    by: &str,
) -> Result<Outcome, SteerError> {
    let prefix = format!("{verb} requested by {by}: ");
    let newest = rollout_events(client, namespace, name)
        .await?
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("UserRequest"))
        .filter_map(|e| {
            let note = e.note.clone()?;
            let at =
                e.event_time.as_ref().map(|t| t.0).or(e.metadata.creation_timestamp.as_ref().map(|t| t.0));
            Some((at, note))
        })
        .filter(|(_, note)| note.starts_with(&prefix))
        .max_by_key(|(at, _)| *at);
    match newest {
        Some((_, note)) => match note[prefix.len()..].strip_prefix("ignored: ") {
            Some(reason) => Err(SteerError::Ignored { verb, reason: reason.to_string() }),
            None => Ok(Outcome { message: note }),
        },
        None => Ok(Outcome { message: format!("{verb} handled") }),
    }
}
