//! Notifications from a running controller: a promoted canary is told to the Rollout's own
//! webhook (JSON) and to the namespace's (Slack), and a webhook whose Secret is missing is counted
//! as failed without holding up the rollout.

use crate::faults::wait_promoted;
use crate::harness::{Cluster, Controller, create, eventually};
use crate::prometheus::free_port;
use crate::webhook_sink::{Answer, Received, Sink};
use bellwether::api::{NAMESPACE_CONFIGMAP, RolloutOutcome};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::{Value, json};

fn steps() -> Value {
    json!([{"setWeight": 10}, {"pause": {"duration": "1s"}}, {"setWeight": 50}])
}

/// The events of the JSON bodies the sink received on `/json`.
fn json_events(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter(|r| r.path == "/json")
        .filter_map(|r| r.body["event"].as_str().map(String::from))
        .collect()
}

/// The headlines (first lines) of the Slack messages the sink received on `/slack`.
fn slack_headlines(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter(|r| r.path == "/slack")
        .filter_map(|r| r.body["text"].as_str().and_then(|text| text.lines().next()).map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_canary_is_notified_in_both_formats_and_a_missing_secret_only_counts_as_failed() {
    let cluster = Cluster::start("notify").await;
    let sink = Sink::start(vec![], Answer::Status(200)).await;
    let ns = cluster.namespace.as_str();
    create::<Secret>(
        &cluster.client,
        ns,
        json!({"metadata": {"name": "hooks"}, "stringData": {"json": sink.url("/json"), "slack": sink.url("/slack")}}),
    )
    .await;
    let namespace_targets = "
- name: chat
  format: slack
  urlSecretRef: {name: hooks, key: slack}
  events: [StepCompleted, Promoted]
- name: no-secret
  urlSecretRef: {name: missing, key: url}
  events: [Promoted]
";
    create::<ConfigMap>(
        &cluster.client,
        ns,
        json!({"metadata": {"name": NAMESPACE_CONFIGMAP}, "data": {"targets": namespace_targets}}),
    )
    .await;
    let metrics_addr = format!("127.0.0.1:{}", free_port().unwrap());
    // Both Secrets are granted; `missing` does not exist.
    let (hooks, missing) = (format!("{ns}/hooks"), format!("{ns}/missing"));
    let flags = ["--metrics-addr", &metrics_addr, "--readable-secret", &hooks, "--readable-secret", &missing];
    let controller = Controller::start(&cluster, &flags);

    let mut first = cluster.rollout("1", steps());
    first.spec.notifications = serde_json::from_value(json!([
        {"name": "audit", "format": "json", "urlSecretRef": {"name": "hooks", "key": "json"}},
    ]))
    .unwrap();
    let stable = cluster.ship(&first).await;
    wait_promoted(&cluster, &stable).await;
    let canary = cluster.ship(&cluster.rollout("2", steps())).await;
    let done = wait_promoted(&cluster, &canary).await;
    assert_eq!(done.status.unwrap().history[0].outcome, RolloutOutcome::Promoted);

    let received = eventually("the promotion in both formats", || async {
        let received = sink.received();
        let promoted_json = json_events(&received).iter().any(|e| e == "Promoted");
        let promoted_slack = slack_headlines(&received).iter().any(|h| h.contains("promoted"));
        (promoted_json && promoted_slack).then_some(received)
    })
    .await;
    let events = json_events(&received);
    assert!(events.iter().any(|e| e == "StepCompleted"), "no StepCompleted in {events:?}");
    let promoted = received
        .iter()
        .find(|r| r.path == "/json" && r.body["event"] == "Promoted")
        .map(|r| &r.body)
        .expect("a Promoted body");
    assert_eq!(promoted["version"], 1);
    assert_eq!(promoted["rollout"], json!({"namespace": ns, "name": "web"}));
    assert_eq!(promoted["revisions"]["stable"], canary.as_str(), "{promoted}");
    let headlines = slack_headlines(&received);
    assert!(
        headlines.iter().any(|h| h.starts_with(&format!("*{ns}/web*: step completed"))),
        "no step completed in {headlines:?}"
    );

    // The target without a Secret failed, and only that: it held up neither the others nor the
    // rollout.
    let metrics_url = format!("http://{metrics_addr}/metrics");
    eventually("the failed notification in the controller's metrics", || async {
        let text = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
        text.lines()
            .any(|line| {
                line.starts_with(r#"bellwether_notifications_total{event="Promoted",result="failed"}"#)
            })
            .then_some(())
    })
    .await;
    controller.stop().await;
}
