//! `get rollout` and `list`: the human output against expected text with a fixed clock, and the
//! `-o json|yaml` output read back as the objects it came from.

use bellwether::api::{AnalysisRun, Rollout};
use bellwether::cli::show::{Output, RolloutView, list_table, render_list, render_view, tree};
use chrono::{DateTime, Duration, TimeZone, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::events::v1::Event;
use serde_json::{Value, json};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 12, 0, 0).unwrap()
}

fn ago(seconds: i64) -> String {
    (now() - Duration::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn steps() -> Value {
    json!([
        {"setWeight": 10},
        {"pause": {"duration": "2m"}},
        {"analysis": {"templates": [{"templateName": "error-rate"}]}},
        {"setWeight": 50},
        {"pause": {}}
    ])
}

fn rollout(namespace: &str, name: &str, status: Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "shop:2"}]}
            },
            "strategy": {"canary": {
                "stableService": format!("{name}-stable"),
                "canaryService": format!("{name}-canary"),
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": name}]}},
                "steps": steps(),
                "analysis": {"templates": [{"templateName": "latency"}], "startingStep": 1}
            }}
        },
        "status": status
    }))
    .expect("a valid Rollout")
}

fn replica_set(name: &str, revision: &str, image: &str, desired: i32, ready: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-{revision}"), "labels": {
            "bellwether.dev/rollout": name, "bellwether.dev/revision": revision
        }},
        "spec": {
            "replicas": desired,
            "selector": {"matchLabels": {"bellwether.dev/revision": revision}},
            "template": {"spec": {"containers": [{"name": "app", "image": image}]}}
        },
        "status": {"replicas": desired, "readyReplicas": ready}
    }))
    .expect("a valid ReplicaSet")
}

fn analysis_run(name: &str, metrics: Value, status: Value) -> AnalysisRun {
    serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"metrics": metrics, "revision": "7f8e2a1c"},
        "status": status
    }))
    .expect("a valid AnalysisRun")
}

fn threshold_metric(name: &str, threshold: Value) -> Value {
    json!({
        "name": name,
        "provider": {"prometheus": {"address": "http://prometheus:9090", "query": "up"}},
        "threshold": threshold
    })
}

fn event(name: &str, seconds_ago: i64, type_: &str, reason: &str, note: &str) -> Event {
    let at = (now() - Duration::seconds(seconds_ago)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}.{seconds_ago}"), "namespace": "shop"},
        "eventTime": at,
        "reportingController": "bellwether.dev/controller",
        "reportingInstance": "bellwether-0",
        "action": "Reconcile",
        "regarding": {"kind": "Rollout", "name": name, "namespace": "shop"},
        "type": type_,
        "reason": reason,
        "note": note
    }))
    .expect("a valid Event")
}

fn mid_analysis() -> RolloutView {
    let rollout = rollout(
        "shop",
        "checkout",
        json!({
            "phase": "Progressing",
            "message": "analysis error-rate running",
            "currentStepIndex": 2,
            "step": "3/5",
            "stableRevision": "6d4f9c7b",
            "canaryRevision": "7f8e2a1c",
            "weights": {"canary": 10, "stable": 90, "verified": true},
            "stepAnalysisRun": {"name": "checkout-7f8e2a1c-2", "phase": "Running"},
            "backgroundAnalysisRun": {"name": "checkout-7f8e2a1c-bg", "phase": "Running"}
        }),
    );
    let step_run = analysis_run(
        "checkout-7f8e2a1c-2",
        json!([threshold_metric(
            "error-rate",
            json!({"max": 0.01, "hysteresis": {"breachFor": "2m", "recover": {"max": 0.005}}})
        )]),
        json!({
            "phase": "Running",
            "startedAt": ago(150),
            "metricResults": [{
                "name": "error-rate",
                "phase": "Running",
                "measurements": [
                    {"at": ago(90), "value": 0.0061},
                    {"at": ago(30), "value": 0.0042}
                ],
                "hysteresis": {"state": "Healthy", "since": ago(90)}
            }]
        }),
    );
    let background = analysis_run(
        "checkout-7f8e2a1c-bg",
        json!([threshold_metric("latency-p99", json!({"min": 0.001, "max": 0.5}))]),
        json!({
            "phase": "Running",
            "metricResults": [{
                "name": "latency-p99",
                "phase": "Running",
                "measurements": [{"at": ago(20), "value": 0.2314}]
            }]
        }),
    );
    let events = (1..=7)
        .map(|i| event("checkout", 480 - i * 60, "Normal", "StepCompleted", &format!("step {i} completed")))
        .collect();
    RolloutView {
        rollout,
        replica_sets: vec![
            replica_set("checkout", "6d4f9c7b", "shop:1", 3, 3),
            replica_set("checkout", "7f8e2a1c", "shop:2", 1, 0),
        ],
        analysis_runs: vec![step_run, background],
        events,
    }
}

#[test]
fn tree_of_a_canary_mid_analysis() {
    let expected = "\
Rollout checkout (namespace shop)
Phase:     Progressing
Message:   analysis error-rate running
Step:      3/5
  ✔  1  setWeight 10
  ✔  2  pause 2m
  ▶  3  analysis error-rate
  ·  4  setWeight 50
  ·  5  pause (until promoted)
Weights:   desired canary 10%   actual canary 10% / stable 90%   ✔ verified on every route
Revisions:
  stable  6d4f9c7b  pods 3/3 ready  app=shop:1
  canary  7f8e2a1c  pods 0/1 ready  app=shop:2
Analysis:
  step        checkout-7f8e2a1c-2  Running
    error-rate       Running      0.0042 ≤ max 0.01  Healthy for 1m30s  (2 measurements)
  background  checkout-7f8e2a1c-bg  Running
    latency-p99      Running      0.001 ≤ 0.2314 ≤ 0.5  (1 measurement)
Events:
  5m       Normal   StepCompleted        step 3 completed
  4m       Normal   StepCompleted        step 4 completed
  3m       Normal   StepCompleted        step 5 completed
  2m       Normal   StepCompleted        step 6 completed
  1m       Normal   StepCompleted        step 7 completed
";
    assert_eq!(tree(&mid_analysis(), now()), expected);
}

#[test]
fn tree_of_a_canary_with_a_header_route_and_a_mirror_on_two_routes_one_refused() {
    let mut view = mid_analysis();
    view.rollout.spec.strategy.canary.steps = serde_json::from_value(json!([
        {"setHeaderRoute": {"name": "testers", "headers": [
            {"name": "X-Canary", "value": "always"},
            {"name": "Cookie", "type": "RegularExpression", "value": "canary=1"}
        ]}},
        {"setMirrorRoute": {"name": "shadow", "percent": 20}},
        {"setHeaderRoute": {"name": "testers"}},
        {"setMirrorRoute": {"name": "shadow"}}
    ]))
    .unwrap();
    let status = view.rollout.status.as_mut().unwrap();
    status.current_step_index = Some(1);
    status.step = Some("2/4".into());
    status.message = Some("step 2/4: waiting for routes".into());
    status.weights = serde_json::from_value(json!({"canary": 0, "stable": 100, "verified": false})).unwrap();
    status.step_analysis_run = None;
    status.background_analysis_run = None;
    status.exposure = serde_json::from_value(json!({
        "headerRoutes": ["testers"], "mirror": {"name": "shadow", "percent": 20}
    }))
    .unwrap();
    status.routes = serde_json::from_value(json!([
        {"name": "HTTPRoute/shop/checkout", "canaryWeight": 0, "headerRoutes": ["testers"],
         "mirrorPercent": 20, "ready": true},
        {"name": "GRPCRoute/shop/checkout", "canaryWeight": 0, "headerRoutes": ["testers"], "ready": false,
         "message": "GRPCRoute/shop/checkout: gateway/shop/public refused it: Accepted=False, UnsupportedValue"}
    ]))
    .unwrap();
    view.events.clear();
    let expected = "\
Rollout checkout (namespace shop)
Phase:     Progressing
Message:   step 2/4: waiting for routes
Step:      2/4
  ✔  1  setHeaderRoute testers (X-Canary: always, Cookie ~ canary=1)
  ▶  2  setMirrorRoute shadow 20%
  ·  3  setHeaderRoute testers (removed)
  ·  4  setMirrorRoute shadow (removed)
Weights:   desired canary 0%   actual canary 0% / stable 100%   … not verified yet
Exposure:  header route testers; mirror shadow 20%
Routes:
  HTTPRoute/shop/checkout  canary 0%, header route testers, mirror 20%  ✔ ready
  GRPCRoute/shop/checkout  canary 0%, header route testers  ✘ not ready
    GRPCRoute/shop/checkout: gateway/shop/public refused it: Accepted=False, UnsupportedValue
Revisions:
  stable  6d4f9c7b  pods 3/3 ready  app=shop:1
  canary  7f8e2a1c  pods 0/1 ready  app=shop:2
";
    assert_eq!(tree(&view, now()), expected);
}

/// A canary aborted for `reason`, which is its message, its analysis's verdict and its abort's.
fn degraded(reason: &str) -> RolloutView {
    let rollout = rollout(
        "shop",
        "checkout",
        json!({
            "phase": "Degraded",
            "message": format!("aborted: {reason}"),
            "currentStepIndex": 2,
            "step": "3/5",
            "stableRevision": "6d4f9c7b",
            "canaryRevision": "7f8e2a1c",
            "weights": {"canary": 0, "stable": 100, "verified": false},
            "stepAnalysisRun": {"name": "checkout-7f8e2a1c-2", "phase": "Failed"},
            "abort": {
                "reason": "AnalysisFailed",
                "message": reason,
                "metric": "error-rate",
                "value": "0.034",
                "at": ago(45),
                "by": "bellwether"
            }
        }),
    );
    let run = analysis_run(
        "checkout-7f8e2a1c-2",
        json!([threshold_metric("error-rate", json!({"max": 0.01, "hysteresis": {"breachFor": "2m"}}))]),
        json!({
            "phase": "Failed",
            "message": reason,
            "metricResults": [{
                "name": "error-rate",
                "phase": "Failed",
                "measurements": [{"at": ago(50), "value": 0.034}],
                "hysteresis": {"state": "Failed", "since": ago(50)}
            }]
        }),
    );
    RolloutView {
        rollout,
        replica_sets: vec![
            replica_set("checkout", "6d4f9c7b", "shop:1", 3, 3),
            replica_set("checkout", "7f8e2a1c", "shop:2", 1, 1),
        ],
        analysis_runs: vec![run],
        events: vec![event("checkout", 45, "Warning", "Aborted", "error-rate: 0.034 > max 0.01")],
    }
}

#[test]
fn tree_of_a_degraded_canary_shows_its_abort() {
    let view = degraded("error-rate: 0.034 > max 0.01 continuously for 2m05s");
    let expected = "\
Rollout checkout (namespace shop)
Phase:     Degraded
Message:   aborted: error-rate: 0.034 > max 0.01 continuously for 2m05s
Step:      3/5
  ✔  1  setWeight 10
  ✔  2  pause 2m
  ✘  3  analysis error-rate
  ·  4  setWeight 50
  ·  5  pause (until promoted)
Weights:   desired canary 0%   actual canary 0% / stable 100%   … not verified yet
Revisions:
  stable  6d4f9c7b  pods 3/3 ready  app=shop:1
  canary  7f8e2a1c  pods 1/1 ready  app=shop:2
Analysis:
  step        checkout-7f8e2a1c-2  Failed
      error-rate: 0.034 > max 0.01 continuously for 2m05s
    error-rate       Failed       0.034 > max 0.01  Failed for 50s  (1 measurement)
Abort:     AnalysisFailed by bellwether, 45s ago
           metric error-rate = 0.034
           error-rate: 0.034 > max 0.01 continuously for 2m05s
Events:
  45s      Warning  Aborted              error-rate: 0.034 > max 0.01
";
    assert_eq!(tree(&view, now()), expected);
}

fn healthy(namespace: &str, name: &str) -> Rollout {
    rollout(
        namespace,
        name,
        json!({
            "phase": "Healthy",
            "message": "revision 6d4f9c7b is stable",
            "currentStepIndex": 5,
            "step": "5/5",
            "stableRevision": "6d4f9c7b",
            "weights": {"canary": 0, "stable": 100, "verified": true}
        }),
    )
}

#[test]
fn tree_of_a_healthy_rollout() {
    let view = RolloutView {
        rollout: healthy("shop", "checkout"),
        replica_sets: vec![replica_set("checkout", "6d4f9c7b", "shop:1", 3, 3)],
        analysis_runs: vec![],
        events: vec![],
    };
    let expected = "\
Rollout checkout (namespace shop)
Phase:     Healthy
Message:   revision 6d4f9c7b is stable
Step:      5/5
  ✔  1  setWeight 10
  ✔  2  pause 2m
  ✔  3  analysis error-rate
  ✔  4  setWeight 50
  ✔  5  pause (until promoted)
Weights:   desired canary 0%   actual canary 0% / stable 100%   ✔ verified on every route
Revisions:
  stable  6d4f9c7b  pods 3/3 ready  app=shop:1
  canary  -
";
    assert_eq!(tree(&view, now()), expected);
}

#[test]
fn every_tree_line_fits_in_100_columns() {
    let mut view = mid_analysis();
    view.rollout.status.as_mut().unwrap().message = Some("x".repeat(300));
    view.events.push(event("checkout", 1, "Normal", "Long", &"y".repeat(300)));
    for line in tree(&view, now()).lines() {
        assert!(line.chars().count() <= 100, "{line:?} is wider than 100 columns");
    }
}

/// The reasons a canary failed are wrapped at word boundaries within 100 columns, each further
/// line under the first, and nothing of them is lost; a word longer than a line is split.
#[test]
fn a_long_failure_reason_is_wrapped_never_cut() {
    let reason = "error-rate: 0.034 > max 0.01 continuously for 2m05s, measured by \
                  sum(rate(http_requests_total{namespace=\"shop\",code=~\"5..\"}[1m])) over the canary's \
                  pods while 10% of traffic went to them; the query was";
    let long_word = "x".repeat(120);
    let reason = format!("{reason} {long_word} end");
    let text = tree(&degraded(&reason), now());
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert!(line.chars().count() <= 100, "{line:?} is wider than 100 columns");
    }
    let words = |text: &str| text.split_whitespace().collect::<String>();
    // Each of the three places, read back from its first line to the next heading.
    for (start, indent) in
        [("Message:   aborted: ", 11), ("      error-rate: 0.034", 6), ("           error-rate: 0.034", 11)]
    {
        let at =
            lines.iter().position(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{start:?} in\n{text}"));
        let block: Vec<&str> = std::iter::once(lines[at])
            .chain(lines[at + 1..].iter().copied().take_while(|l| {
                l.starts_with(&" ".repeat(indent))
                    && !l[indent..].starts_with(' ')
                    && !l.trim_start().starts_with("error-rate  ")
            }))
            .collect();
        assert!(block.len() > 2, "{start:?} is wrapped:\n{text}");
        let read = words(&block.join(" "));
        assert!(read.ends_with(&words(&reason)), "{start:?} kept whole:\n{}", block.join("\n"));
    }
    let message = "\
Message:   aborted: error-rate: 0.034 > max 0.01 continuously for 2m05s, measured by
           sum(rate(http_requests_total{namespace=\"shop\",code=~\"5..\"}[1m])) over the canary's pods
           while 10% of traffic went to them; the query was
           xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
           xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx end
";
    assert!(text.contains(message), "{text}");
}

/// `-o wide` is the tree with nothing cut: a summary's whole text on its line.
#[test]
fn get_wide_cuts_nothing() {
    let mut view = mid_analysis();
    let note = format!("{} the end", "a long note ".repeat(20));
    view.events.push(event("checkout", 1, "Normal", "Long", &note));
    let narrow = tree(&view, now());
    assert!(!narrow.contains("the end"), "the tree cuts it");
    let wide = render_view(&view, Output::Wide, now());
    assert!(wide.lines().any(|l| l.ends_with(note.trim_end())), "{wide}");
    let uncut: Vec<&str> = wide.lines().filter(|l| !l.contains("a long note")).collect();
    let cut: Vec<&str> = narrow.lines().filter(|l| !l.contains("a long note")).collect();
    assert_eq!(uncut, cut, "everything else as in the tree");
}

#[test]
fn name_output_is_the_qualified_kind_and_the_name() {
    assert_eq!(render_view(&mid_analysis(), Output::Name, now()), "rollout.bellwether.dev/checkout\n");
    assert_eq!(
        render_list(&rollouts(), true, Output::Name),
        "rollout.bellwether.dev/checkout\nrollout.bellwether.dev/ledger\n"
    );
    assert_eq!(render_list(&[], false, Output::Name), "");
}

#[test]
fn list_wide_adds_analyses_and_images_and_keeps_messages_whole() {
    let mut rollouts = rollouts();
    let long = format!("{} tail", "m".repeat(70));
    rollouts[1].status.as_mut().unwrap().message = Some(long.clone());
    let expected = format!(
        "\
NAME       PHASE         STEP   CANARY WEIGHT   STABLE     CANARY     ANALYSIS                           IMAGES       MESSAGE
checkout   Progressing   3/5    10%             6d4f9c7b   7f8e2a1c   step Running, background Running   app=shop:2   analysis error-rate running
ledger     Healthy       5/5    0%              6d4f9c7b   -          -                                  app=shop:2   {long}
"
    );
    assert_eq!(render_list(&rollouts, false, Output::Wide), expected);
}

fn rollouts() -> Vec<Rollout> {
    vec![mid_analysis().rollout, healthy("payments", "ledger")]
}

#[test]
fn list_in_one_namespace() {
    let expected = "\
NAME       PHASE         STEP   CANARY WEIGHT   STABLE     CANARY     MESSAGE
checkout   Progressing   3/5    10%             6d4f9c7b   7f8e2a1c   analysis error-rate running
ledger     Healthy       5/5    0%              6d4f9c7b   -          revision 6d4f9c7b is stable
";
    assert_eq!(list_table(&rollouts(), false), expected);
}

#[test]
fn list_in_all_namespaces_truncates_long_messages() {
    let mut rollouts = rollouts();
    rollouts[1].status.as_mut().unwrap().message = Some(format!("{} tail", "m".repeat(70)));
    let expected = format!(
        "\
NAMESPACE   NAME       PHASE         STEP   CANARY WEIGHT   STABLE     CANARY     MESSAGE
shop        checkout   Progressing   3/5    10%             6d4f9c7b   7f8e2a1c   analysis error-rate running
payments    ledger     Healthy       5/5    0%              6d4f9c7b   -          {}…
",
        "m".repeat(59)
    );
    assert_eq!(list_table(&rollouts, true), expected);
}

#[test]
fn list_of_nothing_is_the_header() {
    assert_eq!(list_table(&[], false), "NAME   PHASE   STEP   CANARY WEIGHT   STABLE   CANARY   MESSAGE\n");
}

#[test]
fn json_and_yaml_of_get_are_the_rollout_itself() {
    let view = mid_analysis();
    let from_json: Rollout = serde_json::from_str(&render_view(&view, Output::Json, now())).unwrap();
    let from_yaml: Rollout = serde_yaml::from_str(&render_view(&view, Output::Yaml, now())).unwrap();
    assert_eq!(from_json, view.rollout);
    assert_eq!(from_yaml, view.rollout);
    assert_eq!(render_view(&view, Output::Text, now()), tree(&view, now()));
}

#[test]
fn json_and_yaml_of_list_are_a_kubernetes_list() {
    #[derive(serde::Deserialize)]
    struct List {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        items: Vec<Rollout>,
    }
    let rollouts = rollouts();
    let from_json: List = serde_json::from_str(&render_list(&rollouts, true, Output::Json)).unwrap();
    let from_yaml: List = serde_yaml::from_str(&render_list(&rollouts, true, Output::Yaml)).unwrap();
    for list in [from_json, from_yaml] {
        assert_eq!((list.api_version.as_str(), list.kind.as_str()), ("v1", "List"));
        assert_eq!(list.items, rollouts);
    }
    assert_eq!(render_list(&rollouts, true, Output::Text), list_table(&rollouts, true));
}
