//! Sending one body to one webhook, again after failures that may pass (no connection, no answer
//! in time, 5xx, 429) with capped exponential backoff, and at once never again after one that will
//! not (any other 4xx).
//!
//! A webhook's URL is a credential (a Slack webhook URL is all it takes to post), so it is never
//! logged nor put in an error: targets are named by their `name`.

use crate::api::NotificationEvent;
use crate::server::Metrics;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use std::time::Duration;

/// How hard a delivery tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least one is made.
    pub attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub base_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// How long one attempt may take, connecting included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// About a minute of trying in all, enough to ride out a webhook's restart.
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): the doubled delay, capped, then drawn
    /// between its half and itself, so that the notifications that failed together (a webhook
    /// that was down) do not all come back at once.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let ceiling = doubled.min(self.max_delay);
        ceiling.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// Why an attempt failed. Never holds the URL.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the webhook answered {0}")]
    Status(StatusCode),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot send: {0}")]
    Transport(String),
}

impl DeliveryError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status(status) => status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout(_) | Self::Transport(_) => true,
        }
    }
}

/// One body on its way to one target. Not `Debug`, so that the URL cannot end up in a log.
#[derive(Clone)]
pub struct Delivery {
    pub event: NotificationEvent,
    /// The target's name, for logs.
    pub target: String,
    pub url: String,
    /// JSON, serialized.
    pub body: Vec<u8>,
}

impl Delivery {
    /// Sends the body until it is accepted or the policy gives up, counting each retry and the
    /// result (`delivered` or `failed`) in `metrics`.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        policy: &RetryPolicy,
        metrics: &Metrics,
    ) -> Result<(), DeliveryError> {
        let event = self.event.as_str();
        let attempts = policy.attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.attempt(http, policy.timeout).await {
                Ok(()) => {
                    metrics.notification(event, "delivered");
                    tracing::debug!(target_name = %self.target, event, attempt, "notification delivered");
                    return Ok(());
                }
                Err(error) if error.is_transient() && attempt < attempts => {
                    let wait = policy.backoff(attempt);
                    tracing::debug!(target_name = %self.target, event, attempt, %error, ?wait, "notification failed; trying again");
                    metrics.notification_retry(event);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => {
                    metrics.notification(event, "failed");
                    tracing::warn!(target_name = %self.target, event, attempt, %error, "notification not delivered");
                    return Err(error);
                }
            }
        }
    }

    async fn attempt(&self, http: &reqwest::Client, timeout: Duration) -> Result<(), DeliveryError> {
        let request = http.post(&self.url).header(CONTENT_TYPE, "application/json").body(self.body.clone());
        let response = tokio::time::timeout(timeout, request.send())
            .await
            .map_err(|_| DeliveryError::Timeout(timeout))?
            .map_err(|error| DeliveryError::Transport(causes(&error.without_url())))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(DeliveryError::Status(status)),
        }
    }
}

/// The error and its causes, in one line: reqwest's own message alone ("error sending request")
/// does not say what went wrong.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let chain: Vec<String> =
        std::iter::successors(Some(error), |e| e.source()).map(ToString::to_string).collect();
    chain.join(": ")
}
