//! Outgoing notifications: webhooks told what happened to a canary (a step completed, a pause, an
//! abort, a promotion, an inconclusive analysis, an alert-driven abort escalated to people).
//!
//! A reconcile pass hands each notice to [`Notifier::notify`], which only puts it on a bounded
//! queue: a pass never waits for a webhook, and a notification that cannot be sent never holds up
//! a rollout. A background worker ([`Queue::run`]) resolves the targets of each notice (the
//! namespace's from the watch cache of their ConfigMaps), reads their URLs from Secrets, and
//! delivers to a few at once, with retries ([`RetryPolicy`]).
//! Deliveries run side by side, so a receiver that needs the order uses the `time` of the body.

pub mod body;
pub mod delivery;
pub mod targets;

pub use body::{JSON_VERSION, Notice, json_body, slack_body};
pub use delivery::{Delivery, DeliveryError, RetryPolicy};

use crate::api::{NotificationFormat, NotificationTarget};
use crate::controller::secrets::{ReadableSecrets, SecretReader};
use crate::server::Metrics;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::runtime::reflector::Store;
use std::sync::Arc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc};

/// Notices waiting for the worker. Beyond this many, new notices are dropped (and counted): it
/// takes a webhook outage and a burst of rollouts at once.
pub const QUEUE_CAPACITY: usize = 256;
/// Deliveries in flight at once, across every target.
pub const CONCURRENT_DELIVERIES: usize = 8;

/// One notice and the Rollout's own targets.
struct Job {
    notice: Notice,
    targets: Vec<NotificationTarget>,
}

/// Hands notices to the worker. Cheap to clone; every clone feeds the same queue.
#[derive(Clone, Debug)]
pub struct Notifier {
    jobs: mpsc::Sender<Job>,
    metrics: Metrics,
}

/// The worker's end of the queue.
pub struct Queue {
    jobs: mpsc::Receiver<Job>,
    metrics: Metrics,
}

impl Notifier {
    /// A notifier whose worker runs in the background until every clone is dropped.
    /// Starts delivering in the background; webhook URLs are read from the `readable` Secrets, and
    /// the namespaces' targets looked up in `config_maps`.
    pub fn start(
        client: Client,
        metrics: Metrics,
        policy: RetryPolicy,
        readable: ReadableSecrets,
        config_maps: Store<ConfigMap>,
    ) -> Self {
        let (notifier, queue) = Self::queue(QUEUE_CAPACITY, metrics);
        tokio::spawn(queue.run(client, policy, readable, config_maps));
        notifier
    }

    /// A notifier and the queue it fills, holding at most `capacity` notices (at least one).
    pub fn queue(capacity: usize, metrics: Metrics) -> (Self, Queue) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { jobs: sender, metrics: metrics.clone() }, Queue { jobs: receiver, metrics })
    }

    /// Queues `notice` for the namespace's targets and `targets` (the Rollout's own). Never
    /// waits: when the queue is full the notice is dropped, counted and logged.
    pub fn notify(&self, notice: Notice, targets: Vec<NotificationTarget>) {
        if let Err(error) = self.jobs.try_send(Job { notice, targets }) {
            let (why, job) = match error {
                TrySendError::Full(job) => ("the queue is full", job),
                TrySendError::Closed(job) => ("the notifier has stopped", job),
            };
            let notice = &job.notice;
            self.metrics.notification(notice.event.as_str(), "dropped");
            tracing::warn!(
                rollout = %notice.rollout,
                namespace = %notice.namespace,
                event = notice.event.as_str(),
                "notification dropped: {why}"
            );
        }
    }
}

impl Queue {
    /// Delivers queued notices until every [`Notifier`] is dropped.
    pub async fn run(
        mut self,
        client: Client,
        policy: RetryPolicy,
        readable: ReadableSecrets,
        config_maps: Store<ConfigMap>,
    ) {
        let http = reqwest::Client::builder()
            .user_agent(concat!("bellwether/", env!("CARGO_PKG_VERSION")))
            .build()
            .inspect_err(|error| tracing::error!(%error, "cannot build an HTTP client; notifications fail"))
            .ok();
        let permits = Arc::new(Semaphore::new(CONCURRENT_DELIVERIES));
        while let Some(job) = self.jobs.recv().await {
            let event = job.notice.event.as_str();
            let Some(http) = &http else {
                self.metrics.notification(event, "failed");
                continue;
            };
            for delivery in self.deliveries(&client, &readable, &config_maps, job).await {
                // Waiting for a permit here holds the next notices in the queue, not the passes.
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let (http, metrics) = (http.clone(), self.metrics.clone());
                tokio::spawn(async move {
                    // The outcome is counted and logged by `send`.
                    let _ = delivery.send(&http, &policy, &metrics).await;
                    drop(permit);
                });
            }
        }
    }

    /// The deliveries of `job`: one per target that wants its event and whose URL can be read.
    /// A target that cannot be read counts as failed, and does not keep the others from being sent.
    async fn deliveries(
        &self,
        client: &Client,
        readable: &ReadableSecrets,
        config_maps: &Store<ConfigMap>,
        job: Job,
    ) -> Vec<Delivery> {
        let Job { notice, targets: own } = job;
        let (namespace, event) = (notice.namespace.as_str(), notice.event);
        let mut targets = targets::namespace_targets(config_maps, namespace).unwrap_or_else(|error| {
            tracing::warn!(%error, event = event.as_str(), "cannot read the namespace's notification targets");
            self.metrics.notification(event.as_str(), "failed");
            Vec::new()
        });
        targets.extend(own);
        let mut secrets = SecretReader::new(client, namespace, readable);
        let mut deliveries = Vec::new();
        for target in targets.into_iter().filter(|target| target.wants(event)) {
            let url = match secrets.read(&target.url_secret_ref).await {
                Ok(url) => url,
                Err(error) => {
                    tracing::warn!(target_name = %target.name, %error, event = event.as_str(), "cannot read a notification target's URL");
                    self.metrics.notification(event.as_str(), "failed");
                    continue;
                }
            };
            let body = match target.format {
                NotificationFormat::Json => json_body(&notice),
                NotificationFormat::Slack => slack_body(&notice),
            };
            deliveries.push(Delivery {
                event,
                target: target.name,
                url,
                body: body.to_string().into_bytes(),
            });
        }
        deliveries
    }
}
