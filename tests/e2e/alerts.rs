//! Alert-driven aborts end to end: a real Alertmanager routes a firing alert to the controller's
//! webhook receiver, and the canary's traffic goes back to stable. Alerts that must not abort
//! (resolved, about another Rollout or another namespace, unauthenticated, malformed, oversize, or
//! for a Rollout with no canary in flight) change nothing, and beyond the hourly limit an alert
//! escalates instead. The receiver serves HTTPS when given a certificate, and refuses to start
//! with one it cannot use.

use bellwether_testkit::test_ca;

use crate::alertmanager::{Alertmanager, Receiver};
use crate::harness::{Cluster, Controller, ROLLOUT, create, eventually};
use crate::prometheus::free_port;
use crate::rollouts::{deploy_stable, record_weights};
use crate::webhook_sink::{Answer, Sink};
use bellwether::api::{AlertMatcher, Rollout, RolloutPhase};
use bellwether::controller::Config;
use bellwether::controller::alerts::AlertAborts;
use bellwether::controller::requests::REQUEST_PREFIX;
use bellwether::server::Metrics;
use bellwether::server::alerts::{Credentials, Limits, PATH, serve_alerts};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use test_ca::TestCa;
use tokio::sync::{oneshot, watch};

const TOKEN: &str = "e2e-alert-token";
const SECRET: &str = "alert-receiver";

async fn create_token_secret(cluster: &Cluster) {
    create::<Secret>(
        &cluster.client,
        &cluster.namespace,
        json!({"metadata": {"name": SECRET}, "stringData": {"token": TOKEN}}),
    )
    .await;
}

/// Starts the controller with its alert receiver on a free port, and further `flags`, and waits
/// until the receiver listens; returns the controller with the receiver's URL.
async fn controller_with_receiver(cluster: &Cluster, flags: &[&str]) -> (Controller, String) {
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let mut all = vec![
        "--alerts-addr",
        &address,
        "--alerts-auth-secret",
        SECRET,
        "--alerts-auth-secret-namespace",
        &cluster.namespace,
    ];
    all.extend_from_slice(flags);
    let controller = Controller::start(cluster, &all);
    eventually("the alert receiver to listen", || async {
        tokio::net::TcpStream::connect(&address).await.ok().map(drop)
    })
    .await;
    let scheme = if flags.contains(&"--alerts-tls-cert-file") { "https" } else { "http" };
    (controller, format!("{scheme}://{address}{PATH}"))
}

async fn start_alertmanager(receiver: Receiver) -> Alertmanager {
    tokio::task::spawn_blocking(move || Alertmanager::start(&receiver))
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("cannot start Alertmanager: {error}"))
}

/// An alert as Prometheus posts it to Alertmanager.
fn alert(name: &str, labels: Value) -> Value {
    let mut labels = labels;
    labels["alertname"] = json!(name);
    json!([{
        "labels": labels,
        "annotations": {"summary": "the checkout SLO burns"},
        "generatorURL": "http://prometheus.example/graph?g0.expr=slo_burn",
    }])
}

fn about_web(cluster: &Cluster) -> Value {
    json!({"rollout": ROLLOUT, "namespace": cluster.namespace, "severity": "page"})
}

async fn canary_at(cluster: &Cluster, weight: i32, phase: RolloutPhase) -> Rollout {
    cluster
        .rollout_until(&format!("the canary at {weight}%"), |r| {
            r.status.as_ref().is_some_and(|s| {
                s.canary_revision.is_some()
                    && s.phase == Some(phase)
                    && s.weights.canary == weight
                    && s.weights.verified
            })
        })
        .await
}

fn request_annotations(rollout: &Rollout) -> Vec<String> {
    rollout.annotations().keys().filter(|k| k.starts_with(REQUEST_PREFIX)).cloned().collect()
}

/// Posts `body` straight to the receiver, as Alertmanager would, with `authorization`.
async fn post(url: &str, authorization: Option<&str>, body: String) -> (u16, String) {
    post_with(&reqwest::Client::new(), url, authorization, body).await.expect("the receiver answers")
}

/// Posts `body` with `client`: the status and body of the answer, or why there is none.
async fn post_with(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
    body: String,
) -> Result<(u16, String), reqwest::Error> {
    let mut request = client.post(url).header("content-type", "application/json").body(body);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// A version-4 webhook with one alert, as Alertmanager sends it.
fn webhook(status: &str, labels: Value) -> String {
    let mut labels = labels;
    labels.as_object_mut().unwrap().entry("alertname").or_insert(json!("CheckoutSLOBurn"));
    json!({
        "receiver": "bellwether", "status": status, "groupLabels": {}, "commonLabels": labels,
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example", "version": "4",
        "groupKey": "{}:{}", "truncatedAlerts": 0,
        "alerts": [{
            "status": status, "labels": labels, "annotations": {},
            "startsAt": "2026-11-24T10:00:00Z",
            "endsAt": if status == "firing" { "0001-01-01T00:00:00Z" } else { "2026-11-24T10:05:00Z" },
            "generatorURL": "http://prometheus.example/graph", "fingerprint": "00000000000000aa",
        }],
    })
    .to_string()
}

/// Writes a request annotation as the plugin does.
async fn send_request(cluster: &Cluster, id: &str, action: &str) {
    let patch = json!({"metadata": {"annotations": {
        format!("{REQUEST_PREFIX}{id}"): json!({"action": action, "by": "carol"}).to_string(),
    }}});
    cluster.rollouts().patch(ROLLOUT, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_through_alertmanager_aborts_a_progressing_canary() {
    let cluster = Cluster::start("alert-abort").await;
    create_token_secret(&cluster).await;
    let (controller, url) = controller_with_receiver(&cluster, &[]).await;
    let alertmanager = start_alertmanager(Receiver::bearer(&url, TOKEN)).await;
    let weights = record_weights(&cluster);
    let steps = json!([{"setWeight": 20}, {"pause": {"duration": "10m"}}]);
    deploy_stable(&cluster, steps.clone()).await;
    cluster.ship(&cluster.rollout("2", steps)).await;
    canary_at(&cluster, 20, RolloutPhase::Progressing).await;

    // An alert about another Rollout does nothing (resolved alerts are in the next test).
    let cart = json!({"rollout": "cart", "namespace": cluster.namespace});
    alertmanager.post_alerts(&alert("CartSLOBurn", cart)).unwrap();

    let posted = Instant::now();
    alertmanager.post_alerts(&alert("CheckoutSLOBurn", about_web(&cluster))).unwrap();
    let stable_again = eventually("all traffic back on stable", || async {
        let log = weights.lock().unwrap().clone();
        log.iter().find(|(w, at)| *w == (0, 100) && *at >= posted).map(|(_, at)| *at)
    })
    .await;
    let through_alertmanager = stable_again.saturating_duration_since(posted);

    let rollout = cluster
        .rollout_until("the abort in status", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let abort = rollout.status.as_ref().and_then(|s| s.abort.clone()).expect("an abort");
    assert_eq!((abort.reason.as_str(), abort.by.as_str()), ("AlertFiring", "alertmanager"));
    let alert = abort.alert.expect("the alert in the abort");
    assert_eq!(alert.name, "CheckoutSLOBurn", "the other Rollout's alert did not abort");
    assert_eq!(alert.labels["severity"], "page");
    assert_eq!(alert.generator_url, "http://prometheus.example/graph?g0.expr=slo_burn");
    assert!(
        abort.message.contains("CheckoutSLOBurn")
            && abort.message.contains("http://prometheus.example/graph")
    );
    let aborted = eventually("the abort Event", || async {
        cluster.event_notes("RolloutAborted").await.into_iter().find(|note| note.contains("CheckoutSLOBurn"))
    })
    .await;
    assert!(aborted.contains("severity=\"page\"") && aborted.contains("g0.expr=slo_burn"), "{aborted}");
    let seen: Vec<(i64, i64)> = weights.lock().unwrap().iter().map(|(w, _)| *w).collect();
    assert_eq!(seen, [(0, 100), (20, 80), (0, 100)]);
    drop(seen);
    eventually("the handled request annotation removed", || async {
        let rollout = cluster.rollouts().get(ROLLOUT).await.ok()?;
        request_annotations(&rollout).is_empty().then_some(())
    })
    .await;

    // The baseline, in the same run: the abort request a person's `kubectl bellwether abort`
    // writes, from the write to weight 0. The alert path adds Alertmanager and the receiver.
    send_request(&cluster, "retry-1", "retry").await;
    canary_at(&cluster, 20, RolloutPhase::Progressing).await;
    let sent = Instant::now();
    send_request(&cluster, "abort-1", "abort").await;
    let direct = eventually("all traffic back on stable after a direct abort", || async {
        let log = weights.lock().unwrap().clone();
        log.iter().find(|(w, at)| *w == (0, 100) && *at >= sent).map(|(_, at)| *at)
    })
    .await
    .saturating_duration_since(sent);
    eprintln!(
        "to route weight 0: alert posted to Alertmanager {} ms; abort request written {} ms (baseline); ratio {:.2}",
        through_alertmanager.as_millis(),
        direct.as_millis(),
        through_alertmanager.as_secs_f64() / direct.as_secs_f64().max(1e-3)
    );
    controller.stop().await;
}

/// The count of webhooks the controller's receiver accepted, from its metrics at `metrics_addr`.
async fn accepted_webhooks(metrics_addr: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{metrics_addr}/metrics")).await.ok()?.text().await.ok()?;
    let line =
        text.lines().find_map(|l| l.strip_prefix(r#"bellwether_alert_webhooks_total{result="accepted"} "#));
    line.map_or(Ok(0.0), str::parse).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_teams_alert_with_the_same_labels_does_not_abort_the_canary() {
    let cluster = Cluster::start("alert-namespace").await;
    create_token_secret(&cluster).await;
    let metrics_addr = format!("127.0.0.1:{}", free_port().unwrap());
    let (controller, url) = controller_with_receiver(&cluster, &["--metrics-addr", &metrics_addr]).await;
    let alertmanager = start_alertmanager(Receiver::bearer(&url, TOKEN)).await;
    let steps = json!([{"setWeight": 20}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;
    let mut rollout = cluster.rollout("2", steps);
    let api = [("service", "api"), ("severity", "page")];
    rollout.spec.strategy.canary.abort_on_alerts = vec![AlertMatcher {
        match_labels: api.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        any_namespace: false,
    }];
    cluster.ship(&rollout).await;
    let paused = canary_at(&cluster, 20, RolloutPhase::Paused).await;

    let other_team = json!({"service": "api", "severity": "page", "namespace": "other-team"});
    alertmanager.post_alerts(&alert("ApiErrorBudgetBurn", other_team)).unwrap();
    eventually("Alertmanager's webhook accepted", || async {
        (accepted_webhooks(&metrics_addr).await? >= 1.0).then_some(())
    })
    .await;
    let after = cluster.rollouts().get(ROLLOUT).await.unwrap();
    assert_eq!(after.resource_version(), paused.resource_version(), "another team's alert wrote nothing");

    // The same alert about this namespace does abort: the check above could have failed.
    let this_team = json!({"service": "api", "severity": "page", "namespace": cluster.namespace});
    alertmanager.post_alerts(&alert("ApiErrorBudgetBurn", this_team)).unwrap();
    let aborted = cluster
        .rollout_until("the alert-driven abort", |r| r.status.as_ref().is_some_and(|s| s.abort.is_some()))
        .await;
    let alert = aborted.status.and_then(|s| s.abort).and_then(|a| a.alert).expect("the alert in the abort");
    assert_eq!(alert.labels["namespace"], cluster.namespace);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_that_must_not_abort_change_nothing() {
    let cluster = Cluster::start("alert-nothing").await;
    create_token_secret(&cluster).await;
    let (controller, url) = controller_with_receiver(&cluster, &[]).await;
    let bearer = format!("Bearer {TOKEN}");
    let steps = json!([{"setWeight": 20}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;

    // A Healthy rollout: a matching alert is taken, and the Rollout is not written at all.
    let before = cluster.rollouts().get(ROLLOUT).await.unwrap();
    let (status, body) = post(&url, Some(&bearer), webhook("firing", about_web(&cluster))).await;
    assert_eq!((status, body.trim()), (200, r#"{"aborting":[],"firing":1}"#));
    let after = cluster.rollouts().get(ROLLOUT).await.unwrap();
    assert_eq!(after.resource_version(), before.resource_version(), "a Healthy rollout is never touched");

    cluster.ship(&cluster.rollout("2", steps)).await;
    let paused = canary_at(&cluster, 20, RolloutPhase::Paused).await;
    let mut oversize = webhook("firing", about_web(&cluster));
    oversize.insert_str(oversize.len() - 1, &format!(",\"padding\":\"{}\"", "x".repeat(2 * 1024 * 1024)));
    let refused = [
        ("no credentials", None, webhook("firing", about_web(&cluster)), 401),
        ("a wrong token", Some("Bearer guess"), webhook("firing", about_web(&cluster)), 401),
        ("a malformed payload", Some(bearer.as_str()), "{\"version\":\"4\"}".to_string(), 400),
        ("an oversize body", Some(bearer.as_str()), oversize, 413),
        ("a resolved alert", Some(bearer.as_str()), webhook("resolved", about_web(&cluster)), 200),
        (
            "another Rollout's alert",
            Some(bearer.as_str()),
            webhook("firing", json!({"rollout": "cart", "namespace": cluster.namespace})),
            200,
        ),
    ];
    for (what, authorization, body, expected) in refused {
        let (status, text) = post(&url, authorization, body).await;
        assert_eq!(status, expected, "{what}: {text}");
        let now = cluster.rollouts().get(ROLLOUT).await.unwrap();
        assert!(request_annotations(&now).is_empty(), "{what} wrote a request");
        let status = now.status.unwrap();
        assert_eq!((status.phase, status.weights.canary), (Some(RolloutPhase::Paused), 20), "{what}");
    }
    assert!(paused.status.unwrap().progress.handled_requests.is_empty());

    // The same setup does abort on a matching firing alert: the checks above could have failed.
    let (status, body) = post(&url, Some(&bearer), webhook("firing", about_web(&cluster))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{}/{ROLLOUT}", cluster.namespace)), "{body}");
    cluster
        .rollout_until("the alert-driven abort", |r| r.status.as_ref().is_some_and(|s| s.abort.is_some()))
        .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_hourly_limit_an_alert_escalates_and_the_canary_carries_on() {
    let cluster = Cluster::start("alert-limit").await;
    create_token_secret(&cluster).await;
    let hooks = format!("{}/hooks", cluster.namespace);
    let (controller, url) = controller_with_receiver(&cluster, &["--readable-secret", &hooks]).await;
    let bearer = format!("Bearer {TOKEN}");
    let steps = json!([{"setWeight": 20}, {"pause": {}}]);
    deploy_stable(&cluster, steps.clone()).await;
    let sink = Sink::start(vec![], Answer::Status(200)).await;
    let hook = json!({"metadata": {"name": "hooks"}, "stringData": {"url": sink.url("/hooks/deploys")}});
    create::<Secret>(&cluster.client, &cluster.namespace, hook).await;
    let mut rollout = cluster.rollout("2", steps);
    rollout.spec.strategy.canary.max_alert_aborts_per_hour = Some(1);
    // Shipping changes the template and strategy only; the targets are set first.
    let targets = json!({"spec": {"notifications": [{
        "name": "deploys",
        "urlSecretRef": {"name": "hooks", "key": "url"},
        "events": ["Aborted", "AlertAbortEscalated"],
    }]}});
    cluster.rollouts().patch(ROLLOUT, &PatchParams::default(), &Patch::Merge(&targets)).await.unwrap();
    cluster.ship(&rollout).await;
    canary_at(&cluster, 20, RolloutPhase::Paused).await;

    assert_eq!(post(&url, Some(&bearer), webhook("firing", about_web(&cluster))).await.0, 200);
    cluster
        .rollout_until("the first alert-driven abort", |r| {
            r.status.as_ref().is_some_and(|s| s.abort.is_some())
        })
        .await;
    send_request(&cluster, "retry-1", "retry").await;
    canary_at(&cluster, 20, RolloutPhase::Paused).await;

    // The retried canary is a new request for the same alert, and the limit of one is spent.
    assert_eq!(post(&url, Some(&bearer), webhook("firing", about_web(&cluster))).await.0, 200);
    let escalated = eventually("the escalation Event", || async {
        cluster.event_notes("AlertAbortEscalated").await.pop()
    })
    .await;
    assert!(
        escalated.contains("maxAlertAbortsPerHour (1)") && escalated.contains("a person must decide"),
        "{escalated}"
    );
    let rollout = cluster.rollouts().get(ROLLOUT).await.unwrap();
    let status = rollout.status.unwrap();
    assert!(status.abort.is_none(), "the canary carries on");
    assert_eq!((status.phase, status.weights.canary), (Some(RolloutPhase::Paused), 20));
    assert_eq!(status.alert_aborts.len(), 1);

    // People hear of both: the abort, and the alert that could not abort.
    let told = eventually("the escalation notified", || async {
        let events: Vec<String> =
            sink.received().iter().filter_map(|r| r.body["event"].as_str().map(String::from)).collect();
        events.contains(&"AlertAbortEscalated".to_string()).then_some(events)
    })
    .await;
    assert_eq!(told, ["Aborted", "AlertAbortEscalated"]);
    let escalation = sink.received().pop().unwrap().body;
    assert!(escalation["message"].as_str().unwrap().contains("CheckoutSLOBurn"), "{escalation}");
    controller.stop().await;
}

/// The receiver alone, without reconcilers, so that nothing else writes the Rollout: conflicts
/// are retried with a fresh read, and a write that keeps failing answers 503 and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_retried_and_a_failing_api_server_answers_503() {
    let cluster = Cluster::start("alert-conflicts").await;
    let Some(server) = cluster.server.as_ref() else {
        println!("skipped: needs the test API server's fault injection");
        return;
    };
    let mut rollout = cluster.rollout("2", json!([{"setWeight": 20}, {"pause": {}}]));
    cluster.rollouts().create(&PostParams::default(), &rollout).await.unwrap();
    rollout = cluster.rollouts().get(ROLLOUT).await.unwrap();
    rollout.status = Some(bellwether::api::RolloutStatus {
        phase: Some(RolloutPhase::Paused),
        stable_revision: Some("aaaaaaaaaa".into()),
        canary_revision: Some("bbbbbbbbbb".into()),
        ..Default::default()
    });
    cluster.rollouts().replace_status(ROLLOUT, &PostParams::default(), &rollout).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{PATH}", listener.local_addr().unwrap());
    let config = Config { namespace: Some(cluster.namespace.clone()), ..Config::default() };
    let sink = Arc::new(AlertAborts::new(cluster.client.clone(), config, Metrics::new()));
    let (_credentials, current) = watch::channel(Credentials::Disabled);
    let limits = Limits { max_body_bytes: 1 << 20, per_minute: 1000, unauthenticated_per_minute: 1000 };
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_alerts(listener, current, None, limits, sink, Metrics::new(), async {
        let _ = stopped.await;
    }));
    let firing = || webhook("firing", about_web(&cluster));

    server.inject_conflicts("rollouts", 6);
    let (status, body) = post(&url, None, firing()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("gave up after 6 conflicts"), "{body}");
    assert!(request_annotations(&cluster.rollouts().get(ROLLOUT).await.unwrap()).is_empty());

    server.inject_conflicts("rollouts", 3);
    let (status, body) = post(&url, None, firing()).await;
    assert_eq!(status, 200, "{body}");
    let sent = request_annotations(&cluster.rollouts().get(ROLLOUT).await.unwrap());
    assert_eq!(sent, [format!("{REQUEST_PREFIX}alert-00000000000000aa-bbbbbbbbbb-0")]);

    server.forbid_writes("rollouts");
    let (status, body) = post(&url, None, firing()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cannot send the abort to") && body.contains("is forbidden"), "{body}");
    assert_eq!(request_annotations(&cluster.rollouts().get(ROLLOUT).await.unwrap()), sent);
}

#[derive(clap::Parser)]
struct Command {
    #[command(flatten)]
    args: bellwether::cli::controller::ControllerArgs,
}

/// Runs the controller process with `flags` until it stops by itself, which it must do at once.
async fn refused_start(cluster: &Cluster, flags: &[&str]) -> String {
    let mut argv =
        vec!["bellwether-controller", "--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"];
    argv.extend_from_slice(flags);
    let args = <Command as clap::Parser>::parse_from(argv).args;
    let (_stop, shutdown) = watch::channel(false);
    let run = bellwether::cli::controller::serve(cluster.client.clone(), &args, shutdown);
    let result =
        tokio::time::timeout(crate::harness::PATIENCE, run).await.expect("the controller stops at once");
    result.expect_err("the controller must refuse to start").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_refuses_to_start_without_credentials() {
    let cluster = Cluster::start("alert-refusals").await;
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let ns = cluster.namespace.clone();
    let error = refused_start(&cluster, &["--alerts-addr", &addr]).await;
    assert!(error.contains("--alerts-addr needs credentials"), "{error}");

    let missing =
        ["--alerts-addr", &addr, "--alerts-auth-secret", SECRET, "--alerts-auth-secret-namespace", &ns];
    let error = refused_start(&cluster, &missing).await;
    assert!(error.contains(&format!("Secret {ns}/{SECRET} needs a non-empty \"token\" key")), "{error}");
    assert!(error.contains("does not exist"), "{error}");

    create::<Secret>(
        &cluster.client,
        &ns,
        json!({"metadata": {"name": SECRET}, "stringData": {"username": "am"}}),
    )
    .await;
    let error = refused_start(&cluster, &missing).await;
    assert!(error.contains("or \"username\" and \"password\" keys"), "{error}");
    let listening = tokio::net::TcpStream::connect(&addr).await;
    assert!(listening.is_err(), "nothing listens on the receiver's port after a refused start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_serves_https_and_refuses_to_start_with_unusable_tls_files() {
    let cluster = Cluster::start("alert-tls").await;
    create_token_secret(&cluster).await;
    let ca = TestCa::new("Bellwether e2e CA");
    let (cert, key) = ca.server_pair();
    let (_, stray_key) = ca.server_pair();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (cert, key, stray_key) =
        (write("tls.crt", &cert), write("tls.key", &key), write("stray.key", &stray_key));
    let missing = dir.path().join("missing.crt").display().to_string();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let ns = cluster.namespace.clone();
    for (given, absent) in [
        ("--alerts-tls-cert-file", "--alerts-tls-key-file"),
        ("--alerts-tls-key-file", "--alerts-tls-cert-file"),
    ] {
        let argv =
            ["bellwether-controller", "--alerts-addr", &addr, "--alerts-insecure-no-auth", given, &cert];
        let error =
            <Command as clap::Parser>::try_parse_from(argv).err().expect("one TLS file without the other");
        assert!(error.to_string().contains(absent), "{error}");
    }
    for (cert, key, expected) in [
        (&missing, &key, format!("cannot read {missing}")),
        (&cert, &stray_key, format!("{stray_key} is not the key of the certificate in {cert}")),
    ] {
        let flags = [
            "--alerts-addr",
            &addr,
            "--alerts-auth-secret",
            SECRET,
            "--alerts-auth-secret-namespace",
            &ns,
            "--alerts-tls-cert-file",
            cert,
            "--alerts-tls-key-file",
            key,
        ];
        let error = refused_start(&cluster, &flags).await;
        assert!(error.contains("--alerts-tls-cert-file") && error.contains(&expected), "{error}");
        assert!(
            tokio::net::TcpStream::connect(&addr).await.is_err(),
            "nothing listens after a refused start"
        );
    }

    let flags = ["--alerts-tls-cert-file", &cert, "--alerts-tls-key-file", &key];
    let (controller, url) = controller_with_receiver(&cluster, &flags).await;
    let bearer = format!("Bearer {TOKEN}");
    let body = || webhook("firing", about_web(&cluster));
    let (status, text) = post_with(&ca.client(), &url, Some(&bearer), body()).await.expect("an HTTPS answer");
    assert_eq!((status, text.trim()), (200, r#"{"aborting":[],"firing":1}"#));
    let plain = url.replacen("https://", "http://", 1);
    assert!(post_with(&reqwest::Client::new(), &plain, Some(&bearer), body()).await.is_err());
    controller.stop().await;
}
