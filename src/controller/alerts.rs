//! Firing alerts become abort requests on the Rollouts they match.
//!
//! An alert matches a Rollout when its labels `rollout` and `namespace` name it, or when it carries
//! every label of one of the Rollout's `abortOnAlerts` matchers and its `namespace` label names the
//! Rollout's namespace (any namespace, or none, for a matcher with `anyNamespace`). A matcher with
//! no labels matches nothing. Only a canary that is Progressing or Paused, and not aborted already,
//! is sent a request; resolved alerts do nothing.
//!
//! The request is the same annotation a person's `kubectl bellwether abort` writes, with the alert
//! attached, so that the engine applies it with the same rules (and its hourly limit of
//! alert-driven aborts). Its ID is the alert's fingerprint with the canary's revision and attempt:
//! Alertmanager sending the alert again acts once, while the same alert firing on a later canary
//! is a new request. Each write is guarded by the resourceVersion that was judged, so a rollout
//! that finished its canary in between is never touched.

use super::Config;
use super::requests;
use super::secrets::{ReadableSecrets, SecretReader};
use crate::api::{FiringAlert, Rollout, RolloutPhase, SecretKeyRef};
use crate::engine::{UserAction, UserRequest};
use crate::server::Metrics;
use crate::server::alerts::{Alert, AlertSink, Credentials, Webhook};
use futures::FutureExt;
use futures::future::BoxFuture;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tokio::sync::watch;

/// Who alert-driven requests are from, in the abort and its Event.
pub const REQUESTER: &str = "alertmanager";

/// How many times a request is sent again after the Rollout changed under it.
const CONFLICT_RETRIES: usize = 5;

/// The [`AlertSink`] that writes abort requests on Rollouts.
pub struct AlertAborts {
    client: Client,
    config: Config,
    metrics: Metrics,
}

impl AlertAborts {
    pub fn new(client: Client, config: Config, metrics: Metrics) -> Self {
        Self { client, config, metrics }
    }

    async fn act(&self, webhook: Webhook) -> Result<Value, String> {
        let firing: Vec<&Alert> = webhook.alerts.iter().filter(|alert| alert.is_firing()).collect();
        if firing.is_empty() {
            return Ok(json!({"firing": 0, "aborting": []}));
        }
        let api: Api<Rollout> = self.config.api(&self.client);
        let listed = api
            .list(&ListParams::default().labels(&self.config.selector()))
            .await
            .map_err(|e| format!("cannot list Rollouts: {e}"))?;
        let mut aborting = Vec::new();
        let mut failures = Vec::new();
        for rollout in listed.items {
            let Some(alert) = first_match(&firing, &rollout) else { continue };
            let name = format!("{}/{}", rollout.namespace().unwrap_or_default(), rollout.name_any());
            match self.request_abort(rollout, alert).await {
                Ok(true) => aborting.push(name),
                Ok(false) => {}
                Err(error) => failures.push(format!("{name}: {error}")),
            }
        }
        if !failures.is_empty() {
            return Err(format!("cannot send the abort to {}", failures.join("; ")));
        }
        Ok(json!({"firing": firing.len(), "aborting": aborting}))
    }

    /// Writes the abort request for `alert` on `rollout`, reading the Rollout again after a
    /// conflict; `Ok(false)` when the Rollout no longer has a canary to abort.
    async fn request_abort(&self, mut rollout: Rollout, alert: &Alert) -> Result<bool, String> {
        let namespace = rollout.namespace().unwrap_or_default();
        let name = rollout.name_any();
        let api: Api<Rollout> = Api::namespaced(self.client.clone(), &namespace);
        for _ in 0..=CONFLICT_RETRIES {
            let Some(request) = abort_request(alert, &rollout) else { return Ok(false) };
            let mut patch = requests::annotation_patch(&request);
            patch["metadata"]["resourceVersion"] = json!(rollout.resource_version());
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    tracing::info!(
                        rollout = %format!("{namespace}/{name}"),
                        alert = %alert.name(),
                        canary = ?request.revision,
                        "firing alert: abort requested"
                    );
                    self.metrics.alert_abort_requested(&namespace, &name);
                    return Ok(true);
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    rollout = match api.get_opt(&name).await.map_err(|e| e.to_string())? {
                        Some(fresh) => fresh,
                        None => return Ok(false),
                    };
                }
                Err(kube::Error::Api(status)) if status.code == 404 => return Ok(false),
                Err(error) => return Err(error.to_string()),
            }
        }
        Err(format!("the Rollout kept changing; gave up after {} conflicts", CONFLICT_RETRIES + 1))
    }
}

impl AlertSink for AlertAborts {
    fn deliver(&self, webhook: Webhook) -> BoxFuture<'_, Result<Value, String>> {
        self.act(webhook).boxed()
    }
}

/// Whether the alert with `labels` is about `rollout`.
pub fn matches(labels: &BTreeMap<String, String>, rollout: &Rollout) -> bool {
    let same_namespace =
        labels.get("namespace").is_some_and(|ns| rollout.metadata.namespace.as_ref() == Some(ns));
    let named = same_namespace && labels.get("rollout").is_some_and(|n| *n == rollout.name_any());
    named
        || rollout.spec.strategy.canary.abort_on_alerts.iter().any(|matcher| {
            // An empty matcher would match every alert. The API server refuses one, but a Rollout
            // stored before that rule (or without CEL) must not abort on any alert at all.
            !matcher.match_labels.is_empty()
                && (matcher.any_namespace || same_namespace)
                && matcher.match_labels.iter().all(|(label, value)| labels.get(label) == Some(value))
        })
}

/// The earliest firing alert (then the lowest fingerprint) that matches `rollout`: one request per
/// Rollout per webhook, since the first abort makes the others moot.
pub fn first_match<'a>(firing: &[&'a Alert], rollout: &Rollout) -> Option<&'a Alert> {
    firing
        .iter()
        .filter(|alert| matches(&alert.labels.0, rollout))
        .min_by(|a, b| (a.starts_at, &a.fingerprint).cmp(&(b.starts_at, &b.fingerprint)))
        .copied()
}

/// The abort request `alert` makes of `rollout`, if its canary is Progressing or Paused and not
/// aborted yet.
pub fn abort_request(alert: &Alert, rollout: &Rollout) -> Option<UserRequest> {
    let status = rollout.status.as_ref()?;
    let in_flight = matches!(status.phase, Some(RolloutPhase::Progressing | RolloutPhase::Paused));
    let canary = status.canary_revision.clone().filter(|_| in_flight && status.abort.is_none())?;
    // At most 32 hex digits of fingerprint (the payload checks it), so the key's name stays within
    // the 63 characters Kubernetes allows.
    let id = format!("alert-{}-{canary}-{}", alert.fingerprint, status.progress.attempt);
    Some(UserRequest {
        id,
        action: UserAction::Abort,
        by: REQUESTER.into(),
        revision: Some(canary),
        step: None,
        alert: Some(FiringAlert {
            name: alert.name().to_string(),
            labels: alert.labels.0.clone(),
            generator_url: alert.generator_url.clone(),
            starts_at: Some(alert.starts_at),
        }),
    })
}

/// How often the receiver's credentials are read again, so that a rotated Secret takes effect.
const CREDENTIALS_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// The credentials in the Secret `namespace/name`: its `token` key for a bearer token, or its
/// `username` and `password` keys for basic auth.
pub async fn load_credentials(client: &Client, namespace: &str, name: &str) -> Result<Credentials, String> {
    let key = |key: &str| SecretKeyRef { name: name.into(), key: key.into() };
    // The receiver's own Secret, named by its flag, is the one it may read.
    let readable = ReadableSecrets::new([(namespace.to_string(), name.to_string())]);
    let mut secrets = SecretReader::new(client, namespace, &readable);
    let token_error = match secrets.read(&key("token")).await {
        Ok(token) if !token.is_empty() => return Ok(Credentials::Bearer(token)),
        Ok(_) => "its key \"token\" is empty".to_string(),
        Err(error) => error.to_string(),
    };
    let username = secrets.read(&key("username")).await;
    let password = secrets.read(&key("password")).await;
    match (username, password) {
        (Ok(username), Ok(password)) if !username.is_empty() && !password.is_empty() => {
            Ok(Credentials::Basic { username, password })
        }
        _ => Err(format!(
            "the alert receiver's Secret {namespace}/{name} needs a non-empty \"token\" key, or \
             \"username\" and \"password\" keys ({token_error})"
        )),
    }
}

/// Reads the credentials again every little while and publishes them when they changed; a
/// failed read keeps the last good ones.
pub async fn refresh_credentials(
    client: Client,
    namespace: String,
    name: String,
    current: watch::Sender<Credentials>,
) {
    loop {
        tokio::time::sleep(CREDENTIALS_REFRESH).await;
        match load_credentials(&client, &namespace, &name).await {
            Ok(credentials) => {
                current.send_if_modified(|old| {
                    let changed = *old != credentials;
                    if changed {
                        tracing::info!(secret = %format!("{namespace}/{name}"), "alert receiver credentials changed");
                        *old = credentials;
                    }
                    changed
                });
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the alert receiver's credentials again; keeping the last ones")
            }
        }
    }
}
