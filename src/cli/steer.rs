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
use std::collections::HashSet;
use std::time::Duration;

/// How often the outcome is polled for.
const POLL: Duration = Duration::from_millis(250);
/// How long the controller's Event about a handled request is waited for, at least; without one
/// (the controller could not record it), the request is reported as handled.
const EVENT_GRACE: Duration = Duration::from_secs(10);

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
    let before: HashSet<(String, String)> =
        answers(client, namespace, name, verb, &by).await?.into_iter().map(|a| a.seen).collect();
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
            // The controller records its Event only after the status that marks the request
            // handled, so the Event may come a moment later; an ignored request must not pass
            // for a handled one meanwhile.
            let last = deadline.max(tokio::time::Instant::now() + EVENT_GRACE);
            loop {
                if let Some(outcome) = outcome(client, namespace, name, verb, &by, &before).await? {
                    return Ok(outcome);
                }
                if tokio::time::Instant::now() >= last {
                    return Ok(Outcome { message: format!("{verb} handled") });
                }
                tokio::time::sleep(POLL).await;
            }
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

/// The controller's Events answering requests of `verb` by `by`, `<verb> requested by <who>: <what
/// came of it>`: each with its note, its time, and its UID and resourceVersion, which tell an
/// answer recorded after a given moment (a new Event, or a repeat folded into an earlier one's
/// series) from one that was there before.
async fn answers(
    client: &Client,
    namespace: &str,
    name: &str,
    verb: &'static str,
    by: &str,
) -> Result<Vec<Answer>, SteerError> {
    let prefix = format!("{verb} requested by {by}: ");
    Ok(rollout_events(client, namespace, name)
        .await?
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("UserRequest"))
        .filter_map(|e| {
            let what = e.note.as_deref()?.strip_prefix(&prefix)?.to_string();
            let at =
                e.event_time.as_ref().map(|t| t.0).or(e.metadata.creation_timestamp.as_ref().map(|t| t.0));
            let seen = (e.metadata.uid.clone()?, e.metadata.resource_version.clone()?);
            Some(Answer { note: e.note?, what, at, seen })
        })
        .collect())
}

struct Answer {
    note: String,
    /// The note past `<verb> requested by <who>: `.
    what: String,
    at: Option<k8s_openapi::jiff::Timestamp>,
    seen: (String, String),
}

/// What came of the request, from the newest answer not among those `before` it was sent, once the
/// controller has recorded it.
async fn outcome(
    client: &Client,
    namespace: &str,
    name: &str,
    verb: &'static str,
    by: &str,
    before: &HashSet<(String, String)>,
) -> Result<Option<Outcome>, SteerError> {
    let answers = answers(client, namespace, name, verb, by).await?;
    let newest = answers.into_iter().filter(|a| !before.contains(&a.seen)).max_by_key(|a| a.at);
    match newest {
        Some(answer) => match answer.what.strip_prefix("ignored: ") {
            Some(reason) => Err(SteerError::Ignored { verb, reason: reason.to_string() }),
            None => Ok(Some(Outcome { message: answer.note })),
        },
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::requests::requests;
    use bellwether_testkit::apiserver::TestApiServer;
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    const USER: &str = "alice";

    async fn answer(client: &Client, rollout: &Rollout, note: &str) {
        let reporter = Reporter { controller: "bellwether".into(), instance: None };
        let event = Event {
            type_: EventType::Normal,
            reason: "UserRequest".into(),
            note: Some(note.into()),
            action: note.into(),
            secondary: None,
        };
        Recorder::new(client.clone(), reporter)
            .publish(&event, &rollout.object_ref(&()))
            .await
            .expect("recording an Event");
    }

    /// The controller marks the request handled, and records its Event a moment later.
    async fn handle_then_answer(api: &Api<Rollout>, client: &Client, note: &str) {
        let (rollout, request) = loop {
            let rollout = api.get("checkout").await.expect("the Rollout");
            if let Some(request) =
                requests(rollout.metadata.annotations.as_ref().unwrap_or(&Default::default())).0.pop()
            {
                break (rollout, request);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let handled = json!({"status": {"progress": {"handledRequests": [request.id]}}});
        api.patch_status("checkout", &PatchParams::default(), &Patch::Merge(&handled))
            .await
            .expect("handled");
        tokio::time::sleep(POLL * 3).await;
        answer(client, &rollout, note).await;
    }

    #[tokio::test]
    async fn the_outcome_is_the_answer_recorded_after_the_request_even_when_it_comes_late() {
        let server = TestApiServer::start().await;
        let client = server.client_as(USER);
        let api: Api<Rollout> = Api::namespaced(client.clone(), "shop");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/basic/rollout.yaml");
        let example: Rollout = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let rollout = api.create(&PostParams::default(), &example).await.expect("creating the Rollout");
        let paused = json!({"status": {"phase": "Paused", "stableRevision": "s1", "canaryRevision": "c1", "currentStepIndex": 1}});
        api.patch_status("checkout", &PatchParams::default(), &Patch::Merge(&paused))
            .await
            .expect("a canary");
        // An earlier promote by the same user, answered long ago: not the answer to this one.
        answer(&client, &rollout, &format!("promote requested by {USER}: promoted to step 2")).await;

        let ignored = format!("promote requested by {USER}: ignored: the canary moved on");
        let (outcome, ()) = tokio::join!(
            steer(&client, "shop", "checkout", UserAction::Promote, Duration::from_secs(30)),
            handle_then_answer(&api, &client, &ignored),
        );
        assert!(
            matches!(&outcome, Err(SteerError::Ignored { reason, .. }) if reason == "the canary moved on"),
            "{outcome:?}"
        );
    }
}
