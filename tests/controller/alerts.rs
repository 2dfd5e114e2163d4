//! The Alertmanager webhook receiver over real HTTP (and HTTPS) on 127.0.0.1, with a sink that
//! records what reaches it: every refused request (no or wrong credentials, a malformed or oversize
//! body, too many requests, plain HTTP to the HTTPS port) must reach nothing. And the pure rules
//! that pick the Rollouts a firing alert aborts.

use bellwether_testkit::test_ca;

use bellwether::api::{AbortStatus, AlertMatcher, Rollout, RolloutPhase, RolloutStatus};
use bellwether::controller::alerts::{REQUESTER, abort_request, first_match, matches};
use bellwether::server::Metrics;
use bellwether::server::alerts::{
    AlertSink, Credentials, Limits, PATH, ServerTls, TlsFiles, Webhook, serve_alerts,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_ca::TestCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

const TOKEN: &str = "a-long-random-token";

/// Records every webhook it is given; fails them all when `failing`.
#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Webhook>>,
    failing: bool,
}

/// The sink the receiver owns, sharing its record with the test.
struct Sink(Arc<Recorder>);

impl AlertSink for Sink {
    fn deliver(&self, webhook: Webhook) -> BoxFuture<'_, Result<Value, String>> {
        let firing = webhook.alerts.iter().filter(|a| a.is_firing()).count();
        self.0.received.lock().unwrap().push(webhook);
        let result = if self.0.failing {
            Err("the API server is unreachable".into())
        } else {
            Ok(json!({"firing": firing}))
        };
        futures::future::ready(result).boxed()
    }
}

struct Receiver {
    address: SocketAddr,
    sink: Arc<Recorder>,
    metrics: Metrics,
    credentials: watch::Sender<Credentials>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    async fn start(credentials: Credentials, limits: Limits, failing: bool) -> Self {
        Self::serve(credentials, None, limits, failing).await
    }

    async fn serve(credentials: Credentials, tls: Option<ServerTls>, limits: Limits, failing: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let sink = Arc::new(Recorder { failing, ..Recorder::default() });
        let metrics = Metrics::new();
        let (credentials, current) = watch::channel(credentials);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve_alerts(
            listener,
            current,
            tls,
            limits,
            Arc::new(Sink(sink.clone())),
            metrics.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Self { address, sink, metrics, credentials, _stop: stop }
    }

    async fn bearer() -> Self {
        Self::start(Credentials::Bearer(TOKEN.into()), generous(), false).await
    }

    fn received(&self) -> usize {
        self.sink.received.lock().unwrap().len()
    }

    fn counted(&self, result: &str) -> usize {
        let needle = format!("bellwether_alert_webhooks_total{{result=\"{result}\"}} ");
        self.metrics
            .render()
            .lines()
            .find_map(|line| line.strip_prefix(&needle))
            .map_or(0, |value| value.parse::<f64>().unwrap() as usize)
    }

    /// Sends a raw HTTP/1.1 request and returns the status, the headers and the body.
    async fn send(&self, head: &str, body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(self.address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Reply { status, head: head.to_lowercase(), body: body.to_string() }
    }

    async fn post(&self, authorization: Option<&str>, content_type: &str, body: &[u8]) -> Reply {
        let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        let head = format!(
            "POST {PATH} HTTP/1.1\r\nHost: bellwether\r\nConnection: close\r\nContent-Type: {content_type}\r\n\
             {auth}Content-Length: {}\r\n\r\n",
            body.len()
        );
        self.send(&head, body).await
    }

    async fn post_json(&self, body: &Value) -> Reply {
        self.post(Some(&format!("Bearer {TOKEN}")), "application/json", body.to_string().as_bytes()).await
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

fn generous() -> Limits {
    Limits { max_body_bytes: 64 * 1024, per_minute: 10_000, unauthenticated_per_minute: 10_000 }
}

/// One alert as Alertmanager 0.25 sends it.
fn alert(status: &str, labels: Value) -> Value {
    json!({
        "status": status,
        "labels": labels,
        "annotations": {"summary": "checkout burns its error budget"},
        "startsAt": "2026-11-24T10:00:00.749838355Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=slo_burn",
        "fingerprint": "3df8aa28f120cb72",
    })
}

/// A whole webhook as Alertmanager 0.25 sends it.
fn webhook(alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "bellwether",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {"alertname": "CheckoutSLOBurn"},
        "commonLabels": {"alertname": "CheckoutSLOBurn"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"CheckoutSLOBurn\"}",
        "truncatedAlerts": 0,
    })
}

fn firing() -> Value {
    webhook(vec![alert(
        "firing",
        json!({"alertname": "CheckoutSLOBurn", "rollout": "checkout", "namespace": "shop"}),
    )])
}

#[tokio::test]
async fn a_valid_webhook_with_credentials_reaches_the_sink() {
    let receiver = Receiver::bearer().await;
    let reply = receiver.post_json(&firing()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.head.contains("content-type: application/json"));
    assert_eq!(serde_json::from_str::<Value>(reply.body.trim()).unwrap(), json!({"firing": 1}));
    let received = receiver.sink.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let alert = &received[0].alerts[0];
    assert_eq!(alert.name(), "CheckoutSLOBurn");
    assert_eq!(alert.labels.0["rollout"], "checkout");
    assert_eq!(alert.generator_url, "http://prometheus:9090/graph?g0.expr=slo_burn");
    assert_eq!(receiver.counted("accepted"), 1);
}

#[tokio::test]
async fn requests_without_the_right_credentials_change_nothing() {
    let receiver = Receiver::bearer().await;
    let body = firing().to_string();
    for authorization in [None, Some("Bearer wrong"), Some("Basic YW06cHc="), Some(TOKEN), Some("Bearer ")] {
        let reply = receiver.post(authorization, "application/json", body.as_bytes()).await;
        assert_eq!(reply.status, 401, "{authorization:?}");
        assert!(reply.head.contains("www-authenticate: bearer realm=\"bellwether\""), "{}", reply.head);
    }
    assert_eq!(receiver.received(), 0);
    assert_eq!(receiver.counted("unauthorized"), 5);
}

#[tokio::test]
async fn basic_auth_credentials_are_checked_too() {
    let credentials = Credentials::Basic { username: "am".into(), password: "pw".into() };
    let receiver = Receiver::start(credentials, generous(), false).await;
    let body = firing().to_string();
    assert_eq!(receiver.post(Some("Basic YW06cHc="), "application/json", body.as_bytes()).await.status, 200);
    // "am:px"
    let reply = receiver.post(Some("Basic YW06cHg="), "application/json", body.as_bytes()).await;
    assert_eq!(reply.status, 401);
    assert!(reply.head.contains("www-authenticate: basic realm=\"bellwether\""));
    assert_eq!(receiver.received(), 1);
}

#[tokio::test]
async fn rotated_credentials_take_effect_without_a_restart() {
    let receiver = Receiver::bearer().await;
    receiver.credentials.send_replace(Credentials::Bearer("the-new-token".into()));
    let body = firing().to_string();
    assert_eq!(
        receiver.post(Some(&format!("Bearer {TOKEN}")), "application/json", body.as_bytes()).await.status,
        401
    );
    assert_eq!(
        receiver.post(Some("Bearer the-new-token"), "application/json", body.as_bytes()).await.status,
        200
    );
}

#[tokio::test]
async fn with_auth_explicitly_disabled_any_request_is_taken() {
    let receiver = Receiver::start(Credentials::Disabled, generous(), false).await;
    assert_eq!(receiver.post(None, "application/json", firing().to_string().as_bytes()).await.status, 200);
}

#[tokio::test]
async fn malformed_payloads_are_refused_whole_and_change_nothing() {
    let receiver = Receiver::bearer().await;
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not JSON", b"{\"version\": \"4\",".to_vec(), "not an Alertmanager webhook payload"),
        ("an array", b"[]".to_vec(), "not an Alertmanager webhook payload"),
    ];
    let mut edited = |what: &'static str, edit: fn(&mut Value), expected: &'static str| {
        let mut body = firing();
        edit(&mut body);
        cases.push((what, body.to_string().into_bytes(), expected));
    };
    edited("an unknown field", |b| b["extra"] = json!(1), "unknown field `extra`");
    edited(
        "an unknown alert field",
        |b| b["alerts"][0]["silenced"] = json!(true),
        "unknown field `silenced`",
    );
    edited(
        "a missing field",
        |b| drop(b.as_object_mut().unwrap().remove("groupKey")),
        "missing field `groupKey`",
    );
    edited("another version", |b| b["version"] = json!("3"), "payload version \"3\" is not supported");
    edited("a label that is not text", |b| b["alerts"][0]["labels"]["severity"] = json!(1), "invalid type");
    edited("an unknown status", |b| b["alerts"][0]["status"] = json!("pending"), "unknown variant `pending`");
    edited(
        "a bad time",
        |b| b["alerts"][0]["startsAt"] = json!("yesterday"),
        "input contains invalid characters",
    );
    edited("a bad fingerprint", |b| b["alerts"][0]["fingerprint"] = json!("../x"), "fingerprint \"../x\"");
    let trailing = format!("{} {{}}", firing());
    cases.push(("trailing data", trailing.into_bytes(), "trailing characters"));
    let repeated = firing().to_string().replacen(
        "\"rollout\":\"checkout\"",
        "\"rollout\":\"checkout\",\"rollout\":\"cart\"",
        1,
    );
    cases.push(("a label twice", repeated.into_bytes(), "label \"rollout\" appears twice"));
    let count = cases.len();
    for (what, body, expected) in cases {
        let reply = receiver.post(Some(&format!("Bearer {TOKEN}")), "application/json", &body).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert!(reply.body.contains(expected), "{what}: {:?} does not say {expected:?}", reply.body);
    }
    let reply =
        receiver.post(Some(&format!("Bearer {TOKEN}")), "text/plain", firing().to_string().as_bytes()).await;
    assert_eq!(reply.status, 415);
    assert_eq!(receiver.received(), 0, "no malformed request reaches the sink");
    assert_eq!(receiver.counted("malformed"), count + 1);
}

#[tokio::test]
async fn oversize_bodies_are_refused_whether_declared_or_streamed() {
    let limits = Limits { max_body_bytes: 1024, ..generous() };
    let receiver = Receiver::start(Credentials::Bearer(TOKEN.into()), limits, false).await;
    let mut big = firing();
    big["commonAnnotations"]["description"] = json!("x".repeat(2000));
    let reply = receiver.post_json(&big).await;
    assert_eq!(reply.status, 413);
    assert!(reply.body.contains("exceeds 1024 bytes"), "{}", reply.body);

    // Chunked, with no length declared: the limit applies while reading.
    let body = big.to_string();
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: bellwether\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let chunked: Vec<u8> = body
        .as_bytes()
        .chunks(500)
        .flat_map(|chunk| {
            [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.to_vec(), b"\r\n".to_vec()].concat()
        })
        .chain(b"0\r\n\r\n".iter().copied())
        .collect();
    let reply = receiver.send(&head, &chunked).await;
    assert_eq!(reply.status, 413);
    assert_eq!(receiver.received(), 0);
    assert_eq!(receiver.counted("too_large"), 2);
    assert_eq!(receiver.post_json(&firing()).await.status, 200, "a body within the limit is still taken");
}

#[tokio::test]
async fn a_sender_still_sending_an_oversize_body_reads_the_refusal() {
    // A body sent slowly, in pieces: a receiver that answered and closed without reading on
    // would break the connection while the sender still writes, and the sender (Alertmanager)
    // would see no answer and retry, instead of reading the 413.
    let limits = Limits { max_body_bytes: 1024, ..generous() };
    let receiver = Receiver::start(Credentials::Bearer(TOKEN.into()), limits, false).await;
    let piece = vec![b'x'; 64 * 1024];
    let pieces = 32;
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: bellwether\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        piece.len() * pieces
    );
    let mut stream = TcpStream::connect(receiver.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..pieces {
        stream.write_all(&piece).await.expect("the receiver reads the whole body");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("the receiver answers");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(receiver.counted("too_large"), 1);
}

#[tokio::test]
async fn a_source_beyond_its_rate_limit_is_told_to_wait() {
    let limits = Limits { per_minute: 3, ..generous() };
    let receiver = Receiver::start(Credentials::Bearer(TOKEN.into()), limits, false).await;
    for _ in 0..3 {
        assert_eq!(receiver.post_json(&firing()).await.status, 200);
    }
    let reply = receiver.post_json(&firing()).await;
    assert_eq!(reply.status, 429);
    assert!((1..=20).contains(&retry_after(&reply)), "{}", reply.head);
    // A request without credentials has a budget of its own: it is still told what is wrong.
    assert_eq!(receiver.post(None, "application/json", b"{}").await.status, 401);
    assert_eq!(receiver.received(), 3);
    assert_eq!(receiver.counted("rate_limited"), 1);
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .head
        .lines()
        .find_map(|line| line.strip_prefix("retry-after: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Retry-After header")
}

#[tokio::test]
async fn a_flood_without_credentials_from_an_alertmanagers_address_does_not_hold_back_its_alerts() {
    // One source address for both, as behind an ingress or SNAT.
    let limits = Limits { per_minute: 5, unauthenticated_per_minute: 2, ..generous() };
    let receiver = Receiver::start(Credentials::Bearer(TOKEN.into()), limits, false).await;
    let body = firing().to_string();
    let mut statuses = Vec::new();
    for authorization in [None, Some("Bearer guess")].into_iter().cycle().take(40) {
        let reply = receiver.post(authorization, "application/json", body.as_bytes()).await;
        if reply.status == 429 {
            assert!((1..=30).contains(&retry_after(&reply)), "{}", reply.head);
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses[..2], [401, 401], "the first are told what is wrong");
    assert!(statuses[2..].iter().all(|status| *status == 429), "then they are cut short: {statuses:?}");
    assert_eq!(receiver.received(), 0);
    for _ in 0..5 {
        assert_eq!(receiver.post_json(&firing()).await.status, 200, "the real alerts are all taken");
    }
    assert_eq!(receiver.received(), 5);
    assert_eq!(receiver.counted("unauthorized"), 40, "401 or 429, a refusal for missing credentials");
    assert_eq!(receiver.counted("rate_limited"), 0, "no real alert was held back");
    assert_eq!(receiver.post_json(&firing()).await.status, 429, "and real alerts have their own limit");
}

#[tokio::test]
async fn a_failing_sink_answers_503_so_that_alertmanager_sends_again() {
    let receiver = Receiver::start(Credentials::Bearer(TOKEN.into()), generous(), true).await;
    let reply = receiver.post_json(&firing()).await;
    assert_eq!(reply.status, 503);
    assert!(reply.body.contains("the API server is unreachable"));
    assert_eq!(receiver.counted("failed"), 1);
}

#[tokio::test]
async fn only_post_is_taken() {
    let receiver = Receiver::bearer().await;
    let reply =
        receiver.send(&format!("GET {PATH} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"), b"").await;
    assert_eq!(reply.status, 405);
    assert!(reply.head.contains("allow: post"));
}

// ----- which Rollouts an alert aborts -----

fn rollout(name: &str, phase: RolloutPhase) -> Rollout {
    let mut rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": "7"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "app:2"}]}},
            "strategy": {"canary": {
                "stableService": "stable", "canaryService": "canary",
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": name}]}},
                "steps": [{"setWeight": 10}],
            }},
        },
    }))
    .unwrap();
    let in_flight =
        matches!(phase, RolloutPhase::Progressing | RolloutPhase::Paused | RolloutPhase::Degraded);
    rollout.status = Some(RolloutStatus {
        phase: Some(phase),
        stable_revision: Some("aaaaaaaaaa".into()),
        canary_revision: in_flight.then(|| "bbbbbbbbbb".into()),
        ..RolloutStatus::default()
    });
    rollout
}

fn parsed(value: Value) -> Webhook {
    bellwether::server::alerts::parse(value.to_string().as_bytes()).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn an_alert_matches_by_rollout_and_namespace_labels_or_by_a_matcher() {
    let mut checkout = rollout("checkout", RolloutPhase::Paused);
    assert!(matches(&labels(&[("rollout", "checkout"), ("namespace", "shop")]), &checkout));
    assert!(!matches(&labels(&[("rollout", "checkout"), ("namespace", "other")]), &checkout));
    assert!(!matches(&labels(&[("rollout", "checkout")]), &checkout), "the namespace must be named too");
    assert!(!matches(&labels(&[("service", "payments"), ("severity", "page")]), &checkout));

    checkout.spec.strategy.canary.abort_on_alerts = vec![
        matcher(&[("service", "payments"), ("severity", "page")]),
        matcher(&[("alertname", "CheckoutSLOBurn")]),
    ];
    let in_shop = |pairs: &[(&str, &str)]| labels(&[pairs, &[("namespace", "shop")]].concat());
    assert!(matches(&in_shop(&[("service", "payments"), ("severity", "page"), ("team", "x")]), &checkout));
    assert!(
        !matches(&in_shop(&[("service", "payments"), ("severity", "ticket")]), &checkout),
        "every label of a matcher"
    );
    assert!(matches(&in_shop(&[("alertname", "CheckoutSLOBurn")]), &checkout), "any one matcher");
}

fn matcher(pairs: &[(&str, &str)]) -> AlertMatcher {
    AlertMatcher { match_labels: labels(pairs), any_namespace: false }
}

#[test]
fn a_matcher_takes_only_alerts_about_the_rollouts_namespace() {
    let mut checkout = rollout("checkout", RolloutPhase::Paused);
    let api = [("service", "api"), ("severity", "page")];
    let about = |namespace: Option<&str>| {
        let mut alert = labels(&api);
        alert.extend(namespace.map(|ns| ("namespace".to_string(), ns.to_string())));
        alert
    };
    checkout.spec.strategy.canary.abort_on_alerts = vec![matcher(&api)];
    assert!(!matches(&about(Some("other-team")), &checkout), "another team's alert with the same labels");
    assert!(!matches(&about(None), &checkout), "an alert about no namespace");
    assert!(!matches(&about(Some("")), &checkout));
    assert!(matches(&about(Some("shop")), &checkout));

    // A matcher that names a namespace is held to the Rollout's all the same.
    checkout.spec.strategy.canary.abort_on_alerts =
        vec![matcher(&[("service", "api"), ("namespace", "other")])];
    assert!(!matches(&labels(&[("service", "api"), ("namespace", "other")]), &checkout));

    // anyNamespace takes them all, with every label still required.
    checkout.spec.strategy.canary.abort_on_alerts =
        vec![AlertMatcher { any_namespace: true, ..matcher(&api) }];
    assert!(matches(&about(Some("other-team")), &checkout));
    assert!(matches(&about(None), &checkout));
    assert!(!matches(&labels(&[("service", "api"), ("namespace", "shop")]), &checkout));

    // The rollout and namespace labels name one Rollout, whatever its matchers say.
    assert!(!matches(&labels(&[("rollout", "checkout"), ("namespace", "other-team")]), &checkout));
}

#[test]
fn an_empty_matcher_matches_no_alert() {
    // As a Rollout stored before the API server refused empty matchers reads.
    let mut checkout = rollout("checkout", RolloutPhase::Paused);
    checkout.spec.strategy.canary.abort_on_alerts = serde_json::from_value(json!([
        {"matchLabels": {}},
        {"matchLabels": {}, "anyNamespace": true},
    ]))
    .unwrap();
    assert_eq!(
        checkout.spec.strategy.canary.abort_on_alerts[1],
        AlertMatcher { any_namespace: true, ..matcher(&[]) }
    );
    for alert in [
        labels(&[]),
        labels(&[("namespace", "shop")]),
        labels(&[("alertname", "Anything"), ("severity", "page"), ("namespace", "shop")]),
        labels(&[("alertname", "Anything"), ("namespace", "elsewhere")]),
    ] {
        assert!(!matches(&alert, &checkout), "{alert:?}");
    }
    let hook = parsed(webhook(vec![alert("firing", json!({"alertname": "Anything", "namespace": "shop"}))]));
    let firing: Vec<_> = hook.alerts.iter().collect();
    assert!(first_match(&firing, &checkout).is_none());
    assert!(
        matches(&labels(&[("rollout", "checkout"), ("namespace", "shop")]), &checkout),
        "the named form still works"
    );
}

#[test]
fn the_earliest_matching_firing_alert_makes_one_request() {
    let mut later =
        alert("firing", json!({"alertname": "Later", "rollout": "checkout", "namespace": "shop"}));
    later["startsAt"] = json!("2026-11-24T11:00:00Z");
    later["fingerprint"] = json!("0000000000000001");
    let earlier =
        alert("firing", json!({"alertname": "Earlier", "rollout": "checkout", "namespace": "shop"}));
    let other = alert("firing", json!({"alertname": "Other", "rollout": "cart", "namespace": "shop"}));
    let hook = parsed(webhook(vec![later, earlier, other]));
    let firing: Vec<_> = hook.alerts.iter().collect();
    let chosen = first_match(&firing, &rollout("checkout", RolloutPhase::Progressing)).unwrap();
    assert_eq!(chosen.name(), "Earlier");
    assert!(first_match(&firing, &rollout("search", RolloutPhase::Progressing)).is_none());
}

#[test]
fn only_a_progressing_or_paused_canary_is_sent_a_request() {
    let hook = parsed(firing());
    let alert = &hook.alerts[0];
    for phase in [RolloutPhase::Progressing, RolloutPhase::Paused] {
        let request = abort_request(alert, &rollout("checkout", phase)).expect("a request");
        assert_eq!(request.id, "alert-3df8aa28f120cb72-bbbbbbbbbb-0");
        assert_eq!(request.by, REQUESTER);
        assert_eq!(request.revision.as_deref(), Some("bbbbbbbbbb"));
        let sent = request.alert.unwrap();
        assert_eq!(sent.name, "CheckoutSLOBurn");
        assert_eq!(sent.labels["namespace"], "shop");
        assert_eq!(sent.generator_url, "http://prometheus:9090/graph?g0.expr=slo_burn");
    }
    assert!(abort_request(alert, &rollout("checkout", RolloutPhase::Healthy)).is_none());
    let mut aborted = rollout("checkout", RolloutPhase::Degraded);
    assert!(abort_request(alert, &aborted).is_none());
    let status = aborted.status.as_mut().unwrap();
    status.phase = Some(RolloutPhase::Paused);
    status.abort = Some(AbortStatus {
        reason: "UserAbort".into(),
        message: "aborted".into(),
        metric: None,
        value: None,
        at: chrono::Utc::now(),
        by: "carol".into(),
        alert: None,
    });
    assert!(abort_request(alert, &aborted).is_none(), "an aborted canary is not aborted again");
    let mut retried = rollout("checkout", RolloutPhase::Paused);
    retried.status.as_mut().unwrap().progress.attempt = 2;
    assert_eq!(
        abort_request(alert, &retried).unwrap().id,
        "alert-3df8aa28f120cb72-bbbbbbbbbb-2",
        "a retried canary is a new request"
    );
    let mut fresh = rollout("checkout", RolloutPhase::Progressing);
    fresh.status = None;
    assert!(abort_request(alert, &fresh).is_none());
}

// ----- HTTPS -----

/// How often the HTTPS tests' receivers read their certificate files again.
const RELOAD: Duration = Duration::from_millis(100);

/// A directory laid out as Kubernetes lays out a Secret volume: `tls.crt` and `tls.key` are
/// symlinks into `..data`, a symlink to the current version's directory that an update swaps in one
/// rename. The paths the receiver is given never change; what they resolve to does.
struct SecretVolume {
    dir: tempfile::TempDir,
    versions: usize,
}

impl SecretVolume {
    fn new(cert: &str, key: &str) -> Self {
        let mut volume = Self { dir: tempfile::tempdir().unwrap(), versions: 0 };
        volume.update(cert, key);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), volume.dir.path().join(name)).unwrap();
        }
        volume
    }

    fn files(&self) -> TlsFiles {
        TlsFiles { cert: self.dir.path().join("tls.crt"), key: self.dir.path().join("tls.key") }
    }

    fn update(&mut self, cert: &str, key: &str) {
        self.versions += 1;
        let version = format!("..v{}", self.versions);
        let dir = self.dir.path();
        std::fs::create_dir(dir.join(&version)).unwrap();
        std::fs::write(dir.join(&version).join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join(&version).join("tls.key"), key).unwrap();
        std::os::unix::fs::symlink(&version, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    }
}

async fn https_receiver(files: TlsFiles) -> Receiver {
    let (tls, reload) = files.load(RELOAD).map_err(|e| e.to_string()).unwrap();
    tokio::spawn(reload);
    Receiver::serve(Credentials::Bearer(TOKEN.into()), Some(tls), generous(), false).await
}

/// Posts a firing alert with the right token to `url`; the status, or why there is none.
async fn post_with(client: &reqwest::Client, url: &str) -> Result<u16, String> {
    let request = client
        .post(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(firing().to_string());
    request.send().await.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}"))
}

async fn post_https(client: &reqwest::Client, receiver: &Receiver) -> Result<u16, String> {
    post_with(client, &format!("https://{}{PATH}", receiver.address)).await
}

/// Polls `check` until it holds, for at most 10 s.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn over_https_an_alert_is_accepted_and_plain_http_is_refused() {
    let ca = TestCa::new("Bellwether test CA");
    let (cert, key) = ca.server_pair();
    let volume = SecretVolume::new(&cert, &key);
    let receiver = https_receiver(volume.files()).await;
    assert_eq!(post_https(&ca.client(), &receiver).await, Ok(200));
    assert_eq!(receiver.received(), 1);

    let plain = post_with(&reqwest::Client::new(), &format!("http://{}{PATH}", receiver.address)).await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    let reply = receiver.post(Some(&format!("Bearer {TOKEN}")), "application/json", b"{}").await;
    assert!(!reply.head.starts_with("http/"), "plain HTTP was answered in HTTP: {:?}", reply.head);
    let untrusted = post_https(&TestCa::new("another CA").client(), &receiver).await;
    assert!(untrusted.is_err_and(|e| e.contains("UnknownIssuer")), "the client checks the certificate");
    assert_eq!(receiver.received(), 1, "nothing else reached the sink");
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_reload_and_a_bad_one_never_is() {
    let (old_ca, new_ca) = (TestCa::new("old CA"), TestCa::new("new CA"));
    let (cert, key) = old_ca.server_pair();
    let mut volume = SecretVolume::new(&cert, &key);
    let receiver = https_receiver(volume.files()).await;
    assert_eq!(post_https(&old_ca.client(), &receiver).await, Ok(200));
    assert!(post_https(&new_ca.client(), &receiver).await.is_err());

    let (cert, key) = new_ca.server_pair();
    volume.update(&cert, &key);
    until("the renewed certificate", || async { post_https(&new_ca.client(), &receiver).await == Ok(200) })
        .await;
    assert!(post_https(&old_ca.client(), &receiver).await.is_err(), "the old certificate is not served");

    let (next_cert, next_key) = old_ca.server_pair();
    let (_, stray_key) = old_ca.server_pair();
    let bad = [
        ("the key of another certificate", next_cert.clone(), stray_key),
        ("a truncated certificate", next_cert[..next_cert.len() / 2].to_string(), next_key.clone()),
        ("an empty key", next_cert.clone(), String::new()),
        ("no certificate", String::new(), next_key.clone()),
    ];
    for (what, cert, key) in bad {
        volume.update(&cert, &key);
        tokio::time::sleep(RELOAD * 5).await;
        assert_eq!(
            post_https(&new_ca.client(), &receiver).await,
            Ok(200),
            "{what}: the last good pair is served"
        );
    }
    // The files are still read after failures: a good pair is taken again.
    volume.update(&next_cert, &next_key);
    until("the next good certificate", || async { post_https(&old_ca.client(), &receiver).await == Ok(200) })
        .await;
}

#[test]
fn unusable_tls_files_are_refused_naming_the_file_at_fault() {
    let ca = TestCa::new("Bellwether test CA");
    let (cert, key) = ca.server_pair();
    let (_, stray_key) = ca.server_pair();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (good_cert, good_key) = (write("tls.crt", &cert), write("tls.key", &key));
    let missing = dir.path().join("missing.pem");
    let show = |path: &Path| path.display().to_string();
    let cases = [
        (missing.clone(), good_key.clone(), format!("cannot read {}", show(&missing))),
        (good_cert.clone(), missing.clone(), format!("cannot read {}", show(&missing))),
        (dir.path().to_path_buf(), good_key.clone(), format!("cannot read {}", show(dir.path()))),
        (write("empty.crt", ""), good_key.clone(), "empty.crt holds no PEM certificate".into()),
        (
            write("huge.crt", &cert.repeat((1 << 20) / cert.len() + 1)),
            good_key.clone(),
            "huge.crt is larger than 1048576 bytes".into(),
        ),
        (write("key.crt", &key), good_key.clone(), "key.crt holds no PEM certificate".into()),
        (
            write("cut.crt", &cert[..cert.len() / 2]),
            good_key.clone(),
            "cut.crt holds a malformed PEM certificate".into(),
        ),
        (good_cert.clone(), write("cert.key", &cert), "cert.key holds no PEM private key".into()),
        (
            good_cert.clone(),
            write("stray.key", &stray_key),
            format!("stray.key is not the key of the certificate in {}", show(&good_cert)),
        ),
        (
            good_cert.clone(),
            write("zeros.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            format!("cannot serve the certificate in {} with the key in", show(&good_cert)),
        ),
    ];
    for (cert, key, expected) in cases {
        let refused = TlsFiles { cert, key }.load(RELOAD).err().expect("an unusable pair is refused");
        assert!(refused.to_string().contains(&expected), "{refused} does not say {expected:?}");
    }
    assert!(TlsFiles { cert: good_cert, key: good_key }.load(RELOAD).is_ok());
}
