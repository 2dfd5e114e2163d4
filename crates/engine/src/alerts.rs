//! Aborts that a firing alert asked for. They are user requests with the alert attached, and two
//! rules of their own: they are ignored quietly when there is nothing to abort (an alert is not a
//! person who expects an answer), and at most `maxAlertAbortsPerHour` of them act per Rollout per
//! hour. Beyond that limit an alert escalates instead, so that a noisy or stuck alert cannot hold
//! every release of a service back without a person deciding so.

use super::action::EventKind;
use super::observation::UserRequest;
use super::pass::Pass;
use super::requests::applicable;
use bellwether_api::FiringAlert;
use chrono::Duration;

/// The default of `maxAlertAbortsPerHour`.
pub const DEFAULT_MAX_ALERT_ABORTS_PER_HOUR: i32 = 3;

/// The window the limit counts over.
fn window() -> Duration {
    Duration::hours(1)
}

impl Pass<'_> {
    pub(super) fn handle_alert(&mut self, request: &UserRequest, alert: &FiringAlert) {
        let described = describe(alert);
        if let Err(why) = self.alert_applies(request) {
            self.event(EventKind::Normal, "AlertIgnored", format!("{described}: not acted on: {why}"));
            return;
        }
        let canary = self.status.canary_revision.clone().unwrap_or_default();
        let now = self.now;
        self.status.alert_aborts.retain(|at| now - *at < window());
        let limit = self
            .spec
            .strategy
            .canary
            .max_alert_aborts_per_hour
            .unwrap_or(DEFAULT_MAX_ALERT_ABORTS_PER_HOUR)
            .max(0);
        let recent = self.status.alert_aborts.len();
        if recent >= limit as usize {
            let message = format!(
                "{described}; it did not abort canary {canary}: {recent} alert-driven aborts in the last \
                 hour reached maxAlertAbortsPerHour ({limit}), so a person must decide \
                 (kubectl bellwether abort {})",
                self.name
            );
            let record = self.record_action("AlertAbortEscalated", &request.by, message.clone());
            self.recorded_event(EventKind::Warning, "AlertAbortEscalated", message, record);
            return;
        }
        self.status.alert_aborts.push(now);
        self.abort("AlertFiring", described, None, &request.by);
        if let Some(abort) = self.status.abort.as_mut() {
            abort.alert = Some(alert.clone());
        }
    }

    fn alert_applies(&self, request: &UserRequest) -> Result<(), String> {
        applicable(request.action, &self.status)?;
        let canary = self.status.canary_revision.as_deref().unwrap_or_default();
        match request.revision.as_deref() {
            Some(wanted) if wanted != canary => {
                Err(format!("it was sent for canary {wanted}, but the canary is now {canary}"))
            }
            _ => Ok(()),
        }
    }
}

/// The alert in one line: its name, its other labels and where it came from.
pub fn describe(alert: &FiringAlert) -> String {
    let labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(name, _)| *name != "alertname")
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    let mut text = format!("alert {} {{{}}} is firing", alert.name, labels.join(", "));
    if !alert.generator_url.is_empty() {
        text.push_str(&format!(" ({})", alert.generator_url));
    }
    text
}
