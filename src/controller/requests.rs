//! How user requests (promote, abort, ...) travel from a person or a pipeline to the engine: one
//! annotation per request on the Rollout, `requests.bellwether.dev/<id>`, whose value is the request
//! as JSON.
//!
//! - Metadata, not spec: a request causes no GitOps drift, and needs only `patch` on Rollouts.
//! - One key per request: two requests sent at once never overwrite each other, as they would in
//!   one shared annotation.
//! - Idempotent: the engine records each handled ID in status and acts on an ID once, so a request
//!   sent twice, or seen again after a restart, acts once.
//! - The controller removes a request's annotation once status records it handled, each removal
//!   guarded by a `test` of the value, so the annotations do not pile up.

use crate::api::FiringAlert;
use crate::engine::{UserAction, UserRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The prefix of every request annotation's key.
pub const REQUEST_PREFIX: &str = "requests.bellwether.dev/";

/// A request as its annotation holds it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestBody {
    /// `promote`, `promote-full`, `abort`, `retry`, `pause` or `resume`.
    pub action: String,
    /// Who asked.
    pub by: String,
    /// The canary revision the requester saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// For promote: the step index the requester saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i32>,
    /// For an abort that a firing alert asked for: the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<FiringAlert>,
}

/// A request annotation that cannot be read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub key: String,
    pub reason: String,
}

fn action_name(action: UserAction) -> &'static str {
    match action {
        UserAction::Promote => "promote",
        UserAction::PromoteFull => "promote-full",
        UserAction::Abort => "abort",
        UserAction::Retry => "retry",
        UserAction::Pause => "pause",
        UserAction::Resume => "resume",
    }
}

fn parse_action(name: &str) -> Option<UserAction> {
    UserAction::ALL.into_iter().find(|action| action_name(*action) == name)
}

/// The annotation (key and value) that carries `request`.
pub fn annotation(request: &UserRequest) -> (String, String) {
    let body = RequestBody {
        action: action_name(request.action).into(),
        by: request.by.clone(),
        revision: request.revision.clone(),
        step: request.step,
        alert: request.alert.clone(),
    };
    let value = serde_json::to_string(&body).expect("a request serializes");
    (format!("{REQUEST_PREFIX}{}", request.id), value)
}

/// The merge patch that sends `request`: it adds the request's annotation and nothing else.
pub fn annotation_patch(request: &UserRequest) -> Value {
    let (key, value) = annotation(request);
    json!({"metadata": {"annotations": {key: value}}})
}

/// The requests among a Rollout's annotations, oldest ID first, and those that cannot be read.
pub fn requests(annotations: &BTreeMap<String, String>) -> (Vec<UserRequest>, Vec<Malformed>) {
    let mut found = Vec::new();
    let mut malformed = Vec::new();
    for (key, value) in annotations {
        let Some(id) = key.strip_prefix(REQUEST_PREFIX) else { continue };
        let parsed = serde_json::from_str::<RequestBody>(value).map_err(|e| e.to_string()).and_then(|body| {
            let action =
                parse_action(&body.action).ok_or_else(|| format!("unknown action {:?}", body.action))?;
            Ok(UserRequest {
                id: id.to_string(),
                action,
                by: body.by,
                revision: body.revision,
                step: body.step,
                alert: body.alert,
            })
        });
        match parsed {
            Ok(request) if !id.is_empty() => found.push(request),
            Ok(_) => malformed.push(Malformed { key: key.clone(), reason: "the request has no ID".into() }),
            Err(reason) => malformed.push(Malformed { key: key.clone(), reason }),
        }
    }
    (found, malformed)
}

/// The JSON patch that removes the annotations with these keys, each guarded by a `test` of the
/// value it had when read, so that a request rewritten since is left for the next pass; `None`
/// when there is nothing to remove.
pub fn removal_patch(annotations: &BTreeMap<String, String>, keys: &[String]) -> Option<Value> {
    let ops: Vec<Value> = keys
        .iter()
        .filter_map(|key| annotations.get(key).map(|value| (key, value)))
        .flat_map(|(key, value)| {
            let path = format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"));
            [json!({"op": "test", "path": path, "value": value}), json!({"op": "remove", "path": path})]
        })
        .collect();
    (!ops.is_empty()).then_some(Value::Array(ops))
}
