//! The steps of a job metric's measurement against the test API server, pass by pass as the
//! AnalysisRun reconciler takes them: a Job found created is in flight and never created twice, its
//! end is the measurement, a Job that cannot be deleted now is deleted on a later pass, and the
//! refusals of the API server are measurement errors that quote it.

use bellwether::api::{AnalysisRun, AnalysisRunStatus, Measurement};
use bellwether::controller::acting::Acting;
use bellwether::controller::jobs::{self, NOT_ENABLED, Taken};
use bellwether::controller::leader::Leadership;
use bellwether::controller::measure::Runs;
use bellwether::controller::secrets::ReadableSecrets;
use bellwether::controller::{Config, Context, caches};
use bellwether::metrics::job::{build, job_name};
use bellwether::metrics::measure::vars;
use bellwether::metrics::providers::Providers;
use bellwether::server::Metrics;
use bellwether_testkit::apiserver::TestApiServer;
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const NAMESPACE: &str = "shop";

/// The reconciler's context for the test API server, with job metrics allowed or not.
fn runs(server: &TestApiServer, job_metrics: bool) -> Runs {
    let client = server.client();
    let config = Config::default();
    let (caches, _) = caches::watch(&client, &config);
    let ctx = Context::start(
        client,
        Metrics::new(),
        Providers::new(1),
        Acting::Leader(Leadership::always()),
        ReadableSecrets::new([]),
        caches,
        &config,
        "test",
    );
    Runs { ctx: Arc::new(ctx), cluster_secrets_namespace: NAMESPACE.into(), job_metrics }
}

/// A started run, stored, with one job metric whose command is `script`.
async fn run(server: &TestApiServer, script: &str) -> AnalysisRun {
    let run: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "checkout-abc123-1-step1"},
        "spec": {
            "revision": "abc123",
            "metrics": [{
                "name": "smoke",
                "interval": "1s",
                "provider": {"job": {"spec": {"template": {"spec": {"containers": [{
                    "name": "smoke",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", script],
                }]}}}}},
                "threshold": {"min": 1},
            }],
        },
    }))
    .unwrap();
    let api = Api::<AnalysisRun>::namespaced(server.client(), NAMESPACE);
    let mut run = api.create(&PostParams::default(), &run).await.expect("creating the run");
    run.status = Some(AnalysisRunStatus { started_at: Some(due(0)), ..AnalysisRunStatus::default() });
    run
}

fn due(second: i64) -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(second)
}

/// One pass's step of the run's metric, due since `since`.
async fn step(runs: &Runs, run: &AnalysisRun, since: DateTime<Utc>) -> Taken {
    let metric = &run.spec.metrics[0];
    let job = metric.provider.job.as_ref().unwrap();
    jobs::measure(runs, run, metric, job, &vars(run), since, Utc::now()).await
}

fn jobs_api(server: &TestApiServer) -> Api<Job> {
    Api::namespaced(server.client(), NAMESPACE)
}

async fn job_names(server: &TestApiServer) -> Vec<String> {
    let jobs = jobs_api(server).list(&ListParams::default()).await.unwrap();
    jobs.items.iter().map(ResourceExt::name_any).collect()
}

/// Takes steps until one gives a measurement, failing after a while.
async fn measured(runs: &Runs, run: &AnalysisRun, since: DateTime<Utc>) -> (Measurement, Option<String>) {
    for _ in 0..200 {
        match step(runs, run, since).await {
            Taken::Measured(measurement) => return (measurement, None),
            Taken::FromJob(measurement, job) => return (measurement, Some(job)),
            Taken::Running => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("no measurement after 10s");
}

fn error_of(taken: Taken) -> String {
    match taken {
        Taken::Measured(Measurement { error: Some(error), value: None, .. }) => error,
        other => panic!("expected a measurement error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_job_created_by_another_pass_is_in_flight_and_never_created_twice() {
    let server = TestApiServer::start().await;
    let runs = runs(&server, true);
    let run = run(&server, "sleep 5").await;
    let name = job_name(&run.name_any(), "smoke", due(0));

    // The create of a pass whose own write did not show yet: refused with 409, it is in flight.
    server.inject_conflicts("jobs", 1);
    assert!(matches!(step(&runs, &run, due(0)).await, Taken::Running));
    assert!(job_names(&server).await.is_empty(), "the 409 was not an error, and created nothing");

    // Created by another pass meanwhile: found, and in flight.
    let metric = &run.spec.metrics[0];
    let object = build(&run, metric, metric.provider.job.as_ref().unwrap(), &vars(&run), &name).unwrap();
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    Api::<DynamicObject>::namespaced_with(server.client(), NAMESPACE, &ApiResource::erase::<Job>(&()))
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(matches!(step(&runs, &run, due(0)).await, Taken::Running));
    }
    assert_eq!(job_names(&server).await, [name]);
}

#[tokio::test]
async fn a_job_that_ends_is_the_measurement_and_a_failed_delete_is_retried_later() {
    let server = TestApiServer::start().await;
    let runs = runs(&server, true);
    let good = run(&server, "true").await;
    let (measurement, first) = measured(&runs, &good, due(0)).await;
    assert_eq!((measurement.value, measurement.error), (Some(1.0), None));
    let first = first.expect("the Job to delete");
    assert_eq!(first, job_name(&good.name_any(), "smoke", due(0)));

    // The delete after the status write fails: the Job stays, for now.
    server.fail_requests("jobs", 500, 1);
    jobs::recorded(&runs.ctx, &good, std::slice::from_ref(&first)).await;
    assert_eq!(job_names(&server).await, std::slice::from_ref(&first));

    // The next measurement's pass deletes it before it creates its own Job.
    assert!(matches!(step(&runs, &good, due(2)).await, Taken::Running));
    let second = job_name(&good.name_any(), "smoke", due(2));
    assert_eq!(job_names(&server).await, std::slice::from_ref(&second));

    // Once the run has ended every Job of it goes, however often a delete fails first.
    server.fail_requests("jobs", 500, 1);
    assert!(jobs::ended(&runs.ctx, &good).await.is_err());
    assert_eq!(job_names(&server).await, [second]);
    jobs::ended(&runs.ctx, &good).await.expect("deleting the run's Jobs");
    assert!(job_names(&server).await.is_empty());
}

#[tokio::test]
async fn a_job_that_fails_measures_0_with_an_event_naming_why() {
    let server = TestApiServer::start().await;
    let runs = runs(&server, true);
    let bad = run(&server, "exit 3").await;
    let (measurement, job) = measured(&runs, &bad, due(0)).await;
    assert_eq!(
        (measurement.value, measurement.error),
        (Some(0.0), None),
        "a failure is a value, not an error"
    );
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(server.client(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap();
    let notes: Vec<String> = events
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("JobFailed"))
        .filter_map(|e| e.note.clone())
        .collect();
    assert_eq!(
        notes,
        [format!(
            "Job {} of metric smoke failed (BackoffLimitExceeded): Job has reached the specified backoff limit",
            job.unwrap()
        )]
    );
}

#[tokio::test]
async fn refusals_are_measurement_errors_that_quote_the_api_server() {
    let server = TestApiServer::start().await;
    let off = runs(&server, false);
    let mut run = run(&server, "true").await;
    assert_eq!(error_of(step(&off, &run, due(0)).await), NOT_ENABLED);
    assert!(NOT_ENABLED.contains("--job-metrics") && NOT_ENABLED.contains("jobMetrics: true"));
    assert!(job_names(&server).await.is_empty());

    let on = runs(&server, true);
    let job = run.spec.metrics[0].provider.job.as_mut().unwrap();
    job.spec["template"]["spec"]["restartPolicy"] = json!("Always");
    let error = error_of(step(&on, &run, due(0)).await);
    assert!(error.starts_with("provider.job: creating Job shop/checkout-abc123-1-step1-smoke-"), "{error}");
    assert!(
        error.contains(r#"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#),
        "{error}"
    );

    server.forbid_writes("jobs");
    let job = run.spec.metrics[0].provider.job.as_mut().unwrap();
    job.spec["template"]["spec"]["restartPolicy"] = json!("Never");
    let error = error_of(step(&on, &run, due(0)).await);
    assert!(error.contains("cannot create resource \"jobs\" in API group \"batch\""), "{error}");
}

#[tokio::test]
async fn a_job_of_the_name_that_the_run_does_not_own_is_not_its_measurement() {
    let server = TestApiServer::start().await;
    let runs = runs(&server, true);
    let run = run(&server, "true").await;
    let name = job_name(&run.name_any(), "smoke", due(0));
    let stray = serde_json::from_value::<Job>(json!({
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "x", "command": ["true"]}]}}},
    }))
    .unwrap();
    jobs_api(&server).create(&PostParams::default(), &stray).await.unwrap();
    let error = error_of(step(&runs, &run, due(0)).await);
    assert_eq!(
        error,
        format!("provider.job: Job shop/{name} exists, and this run is not its controller owner")
    );
    jobs::ended(&runs.ctx, &run).await.unwrap();
    assert_eq!(job_names(&server).await, [name], "nor deleted with the run's own");
}

/// The ready-made smoke test's Job asks the canary's own Service, its values passed as env.
#[test]
fn the_ready_made_smoke_tests_job_asks_the_canarys_service() {
    let template: bellwether::api::ClusterAnalysisTemplate =
        serde_yaml::from_str(include_str!("../../analysis-templates/smoke-test-job.yaml")).unwrap();
    let args: Vec<Value> = template
        .spec
        .args
        .iter()
        .map(|arg| json!({"name": arg.name, "value": if arg.name == "port" { "8080" } else { arg.value.as_deref().unwrap() }}))
        .collect();
    let mut run: AnalysisRun = serde_json::from_value(json!({
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "checkout-abc123-1-step1", "namespace": NAMESPACE, "uid": "run-uid"},
        "spec": {
            "revision": "abc123",
            "metrics": template.spec.metrics,
            "args": args,
            "context": {
                "rollout": "checkout",
                "stableRevision": "def456",
                "canaryService": "checkout-canary",
                "stableService": "checkout-stable",
            },
        },
    }))
    .unwrap();
    run.metadata.uid = Some("run-uid".into());
    let metric = &run.spec.metrics[0];
    let job = build(&run, metric, metric.provider.job.as_ref().unwrap(), &vars(&run), "smoke").unwrap();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["env"],
        json!([
            {"name": "HOST", "value": "checkout-canary.shop.svc"},
            {"name": "PORT", "value": "8080"},
            {"name": "URL_PATH", "value": "/healthz"},
            {"name": "ATTEMPTS", "value": "5"},
        ])
    );
    let script = container["command"][2].as_str().unwrap();
    assert!(!script.contains("{{"), "the script holds no placeholder");
    // An arg that would test nothing (no attempts) or another host fails the test before any
    // request; the script runs here under the local sh, as busybox's would run it.
    for (attempts, port, path) in [
        ("0", "80", "/healthz"),
        ("five", "80", "/healthz"),
        ("5", "80@other", "/healthz"),
        ("5", "80", "@other/healthz"),
    ] {
        let status = std::process::Command::new("sh")
            .args(["-c", script])
            .env("HOST", "127.0.0.1")
            .env("PORT", port)
            .env("URL_PATH", path)
            .env("ATTEMPTS", attempts)
            .output()
            .expect("sh runs")
            .status;
        assert_eq!(status.code(), Some(2), "{attempts} {port} {path}");
    }
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 120);
}
