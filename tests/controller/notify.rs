//! Notifications: the two bodies, the namespace ConfigMap's targets, and delivery with retries
//! against a local webhook sink.

use crate::webhook_sink::{Answer, Sink};
use bellwether::api::{AbortStatus, FiringAlert, NotificationEvent, Rollout, RolloutPhase, RolloutStatus};
use bellwether::controller::notify::targets::parse_targets;
use bellwether::controller::notify::{
    Delivery, DeliveryError, JSON_VERSION, Notice, Notifier, RetryPolicy, json_body, slack_body,
};
use bellwether::engine::{Event, EventKind};
use bellwether::server::Metrics;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use std::time::Duration;

fn at() -> DateTime<Utc> {
    "2026-01-01T12:00:00Z".parse().unwrap()
}

fn rollout() -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:2"}]}},
            "strategy": {"canary": {
                "stableService": "web-stable",
                "canaryService": "web-canary",
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
                "steps": [{"setWeight": 10}],
            }},
        },
    }))
    .expect("a valid Rollout")
}

fn status(abort: Option<AbortStatus>) -> RolloutStatus {
    let mut status: RolloutStatus = serde_json::from_value(json!({})).unwrap();
    status.phase = Some(if abort.is_some() { RolloutPhase::Degraded } else { RolloutPhase::Progressing });
    status.step = Some("2/4".into());
    status.canary_revision = Some("6d5f7c9b8".into());
    status.stable_revision = Some("5b7d9f6c4".into());
    status.weights.canary = if abort.is_some() { 0 } else { 50 };
    status.weights.stable = 100 - status.weights.canary;
    status.abort = abort;
    status
}

fn event(reason: &str, message: &str) -> Event {
    Event { kind: EventKind::Normal, reason: reason.into(), message: message.into(), record: None }
}

fn alert_abort() -> AbortStatus {
    AbortStatus {
        reason: "AlertFiring".into(),
        message: "alert HighErrorRate is firing".into(),
        metric: None,
        value: None,
        at: at(),
        by: "bellwether".into(),
        alert: Some(FiringAlert {
            name: "HighErrorRate".into(),
            labels: [("severity".to_string(), "page".to_string())].into(),
            generator_url: "http://prometheus/graph?g0.expr=x".into(),
            starts_at: None,
        }),
    }
}

fn step_completed() -> Notice {
    Notice::of(&event("StepCompleted", "step 2/4 completed"), &rollout(), &status(None), at()).unwrap()
}

#[test]
fn only_the_notified_engine_events_make_notices() {
    let (rollout, status) = (rollout(), status(None));
    assert_eq!(step_completed().event, NotificationEvent::StepCompleted);
    let aborted = Notice::of(&event("RolloutAborted", "aborted"), &rollout, &status, at()).unwrap();
    assert_eq!((aborted.event, aborted.reason.as_str()), (NotificationEvent::Aborted, "RolloutAborted"));
    for reason in ["WeightChanged", "CanaryStarted", "AnalysisCompleted"] {
        assert_eq!(Notice::of(&event(reason, "x"), &rollout, &status, at()), None, "{reason}");
    }
}

#[test]
fn the_json_body_has_every_key_with_null_for_what_does_not_apply() {
    assert_eq!(
        json_body(&step_completed()),
        json!({
            "version": JSON_VERSION,
            "event": "StepCompleted",
            "reason": "StepCompleted",
            "message": "step 2/4 completed",
            "rollout": {"namespace": "shop", "name": "web"},
            "revisions": {"canary": "6d5f7c9b8", "stable": "5b7d9f6c4"},
            "phase": "Progressing",
            "step": "2/4",
            "weights": {"canary": 50, "stable": 50},
            "abort": null,
            "action": null,
            "time": "2026-01-01T12:00:00Z",
        })
    );
}

#[test]
fn the_json_body_of_an_alert_driven_abort_names_the_alert() {
    let notice = Notice::of(
        &event("RolloutAborted", "alert HighErrorRate is firing"),
        &rollout(),
        &status(Some(alert_abort())),
        at(),
    )
    .unwrap();
    let body = json_body(&notice);
    assert_eq!(body["event"], "Aborted");
    assert_eq!(body["phase"], "Degraded");
    assert_eq!(
        body["abort"],
        json!({
            "reason": "AlertFiring",
            "message": "alert HighErrorRate is firing",
            "by": "bellwether",
            "alert": {
                "name": "HighErrorRate",
                "labels": {"severity": "page"},
                "generatorURL": "http://prometheus/graph?g0.expr=x",
            },
        })
    );
}

#[test]
fn the_slack_body_is_a_headline_then_the_details() {
    let body = slack_body(&step_completed());
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "only `text`: {body}");
    let text = body["text"].as_str().expect("a text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "*shop/web*: step completed — step 2/4 completed");
    assert_eq!(lines[1], "Canary 6d5f7c9b8 (stable 5b7d9f6c4), 50% of traffic, step 2/4, Progressing");
    assert_eq!(lines[2], "At 2026-01-01T12:00:00Z");
    assert_eq!(lines.len(), 3);
}

#[test]
fn the_slack_body_of_an_abort_says_who_and_links_the_alert_with_markup_escaped() {
    let mut abort = alert_abort();
    abort.message = "error rate > 1% & rising".into();
    let notice =
        Notice::of(&event("RolloutAborted", "a <b> & c"), &rollout(), &status(Some(abort)), at()).unwrap();
    let text = slack_body(&notice)["text"].as_str().unwrap().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "*shop/web*: aborted — a &lt;b&gt; &amp; c");
    assert_eq!(lines[2], "Aborted by bellwether: AlertFiring — error rate &gt; 1% &amp; rising");
    assert_eq!(lines[3], "Alert <http://prometheus/graph?g0.expr=x|HighErrorRate>");
}

fn config_map(data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": "bellwether-notifications"}, "data": data})).unwrap()
}

#[test]
fn the_namespace_config_map_lists_targets_as_yaml() {
    let targets = parse_targets(&config_map(json!({"targets": "
- name: team-chat
  format: slack
  urlSecretRef: {name: hooks, key: slack}
  events: [Aborted, Promoted]
- name: audit
  urlSecretRef: {name: hooks, key: audit}
"})))
    .expect("the targets parse");
    assert_eq!(targets.len(), 2);
    assert!(targets[0].wants(NotificationEvent::Aborted) && !targets[0].wants(NotificationEvent::Paused));
    assert!(NotificationEvent::ALL.iter().all(|event| targets[1].wants(*event)));
    assert_eq!(parse_targets(&config_map(json!({"targets": ""}))).unwrap(), []);
}

#[test]
fn a_config_map_without_targets_or_with_a_bad_list_is_an_error() {
    let missing = parse_targets(&config_map(json!({"other": "x"}))).unwrap_err();
    assert!(missing.contains("no key \"targets\""), "{missing}");
    let unknown = parse_targets(&config_map(json!({"targets": "- name: x\n  url: http://x\n"}))).unwrap_err();
    assert!(unknown.contains("not a list of targets"), "{unknown}");
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter_below_it() {
    let policy = RetryPolicy {
        attempts: 10,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
    };
    for (attempt, ceiling) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (9, 30), (40, 30)] {
        let ceiling = Duration::from_secs(ceiling);
        for _ in 0..20 {
            let wait = policy.backoff(attempt);
            assert!(wait <= ceiling && wait >= ceiling / 2, "attempt {attempt}: {wait:?} for {ceiling:?}");
        }
    }
}

/// Fast retries; a generous timeout, except in the test of one.
fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        timeout: Duration::from_secs(30),
    }
}

fn delivery(sink: &Sink) -> Delivery {
    Delivery {
        event: NotificationEvent::Promoted,
        target: "test".into(),
        url: sink.url("/hook"),
        body: json_body(&step_completed()).to_string().into_bytes(),
    }
}

/// The value of one series in `metrics`, 0 when it has none.
fn sample(metrics: &Metrics, series: &str) -> f64 {
    let text = metrics.render();
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

fn result(metrics: &Metrics, result: &str) -> f64 {
    sample(metrics, &format!("bellwether_notifications_total{{event=\"Promoted\",result=\"{result}\"}}"))
}

fn retries(metrics: &Metrics) -> f64 {
    sample(metrics, "bellwether_notification_retries_total{event=\"Promoted\"}")
}

#[tokio::test]
async fn a_webhook_that_fails_with_503_and_429_then_accepts_is_delivered_after_retries() {
    let sink = Sink::start(vec![Answer::Status(503), Answer::Status(429)], Answer::Status(200)).await;
    let metrics = Metrics::new();
    let http = reqwest::Client::new();
    delivery(&sink).send(&http, &quick(5), &metrics).await.expect("delivered");
    let received = sink.received();
    assert_eq!(received.len(), 3, "two failed attempts, then the accepted one");
    assert!(received.iter().all(|r| r.path == "/hook" && r.body == json_body(&step_completed())));
    assert_eq!(
        (result(&metrics, "delivered"), result(&metrics, "failed"), retries(&metrics)),
        (1.0, 0.0, 2.0)
    );
}

#[tokio::test]
async fn a_webhook_that_always_fails_is_given_up_after_the_policys_attempts() {
    let sink = Sink::start(vec![], Answer::Status(500)).await;
    let metrics = Metrics::new();
    let error = delivery(&sink).send(&reqwest::Client::new(), &quick(3), &metrics).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Status(status) if status == 500), "{error}");
    assert_eq!(sink.received().len(), 3);
    assert_eq!(
        (result(&metrics, "delivered"), result(&metrics, "failed"), retries(&metrics)),
        (0.0, 1.0, 2.0)
    );
}

#[tokio::test]
async fn a_400_is_not_tried_again() {
    let sink = Sink::start(vec![], Answer::Status(400)).await;
    let metrics = Metrics::new();
    let error = delivery(&sink).send(&reqwest::Client::new(), &quick(5), &metrics).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Status(status) if status == 400), "{error}");
    assert_eq!(sink.received().len(), 1);
    assert_eq!((result(&metrics, "failed"), retries(&metrics)), (1.0, 0.0));
}

#[tokio::test]
async fn a_webhook_that_never_answers_times_out_and_is_tried_again() {
    let sink = Sink::start(vec![], Answer::Silence).await;
    let metrics = Metrics::new();
    let policy = RetryPolicy { timeout: Duration::from_millis(200), ..quick(2) };
    let error = delivery(&sink).send(&reqwest::Client::new(), &policy, &metrics).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Timeout(_)), "{error}");
    assert_eq!(sink.received().len(), 2, "the attempt that timed out, and one more");
    assert_eq!((result(&metrics, "failed"), retries(&metrics)), (1.0, 1.0));
}

#[tokio::test]
async fn a_webhook_that_hangs_up_is_tried_again_and_its_url_is_not_in_the_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            drop(connection);
        }
    });
    let metrics = Metrics::new();
    let hangs_up = Delivery {
        event: NotificationEvent::Promoted,
        target: "test".into(),
        url: format!("http://{address}/services/T000/B000/secret-token"),
        body: b"{}".to_vec(),
    };
    let error = hangs_up.send(&reqwest::Client::new(), &quick(2), &metrics).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Transport(_)), "{error}");
    assert!(!error.to_string().contains("secret-token"), "{error}");
    assert_eq!((result(&metrics, "failed"), retries(&metrics)), (1.0, 1.0));
}

#[tokio::test]
async fn a_full_queue_drops_the_notice_and_counts_it() {
    let metrics = Metrics::new();
    // The queue's worker is not running, so nothing leaves the queue.
    let (notifier, _queue) = Notifier::queue(1, metrics.clone());
    let dropped =
        || sample(&metrics, "bellwether_notifications_total{event=\"StepCompleted\",result=\"dropped\"}");
    notifier.notify(step_completed(), vec![]);
    assert_eq!(dropped(), 0.0, "the first notice fits");
    notifier.notify(step_completed(), vec![]);
    assert_eq!(dropped(), 1.0, "the second does not");
}

#[test]
fn a_notifier_whose_worker_is_gone_drops_the_notice_and_counts_it() {
    let metrics = Metrics::new();
    let (notifier, queue) = Notifier::queue(8, metrics.clone());
    drop(queue);
    notifier.notify(step_completed(), vec![]);
    assert_eq!(
        sample(&metrics, "bellwether_notifications_total{event=\"StepCompleted\",result=\"dropped\"}"),
        1.0
    );
}

#[test]
fn a_notice_carries_the_action_record_with_who_asked() {
    let record = bellwether::api::ActionRecord {
        action: "Aborted".into(),
        by: "bob".into(),
        at: at(),
        revision: Some("6d5f7c9b8".into()),
        reason: "UserAbort: aborted by bob".into(),
    };
    let mut aborted = event("RolloutAborted", "canary 6d5f7c9b8 aborted (UserAbort): aborted by bob");
    aborted.record = Some(record);
    let notice = Notice::of(&aborted, &rollout(), &status(None), at()).unwrap();
    assert_eq!(
        json_body(&notice)["action"],
        json!({
            "action": "Aborted",
            "by": "bob",
            "at": "2026-01-01T12:00:00Z",
            "revision": "6d5f7c9b8",
            "reason": "UserAbort: aborted by bob",
        })
    );
    let text = slack_body(&notice)["text"].as_str().unwrap().to_string();
    assert!(text.lines().any(|l| l == "Asked by bob: Aborted"), "{text}");
}
